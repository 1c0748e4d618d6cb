#!/usr/bin/env bash
# bench/dashboard.sh: live requests/s with the web dashboard open in a
# browser, against the same gateway without it.
#
# Rows (umbra pinned to core 0 with GOMAXPROCS=1, wrk, the upstreams and
# the browser on core 1, keep-alive wrk load as in run.sh):
#   umbra            100% shadow, compared with a secondary; no browser
#   umbra+dashboard  the same, with headless Chromium showing /ui/ (PAGE),
#                    which refreshes its live sections every 5 s
#
#   bench/dashboard.sh                      RUNS=5 DURATION=20s by default
#   PAGE=/ui/diffs bench/dashboard.sh       another page
#
# The two rows of a run go back to back and the ratio is taken per run
# (paired), so drift over minutes cancels out. The dashboard costs nothing
# on the request path by construction (its sampler reads the registries on
# its own ticker); this measures what the page's polling costs the process.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-3s}
PAGE=${PAGE:-/ui/}
SHADOW=127.0.0.1:18001
SECONDARY=127.0.0.1:18005

umbra_config() {
	local d=$BENCH_TMP/umbra
	mkdir -p "$d"
	{
		echo "listen: \"127.0.0.1:$BENCH_UMBRA_PORT\""
		echo "admin: {listen: \"127.0.0.1:$BENCH_UMBRA_ADMIN_PORT\"}"
		echo "log: {level: warn, access: false}"
		bench_umbra_compare_yaml "$d" "$SHADOW" "$SECONDARY"
	} >"$d/umbra.yaml"
	echo "$d/umbra.yaml"
}

chromium_bin() {
	local b
	for b in chromium chromium-browser google-chrome; do
		command -v "$b" >/dev/null && { command -v "$b"; return; }
	done
	bench_die "no chromium (apt-get install chromium)"
}

browser_up() {
	local profile=$BENCH_TMP/chromium-profile-$1
	rm -rf "$profile"
	bench_spawn browser "$BENCH_LOADGEN_CORE" "$(chromium_bin)" --headless --no-sandbox --disable-gpu \
		--disable-quic --no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --disable-dev-shm-usage --user-data-dir="$profile" \
		--remote-debugging-port=0 "http://127.0.0.1:$BENCH_UMBRA_ADMIN_PORT$PAGE"
	sleep 3 # the page loads and starts polling
}

measure() {
	local -a base=() dash=()
	local run row out r a b n serr
	for ((run = 1; run <= RUNS; run++)); do
		for row in umbra umbra+dashboard; do
			bench_proxy_up umbra "$(umbra_config)" || bench_die "umbra did not start"
			[[ $WARMUP == 0 ]] || bench_wrk "$(bench_proxy_url umbra)" "$WARMUP" "$CONNECTIONS" "$BENCH_TMP/warm.txt" >/dev/null || true
			[[ $row == umbra ]] || browser_up "$run"
			out=$BENCH_TMP/$row-$run.txt
			bench_wrk "$(bench_proxy_url umbra)" "$DURATION" "$CONNECTIONS" "$out"
			read -r r a b _ n serr < <(bench_wrk_parse "$out")
			((n == 0 && serr == 0)) || bench_warn "$row run $run: $n non-2xx answers, $serr socket errors"
			[[ $row == umbra ]] && base+=("$r") || dash+=("$r")
			[[ $row == umbra ]] || bench_stop browser
			bench_proxy_down umbra
			bench_log "$row run $run: $r req/s, p50 $a ms, p99 $b ms"
		done
	done
	echo "## Live requests/s with the dashboard open ($PAGE)"
	echo
	bench_machine_info
	echo "- load: wrk 1 thread, $CONNECTIONS keep-alive connections, $DURATION per run after a $WARMUP warm-up; $RUNS runs, rows back to back"
	echo "- umbra on core $BENCH_PROXY_CORE (GOMAXPROCS=1), 100% shadow compared with a secondary; wrk, upstreams and headless Chromium on core $BENCH_LOADGEN_CORE"
	echo
	echo "| row | requests/s (median) | runs |"
	echo "| --- | ---: | --- |"
	printf '| umbra | %.0f | %s |\n' "$(bench_median "${base[@]}")" "${base[*]}"
	printf '| umbra + dashboard open | %.0f | %s |\n' "$(bench_median "${dash[@]}")" "${dash[*]}"
	echo
	printf 'Paired by run, with the dashboard / without: %sx\n' "$(bench_paired_median "${dash[*]}" "${base[*]}")"
}

bench_setup
bench_ensure_packages wrk
bench_build_upstream
bench_build_umbra || bench_die "umbra does not build"
bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
bench_start_upstream shadow "$SHADOW"
bench_start_upstream secondary "$SECONDARY"
measure | tee "$BENCH_BIN/dashboard-$(date -u +%Y%m%dT%H%M%SZ).md"
