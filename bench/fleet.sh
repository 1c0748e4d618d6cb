#!/usr/bin/env bash
# bench/fleet.sh: fleet mode (docs/fleet.md) on one etcd.
#
#   bench/fleet.sh propagation   time from a weight change made by the leader
#                                (and from an error burst seen by a follower)
#                                until all three replicas apply it, over
#                                CHANGES changes (default 1000): p50, p99, max.
#                                Target: p99 under 100 ms on loopback.
#   bench/fleet.sh rps           requests/s through one umbra with a running
#                                canary rollout, without and with `cluster`
#                                (etcd on the load-generator core), interleaved
#                                RUNS times (DURATION, CONNECTIONS, WARMUP as in
#                                run.sh). Target: at most 2% fewer with cluster.
#
# Needs etcd (Debian's etcd-server) and, for rps, wrk.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-3s}
CHANGES=${CHANGES:-1000}
ETCD_CLIENT=127.0.0.1:12379
ETCD_PEER=127.0.0.1:12380

propagation() {
	echo "## Fleet propagation (three in-process replicas, one etcd, loopback)"
	echo
	bench_machine_info
	echo "- etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}'), $CHANGES changes each"
	echo
	(cd "$BENCH_REPO" && go test -run '^$' -bench 'BenchmarkFleet' -benchtime "${CHANGES}x" ./bench/fleet/) |
		awk '/^BenchmarkFleet/ {
			for (i = 1; i <= NF; i++) { if ($(i+1) == "p50-ms") p50 = $i; if ($(i+1) == "p99-ms") p99 = $i; if ($(i+1) == "max-ms") mx = $i }
			name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkFleet/, "", name)
			rows = rows sprintf("| %s | %s ms | %s ms | %s ms |\n", name, p50, p99, mx)
		}
		END { print "| change | p50 | p99 | max |"; print "| --- | ---: | ---: | ---: |"; printf "%s", rows }'
}

# umbra_config MODE: one route with a canary rollout running at 50% (both
# versions are the same upstream), with or without the cluster block.
umbra_config() {
	local mode=$1 d=$BENCH_TMP/umbra-$1
	mkdir -p "$d"
	{
		echo "listen: \"127.0.0.1:$BENCH_UMBRA_PORT\""
		echo "admin: {listen: \"127.0.0.1:$BENCH_UMBRA_ADMIN_PORT\"}"
		echo "log: {level: warn, access: false}"
		echo "data_dir: \"$d/data\""
		if [[ $mode == cluster ]]; then
			echo "cluster: {node: bench, etcd: {endpoints: [\"http://$ETCD_CLIENT\"], prefix: \"/bench-$RANDOM/\"}}"
		fi
		echo "backends:"
		echo "  v1: {endpoints: [\"http://$BENCH_UPSTREAM_ADDR\"]}"
		echo "  v2: {endpoints: [\"http://$BENCH_UPSTREAM_ADDR\"]}"
		echo "routes:"
		echo "  - name: app"
		echo "    match: {path_prefix: \"/\"}"
		echo "    backend: v1"
		echo "    key: \"header:X-User-ID\""
		echo "    canary: {backend: v2, weight: 0}"
		echo "    rollout: {start: auto, steps: [{canary: {weight: 50, min_requests: 1000000000}}, {promote: {}}]}"
	} >"$d/umbra.yaml"
	echo "$d/umbra.yaml"
}

rps() {
	bench_spawn etcd "$BENCH_LOADGEN_CORE" etcd --name bench --data-dir "$BENCH_TMP/etcd" \
		--listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
		--listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
		--initial-cluster "bench=http://$ETCD_PEER"
	local i
	for ((i = 0; i < 100; i++)); do
		curl -fsS --max-time 1 "http://$ETCD_CLIENT/health" 2>/dev/null | grep -q '"health":"true"' && break
		sleep 0.1
	done
	((i < 100)) || {
		bench_log_tail etcd
		bench_die "etcd did not become healthy"
	}
	declare -A r=()
	local run mode out rate a b nb serr
	for ((run = 1; run <= RUNS; run++)); do
		for mode in alone cluster; do
			bench_proxy_up umbra "$(umbra_config "$mode")" || bench_die "umbra ($mode) did not start"
			bench_wrk "$(bench_proxy_url umbra)" "$WARMUP" "$CONNECTIONS" "$BENCH_TMP/warm.txt" >/dev/null || true
			out=$BENCH_TMP/$mode-$run.txt
			bench_wrk "$(bench_proxy_url umbra)" "$DURATION" "$CONNECTIONS" "$out"
			read -r rate a b _ nb serr < <(bench_wrk_parse "$out")
			((nb == 0 && serr == 0)) || bench_warn "$mode run $run: $nb non-2xx answers, $serr socket errors"
			r[$mode]+="$rate "
			bench_proxy_down umbra
			bench_log "$mode run $run: $rate req/s"
		done
	done
	echo "## Request path cost of fleet mode (one proxy core)"
	echo
	bench_machine_info
	echo "- a canary rollout running at 50% in both rows; with cluster, etcd runs on core $BENCH_LOADGEN_CORE with wrk and the upstream"
	echo "- wrk 1 thread, $CONNECTIONS connections, $DURATION per run after $WARMUP warm-up, $RUNS interleaved runs"
	echo
	echo "| row | requests/s (median) | vs alone, paired by run |"
	echo "| --- | ---: | ---: |"
	# shellcheck disable=SC2086
	printf '| alone | %.0f | 1.000x |\n' "$(bench_median ${r[alone]})"
	# shellcheck disable=SC2086
	printf '| cluster | %.0f | %.3fx |\n' "$(bench_median ${r[cluster]})" "$(bench_paired_median "${r[cluster]}" "${r[alone]}")"
}

command -v etcd >/dev/null || bench_die "etcd is not installed (Debian: apt-get install etcd-server)"
bench_setup
case ${1:-} in
propagation) propagation | tee "$BENCH_BIN/fleet-propagation-$(date -u +%Y%m%dT%H%M%SZ).md" ;;
rps)
	bench_ensure_packages wrk
	bench_build_upstream
	bench_build_umbra || bench_die "umbra does not build"
	bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
	rps | tee "$BENCH_BIN/fleet-rps-$(date -u +%Y%m%dT%H%M%SZ).md"
	;;
*) bench_die "usage: bench/fleet.sh propagation|rps" ;;
esac
