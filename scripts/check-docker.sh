#!/usr/bin/env bash
# Checks that deploy/docker/Dockerfile builds the binary the README builds
# (`go build -o umbra ./cmd/umbra`): the same main package, module
# dependencies (versions and checksums) and Go version; and that it is
# byte for byte what a local build with the Dockerfile's flags gives (when
# the local Go is the image's), static, run as a non-root user.
# Where no Docker engine runs, or it cannot pull the base images (no
# registry access), it says so and exits 0 (skipped).
#   scripts/check-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null; then
  echo "check-docker: SKIPPED: docker is not installed"
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "check-docker: SKIPPED: no Docker engine is reachable (docker info failed)"
  exit 0
fi

# The base images: present, or pulled now. An engine that cannot reach a
# registry (an offline sandbox: "lookup registry-1.docker.io ... no such
# host") cannot build the image at all, which is a skip; any other pull
# error (a tag that does not exist) is the Dockerfile's fault.
go_version=$(sed -n 's/^ARG GO_VERSION=//p' deploy/docker/Dockerfile)
for img in $(awk '$1 == "FROM" {print $2}' deploy/docker/Dockerfile | sed "s/\${GO_VERSION}/$go_version/"); do
  docker image inspect "$img" >/dev/null 2>&1 && continue
  if ! out=$(docker pull -q "$img" 2>&1); then
    case $out in
    *"no such host"* | *"dial tcp"* | *"i/o timeout"* | *"network is unreachable"* | *"connection refused"* | *"TLS handshake timeout"*)
      echo "check-docker: SKIPPED: a Docker engine runs but cannot pull the base image $img (no registry access): $(printf '%s' "$out" | tail -n 1)"
      exit 0
      ;;
    esac
    echo "check-docker: FAIL: docker pull $img: $out"
    exit 1
  fi
done

tmp=$(mktemp -d)
tag="umbra-check:$$"
trap 'rm -rf "$tmp"; docker image rm -f "$tag" >/dev/null 2>&1 || true' EXIT

# The Dockerfile needs BuildKit (RUN --mount): buildx where the client has
# it (Docker 23 and later), else the engine's own BuildKit through
# DOCKER_BUILDKIT=1 (a client older than 23; a newer one without buildx
# refuses, and says to install it).
if docker buildx version >/dev/null 2>&1; then
  build=(docker buildx build --load)
else
  build=(env DOCKER_BUILDKIT=1 docker build)
fi
"${build[@]}" -q -f deploy/docker/Dockerfile --build-arg VERSION=check -t "$tag" . >/dev/null
cid=$(docker create "$tag")
docker cp "$cid:/usr/local/bin/umbra" "$tmp/image-umbra" >/dev/null
docker rm "$cid" >/dev/null

# What the README builds.
go build -o "$tmp/readme-umbra" ./cmd/umbra
# The main package, its module's dependencies and the Go version, without
# the build settings (CGO, -trimpath, VCS) the two builds differ in.
buildinfo() { go version -m "$1" | awk -v f="$1" '$1 == f":" { print "go", $2; next } $1 == "path" || $1 == "dep" || $1 == "=>" { print }'; }
if ! diff <(buildinfo "$tmp/readme-umbra") <(buildinfo "$tmp/image-umbra"); then
  echo "check-docker: FAIL: the image's binary differs from the README's build in package, dependencies or Go version (diff above: < README, > image)"
  exit 1
fi

# Byte for byte, with the Dockerfile's own flags, when the Go matches.
image_go=$(go version "$tmp/image-umbra" | awk '{print $2}')
if [ "$image_go" = "$(go env GOVERSION)" ]; then
  CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=check" -o "$tmp/local-umbra" ./cmd/umbra
  if ! cmp -s "$tmp/local-umbra" "$tmp/image-umbra"; then
    echo "check-docker: FAIL: the image's binary is not the same bytes as a local build with the Dockerfile's flags"
    exit 1
  fi
else
  echo "check-docker: note: the image's Go is $image_go, the local one $(go env GOVERSION): bytes not compared"
fi

go version -m "$tmp/image-umbra" | grep -q $'\tbuild\tCGO_ENABLED=0$' || { echo "check-docker: FAIL: not a static (CGO_ENABLED=0) build"; exit 1; }
user=$(docker image inspect -f '{{.Config.User}}' "$tag")
[ "$user" = "65532:65532" ] || { echo "check-docker: FAIL: the image runs as '$user', want 65532:65532"; exit 1; }
first=$(docker run --rm "$tag" version | head -n1)
[ "$first" = "umbra check" ] || { echo "check-docker: FAIL: umbra version in the image printed '$first'"; exit 1; }
docker run --rm "$tag" validate -c /etc/umbra/umbra.yaml >/dev/null
echo "check-docker: ok: the image's umbra is the README's build ($image_go), static, non-root"
