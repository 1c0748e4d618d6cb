#!/usr/bin/env bash
# bench/egress.sh: calls to a third party through umbra's egress listener,
# side by side with the same calls made directly and through nginx.
#
# Rows (the proxy under test pinned to core 0, wrk and the stand-in third
# party (bench/upstream) on core 1, keep-alive wrk load as in run.sh):
#   direct        wrk -> the third party
#   umbra-egress  wrk -> umbra's egress listener, service "provider"
#                 (calls of unknown origin, forwarded: the live path
#                 without the recording)
#   nginx         wrk -> nginx proxying to the third party (run.sh's config)
#
#   bench/egress.sh        the table (DURATION, CONNECTIONS, RUNS as in run.sh;
#                          METHOD=POST sends a 100-byte JSON body)
#   RATE=5000 bench/egress.sh
#                          the added latency at a fixed rate below saturation
#                          (bench/openloop, open loop, latency from each
#                          request's due time): p50/p99/p99.9 per row and the
#                          p99 added to direct. wrk's closed loop at saturation
#                          measures queueing (p99 ~ connections / throughput),
#                          so its "p99 added" is mostly the lower throughput;
#                          the 1 ms target is about the call's own added time.
#
# The recording and replay paths are measured by Go benchmarks (one core):
#   GOMAXPROCS=1 go test -run - -bench 'Egress' -benchmem ./internal/egress/
# Targets: egress adds at most 1 ms to the direct p99 and keeps at least
# 0.8x nginx's requests/s; replay at least 20,000 calls/s on one core.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-3s}
METHOD=${METHOD:-GET}
EGRESS_PORT=${EGRESS_PORT:-19902}
ROWS=(direct umbra-egress nginx)

umbra_config() {
	local d=$BENCH_TMP/umbra
	mkdir -p "$d"
	cat >"$d/umbra.yaml" <<YAML
listen: "127.0.0.1:$BENCH_UMBRA_PORT"
admin: {listen: "127.0.0.1:$BENCH_UMBRA_ADMIN_PORT"}
log: {level: warn, access: false}
data_dir: "$d/data"
backends:
  app: {endpoints: ["http://$BENCH_UPSTREAM_ADDR"]}
routes:
  - {name: app, match: {path_prefix: "/"}, backend: app}
egress:
  listen: "127.0.0.1:$EGRESS_PORT"
  services:
    provider: {upstream: "http://$BENCH_UPSTREAM_ADDR"}
YAML
	echo "$d/umbra.yaml"
}

row_url() {
	case $1 in
	direct) echo "http://$BENCH_UPSTREAM_ADDR/v1/charges" ;;
	umbra-egress) echo "http://127.0.0.1:$EGRESS_PORT/provider/v1/charges" ;;
	nginx) echo "$(bench_proxy_url nginx)v1/charges" ;;
	esac
}

row_up() {
	case $1 in
	direct) ;;
	umbra-egress) bench_proxy_up umbra "$(umbra_config)" ;;
	nginx) bench_proxy_up nginx ;;
	esac
}

row_down() {
	case $1 in
	umbra-egress) bench_proxy_down umbra ;;
	nginx) bench_proxy_down nginx ;;
	esac
}

wrk_args() {
	[[ $METHOD == POST ]] || return 0
	cat >"$BENCH_TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"checkout_id":"co-000001","amount":1999,"currency":"usd","kind":"charge","ts":1700000000}'
LUA
	echo "-s $BENCH_TMP/post.lua"
}

# bench_openloop URL OUT: one fixed-rate run pinned to the load-generator core.
bench_openloop() {
	local url=$1 out=$2 rc=0 body=() hdr=()
	if [[ $METHOD == POST ]]; then
		body=(-body '{"checkout_id":"co-000001","amount":1999,"currency":"usd","kind":"charge","ts":1700000000}')
		hdr=(-header 'Content-Type: application/json')
	fi
	bench_spawn openloop "$BENCH_LOADGEN_CORE" "$BENCH_BIN/openloop" -url "$url" -rate "$RATE" \
		-duration "$DURATION" -warmup "$WARMUP" -conns "$CONNECTIONS" -method "$METHOD" "${body[@]}" "${hdr[@]}"
	wait "${BENCH_PIDS[openloop]}" || rc=$?
	unset "BENCH_PIDS[openloop]"
	mv "${BENCH_LOGS[openloop]}" "$out"
	((rc == 0)) || { cat "$out" >&2; bench_warn "openloop failed (exit $rc) against $url"; return 1; }
}

measure_rate_table() {
	declare -A p50 p99 p999 errs
	local run row out
	for ((run = 1; run <= RUNS; run++)); do
		for row in "${ROWS[@]}"; do
			row_up "$row" || bench_die "$row did not start"
			out=$BENCH_TMP/$row-rate-$run.txt
			bench_openloop "$(row_url "$row")" "$out" || true
			read -r _ _ _ _ _ e _ a _ _ _ b _ c _ _ < <(grep '^sent ' "$out")
			p50[$row]+="$a " p99[$row]+="$b " p999[$row]+="$c " errs[$row]+="$e "
			row_down "$row"
			bench_log "$row run $run at $RATE/s: p50 $a ms, p99 $b ms, p99.9 $c ms, errors $e"
		done
	done
	echo "## Added latency of calls through the egress listener at $RATE requests/s (one proxy core, $METHOD, open loop)"
	echo
	bench_machine_info
	echo "- load: bench/openloop at a fixed $RATE requests/s over $CONNECTIONS keep-alive connections, latency from each request's due time, $DURATION per run after a $WARMUP warm-up; median of $RUNS interleaved runs"
	echo "- pinning: proxy on core $BENCH_PROXY_CORE (umbra GOMAXPROCS=1, nginx 1 worker); openloop and the third party on core $BENCH_LOADGEN_CORE"
	echo
	echo "| row | p50 | p99 | p99.9 | p99 added to direct | errors (runs) |"
	echo "| --- | ---: | ---: | ---: | ---: | --- |"
	local d99
	# shellcheck disable=SC2086
	d99=$(bench_median ${p99[direct]})
	for row in "${ROWS[@]}"; do
		local m50 m99 m999
		# shellcheck disable=SC2086
		m50=$(bench_median ${p50[$row]}) m99=$(bench_median ${p99[$row]}) m999=$(bench_median ${p999[$row]})
		printf '| %s | %.3f ms | %.3f ms | %.3f ms | %+.3f ms | %s|\n' "$row" "$m50" "$m99" "$m999" \
			"$(awk -v a="$m99" -v b="$d99" 'BEGIN{print a-b}')" "${errs[$row]}"
	done
}

measure_table() {
	declare -A rps p50 p99
	local run row out extra
	extra=$(wrk_args)
	for ((run = 1; run <= RUNS; run++)); do
		for row in "${ROWS[@]}"; do
			row_up "$row" || bench_die "$row did not start"
			# shellcheck disable=SC2086
			bench_wrk "$(row_url "$row")" "$WARMUP" "$CONNECTIONS" "$BENCH_TMP/warm.txt" $extra >/dev/null || true
			out=$BENCH_TMP/$row-$run.txt
			# shellcheck disable=SC2086
			bench_wrk "$(row_url "$row")" "$DURATION" "$CONNECTIONS" "$out" $extra
			read -r r a b _ non2xx serr < <(bench_wrk_parse "$out")
			((non2xx == 0 && serr == 0)) || bench_warn "$row run $run: $non2xx non-2xx answers, $serr socket errors"
			rps[$row]+="$r " p50[$row]+="$a " p99[$row]+="$b "
			row_down "$row"
			bench_log "$row run $run: $r req/s, p50 $a ms, p99 $b ms"
		done
	done
	echo "## Calls to a third party through the egress listener (one proxy core, $METHOD)"
	echo
	bench_machine_info
	echo "- load: wrk 1 thread, $CONNECTIONS keep-alive connections, $DURATION per run after a $WARMUP warm-up; median of $RUNS interleaved runs"
	echo "- pinning: proxy on core $BENCH_PROXY_CORE (umbra GOMAXPROCS=1, nginx 1 worker); wrk and the third party on core $BENCH_LOADGEN_CORE"
	echo
	echo "| row | requests/s | p50 | p99 | p99 added to direct | req/s vs nginx (paired) |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	local d99
	# shellcheck disable=SC2086
	d99=$(bench_median ${p99[direct]})
	for row in "${ROWS[@]}"; do
		local mr m50 m99
		# shellcheck disable=SC2086
		mr=$(bench_median ${rps[$row]}) m50=$(bench_median ${p50[$row]}) m99=$(bench_median ${p99[$row]})
		printf '| %s | %.0f | %.2f ms | %.2f ms | %+.2f ms | %sx |\n' "$row" "$mr" "$m50" "$m99" \
			"$(awk -v a="$m99" -v b="$d99" 'BEGIN{print a-b}')" "$(bench_paired_median "${rps[$row]}" "${rps[nginx]}")"
	done
}

bench_setup
bench_ensure_packages nginx wrk
bench_build_upstream
if [[ -n ${RATE:-} ]]; then
	(cd "$BENCH_REPO" && go build -o "$BENCH_BIN/openloop" ./bench/openloop) || bench_die "building bench/openloop failed"
fi
bench_build_umbra || bench_die "umbra does not build"
bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
bench_port_free "$EGRESS_PORT"
if [[ -n ${RATE:-} ]]; then
	measure_rate_table | tee "$BENCH_BIN/egress-rate-$(date -u +%Y%m%dT%H%M%SZ).md"
else
	measure_table | tee "$BENCH_BIN/egress-$(date -u +%Y%m%dT%H%M%SZ).md"
fi
