#!/usr/bin/env bash
# bench/cpu.sh: umbra's own CPU time per request at a fixed request rate,
# for paired comparisons that a shared 2-core machine does not fool as
# easily as requests/s. Prints a Markdown report (progress on stderr).
#
#   bench/cpu.sh dashboard                      no browser vs the dashboard open
#   bench/cpu.sh builds before=d824464^ now=HEAD   git revisions, tracing off
#   bench/cpu.sh tracing                        this tree: tracing off, 1%, 100%
#
# dashboard: one umbra (100% shadow compared with a secondary, so every
#   page has data) per round; in it, a window without a browser and a
#   window with headless Chromium showing PAGE (bench/uiopen, live updates
#   running), in alternating order.
# builds NAME=REV...: each revision is exported with `git archive` into the
#   temp dir and built there (the repository is not touched); `.` is the
#   working tree. Same config for all, tracing off; one umbra per window.
# tracing: the working tree's build, tracing off, then on with ratio 0.01
#   and 1 (OTLP/HTTP to bench/otlpsink); one umbra per window.
#
# Environment:
#   RUNS=7          rounds; each round measures every variant once, back to back,
#                   in an order rotated each round
#   DURATION=10s    measured window (the rate is fixed, so requests = RATE x DURATION)
#   WARMUP=3s       load before each window, not counted
#   RATE=5000       requests/s (below what umbra sustains on one core; 0: as fast
#                   as the connections go, a saturation figure)
#   CONNS=16        keep-alive connections
#   PAGE=/ui/       dashboard mode: the page kept open
#   SETTLE=5        dashboard mode: seconds between the page's first live
#                   update and the window
# Ports, cores and paths as in bench/lib.sh (BENCH_UMBRA_PORT, ...).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

RUNS=${RUNS:-7}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
RATE=${RATE:-5000}
CONNS=${CONNS:-16}
PAGE=${PAGE:-/ui/}
SETTLE=${SETTLE:-5}
SHADOW_ADDR=${SHADOW_ADDR:-127.0.0.1:$((${BENCH_UPSTREAM_ADDR##*:} + 1))}
SECONDARY_ADDR=${SECONDARY_ADDR:-127.0.0.1:$((${BENCH_UPSTREAM_ADDR##*:} + 5))}

usage() { sed -n '2,31s/^# \{0,1\}//p' "$0"; }
MODE=${1:-}
case $MODE in
dashboard | tracing) (($# == 1)) || bench_die "$MODE takes no arguments" ;;
builds) (($# >= 2)) || bench_die "builds needs at least one NAME=REV" ;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac
shift
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "RUNS must be a positive integer, got '$RUNS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || bench_die "CONNS must be a positive integer, got '$CONNS'"
[[ $RATE =~ ^[0-9]+$ ]] || bench_die "RATE must be a number of requests/s, got '$RATE'"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || bench_die "DURATION must look like 10s, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || bench_die "WARMUP must look like 3s or 0, got '$WARMUP'"
[[ $SETTLE =~ ^[0-9]+$ ]] || bench_die "SETTLE must be a number of seconds, got '$SETTLE'"
(($(nproc) >= 2)) || bench_die "needs at least 2 cores"

# Variants: name, umbra binary, tracing ratio ("" = off), browser (0/1).
V_NAME=() V_BIN=() V_RATIO=() V_BROWSER=()
add_variant() { V_NAME+=("$1") V_BIN+=("$2") V_RATIO+=("$3") V_BROWSER+=("$4"); }

# build_rev NAME REV: export REV with git archive and build umbra from it.
build_rev() {
	local name=$1 rev=$2 src=$BENCH_TMP/src-$1 sha
	if [[ $rev == . ]]; then
		bench_build_umbra || bench_die "the working tree does not build"
		cp "$BENCH_BIN/umbra" "$BENCH_BIN/umbra-$name"
		return
	fi
	sha=$(git -C "$BENCH_REPO" rev-parse --verify --quiet "$rev^{commit}") || bench_die "$name=$rev: no such commit"
	mkdir -p "$src"
	git -C "$BENCH_REPO" archive --format=tar "$sha" | tar -x -C "$src"
	bench_log "building $name = $rev (${sha:0:12})"
	(cd "$src" && go build -o "$BENCH_BIN/umbra-$name" ./cmd/umbra) >"$BENCH_TMP/build-$name.log" 2>&1 || {
		cat "$BENCH_TMP/build-$name.log" >&2
		bench_die "$name=$rev does not build"
	}
	REVS[$name]="$rev = ${sha:0:12} $(git -C "$BENCH_REPO" log -1 --format=%s "$sha" | cut -c1-70)"
}

# umbra_yaml RATIO: the config (tracing block for RATIO; dashboard mode adds
# the shadow, the secondary and compare).
umbra_yaml() {
	local d=$BENCH_TMP/umbra
	mkdir -p "$d"
	{
		echo "listen: \"127.0.0.1:$BENCH_UMBRA_PORT\""
		echo "admin: {listen: \"127.0.0.1:$BENCH_UMBRA_ADMIN_PORT\"}"
		echo "log: {level: warn, access: false}"
		[[ -z $1 ]] || UMBRA_TRACE_RATIO=$1 bench_umbra_tracing
		if [[ $MODE == dashboard ]]; then
			bench_umbra_compare_yaml "$d" "$SHADOW_ADDR" "$SECONDARY_ADDR"
		else
			cat <<YAML
backends:
  app: {endpoints: ["http://$BENCH_UPSTREAM_ADDR"]}
routes:
  - name: app
    match: {path_prefix: "/"}
    backend: app
YAML
		fi
	} >"$d/umbra.yaml"
	echo "$d/umbra.yaml"
}

umbra_up() { # BIN RATIO
	bench_port_free "$BENCH_UMBRA_PORT"
	bench_port_free "$BENCH_UMBRA_ADMIN_PORT"
	bench_spawn umbra "$BENCH_PROXY_CORE" env GOMAXPROCS=1 "$1" serve -c "$(umbra_yaml "$2")"
	bench_wait_http umbra "$(bench_proxy_url umbra)" || bench_die "umbra ($1) did not start"
}

browser_up() {
	bench_spawn uiopen "$BENCH_LOADGEN_CORE" "$BENCH_BIN/uiopen" -url "http://127.0.0.1:$BENCH_UMBRA_ADMIN_PORT$PAGE"
	local deadline=$((SECONDS + 40))
	until grep -q '^ready' "${BENCH_LOGS[uiopen]}"; do
		bench_alive uiopen || {
			bench_log_tail uiopen
			bench_die "the dashboard page did not open"
		}
		((SECONDS < deadline)) || bench_die "the dashboard page did not start its live updates within 40 s"
		sleep 0.2
	done
	sleep "$SETTLE"
}

# browser_down: close the page; sets PAGE_FETCHES to the page's fetches
# (live refreshes) between its first live update and now. uiopen alone gets
# the SIGTERM (it reads the count from the browser before closing it);
# bench_stop then makes sure its process group, the browser, is gone.
browser_down() {
	local log=${BENCH_LOGS[uiopen]} i
	kill -TERM "${BENCH_PIDS[uiopen]}" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		grep -q '^fetches=' "$log" && break
		sleep 0.1
	done
	bench_stop uiopen
	PAGE_FETCHES=$(awk -F'fetches=' '/^ready/ {a = $2} /^fetches=/ {b = $2} END {print (b == "" ? "?" : b - a)}' "$log")
	[[ $PAGE_FETCHES != "?" ]] || {
		bench_log_tail uiopen
		bench_warn "could not read the page's fetch count"
	}
}

# measure I ROUND: one window of variant I; appends its figures to FIG[I].
measure() {
	local i=$1 round=$2 out fetches="" line
	[[ ${V_BROWSER[i]} == 0 ]] || browser_up
	out=$BENCH_TMP/cpu-${V_NAME[i]}-$round.txt
	bench_spawn cpuload "$BENCH_LOADGEN_CORE" "$BENCH_BIN/cpuload" -url "$(bench_proxy_url umbra)" \
		-pid "${BENCH_PIDS[umbra]}" -core "$BENCH_PROXY_CORE" -rate "$RATE" -conns "$CONNS" \
		-warmup "$WARMUP" -duration "$DURATION" -metrics "http://127.0.0.1:$BENCH_UMBRA_ADMIN_PORT/metrics"
	wait "${BENCH_PIDS[cpuload]}" || {
		cat "${BENCH_LOGS[cpuload]}" >&2
		bench_die "cpuload failed against ${V_NAME[i]}"
	}
	unset "BENCH_PIDS[cpuload]"
	line=$(grep '^requests=' "${BENCH_LOGS[cpuload]}")
	if [[ ${V_BROWSER[i]} == 1 ]]; then
		browser_down
		fetches=$PAGE_FETCHES
	fi
	echo "$line${fetches:+ page_fetches=$fetches}" >"$out"
	bench_alive umbra || bench_die "umbra died during ${V_NAME[i]} (see ${BENCH_LOGS[umbra]})"
	FIG[i]+="$line${fetches:+ page_fetches=$fetches}"$'\n'
	bench_log "round $round ${V_NAME[i]}: $(field us_per_req <<<"$line") µs/request, $(field allocs_per_req <<<"$line") allocs/request," \
		"$(field rate <<<"$line") req/s, late $(field late_pct <<<"$line")%, other load on umbra's core $(field other_on_core_pct <<<"$line")%${fetches:+, page fetches $fetches}"
}

# field KEY: the value of KEY=... in the key=value line(s) on stdin.
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }

run_rounds() {
	local n=${#V_NAME[@]} round k i
	for ((round = 1; round <= RUNS; round++)); do
		if [[ $MODE == dashboard ]]; then
			rm -rf "$BENCH_TMP/umbra/data" # every round starts from an empty diff store
			umbra_up "${V_BIN[0]}" ""
		fi
		for ((k = 0; k < n; k++)); do
			i=$(((k + round - 1) % n))
			[[ $MODE == dashboard ]] || umbra_up "${V_BIN[i]}" "${V_RATIO[i]}"
			measure "$i" "$round"
			[[ $MODE == dashboard ]] || bench_stop umbra
		done
		[[ $MODE != dashboard ]] || bench_stop umbra
	done
}

# stats VALUES...: "median min max" of the arguments.
stats() {
	printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		print m, a[1], a[NR]
	}'
}

report() {
	local i n=${#V_NAME[@]} us al p99 rate late other ratios r med lo hi
	echo "## umbra's CPU time per request: $MODE"
	echo
	bench_machine_info
	if ((RATE > 0)); then
		echo "- load: bench/cpuload, $RATE requests/s on $CONNS keep-alive connections, $DURATION windows after a $WARMUP warm-up; $RUNS rounds, each variant once per round, order rotated"
	else
		echo "- load: bench/cpuload, as fast as $CONNS keep-alive connections go (saturation), $DURATION windows after a $WARMUP warm-up; $RUNS rounds, order rotated"
	fi
	echo "- umbra on core $BENCH_PROXY_CORE (GOMAXPROCS=1); load generator, upstreams$([[ $MODE != dashboard ]] || echo " and the browser") on core $BENCH_LOADGEN_CORE"
	echo "- CPU time: umbra's threads' time on a core (/proc/PID/task/*/schedstat) over the window, divided by the requests answered; allocations from go_memstats_mallocs_total"
	case $MODE in
	dashboard) echo "- umbra: 100% shadow compared with a secondary; \"open\": headless Chromium showing $PAGE with its live updates (every 5 s), started ${SETTLE}s before the window; one umbra per round" ;;
	tracing) echo "- tracing on: OTLP/HTTP to bench/otlpsink on core $BENCH_LOADGEN_CORE, parent-based ratio sampler; one umbra per window" ;;
	builds)
		echo "- builds (tracing off, one umbra per window):"
		for i in "${!V_NAME[@]}"; do echo "  - ${V_NAME[i]}: ${REVS[${V_NAME[i]}]:-working tree}"; done
		;;
	esac
	echo
	echo "| variant | µs/request, median | min – max | allocs/request | p99 ms | req/s | late % (max) | other load on umbra's core % (median, max) |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for ((i = 0; i < n; i++)); do
		read -r us lo hi < <(stats $(field us_per_req <<<"${FIG[i]}"))
		read -r al _ _ < <(stats $(field allocs_per_req <<<"${FIG[i]}"))
		read -r p99 _ _ < <(stats $(field p99_ms <<<"${FIG[i]}"))
		read -r rate _ _ < <(stats $(field rate <<<"${FIG[i]}"))
		read -r _ _ late < <(stats $(field late_pct <<<"${FIG[i]}"))
		read -r other _ ohi < <(stats $(field other_on_core_pct <<<"${FIG[i]}"))
		printf '| %s | %.2f | %.2f – %.2f | %.2f | %.2f | %.0f | %.1f | %.0f, %.0f |\n' "${V_NAME[i]}" "$us" "$lo" "$hi" "$al" "$p99" "$rate" "$late" "$other" "$ohi"
	done
	echo
	echo "Paired by round (each round's ratio to ${V_NAME[0]} in the same round):"
	echo
	echo "| variant | µs/request vs ${V_NAME[0]}, median | min – max | each round |"
	echo "| --- | ---: | ---: | --- |"
	local -a base
	read -r -a base <<<"$(field us_per_req <<<"${FIG[0]}" | tr '\n' ' ')"
	for ((i = 1; i < n; i++)); do
		local -a cur ratios=()
		read -r -a cur <<<"$(field us_per_req <<<"${FIG[i]}" | tr '\n' ' ')"
		for ((r = 0; r < ${#base[@]}; r++)); do
			ratios+=("$(awk -v a="${cur[r]}" -v b="${base[r]}" 'BEGIN {printf "%.4f", a / b}')")
		done
		read -r med lo hi < <(stats "${ratios[@]}")
		printf '| %s | %.4fx | %.4fx – %.4fx | %s |\n' "${V_NAME[i]}" "$med" "$lo" "$hi" "${ratios[*]}"
	done
	if [[ $MODE == dashboard ]]; then
		echo
		echo "Page fetches (live refreshes) while open, per window: $(field page_fetches <<<"${FIG[1]}" | xargs)"
	fi
	echo
	echo "Every window (µs/request):"
	for ((i = 0; i < n; i++)); do
		echo "- ${V_NAME[i]}: $(field us_per_req <<<"${FIG[i]}" | xargs)"
	done
}

bench_setup
declare -gA REVS=()
declare -ga FIG=()
bench_ensure_packages curl procps iproute2 util-linux
bench_build_upstream
(cd "$BENCH_REPO" && go build -o "$BENCH_BIN/cpuload" ./bench/cpuload) >"$BENCH_TMP/build-cpuload.log" 2>&1 || {
	cat "$BENCH_TMP/build-cpuload.log" >&2
	bench_die "building bench/cpuload failed"
}
case $MODE in
dashboard)
	(cd "$BENCH_REPO" && go build -o "$BENCH_BIN/uiopen" ./bench/uiopen) >"$BENCH_TMP/build-uiopen.log" 2>&1 || {
		cat "$BENCH_TMP/build-uiopen.log" >&2
		bench_die "building bench/uiopen failed"
	}
	build_rev now .
	add_variant closed "$BENCH_BIN/umbra-now" "" 0
	add_variant open "$BENCH_BIN/umbra-now" "" 1
	;;
tracing)
	build_rev now .
	add_variant off "$BENCH_BIN/umbra-now" "" 0
	add_variant "on-1%" "$BENCH_BIN/umbra-now" 0.01 0
	add_variant "on-100%" "$BENCH_BIN/umbra-now" 1 0
	;;
builds)
	for spec in "$@"; do
		[[ $spec =~ ^[A-Za-z0-9_.-]+=.+$ ]] || bench_die "want NAME=REV, got '$spec'"
		build_rev "${spec%%=*}" "${spec#*=}"
		add_variant "${spec%%=*}" "$BENCH_BIN/umbra-${spec%%=*}" "" 0
	done
	;;
esac
bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
if [[ $MODE == dashboard ]]; then
	bench_start_upstream shadow "$SHADOW_ADDR"
	bench_start_upstream secondary "$SECONDARY_ADDR"
fi
[[ $MODE != tracing ]] || UMBRA_TRACE_RATIO=1 bench_start_otlp_sink
run_rounds
REPORT=$BENCH_BIN/cpu-$MODE-$(date -u +%Y%m%dT%H%M%SZ).md
report | tee "$REPORT"
bench_log "report saved to $REPORT"
