#!/usr/bin/env bash
# bench/run.sh: side-by-side throughput/latency benchmark of umbra against
# nginx, HAProxy and Caddy (plus wrk straight to the upstream), each proxy
# pinned to core 0, wrk and the upstream on core 1. Prints a Markdown report
# on stdout (progress goes to stderr) and saves it in $BENCH_BIN.
#
# Environment:
#   DURATION=15s      wrk duration of each measured run
#   CONNECTIONS=64    wrk keep-alive connections
#   RUNS=3            interleaved runs per proxy; the median of each figure is shown
#   WARMUP=3s         wrk warm-up before each measured run (0 to skip)
#   ONLY=direct,nginx,haproxy,caddy,umbra   proxies to run, in this order
#   QUIET_WAIT=60     before each run, wait up to this many seconds for other
#                     load on the machine to drop below QUIET_MAX% (0: no check)
#   QUIET_MAX=10      CPU percent (whole machine) regarded as quiet; a run
#                     during which other processes used more is measured again
#   RETRIES=2         how many times a run disturbed that way is measured again
#   UMBRA_TRACE_RATIO empty (default): umbra's tracing off; 0.01, 1, ...: on,
#                     with that sampler ratio, exporting to bench/otlpsink
# See bench/README.md and bench/lib.sh for the rest (ports, cores, paths).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

ALL_PROXIES=(direct nginx haproxy caddy umbra)
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-3s}
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_MAX=${QUIET_MAX:-10}
RETRIES=${RETRIES:-2}
ONLY=${ONLY:-$(
	IFS=,
	echo "${ALL_PROXIES[*]}"
)}

usage() { sed -n '2,20s/^# \{0,1\}//p' "$0"; }
case ${1:-} in
-h | --help)
	usage
	exit 0
	;;
"") ;;
*)
	usage >&2
	bench_die "unexpected argument '$1' (settings are environment variables)"
	;;
esac

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || bench_die "RUNS must be a positive integer, got '$RUNS'"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || bench_die "CONNECTIONS must be a positive integer, got '$CONNECTIONS'"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || bench_die "DURATION must look like 15s, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || bench_die "WARMUP must look like 3s or 0, got '$WARMUP'"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || bench_die "QUIET_WAIT must be a number of seconds, got '$QUIET_WAIT'"
[[ $QUIET_MAX =~ ^[0-9]+$ ]] || bench_die "QUIET_MAX must be a percentage, got '$QUIET_MAX'"
[[ $RETRIES =~ ^[0-9]+$ ]] || bench_die "RETRIES must be a number, got '$RETRIES'"

PROXIES=()
IFS=, read -r -a wanted <<<"$ONLY"
for p in "${wanted[@]}"; do
	p=${p//[[:space:]]/}
	[[ -n $p ]] || continue
	[[ " ${ALL_PROXIES[*]} " == *" $p "* ]] || bench_die "ONLY: unknown proxy '$p' (known: ${ALL_PROXIES[*]})"
	[[ " ${PROXIES[*]} " == *" $p "* ]] || PROXIES+=("$p")
done
((${#PROXIES[@]})) || bench_die "ONLY selects no proxy"
selected() { [[ " ${PROXIES[*]} " == *" $1 "* ]]; }

(($(nproc) >= 2)) || bench_die "needs at least 2 cores (proxy on core $BENCH_PROXY_CORE, wrk+upstream on core $BENCH_LOADGEN_CORE)"

bench_setup

# --- install ---------------------------------------------------------------
pkgs=(wrk curl procps iproute2 util-linux)
for p in nginx haproxy caddy; do selected "$p" && pkgs+=("$p"); done
bench_ensure_packages "${pkgs[@]}"

# --- build -----------------------------------------------------------------
declare -A STATUS=() # proxy -> why it has no figures
bench_log "building bench/upstream"
bench_build_upstream
if selected umbra; then
	bench_log "building umbra (go build ./cmd/umbra)"
	bench_build_umbra || STATUS[umbra]="not built"
fi
for p in nginx haproxy caddy; do
	selected "$p" || continue
	if [[ -n ${BENCH_UNAVAILABLE[$p]:-} ]]; then
		STATUS[$p]=${BENCH_UNAVAILABLE[$p]}
	elif ! command -v "$p" >/dev/null; then
		STATUS[$p]="not installed"
	fi
done

# --- run -------------------------------------------------------------------
bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
bench_start_otlp_sink

declare -A RPS=() P50=() P99=() NON2XX=() SOCKERR=() BUSY=() OTHER=()
FAILED=0

# measure_once PROXY TAG: start PROXY, warm up, run wrk once, stop it. Sets
# FIGURES ("rps p50 p99 requests non2xx sockerr") and OTHER_PCT (CPU used by
# other processes on the machine during the measured run). Returns 1 if the
# proxy failed.
measure_once() {
	local p=$1 tag=$2 url out ok=1 m1 m2
	if ! bench_proxy_up "$p"; then
		return 1
	fi
	url=$(bench_proxy_url "$p")
	out=$BENCH_TMP/wrk-$p-$tag.txt
	if [[ $WARMUP != 0 && $WARMUP != 0[smh] ]]; then
		bench_wrk "$url" "$WARMUP" "$CONNECTIONS" "$BENCH_TMP/warmup-$p.txt" || ok=0
	fi
	if ((ok)); then
		m1=$(bench_cpu_mark)
		bench_wrk "$url" "$DURATION" "$CONNECTIONS" "$out" || ok=0
		m2=$(bench_cpu_mark)
		OTHER_PCT=$(bench_cpu_other "$m1" "$m2")
	fi
	if ((ok)) && [[ $p != direct ]] && ! bench_alive "$p"; then
		bench_warn "$p died during the run"
		bench_log_tail "$p"
		ok=0
	fi
	if ((ok)) && ! FIGURES=$(bench_wrk_parse "$out"); then
		cat "$out" >&2
		bench_warn "could not parse wrk output for $p"
		ok=0
	fi
	bench_proxy_down "$p"
	bench_alive upstream || bench_die "the upstream died (see $BENCH_TMP/upstream.log)"
	((ok))
}

n=${#PROXIES[@]}
for ((run = 0; run < RUNS; run++)); do
	for ((i = 0; i < n; i++)); do
		# rotate the order each run so no proxy always goes first
		p=${PROXIES[(i + run) % n]}
		[[ -z ${STATUS[$p]:-} ]] || continue
		for ((attempt = 0; ; attempt++)); do
			busy=""
			if ((QUIET_WAIT > 0)) && ! busy=$(bench_wait_quiet "$QUIET_WAIT" "$QUIET_MAX"); then
				bench_warn "machine still ${busy}% busy with other work after ${QUIET_WAIT}s; measuring $p anyway"
			fi
			bench_log "run $((run + 1))/$RUNS: $p${busy:+ (machine ${busy}% busy before start)}"
			if ! measure_once "$p" "$((run + 1))-$attempt"; then
				STATUS[$p]="failed (see log)"
				FAILED=1
				break
			fi
			((OTHER_PCT > QUIET_MAX)) || break
			if ((attempt >= RETRIES)); then
				bench_warn "other processes used ${OTHER_PCT}% of the machine during this $p run; keeping it (RETRIES=$RETRIES exhausted)"
				BUSY[$p]=$((${BUSY[$p]:-0} + 1))
				break
			fi
			bench_warn "other processes used ${OTHER_PCT}% of the machine during this $p run (over ${QUIET_MAX}%): measuring it again"
		done
		[[ -z ${STATUS[$p]:-} ]] || continue
		read -r rps p50 p99 reqs non2xx sockerr <<<"$FIGURES"
		bench_log "  $p: $rps req/s, p50 ${p50} ms, p99 ${p99} ms, $reqs requests, $non2xx non-2xx, $sockerr socket errors, other load ${OTHER_PCT}%"
		RPS[$p]+=" $rps"
		P50[$p]+=" $p50"
		P99[$p]+=" $p99"
		NON2XX[$p]=$((${NON2XX[$p]:-0} + non2xx))
		SOCKERR[$p]=$((${SOCKERR[$p]:-0} + sockerr))
		((OTHER_PCT <= ${OTHER[$p]:-0})) || OTHER[$p]=$OTHER_PCT
	done
done

bench_stop upstream
SINK=""
if [[ -n $UMBRA_TRACE_RATIO ]]; then
	bench_stop otlpsink
	SINK=$(grep -o '[0-9]* exports, [0-9]* bytes' "${BENCH_LOGS[otlpsink]}" || echo "no count")
fi

# --- report ----------------------------------------------------------------
median_of() {
	# shellcheck disable=SC2086 # the list is split into arguments on purpose
	bench_median $1
}

report() {
	local p rps p50 p99 ratio nginx_rps="" notes=()
	if selected nginx && [[ -z ${STATUS[nginx]:-} ]]; then
		nginx_rps=$(median_of "${RPS[nginx]}")
	fi
	echo "## Side-by-side: small JSON through one proxy core"
	echo
	bench_machine_info
	echo "- load: wrk $(bench_proxy_version wrk), 1 thread, $CONNECTIONS keep-alive connections, $DURATION per run after a ${WARMUP} warm-up; median of $RUNS interleaved run(s)"
	echo "- pinning: proxy on core $BENCH_PROXY_CORE (nginx 1 worker, HAProxy nbthread 1, Caddy and umbra GOMAXPROCS=1); upstream (GOMAXPROCS=1) and wrk share core $BENCH_LOADGEN_CORE"
	local worst=0
	for p in "${OTHER[@]}"; do ((p <= worst)) || worst=$p; done
	if [[ -n $UMBRA_TRACE_RATIO ]]; then
		echo "- umbra tracing on: sampler ratio $UMBRA_TRACE_RATIO (parent-based), OTLP/HTTP to bench/otlpsink on core $BENCH_LOADGEN_CORE ($SINK)"
	else
		echo "- umbra tracing off"
	fi
	echo "- other processes on the machine used at most ${worst}% of its CPU during the measured runs (a run over ${QUIET_MAX}% is measured again, up to $RETRIES times)"
	echo "- versions:"
	for p in "${PROXIES[@]}"; do
		case ${STATUS[$p]:-} in
		"not built" | "not installed" | "not available in the Debian archive") echo "  - $p: ${STATUS[$p]}" ;;
		*) echo "  - $p: $(bench_proxy_version "$p")" ;;
		esac
	done
	echo
	echo "| proxy | requests/s | p50 | p99 | vs nginx (req/s) | vs nginx, paired by round | req/s of each run |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
	for p in "${PROXIES[@]}"; do
		if [[ -n ${STATUS[$p]:-} ]]; then
			echo "| $p | ${STATUS[$p]} | – | – | – | – | – |"
			continue
		fi
		rps=$(median_of "${RPS[$p]}")
		p50=$(median_of "${P50[$p]}")
		p99=$(median_of "${P99[$p]}")
		ratio="–" paired="–"
		if [[ -n $nginx_rps ]]; then
			ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN {printf "%.2fx", a / b}')
			paired=$(awk -v r="$(bench_paired_median "${RPS[$p]}" "${RPS[nginx]}")" 'BEGIN {printf "%.2fx", r}')
		fi
		printf '| %s | %.0f | %.2f ms | %.2f ms | %s | %s | %s |\n' "$p" "$rps" "$p50" "$p99" "$ratio" "$paired" \
			"$(printf '%.0f ' ${RPS[$p]} | sed 's/ $//')"
		((${NON2XX[$p]:-0} == 0)) || notes+=("$p: ${NON2XX[$p]} non-2xx responses")
		((${SOCKERR[$p]:-0} == 0)) || notes+=("$p: ${SOCKERR[$p]} wrk socket errors")
		((${BUSY[$p]:-0} == 0)) || notes+=("$p: in ${BUSY[$p]} of $RUNS run(s) other processes used more than ${QUIET_MAX}% of the machine (up to ${OTHER[$p]}%): figures less reliable")
	done
	echo
	echo "direct = wrk straight to the upstream (no proxy): the ceiling of this setup."
	echo "\"paired by round\": the median of each round's ratio to nginx (each round runs every proxy once, back to back)."
	if ((${#notes[@]})); then
		echo
		for p in "${notes[@]}"; do echo "- **warning** $p"; done
	fi
}

REPORT=$BENCH_BIN/results-$(date -u +%Y%m%dT%H%M%SZ).md
report | tee "$REPORT"
bench_log "report saved to $REPORT"

for p in "${PROXIES[@]}"; do
	((${NON2XX[$p]:-0} == 0)) || {
		bench_warn "$p returned ${NON2XX[$p]} non-2xx responses"
		FAILED=1
	}
done
((FAILED == 0)) || bench_die "some proxies failed; logs in $BENCH_TMP"
