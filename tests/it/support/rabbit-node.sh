#!/usr/bin/env bash
# Private, throw-away RabbitMQ node for integration tests that need to
# restart the broker without disturbing the shared node (rabbit@localhost:5672).
#
# Usage:
#   tests/it/support/rabbit-node.sh start DIR AMQP_PORT   # start detached, wait until ready (<= 60 s)
#   tests/it/support/rabbit-node.sh stop  DIR AMQP_PORT   # graceful stop, waits for the VM to exit
#   tests/it/support/rabbit-node.sh kill  DIR AMQP_PORT   # SIGKILL the node's beam process (cleanup)
#
# Node layout (everything under DIR, DIR is created if missing):
#   node name         sstest<AMQP_PORT>@localhost
#   AMQP listener     127.0.0.1:<AMQP_PORT>           (guest/guest, loopback only)
#   Erlang dist port  <AMQP_PORT + 20000>, bound to 127.0.0.1
#   DIR/mnesia/       durable state (kept across stop/start with the same DIR)
#   DIR/log/          node log + startup.log (stdout/stderr of the VM)
#   DIR/sstest<PORT>.pid, DIR/rabbitmq.conf, DIR/enabled_plugins ("[]." -> no plugins,
#   no management/prometheus listener), DIR/rabbitmq-env.conf (empty, replaces
#   /etc/rabbitmq/rabbitmq-env.conf), DIR/.erlang.cookie (HOME=DIR for server and CLI).
#   DIR/conf.d/*.conf     optional extra rabbitmq.conf snippets (left alone by this script)
#
# Talking to the node by hand:  HOME=DIR /usr/lib/rabbitmq/bin/rabbitmqctl -n sstest<PORT>@localhost ...
# (or plain `rabbitmqctl -n sstest<PORT>@localhost ...` when the cookie was copied from
# /var/lib/rabbitmq, which is the default).
#
# Environment knobs (optional):
#   SSTEST_RABBIT_TIMEOUT   seconds to wait for start/stop (default 60)
#   SSTEST_RABBIT_BIN       RabbitMQ sbin dir (default /usr/lib/rabbitmq/bin)
#
# The shared node is never touched: nothing here uses /etc/rabbitmq, /var/lib/rabbitmq
# (except reading its cookie once, see below) or /var/log/rabbitmq, and the only
# process ever signalled is a beam.smp whose environment carries this DIR's pid file.

set -euo pipefail

prog="rabbit-node.sh"
die() { echo "$prog: error: $*" >&2; exit 1; }
info() { echo "$prog: $*" >&2; }

usage() {
    cat >&2 <<EOF
usage: $0 {start|stop|kill} DIR AMQP_PORT
  start  start a private RabbitMQ node (state in DIR) on 127.0.0.1:AMQP_PORT, wait until ready
  stop   stop it gracefully (durable data is kept in DIR), succeed if already down
  kill   SIGKILL its beam process (found via DIR's pid file), succeed if already down
EOF
    exit 2
}

[ $# -eq 3 ] || usage
cmd=$1
dir_arg=$2
port=$3
case "$cmd" in start|stop|kill) ;; *) usage ;; esac
[ -n "$dir_arg" ] || die "DIR must not be empty"
[[ "$port" =~ ^[0-9]+$ ]] || die "AMQP_PORT must be a number, got '$port'"
port=$((10#$port))
if [ "$port" -lt 1024 ] || [ "$port" -gt 45535 ]; then
    die "AMQP_PORT must be in 1024..45535 (distribution port is AMQP_PORT+20000), got $port"
fi
[ "$port" -ne 5672 ] || die "port 5672 belongs to the shared node rabbit@localhost"

# --------------------------------------------------------------------------
# Environment: drop everything inherited that RabbitMQ's scripts or its
# prelaunch (rabbit_env) would read, prefixed or not, then set our own.
# --------------------------------------------------------------------------
for v in $(compgen -e); do
    case "$v" in RABBITMQ_*) unset "$v" ;; esac
done
for v in ALLOW_INPUT ADVANCED_CONFIG_FILE BASE CONF_ENV_FILE CONFIG_FILE CONFIG_FILES DBG \
         DEFAULT_PASS DEFAULT_USER DEFAULT_VHOST DIST_PORT ENABLED_PLUGINS ENABLED_PLUGINS_FILE \
         ERLANG_COOKIE FEATURE_FLAGS FEATURE_FLAGS_FILE KEEP_PID_FILE_ON_EXIT LOG LOG_BASE \
         LOG_FF_REGISTRY LOGS MNESIA_BASE MNESIA_DIR MOTD_FILE NODE_IP_ADDRESS NODE_PORT NODENAME \
         PID_FILE PLUGINS_DIR PLUGINS_EXPAND_DIR PRODUCT_NAME PRODUCT_VERSION QUORUM_DIR STREAM_DIR \
         UPGRADE_LOG USE_LONGNAME SERVER_ERL_ARGS SERVER_ADDITIONAL_ERL_ARGS SERVER_START_ARGS \
         SERVER_CODE_PATH CTL_ERL_ARGS CTL_DIST_PORT_MIN CTL_DIST_PORT_MAX NODE_ONLY \
         ERL_FLAGS ERL_AFLAGS ERL_ZFLAGS ERL_LIBS NOTIFY_SOCKET detached; do
    unset "$v" || true
done

TIMEOUT=${SSTEST_RABBIT_TIMEOUT:-60}
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -gt 0 ] || die "SSTEST_RABBIT_TIMEOUT must be a positive integer"
RMQ_BIN=${SSTEST_RABBIT_BIN:-/usr/lib/rabbitmq/bin}
[ -x "$RMQ_BIN/rabbitmq-server" ] || die "$RMQ_BIN/rabbitmq-server not found (is rabbitmq-server installed?)"

mkdir -p "$dir_arg"
DIR=$(cd "$dir_arg" && pwd -P)

NODE_SHORT="sstest${port}"
NODE="${NODE_SHORT}@localhost"
DIST_PORT=$((port + 20000))
PID_FILE="$DIR/${NODE_SHORT}.pid"
LOG_DIR="$DIR/log"
STARTUP_LOG="$LOG_DIR/startup.log"
NODE_LOG="$LOG_DIR/${NODE}.log"

# --------------------------------------------------------------------------
# Environment for the private node and the CLI tools talking to it.
# --------------------------------------------------------------------------
export HOME="$DIR"                      # cookie: $DIR/.erlang.cookie (server and CLI)
export ERL_EPMD_ADDRESS=127.0.0.1       # only matters if we end up starting epmd ourselves
export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
export RABBITMQ_NODENAME="$NODE"
export RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$port"
export RABBITMQ_DIST_PORT="$DIST_PORT"
export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
export RABBITMQ_CONFIG_FILES="$DIR/conf.d/*.conf"
export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
export RABBITMQ_LOG_BASE="$LOG_DIR"
export RABBITMQ_LOGS="$NODE_LOG"
export RABBITMQ_PID_FILE="$PID_FILE"
export RABBITMQ_MOTD_FILE="$DIR/motd"
# Distribution only on loopback; the -sstest_node flag is an inert marker that
# makes the VM easy to spot in `ps` (erl ignores unknown user flags).
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -sstest_node ${NODE}"
# CLI tools (rabbitmqctl/diagnostics) listen on an OS-chosen ephemeral port
# instead of the shared 35672..35682 range.
export RABBITMQ_CTL_DIST_PORT_MIN=0
export RABBITMQ_CTL_DIST_PORT_MAX=0

CTL="$RMQ_BIN/rabbitmqctl"

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
now_ms() { date +%s%3N; }

# alive PID: process exists and is not a zombie
alive() {
    local pid=$1 st
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    st=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# is_our_beam PID: a beam.smp whose environment points at THIS node's pid file
is_our_beam() {
    local pid=$1
    alive "$pid" || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = beam.smp ] || return 1
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_PID_FILE=$PID_FILE"
}

# our_beam_pids: pid from the pid file if it is ours, else scan /proc
our_beam_pids() {
    local pid p
    if [ -s "$PID_FILE" ]; then
        pid=$(tr -dc '0-9' < "$PID_FILE" || true)
        if is_our_beam "$pid"; then echo "$pid"; return 0; fi
    fi
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = beam.smp ] && is_our_beam "$p"; then
            echo "$p"
        fi
    done
}

tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

show_logs() {
    local f
    for f in "$STARTUP_LOG" "$NODE_LOG"; do
        if [ -s "$f" ]; then
            echo "----- last lines of $f -----" >&2
            tail -n 40 "$f" >&2 || true
        fi
    done
}

wait_gone() { # wait_gone SECONDS PID...
    local secs=$1; shift
    local deadline=$(( $(now_ms) + secs * 1000 )) p any
    while :; do
        any=
        for p in "$@"; do alive "$p" && any=1; done
        [ -z "$any" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

hard_kill() {
    local pids
    pids=$(our_beam_pids)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        # shellcheck disable=SC2086
        wait_gone 15 $pids || die "beam process(es) $pids of $NODE still alive after SIGKILL"
    fi
    rm -f "$PID_FILE"
    [ -n "$pids" ] && info "killed $NODE (beam pid $pids)" || info "$NODE was not running"
}

# abort_launch [LAUNCHER_PID]: undo a failed start. SIGKILL the launcher's own
# process group (setsid made it a group leader: sh + erl + beam of this node only),
# then anything still matching this node's pid file.
abort_launch() {
    local launcher=${1:-}
    if [ -n "$launcher" ] && alive "$launcher" \
        && [ "$(sed -e 's/^.*) //' "/proc/$launcher/stat" | cut -d' ' -f3)" = "$launcher" ]; then
        kill -KILL -- "-$launcher" 2>/dev/null || true
    fi
    ( hard_kill ) >/dev/null 2>&1 || true
}

write_node_files() {
    mkdir -p "$LOG_DIR" "$DIR/mnesia" "$DIR/conf.d"
    chmod 700 "$DIR" 2>/dev/null || true
    # Our own (empty) env file, so /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost,
    # ERL_FLAGS, ...) of the shared node is never sourced.
    echo "# private test node $NODE: intentionally empty (settings come from rabbit-node.sh)" \
        > "$DIR/rabbitmq-env.conf"
    # No plugins at all -> no management/prometheus/stream/... listeners.
    echo "[]." > "$DIR/enabled_plugins"
    # Own main config so /etc/rabbitmq/rabbitmq.conf (listeners.tcp.local = 127.0.0.1:5672) is
    # not used. The AMQP listener itself comes from RABBITMQ_NODE_IP_ADDRESS/PORT.
    cat > "$DIR/rabbitmq.conf" <<EOF
# private test node $NODE (generated by rabbit-node.sh)
listeners.ssl = none
loopback_users.guest = true
default_user = guest
default_pass = guest
default_vhost = /
log.console = false
log.file.level = info
EOF
    # Cookie: reuse the shared node's cookie when readable, so the stock
    # `rabbitmqctl -n $NODE ...` (which su's to the rabbitmq user) can talk to this node too;
    # otherwise generate a random one. Either way it lives in DIR (HOME=DIR).
    if [ ! -s "$DIR/.erlang.cookie" ]; then
        local sys_cookie=/var/lib/rabbitmq/.erlang.cookie
        umask 077
        if [ -r "$sys_cookie" ] && [ -s "$sys_cookie" ]; then
            cat "$sys_cookie" > "$DIR/.erlang.cookie"
        else
            tr -dc 'A-Z' < /dev/urandom | head -c 20 > "$DIR/.erlang.cookie"
        fi
        chmod 400 "$DIR/.erlang.cookie"
    fi
}

# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------
do_start() {
    local t0 deadline launcher="" pids remaining
    t0=$(now_ms)
    deadline=$(( t0 + TIMEOUT * 1000 ))

    pids=$(our_beam_pids)
    if [ -n "$pids" ]; then
        info "$NODE already running (beam pid $pids), waiting for it to be ready"
    else
        rm -f "$PID_FILE"
        if tcp_open "$port"; then
            die "127.0.0.1:$port is already in use by another process; cannot start $NODE"
        fi
        if tcp_open "$DIST_PORT"; then
            die "distribution port 127.0.0.1:$DIST_PORT is already in use; cannot start $NODE"
        fi
        write_node_files
        {
            echo "=== $(date '+%F %T') starting $NODE amqp=127.0.0.1:$port dist=$DIST_PORT dir=$DIR"
        } >> "$STARTUP_LOG"
        # Detached: own session, no inherited stdio (so callers capturing our
        # output, e.g. Rust's Command::output(), don't hang on the pipe).
        # Call the real script, NOT /usr/sbin/rabbitmq-server: the Debian wrapper would su to
        # the rabbitmq user and write /var/log/rabbitmq/startup_log of the shared node.
        ( cd "$DIR" && exec setsid "$RMQ_BIN/rabbitmq-server" ) \
            < /dev/null >> "$STARTUP_LOG" 2>&1 &
        launcher=$!
    fi

    # 1) wait for the AMQP port (listeners are opened at the end of boot)
    while ! tcp_open "$port"; do
        if { [ -z "$launcher" ] || ! alive "$launcher"; } && [ -z "$(our_beam_pids)" ]; then
            show_logs
            die "$NODE exited during startup (see $STARTUP_LOG and $NODE_LOG)"
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            show_logs
            info "timeout: 127.0.0.1:$port not accepting connections after ${TIMEOUT}s; killing $NODE"
            abort_launch "$launcher"
            die "$NODE did not start within ${TIMEOUT}s"
        fi
        sleep 0.2
    done

    # 2) confirm with the CLI that the rabbit application is fully up
    remaining=$(( (deadline - $(now_ms)) / 1000 ))
    [ "$remaining" -ge 5 ] || remaining=5
    if ! timeout "$((remaining + 5))" "$CTL" -n "$NODE" -q await_startup -t "$remaining" \
            >> "$STARTUP_LOG" 2>&1; then
        show_logs
        info "rabbitmqctl -n $NODE await_startup failed; killing $NODE"
        abort_launch "$launcher"
        die "$NODE did not become ready within ${TIMEOUT}s"
    fi

    pids=$(our_beam_pids)
    info "started $NODE amqp=127.0.0.1:$port dist=127.0.0.1:$DIST_PORT beam_pid=${pids:-?} dir=$DIR in $(( $(now_ms) - t0 )) ms"
}

do_stop() {
    local t0 pids
    t0=$(now_ms)
    pids=$(our_beam_pids)
    if [ -z "$pids" ]; then
        rm -f "$PID_FILE"
        info "$NODE is not running"
        return 0
    fi
    # Make sure the pid file names the beam we found (rabbitmqctl stop monitors it).
    if [ ! -s "$PID_FILE" ] || [ "$(tr -dc '0-9' < "$PID_FILE")" != "${pids%%[[:space:]]*}" ]; then
        echo "${pids%%[[:space:]]*}" > "$PID_FILE"
    fi
    if ! timeout "$((TIMEOUT + 5))" "$CTL" -n "$NODE" -q stop "$PID_FILE" >> "$STARTUP_LOG" 2>&1; then
        info "rabbitmqctl -n $NODE stop failed; sending SIGTERM to beam pid $pids"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
    fi
    # shellcheck disable=SC2086
    if ! wait_gone "$TIMEOUT" $pids; then
        show_logs
        die "$NODE (beam pid $pids) still running ${TIMEOUT}s after stop"
    fi
    rm -f "$PID_FILE"
    info "stopped $NODE in $(( $(now_ms) - t0 )) ms"
}

case "$cmd" in
    start) do_start ;;
    stop)  do_stop ;;
    kill)  hard_kill ;;
esac
