// Package deploytest checks the deployment files under deploy/ with the
// tools they are written for, where this machine has them:
//
//   - the Kubernetes kustomizations (base and overlays) are built with
//     kustomize's own library (krusty, what `kubectl apply -k` runs) and
//     every object, and every source manifest, decodes strictly into the
//     Kubernetes API types (k8s.io/api; an unknown or misspelled field
//     fails); the Deployment's probes, ports, mounts and selectors agree
//     with the config in the ConfigMap, which loads and compiles with
//     umbra's own config loader;
//   - the systemd unit passes `systemd-analyze verify` and
//     `systemd-analyze security` rates it OK (skipped, saying so, without
//     systemd-analyze); its example config loads;
//   - the Dockerfile is multi-stage, static, non-root on a minimal base,
//     on go.mod's Go; scripts/check-docker.sh, which builds it and checks
//     the binary is the README's, runs where a Docker engine does and is
//     skipped, saying so, where none does.
//
// Run them with:
//
//	go test -count=1 ./test/deploy/
package deploytest
