# shellcheck shell=bash
# bench/lib.sh: helpers shared by the umbra benchmark scripts (run.sh, and
# later shadow.sh). Source it from a bash script that has `set -Eeuo pipefail`;
# it does not change shell options itself.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_setup                       # temp dir + cleanup trap
#   bench_ensure_packages nginx wrk   # Debian packages, services stopped
#   bench_build_upstream              # -> $BENCH_BIN/upstream
#   bench_build_umbra || echo "umbra not built"
#   bench_start_upstream upstream "$BENCH_UPSTREAM_ADDR"
#   bench_proxy_up nginx              # config in the temp dir, pinned, ready
#   bench_wrk "$(bench_proxy_url nginx)" 15s 64 out.txt
#   read -r rps p50 p99 reqs non2xx sockerr < <(bench_wrk_parse out.txt)
#   bench_proxy_down nginx
#
# Every process is started with bench_spawn: in its own process group (so
# nginx workers go down with their master), pinned with taskset, output to a
# log file in the temp dir, and stopped by the EXIT trap if still running.
#
# Extension points for other benchmarks (e.g. shadow.sh):
#   - bench_proxy_up NAME CONFIG_FILE starts a proxy with a config you wrote
#     yourself instead of the generated one;
#   - NGINX_HTTP_EXTRA / NGINX_LOCATION_EXTRA are pasted into the generated
#     nginx http{} block / location / {} (e.g. `mirror /m;`),
#     HAPROXY_BACKEND_EXTRA into the haproxy backend, CADDY_SITE_EXTRA into
#     the Caddy site block, UMBRA_CONFIG_EXTRA appended to the umbra YAML;
#   - UMBRA_TRACE_RATIO (e.g. 0.01 or 1) turns umbra's tracing on with that
#     sampler ratio, exporting over OTLP/HTTP to bench/otlpsink at
#     BENCH_OTLP_ADDR (call bench_start_otlp_sink before starting umbra).

# ---------------------------------------------------------------------------
# Settings (override from the environment)

BENCH_REPO=${BENCH_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BENCH_BIN=${BENCH_BIN:-/tmp/umbra-bench}          # built binaries and reports
BENCH_PROXY_CORE=${BENCH_PROXY_CORE:-0}           # the proxy under test
BENCH_LOADGEN_CORE=${BENCH_LOADGEN_CORE:-1}       # wrk and the upstream
BENCH_UPSTREAM_ADDR=${BENCH_UPSTREAM_ADDR:-127.0.0.1:18000}
BENCH_UMBRA_PORT=${BENCH_UMBRA_PORT:-18080}
BENCH_UMBRA_ADMIN_PORT=${BENCH_UMBRA_ADMIN_PORT:-19901}
BENCH_NGINX_PORT=${BENCH_NGINX_PORT:-18081}
BENCH_HAPROXY_PORT=${BENCH_HAPROXY_PORT:-18082}
BENCH_CADDY_PORT=${BENCH_CADDY_PORT:-18083}
BENCH_READY_TIMEOUT=${BENCH_READY_TIMEOUT:-15}    # seconds for a proxy to answer
BENCH_WRK_TIMEOUT=${BENCH_WRK_TIMEOUT:-5s}        # wrk --timeout per request
NGINX_HTTP_EXTRA=${NGINX_HTTP_EXTRA:-}
NGINX_LOCATION_EXTRA=${NGINX_LOCATION_EXTRA:-}
HAPROXY_BACKEND_EXTRA=${HAPROXY_BACKEND_EXTRA:-}
CADDY_SITE_EXTRA=${CADDY_SITE_EXTRA:-}
UMBRA_CONFIG_EXTRA=${UMBRA_CONFIG_EXTRA:-}
UMBRA_TRACE_RATIO=${UMBRA_TRACE_RATIO:-}            # empty: tracing off
BENCH_OTLP_ADDR=${BENCH_OTLP_ADDR:-127.0.0.1:18317} # bench/otlpsink

BENCH_TMP=${BENCH_TMP:-}                            # set by bench_setup
BENCH_NL=$'\n'
declare -gA BENCH_PIDS=()                           # name -> pid (= pgid)
declare -gA BENCH_LOGS=()                           # name -> log file
declare -gA BENCH_UNAVAILABLE=()                    # package -> reason

export LC_ALL=C # decimal points in printf/awk/EPOCHREALTIME, stable sort
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) PATH=$PATH:/usr/local/go/bin ;; esac

# ---------------------------------------------------------------------------
# Messages

bench_log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
bench_warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
bench_die() {
	printf '[bench] ERROR: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------
# Setup and cleanup

# bench_setup: create the temp dir and install the cleanup trap.
bench_setup() {
	mkdir -p "$BENCH_BIN"
	BENCH_TMP=$(mktemp -d /tmp/umbra-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'bench_log "interrupted"; exit 130' INT
	trap 'bench_log "terminated"; exit 143' TERM
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	bench_log "temp dir $BENCH_TMP"
}

# bench_cleanup: stop everything we started; keep the temp dir (logs) if the
# script failed or BENCH_KEEP_TMP=1.
bench_cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	for name in "${!BENCH_PIDS[@]}"; do
		bench_stop "$name" || true
	done
	if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
		if ((rc != 0)) || [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then
			bench_log "logs and configs kept in $BENCH_TMP"
		else
			rm -rf "$BENCH_TMP"
		fi
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------
# Debian packages

# bench_ensure_packages PKG...: install missing Debian packages. A proxy
# package (nginx, haproxy, caddy) that the Debian archive does not have is
# recorded in BENCH_UNAVAILABLE and skipped; any other missing one is fatal.
# Nothing is downloaded from anywhere but the configured Debian archive.
bench_ensure_packages() {
	local pkg cand missing=() install=()
	for pkg in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
			missing+=("$pkg")
		fi
	done
	((${#missing[@]})) || return 0
	((EUID == 0)) || bench_die "packages missing (${missing[*]}) and not root: install them with apt-get"
	bench_log "installing from Debian: ${missing[*]}"
	apt-get update -qq >"$BENCH_TMP/apt-update.log" 2>&1 ||
		bench_die "apt-get update failed (see $BENCH_TMP/apt-update.log)"
	for pkg in "${missing[@]}"; do
		cand=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
		if [[ -z $cand || $cand == "(none)" ]]; then
			case $pkg in
			nginx | haproxy | caddy)
				BENCH_UNAVAILABLE[$pkg]="not available in the Debian archive"
				bench_warn "package '$pkg' is NOT available from Debian here: its row is skipped (nothing is downloaded from elsewhere)"
				;;
			*) bench_die "required package '$pkg' is not available from Debian" ;;
			esac
		else
			install+=("$pkg")
		fi
	done
	if ((${#install[@]})); then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${install[@]}" \
			>"$BENCH_TMP/apt-install.log" 2>&1 ||
			bench_die "apt-get install ${install[*]} failed (see $BENCH_TMP/apt-install.log)"
		bench_stop_system_services "${install[@]}"
	fi
}

# bench_stop_system_services PKG...: stop and disable the system service that
# installing nginx/haproxy/caddy may have started; we only ever run our own
# instances with configs in the temp dir.
bench_stop_system_services() {
	local svc
	for svc in "$@"; do
		case $svc in nginx | haproxy | caddy) ;; *) continue ;; esac
		if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif command -v service >/dev/null && service "$svc" status >/dev/null 2>&1; then
			service "$svc" stop >/dev/null 2>&1 || true
			command -v update-rc.d >/dev/null && { update-rc.d "$svc" disable >/dev/null 2>&1 || true; }
		fi
	done
}

# bench_available NAME: is the proxy runnable (package present, binary built)?
bench_available() {
	case $1 in
	direct) [[ -x $BENCH_BIN/upstream ]] ;;
	umbra) [[ -x $BENCH_BIN/umbra ]] ;;
	nginx | haproxy | caddy) [[ -z ${BENCH_UNAVAILABLE[$1]:-} ]] && command -v "$1" >/dev/null ;;
	*) return 1 ;;
	esac
}

# ---------------------------------------------------------------------------
# Builds

# bench_build_upstream: build bench/upstream into $BENCH_BIN/upstream (fatal on error).
bench_build_upstream() {
	command -v go >/dev/null || bench_die "go not found (expected /usr/local/go/bin/go)"
	(cd "$BENCH_REPO" && go build -o "$BENCH_BIN/upstream" ./bench/upstream) \
		>"$BENCH_TMP/build-upstream.log" 2>&1 || {
		cat "$BENCH_TMP/build-upstream.log" >&2
		bench_die "building bench/upstream failed"
	}
}

# bench_build_umbra: build ./cmd/umbra into $BENCH_BIN/umbra. Returns 1 (and
# removes any stale binary) if it does not build.
bench_build_umbra() {
	rm -f "$BENCH_BIN/umbra"
	if (cd "$BENCH_REPO" && go build -o "$BENCH_BIN/umbra" ./cmd/umbra) >"$BENCH_TMP/build-umbra.log" 2>&1; then
		return 0
	fi
	bench_warn "umbra does not build yet (go build ./cmd/umbra):"
	sed -n '1,5s/^/    /p' "$BENCH_TMP/build-umbra.log" >&2
	rm -f "$BENCH_BIN/umbra"
	return 1
}

# ---------------------------------------------------------------------------
# Processes

# bench_port_free PORT: fail loudly if something already listens on PORT.
bench_port_free() {
	if [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; then
		ss -Hltnp "sport = :$1" >&2 || true
		bench_die "port $1 is already in use"
	fi
}

# bench_spawn NAME CORE CMD...: start CMD pinned to CORE in its own process
# group, output to $BENCH_TMP/NAME.log. Use `env VAR=x cmd` for environment.
bench_spawn() {
	local name=$1 core=$2 pid pgid
	shift 2
	[[ -z ${BENCH_PIDS[$name]:-} ]] || bench_die "bench_spawn: $name is already running"
	BENCH_LOGS[$name]=$BENCH_TMP/$name.log
	# Not a process-group leader (no job control), so setsid execs in place
	# and $! is the program itself, leading its own group.
	setsid taskset -c "$core" "$@" >"${BENCH_LOGS[$name]}" 2>&1 </dev/null &
	pid=$!
	BENCH_PIDS[$name]=$pid
	sleep 0.05
	pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || true
	if [[ -n $pgid && $pgid != "$pid" ]]; then
		bench_die "bench_spawn: $name (pid $pid) is not its own process group ($pgid)"
	fi
}

# bench_group_alive PGID: does any non-zombie process remain in the group?
bench_group_alive() {
	local p st
	for p in $(pgrep -g "$1" 2>/dev/null); do
		st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
		[[ $st == Z ]] || return 0
	done
	return 1
}

# bench_alive NAME: is the process started as NAME still running?
bench_alive() {
	local pid=${BENCH_PIDS[$1]:-}
	[[ -n $pid ]] && bench_group_alive "$pid"
}

# bench_stop NAME: SIGTERM the process group, SIGKILL after 5 s.
bench_stop() {
	local name=$1 pid i
	pid=${BENCH_PIDS[$name]:-}
	[[ -n $pid ]] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		bench_group_alive "$pid" || break
		sleep 0.1
	done
	if bench_group_alive "$pid"; then
		bench_warn "$name (pid $pid) ignored SIGTERM, killing"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "BENCH_PIDS[$name]"
}

# bench_log_tail NAME: show the end of a process log on stderr.
bench_log_tail() {
	local f=${BENCH_LOGS[$1]:-}
	[[ -n $f && -s $f ]] || return 0
	printf '  --- last lines of %s ---\n' "$f" >&2
	tail -n 15 "$f" | sed 's/^/  /' >&2
}

# bench_wait_http NAME URL: wait until URL answers 200 with the upstream's
# body (so we know the proxy really forwards to our upstream). Returns 1 on
# timeout or if the process NAME died.
bench_wait_http() {
	local name=$1 url=$2 deadline body
	deadline=$((SECONDS + BENCH_READY_TIMEOUT))
	while ((SECONDS < deadline)); do
		if [[ -n ${BENCH_PIDS[$name]:-} ]] && ! bench_alive "$name"; then
			bench_warn "$name exited during startup"
			bench_log_tail "$name"
			return 1
		fi
		if body=$(curl -fsS --max-time 1 "$url" 2>/dev/null) && [[ $body == *umbra-bench* ]]; then
			return 0
		fi
		sleep 0.1
	done
	bench_warn "$name did not answer 200 with the upstream body at $url within ${BENCH_READY_TIMEOUT}s"
	curl -sS -i --max-time 1 "$url" 2>&1 | head -n 5 | sed 's/^/  /' >&2 || true
	bench_log_tail "$name"
	return 1
}

# ---------------------------------------------------------------------------
# Upstream

# bench_start_upstream NAME ADDR [FLAGS...]: start bench/upstream on the
# load-generator core (GOMAXPROCS=1), e.g. `bench_start_upstream slow
# 127.0.0.1:18001 -delay 200ms`. Waits for it unless -hang is given.
bench_start_upstream() {
	local name=$1 addr=$2 a
	shift 2
	bench_port_free "${addr##*:}"
	bench_spawn "$name" "$BENCH_LOADGEN_CORE" env GOMAXPROCS=1 "$BENCH_BIN/upstream" -addr "$addr" "$@"
	for a in "$@"; do [[ $a == -hang ]] && { sleep 0.3; return 0; }; done
	bench_wait_http "$name" "http://$addr/" || bench_die "upstream $name did not start"
}

# bench_start_otlp_sink: when UMBRA_TRACE_RATIO is set, build and start
# bench/otlpsink (umbra's trace collector) on the load-generator core; its
# log ends with the number of exports it got. A no-op otherwise.
bench_start_otlp_sink() {
	[[ -n $UMBRA_TRACE_RATIO ]] || return 0
	[[ $UMBRA_TRACE_RATIO =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] ||
		bench_die "UMBRA_TRACE_RATIO must be a number from 0 to 1, got '$UMBRA_TRACE_RATIO'"
	(cd "$BENCH_REPO" && go build -o "$BENCH_BIN/otlpsink" ./bench/otlpsink) \
		>"$BENCH_TMP/build-otlpsink.log" 2>&1 || {
		cat "$BENCH_TMP/build-otlpsink.log" >&2
		bench_die "building bench/otlpsink failed"
	}
	bench_port_free "${BENCH_OTLP_ADDR##*:}"
	bench_spawn otlpsink "$BENCH_LOADGEN_CORE" env GOMAXPROCS=1 "$BENCH_BIN/otlpsink" -addr "$BENCH_OTLP_ADDR"
	bench_wait_http otlpsink "http://$BENCH_OTLP_ADDR/" || bench_die "otlpsink did not start"
}

# bench_umbra_tracing: the umbra config's tracing block for
# UMBRA_TRACE_RATIO, or nothing.
bench_umbra_tracing() {
	[[ -n $UMBRA_TRACE_RATIO ]] || return 0
	printf 'tracing: {enabled: true, endpoint: "http://%s", sampler: {ratio: %s}}\n' "$BENCH_OTLP_ADDR" "$UMBRA_TRACE_RATIO"
}

# ---------------------------------------------------------------------------
# Proxy configs. Each writes into $BENCH_TMP/NAME/ and prints the file path.

bench_proxy_port() {
	case $1 in
	direct) echo "${BENCH_UPSTREAM_ADDR##*:}" ;;
	umbra) echo "$BENCH_UMBRA_PORT" ;;
	nginx) echo "$BENCH_NGINX_PORT" ;;
	haproxy) echo "$BENCH_HAPROXY_PORT" ;;
	caddy) echo "$BENCH_CADDY_PORT" ;;
	*) bench_die "unknown proxy '$1'" ;;
	esac
}

bench_proxy_url() {
	case $1 in
	direct) echo "http://$BENCH_UPSTREAM_ADDR/" ;;
	*) echo "http://127.0.0.1:$(bench_proxy_port "$1")/" ;;
	esac
}

bench_config_nginx() {
	local d=$BENCH_TMP/nginx
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
# generated by bench/lib.sh
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    # 1.19.10+ closes client and upstream keep-alive connections after 1000
    # requests by default; the other proxies have no such limit.
    keepalive_requests 1000000;
    upstream app {
        server $BENCH_UPSTREAM_ADDR;
        keepalive 64;
        keepalive_requests 1000000;
    }${NGINX_HTTP_EXTRA:+$BENCH_NL$NGINX_HTTP_EXTRA}
    server {
        listen 127.0.0.1:$BENCH_NGINX_PORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";${NGINX_LOCATION_EXTRA:+$BENCH_NL$NGINX_LOCATION_EXTRA}
        }
    }
}
EOF
	echo "$d/nginx.conf"
}

bench_config_haproxy() {
	local d=$BENCH_TMP/haproxy
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
# generated by bench/lib.sh (no log directives: no logging)
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always

frontend fe
    bind 127.0.0.1:$BENCH_HAPROXY_PORT
    default_backend app

backend app
    server s1 $BENCH_UPSTREAM_ADDR${HAPROXY_BACKEND_EXTRA:+$BENCH_NL$HAPROXY_BACKEND_EXTRA}
EOF
	echo "$d/haproxy.cfg"
}

bench_config_caddy() {
	local d=$BENCH_TMP/caddy
	mkdir -p "$d"
	cat >"$d/Caddyfile" <<EOF
# generated by bench/lib.sh: admin API off, no access log, errors only
{
	admin off
	auto_https off
	log {
		level ERROR
	}
}

http://127.0.0.1:$BENCH_CADDY_PORT {
	reverse_proxy $BENCH_UPSTREAM_ADDR {
		transport http {
			# default is 32; match nginx keepalive 64 for 64 client connections
			keepalive_idle_conns_per_host 64
		}
	}${CADDY_SITE_EXTRA:+$BENCH_NL$CADDY_SITE_EXTRA}
}
EOF
	echo "$d/Caddyfile"
}

bench_config_umbra() {
	local d=$BENCH_TMP/umbra
	mkdir -p "$d"
	cat >"$d/umbra.yaml" <<EOF
# generated by bench/lib.sh
listen: "127.0.0.1:$BENCH_UMBRA_PORT"
admin: {listen: "127.0.0.1:$BENCH_UMBRA_ADMIN_PORT"}
log: {level: warn, access: false}
$(bench_umbra_tracing)
backends:
  app: {endpoints: ["http://$BENCH_UPSTREAM_ADDR"]}
routes:
  - name: app
    match: {path_prefix: "/"}
    backend: app${UMBRA_CONFIG_EXTRA:+$BENCH_NL$UMBRA_CONFIG_EXTRA}
EOF
	echo "$d/umbra.yaml"
}

# bench_umbra_compare_yaml DIR SHADOW_ADDR SECONDARY_ADDR: umbra's data_dir,
# backends and routes for one route that copies every request to a shadow
# target and compares its answers with a secondary's (the dashboard
# benchmarks: every page has data).
bench_umbra_compare_yaml() {
	cat <<EOF
data_dir: "$1/data"
backends:
  app: {endpoints: ["http://$BENCH_UPSTREAM_ADDR"]}
  shadow: {endpoints: ["http://$2"], timeout: 1s}
  secondary: {endpoints: ["http://$3"]}
routes:
  - name: app
    match: {path_prefix: "/"}
    backend: app
    shadow:
      - {backend: shadow, percent: 100}
    compare: {secondary: secondary}
EOF
}

# ---------------------------------------------------------------------------
# Proxy start/stop

# bench_proxy_up NAME [CONFIG]: write the default config (unless CONFIG is
# given), validate it, start the proxy pinned to the proxy core and wait until
# it forwards to the upstream. Returns 1 (with diagnostics) on failure.
# "direct" is a no-op: the upstream is already running.
bench_proxy_up() {
	local name=$1 conf=${2:-} d
	[[ $name == direct ]] && return 0
	bench_available "$name" || {
		bench_warn "$name is not available"
		return 1
	}
	[[ -n $conf ]] || conf=$("bench_config_$name")
	bench_port_free "$(bench_proxy_port "$name")"
	d=$BENCH_TMP/$name
	mkdir -p "$d"
	case $name in
	nginx)
		nginx -t -q -p "$d" -c "$conf" -e "$d/error.log" >"$d/configtest.log" 2>&1 || {
			cat "$d/configtest.log" >&2
			bench_warn "nginx config test failed"
			return 1
		}
		bench_spawn nginx "$BENCH_PROXY_CORE" nginx -p "$d" -c "$conf" -e "$d/error.log"
		;;
	haproxy)
		haproxy -c -q -f "$conf" >"$d/configtest.log" 2>&1 || {
			cat "$d/configtest.log" >&2
			bench_warn "haproxy config check failed"
			return 1
		}
		bench_spawn haproxy "$BENCH_PROXY_CORE" haproxy -db -f "$conf"
		;;
	caddy)
		bench_spawn caddy "$BENCH_PROXY_CORE" env GOMAXPROCS=1 HOME="$d" \
			XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
			caddy run --config "$conf" --adapter caddyfile
		;;
	umbra)
		bench_spawn umbra "$BENCH_PROXY_CORE" env GOMAXPROCS=1 "$BENCH_BIN/umbra" serve -c "$conf"
		;;
	*) bench_die "unknown proxy '$name'" ;;
	esac
	if ! bench_wait_http "$name" "$(bench_proxy_url "$name")"; then
		bench_stop "$name"
		return 1
	fi
}

# bench_proxy_down NAME: stop the proxy (no-op for "direct").
bench_proxy_down() {
	[[ $1 == direct ]] && return 0
	bench_stop "$1"
}

# bench_proxy_version NAME: one line describing the software under test.
bench_proxy_version() {
	local v
	case $1 in
	direct) echo "bench/upstream, $(go version | awk '{print $3}')" ;;
	nginx) v=$(nginx -v 2>&1) && echo "${v#nginx version: } (Debian $(bench_deb_version nginx))" ;;
	haproxy) v=$(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}') && echo "${v%%-*} (Debian $(bench_deb_version haproxy))" ;;
	caddy) v=$(caddy version 2>/dev/null | awk 'NR == 1 {print $1}') && echo "$v (Debian $(bench_deb_version caddy))" ;;
	umbra)
		v=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null) || v="no commit"
		[[ -z $(git -C "$BENCH_REPO" status --porcelain 2>/dev/null) ]] || v="$v + local changes"
		echo "git $v, $(go version | awk '{print $3}')"
		;;
	wrk) echo "$(bench_deb_version wrk) (Debian)" ;;
	esac
}

bench_deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------------------
# Load generation

# bench_wrk URL DURATION CONNECTIONS OUTFILE [EXTRA WRK ARGS...]: one wrk run
# (1 thread, keep-alive, --latency) pinned to the load-generator core.
bench_wrk() {
	local url=$1 dur=$2 conns=$3 out=$4 rc=0
	shift 4
	# In the background + wait, so that a signal to the script runs the
	# cleanup trap at once instead of after wrk finishes.
	bench_spawn wrk "$BENCH_LOADGEN_CORE" wrk -t1 -c"$conns" -d"$dur" \
		--timeout "$BENCH_WRK_TIMEOUT" --latency "$@" "$url"
	wait "${BENCH_PIDS[wrk]}" || rc=$?
	unset "BENCH_PIDS[wrk]"
	mv "${BENCH_LOGS[wrk]}" "$out"
	if ((rc != 0)); then
		cat "$out" >&2
		bench_warn "wrk failed (exit $rc) against $url"
		return 1
	fi
}

# bench_wrk_parse FILE: print "rps p50_ms p99_ms requests non2xx socket_errors"
# from wrk --latency output. Returns 1 if the figures are missing.
bench_wrk_parse() {
	awk '
	function ms(v) {
		if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
		if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
		if (v ~ /m$/)  { sub(/m$/, "", v);  return v * 60000 }
		if (v ~ /h$/)  { sub(/h$/, "", v);  return v * 3600000 }
		if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
		return v + 0
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/^Requests\/sec:/ { rps = $2 }
	/ requests in / { reqs = $1 }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
	END {
		if (rps == "" || p50 == "" || p99 == "") exit 1
		printf "%.2f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non2xx + 0, serr + 0
	}' "$1"
}

# bench_median NUM...: median of the arguments (mean of the middle two if even).
bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
		if (NR == 0) exit 1
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}

# bench_paired_median "A1 A2 ..." "B1 B2 ...": the median of A_i / B_i, for
# figures measured in rounds: each round's two runs are seconds apart, so
# the drift of a shared virtual machine over minutes cancels out, which it
# does not in the ratio of two medians.
bench_paired_median() {
	local -a a b ratios=()
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	local i
	for ((i = 0; i < ${#a[@]} && i < ${#b[@]}; i++)); do
		ratios+=("$(awk -v x="${a[i]}" -v y="${b[i]}" 'BEGIN {printf "%.4f", x / y}')")
	done
	((${#ratios[@]})) || return 1
	bench_median "${ratios[@]}"
}

# bench_cpu_busy [SECONDS]: percent (0-100) of the machine's CPU time that was
# busy over a SECONDS window (default 1). Call it while nothing of ours is
# loaded to detect other work on the machine.
bench_cpu_busy() {
	local a b
	a=$(head -n 1 /proc/stat)
	sleep "${1:-1}"
	b=$(head -n 1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
		na = split(a, x); split(b, y); total = 0
		for (i = 2; i <= 9 && i <= na; i++) total += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%d\n", (total > 0 ? 100 * (total - idle) / total : 0)
	}'
}

# bench_wait_quiet MAX_SECONDS [THRESHOLD]: wait until the machine is at most
# THRESHOLD percent busy (default 10) over a 1 s window, for up to MAX_SECONDS.
# Prints the last busy figure; returns 1 if it never got quiet.
bench_wait_quiet() {
	local max=$1 threshold=${2:-10} busy deadline
	deadline=$((SECONDS + max))
	while :; do
		busy=$(bench_cpu_busy 1)
		if ((busy <= threshold)); then
			echo "$busy"
			return 0
		fi
		if ((SECONDS >= deadline)); then
			echo "$busy"
			return 1
		fi
	done
}

# bench_cpu_mark: print "EPOCHREALTIME machine_jiffies our_jiffies" for
# bench_cpu_other. machine = user+nice+system of all cores (/proc/stat);
# ours = user+system of the process groups in BENCH_PIDS, of the children
# this shell has waited for (wrk) and of kernel threads (ksoftirqd: loopback
# networking done on our behalf).
bench_cpu_mark() {
	local t=0 pg p
	for pg in "${BENCH_PIDS[@]}"; do
		for p in $(pgrep -g "$pg" 2>/dev/null); do
			t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
		done
	done
	t=$((t + $(awk '{print $16 + $17}' "/proc/$$/stat")))
	for p in $(pgrep -P 2 2>/dev/null); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$EPOCHREALTIME $(awk '/^cpu / {print $2 + $3 + $4; exit}' /proc/stat) $t"
}

# bench_cpu_other MARK1 MARK2: percent (0-100) of the whole machine's CPU
# that processes other than ours used between two bench_cpu_mark calls:
# other benchmarks, builds or tests running on the machine at the same time.
bench_cpu_other() {
	awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" 'BEGIN {
		split(a, x); split(b, y)
		secs = y[1] - x[1]
		other = (y[2] - x[2]) - (y[3] - x[3])
		if (other < 0) other = 0
		printf "%d\n", (secs > 0 ? 100 * other / (secs * hz * n) : 0)
	}'
}

# bench_machine_info: Markdown bullet lines describing the machine.
bench_machine_info() {
	local cpu
	cpu=$(lscpu 2>/dev/null | awk -F: '/^Model name/ {sub(/^[ \t]+/, "", $2); print $2; exit}')
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- kernel: $(uname -r)"
	echo "- CPU: ${cpu:-unknown}, $(nproc) cores online"
}
