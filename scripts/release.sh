#!/usr/bin/env bash
# Reproducible release build of umbra for linux and darwin on amd64 and arm64.
#
#   scripts/release.sh VERSION [OUT_DIR]      (OUT_DIR defaults to dist/)
#   PLATFORMS="linux/amd64" scripts/release.sh v1.2.3 /tmp/out
#
# Writes OUT_DIR/umbra_VERSION_OS_ARCH for each platform and OUT_DIR/SHA256SUMS.
# Two runs of the same commit with the same Go toolchain give identical
# bytes, wherever the checkout lives:
#   - CGO_ENABLED=0: a static binary, no host C toolchain in it;
#   - -trimpath: no file system paths of the build machine;
#   - -buildvcs=true: the commit (and whether the tree was dirty) is recorded
#     and shown by `umbra version` (GOFLAGS is replaced: a machine-wide
#     -buildvcs=false would drop it);
#   - -ldflags "-buildid= -X main.version=VERSION": no build id that depends on
#     the cache, the version given here instead of one derived from tags.
# The VCS stamp needs a git clone (.git a directory): `go build` does not
# stamp from a git worktree.
set -euo pipefail

version=${1:?usage: scripts/release.sh VERSION [OUT_DIR]}
out=${2:-dist}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}
cd "$(dirname "$0")/.."

if [ ! -d .git ]; then
  echo "release.sh: run it in a git clone (not a worktree or an export): the binary records the commit" >&2
  exit 2
fi
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "release.sh: warning: uncommitted changes; the binaries will say +dirty" >&2
fi

mkdir -p "$out"
names=()
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  name="umbra_${version}_${os}_${arch}"
  echo "building $name" >&2
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=true \
      -ldflags "-s -w -buildid= -X main.version=$version" \
      -o "$out/$name" ./cmd/umbra
  names+=("$name")
done
(cd "$out" && sha256sum "${names[@]}" > SHA256SUMS)
cat "$out/SHA256SUMS"
