#!/usr/bin/env bash
# bench/shadow.sh: live throughput and latency with shadowing, side by side.
#
# Rows (the proxy under test pinned to core 0, wrk and every upstream on
# core 1, keep-alive wrk load as in run.sh):
#   umbra            no shadow (the reference for the ratios)
#   umbra+healthy    100% shadow to a healthy target
#   umbra+compare    100% shadow to a healthy target, compared with a secondary
#   umbra+slow       100% shadow to a target answering in 200 ms
#   umbra+dead       100% shadow to an address where nothing listens
#   umbra+hang       100% shadow to a target that accepts and never answers
#   nginx            no mirror
#   nginx+mirror     nginx `mirror` to the 200 ms target
#
#   bench/shadow.sh           the table (DURATION, CONNECTIONS, RUNS as in run.sh;
#                             ONLY=umbra+dead,umbra+hang for those rows and
#                             their reference rows alone)
#   bench/shadow.sh soak      umbra with the slow shadow under load for SOAK
#                             seconds (default 600), RSS sampled every 30 s
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-3s}
SOAK=${SOAK:-600}
ROWS=(umbra umbra+healthy umbra+compare umbra+slow umbra+dead umbra+hang nginx nginx+mirror)
# ONLY=umbra+dead,umbra+hang runs those rows and their references (umbra,
# nginx) alone, for more runs of the rows in question.
if [[ -n ${ONLY:-} ]]; then
	declare -A want=()
	IFS=, read -r -a only <<<"$ONLY"
	for r in "${only[@]}"; do
		[[ " ${ROWS[*]} " == *" $r "* ]] || bench_die "ONLY: unknown row '$r' (known: ${ROWS[*]})"
		want[$r]=1
		want[${r%%+*}]=1
	done
	picked=()
	for r in "${ROWS[@]}"; do [[ -z ${want[$r]:-} ]] || picked+=("$r"); done
	ROWS=("${picked[@]}")
fi

HEALTHY=127.0.0.1:18001
SLOW=127.0.0.1:18002
HANG=127.0.0.1:18003
DEAD=127.0.0.1:18004
SECONDARY=127.0.0.1:18005

# shadow_extra TARGET_ADDR [compare]: UMBRA_CONFIG_EXTRA for a 100% shadow.
shadow_extra() {
	local extra="    shadow:
      - {backend: shadow, percent: 100}"
	[[ ${2:-} == compare ]] && extra+="
    compare: {secondary: secondary}"
	printf '%s\n' "$extra"
}

# umbra_config ROW: write the umbra config of a row and print its path.
umbra_config() {
	local row=$1 target="" d=$BENCH_TMP/umbra
	case $row in
	umbra+healthy | umbra+compare) target=$HEALTHY ;;
	umbra+slow) target=$SLOW ;;
	umbra+dead) target=$DEAD ;;
	umbra+hang) target=$HANG ;;
	esac
	mkdir -p "$d"
	{
		echo "listen: \"127.0.0.1:$BENCH_UMBRA_PORT\""
		echo "admin: {listen: \"127.0.0.1:$BENCH_UMBRA_ADMIN_PORT\"}"
		echo "log: {level: warn, access: false}"
		echo "data_dir: \"$d/data\""
		echo "backends:"
		echo "  app: {endpoints: [\"http://$BENCH_UPSTREAM_ADDR\"]}"
		[[ -n $target ]] && echo "  shadow: {endpoints: [\"http://$target\"], timeout: 1s}"
		[[ $row == umbra+compare ]] && echo "  secondary: {endpoints: [\"http://$SECONDARY\"]}"
		echo "routes:"
		echo "  - name: app"
		echo "    match: {path_prefix: \"/\"}"
		echo "    backend: app"
		if [[ -n $target ]]; then
			if [[ $row == umbra+compare ]]; then shadow_extra "$target" compare; else shadow_extra "$target"; fi
		fi
	} >"$d/umbra.yaml"
	echo "$d/umbra.yaml"
}

# nginx_mirror_config: nginx as in run.sh plus `mirror` to the slow target.
nginx_mirror_config() {
	NGINX_HTTP_EXTRA="upstream mirror_slow { server $SLOW; keepalive 64; }" \
		NGINX_LOCATION_EXTRA="mirror /__mirror; mirror_request_body on;" \
		bench_config_nginx >/dev/null
	local conf=$BENCH_TMP/nginx/nginx.conf
	# The mirror location must sit beside "location /" in the server block.
	sed -i "s|^\(\s*\)location / {|\1location = /__mirror { internal; proxy_pass http://mirror_slow\$request_uri; proxy_http_version 1.1; proxy_set_header Connection \"\"; }\n\1location / {|" "$conf"
	echo "$conf"
}

row_up() {
	case $1 in
	umbra*) bench_proxy_up umbra "$(umbra_config "$1")" ;;
	nginx) bench_proxy_up nginx ;;
	nginx+mirror) bench_proxy_up nginx "$(nginx_mirror_config)" ;;
	esac
}

row_down() {
	case $1 in
	umbra*) bench_proxy_down umbra ;;
	nginx*) bench_proxy_down nginx ;;
	esac
}

row_url() {
	case $1 in
	umbra*) bench_proxy_url umbra ;;
	nginx*) bench_proxy_url nginx ;;
	esac
}

start_upstreams() {
	bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
	bench_start_upstream shadow-healthy "$HEALTHY"
	bench_start_upstream shadow-secondary "$SECONDARY"
	bench_start_upstream shadow-slow "$SLOW" -delay 200ms
	bench_start_upstream shadow-hang "$HANG" -hang
	bench_port_free "${DEAD##*:}"
}

measure_table() {
	declare -A rps p50 p99
	local run row out vals
	for ((run = 1; run <= RUNS; run++)); do
		for row in "${ROWS[@]}"; do
			row_up "$row" || bench_die "$row did not start"
			bench_wrk "$(row_url "$row")" "$WARMUP" "$CONNECTIONS" "$BENCH_TMP/warm.txt" >/dev/null || true
			out=$BENCH_TMP/$row-$run.txt
			bench_wrk "$(row_url "$row")" "$DURATION" "$CONNECTIONS" "$out"
			read -r r a b _ non2xx serr < <(bench_wrk_parse "$out")
			((non2xx == 0 && serr == 0)) || bench_warn "$row run $run: $non2xx non-2xx answers, $serr socket errors"
			rps[$row]+="$r " p50[$row]+="$a " p99[$row]+="$b "
			row_down "$row"
			bench_log "$row run $run: $r req/s, p50 $a ms, p99 $b ms"
		done
	done
	local base_rps="" base_p99="" nginx_rps=""
	# shellcheck disable=SC2086
	[[ -z ${rps[umbra]:-} ]] || base_rps=$(bench_median ${rps[umbra]}) base_p99=$(bench_median ${p99[umbra]})
	# shellcheck disable=SC2086
	[[ -z ${rps[nginx]:-} ]] || nginx_rps=$(bench_median ${rps[nginx]})
	echo "## Live traffic with shadowing (one proxy core)"
	echo
	bench_machine_info
	echo "- load: wrk 1 thread, $CONNECTIONS keep-alive connections, $DURATION per run after a $WARMUP warm-up; median of $RUNS interleaved runs"
	echo "- pinning: proxy on core $BENCH_PROXY_CORE (umbra GOMAXPROCS=1, nginx 1 worker); wrk and all upstreams on core $BENCH_LOADGEN_CORE"
	echo "- shadow targets: healthy, 200 ms, dead (closed port), hanging (accepts, never answers); umbra defaults (timeout 5s capped by the backend's 1s, 64 senders, queue 256, breaker 5 failures / 10 s)"
	echo
	echo "| row | requests/s | p50 | p99 | req/s vs same proxy without shadow | p99 vs same proxy without shadow | paired by run: req/s, p99 |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for row in "${ROWS[@]}"; do
		local mr m50 m99 ref ref_rps ref_p99
		# shellcheck disable=SC2086
		mr=$(bench_median ${rps[$row]}) m50=$(bench_median ${p50[$row]}) m99=$(bench_median ${p99[$row]})
		ref=${row%%+*}
		if [[ $ref == nginx ]]; then
			ref_rps=$nginx_rps
			# shellcheck disable=SC2086
			ref_p99=$(bench_median ${p99[nginx]})
		else
			ref_rps=$base_rps ref_p99=$base_p99
		fi
		printf '| %s | %.0f | %.2f ms | %.2f ms | %.3fx | %.2fx | %.3fx, %.2fx |\n' "$row" "$mr" "$m50" "$m99" \
			"$(awk -v a="$mr" -v b="$ref_rps" 'BEGIN{print a/b}')" "$(awk -v a="$m99" -v b="$ref_p99" 'BEGIN{print a/b}')" \
			"$(bench_paired_median "${rps[$row]}" "${rps[$ref]}")" "$(bench_paired_median "${p99[$row]}" "${p99[$ref]}")"
	done
	echo
	echo "\"paired by run\": the median over runs of each run's ratio to the same run of the reference row (rows of one run go back to back, so a shared VM's drift over minutes cancels out)."
}

# soak: umbra with the 200 ms shadow under constant load; RSS every 30 s.
soak() {
	row_up umbra+slow || bench_die "umbra did not start"
	local pid url=$(bench_proxy_url umbra) t
	pid=$(pgrep -f "$BENCH_BIN/umbra serve" | head -1)
	bench_spawn soakload "$BENCH_LOADGEN_CORE" wrk -t1 -c"$CONNECTIONS" -d"${SOAK}s" --timeout 5s "$url"
	echo "## Soak: ${SOAK}s of live load with a 200 ms shadow (100%)"
	echo
	bench_machine_info
	echo
	echo "| seconds | umbra RSS (MiB) | shadow queue | shadow in flight | queue-full drops |"
	echo "| ---: | ---: | ---: | ---: | ---: |"
	for ((t = 0; t <= SOAK; t += 30)); do
		local rss m
		rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
		m=$(curl -s "http://127.0.0.1:$BENCH_UMBRA_ADMIN_PORT/metrics")
		printf '| %d | %s | %s | %s | %s |\n' "$t" "$rss" \
			"$(awk '/^umbra_shadow_queue_length/ {print $2}' <<<"$m")" \
			"$(awk '/^umbra_shadow_in_flight/ {print $2}' <<<"$m")" \
			"$(awk '/^umbra_shadow_requests_total.*dropped_queue_full/ {print $2}' <<<"$m")"
		((t + 30 <= SOAK)) && sleep 30
	done
	wait "${BENCH_PIDS[soakload]}" || true
	unset "BENCH_PIDS[soakload]"
	row_down umbra+slow
}

bench_setup
bench_ensure_packages nginx wrk
bench_build_upstream
bench_build_umbra || bench_die "umbra does not build"
start_upstreams
case ${1:-table} in
table) measure_table | tee "$BENCH_BIN/shadow-$(date -u +%Y%m%dT%H%M%SZ).md" ;;
soak) soak | tee "$BENCH_BIN/soak-$(date -u +%Y%m%dT%H%M%SZ).md" ;;
*) bench_die "usage: bench/shadow.sh [table|soak]" ;;
esac
