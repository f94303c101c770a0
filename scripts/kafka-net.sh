# shellcheck shell=bash
# Network faults for scripts/kafka-cluster.sh, which sources this file.
#
# With `start --network` (remembered for `restart`), every broker's PLAINTEXT clients and its
# replication peers reach it through a Toxiproxy proxy (one Toxiproxy server, API on
# 127.0.0.1:BASE+90 = 19182):
#   client-N  127.0.0.1:BASE+N-1    (19092..: what clients connect to, as before)
#             -> the broker's PLAINTEXT listener on BASE+50+N-1 (19142..)
#   peer-N    127.0.0.1:BASE+70+N-1 (19162..: the REPLICATION listener other brokers fetch from)
#             -> the broker's REPLICATION listener on BASE+60+N-1 (19152..)
# `net N apply ...` then shapes node N's links:
#   --links clients|peers|all   whose links (default clients); peers also covers the controller
#                               quorum port for loss and partitions
#   --delay-ms D --jitter-ms J  Toxiproxy latency toxic on the replies (adds D ms to a round trip)
#   --rate-kbps R               Toxiproxy bandwidth toxic, each direction
#   --loss-pct P                iptables: each packet to or from the links' ports dropped with
#                               probability P/100 (real TCP loss: retransmissions, timeouts)
#   --partition                 iptables: every such packet dropped
# One network fault per node at a time (a new one replaces the last); `net N clear` undoes it
# and succeeds when there is nothing to undo; `net clear` clears every node; `stop` clears too.
# This kernel has no sch_netem, hence Toxiproxy for delay and bandwidth. A partition from peers
# drops what the others send to the node (replication fetches, controller requests) and its
# replies, not the connections the node itself opens to them: the node is unreachable from its
# peers, a one-way cut. Loss and partitions need root and iptables; the secured listeners (not
# proxied) are cut too by a clients partition, but not delayed.

TOXIPROXY_VERSION=v2.5.0
TOXIPROXY_BIN="$KAFKA_DIR/bin/toxiproxy-server"
NETWORK_FILE="$CLUSTER_DIR/network.on"
TOXI_PID_FILE="$CLUSTER_DIR/toxiproxy.pid"
TOXI_PORT=$((BASE_PORT + 90))
NETWORK=0

bind_port() { echo $((BASE_PORT + 50 + $1 - 1)); }
repl_bind_port() { echo $((BASE_PORT + 60 + $1 - 1)); }
repl_port() { echo $((BASE_PORT + 70 + $1 - 1)); }
net_chain() { echo "FLEETSTORM-$BASE_PORT-$1"; }

load_network() { if [[ -e $NETWORK_FILE ]]; then NETWORK=1; else NETWORK=0; fi; }

fetch_toxiproxy() {
  [[ -x $TOXIPROXY_BIN ]] && return 0
  command -v go >/dev/null || die "--network needs Toxiproxy: install Go, or put a toxiproxy-server binary at $TOXIPROXY_BIN"
  log "building Toxiproxy $TOXIPROXY_VERSION (go install, from the Go module proxy) ..."
  mkdir -p "$KAFKA_DIR/bin"
  GOBIN="$KAFKA_DIR/bin" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" >&2 \
    || die "go install of Toxiproxy $TOXIPROXY_VERSION failed"
  mv "$KAFKA_DIR/bin/server" "$TOXIPROXY_BIN"
}

toxi() {   # toxi METHOD PATH [JSON]
  local args=(-sS -f -m 10 -X "$1" "http://127.0.0.1:$TOXI_PORT$2")
  [[ -n ${3:-} ]] && args+=(-H 'Content-Type: application/json' -d "$3")
  curl "${args[@]}"
}

toxiproxy_running() {
  local pid
  [[ -s $TOXI_PID_FILE ]] && pid=$(<"$TOXI_PID_FILE") && kill -0 "$pid" 2>/dev/null
}

ensure_proxy() {   # ensure_proxy NAME LISTEN UPSTREAM
  toxi GET "/proxies/$1" >/dev/null 2>&1 && return 0
  toxi POST /proxies "{\"name\":\"$1\",\"listen\":\"127.0.0.1:$2\",\"upstream\":\"127.0.0.1:$3\",\"enabled\":true}" >/dev/null \
    || die "could not create the Toxiproxy proxy $1 (127.0.0.1:$2 -> $3; see $CLUSTER_DIR/toxiproxy.log)"
}

# Before the brokers: clients and peers connect to the proxies from the first request on.
start_network() {
  fetch_toxiproxy
  command -v curl >/dev/null || die "--network needs curl (Toxiproxy's API)"
  if ! toxiproxy_running; then
    port_in_use "$TOXI_PORT" && die "port $TOXI_PORT (Toxiproxy's API) is already in use"
    local n p
    for n in "${NODES[@]}"; do
      for p in "$(client_port "$n")" "$(repl_port "$n")"; do
        port_in_use "$p" && die "port $p (node $n's proxy) is already in use by another process"
      done
    done
    # 9>&-: the server must not inherit the cluster lock's descriptor (take_lock), or it holds
    # the lock for as long as it runs and every later restart, pause or net command waits on it.
    nohup setsid "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXI_PORT" </dev/null >>"$CLUSTER_DIR/toxiproxy.log" 2>&1 9>&- &
    echo $! >"$TOXI_PID_FILE"
    local i
    for ((i = 0; i < 100; i++)); do
      toxi GET /version >/dev/null 2>&1 && break
      sleep 0.1
    done
    toxi GET /version >/dev/null 2>&1 || die "Toxiproxy did not start (see $CLUSTER_DIR/toxiproxy.log)"
  fi
  local n
  for n in "${NODES[@]}"; do
    ensure_proxy "client-$n" "$(client_port "$n")" "$(bind_port "$n")"
    ensure_proxy "peer-$n" "$(repl_port "$n")" "$(repl_bind_port "$n")"
  done
  log "network: Toxiproxy $TOXIPROXY_VERSION (API 127.0.0.1:$TOXI_PORT) in front of every broker's clients and peers"
}

stop_network() {
  net_clear_all
  if toxiproxy_running; then
    kill "$(<"$TOXI_PID_FILE")" 2>/dev/null || true
  fi
  rm -f "$TOXI_PID_FILE"
}

cmd_net() {
  load_modes
  load_network
  if [[ ${1:-} == clear ]]; then
    net_clear_all
    log "network faults cleared on every node"
    return 0
  fi
  check_node_arg "${1:-}"
  local n=$1
  shift
  case ${1:-} in
    clear) net_clear "$n"; log "node $n: network faults cleared" ;;
    apply) shift; net_apply "$n" "$@" ;;
    *) die "usage: net N apply [--links clients|peers|all] [--delay-ms D] [--jitter-ms J] [--loss-pct P] [--rate-kbps R] [--partition] | net N clear | net clear" ;;
  esac
}

net_apply() {
  local n=$1
  shift
  local links=clients delay=0 jitter=0 loss=0 rate=0 partition=0
  while (($#)); do
    case $1 in
      --links) links=${2:-}; shift 2 ;;
      --delay-ms) delay=${2:-}; shift 2 ;;
      --jitter-ms) jitter=${2:-}; shift 2 ;;
      --loss-pct) loss=${2:-}; shift 2 ;;
      --rate-kbps) rate=${2:-}; shift 2 ;;
      --partition) partition=1; shift ;;
      *) die "net apply: unknown argument '$1'" ;;
    esac
  done
  [[ $delay =~ ^[0-9]+$ && $jitter =~ ^[0-9]+$ && $rate =~ ^[0-9]+$ && $loss =~ ^[0-9]+(\.[0-9]+)?$ ]] \
    || die "net apply: --delay-ms, --jitter-ms, --rate-kbps take whole numbers and --loss-pct a number"
  ((NETWORK)) || die "the cluster runs without --network: no proxies to shape (stop it, then start it with --network)"
  toxiproxy_running || die "Toxiproxy is not running (start the cluster again with --network)"
  local proxies=() ports=()
  case $links in
    clients | all)
      proxies+=("client-$n")
      ports+=("$(client_port "$n")")
      has_mode sasl-ssl && ports+=($(($(client_port "$n") + 10)))
      has_mode mtls && ports+=($(($(client_port "$n") + 20)))
      has_mode oauthbearer && ports+=($(($(client_port "$n") + 30)))
      ;;&
    peers | all)
      proxies+=("peer-$n")
      ports+=("$(repl_port "$n")" "$(controller_port "$n")")
      ;;
    clients) ;;
    *) die "--links must be clients, peers or all, not '$links'" ;;
  esac
  # One network fault per node: the new one replaces the last.
  net_clear "$n"
  local p s what=()
  for p in "${proxies[@]}"; do
    if ((delay > 0)); then
      toxi POST "/proxies/$p/toxics" \
        "{\"name\":\"fs-delay\",\"type\":\"latency\",\"stream\":\"downstream\",\"attributes\":{\"latency\":$delay,\"jitter\":$jitter}}" \
        >/dev/null || die "could not add the delay to $p"
    fi
    if ((rate > 0)); then
      for s in upstream downstream; do
        toxi POST "/proxies/$p/toxics" \
          "{\"name\":\"fs-rate-$s\",\"type\":\"bandwidth\",\"stream\":\"$s\",\"attributes\":{\"rate\":$rate}}" \
          >/dev/null || die "could not cap the bandwidth of $p"
      done
    fi
  done
  ((delay > 0)) && what+=("delay ${delay}ms ±${jitter}ms")
  ((rate > 0)) && what+=("bandwidth ${rate} KB/s each way")
  if ((partition)) || [[ $loss != 0 ]]; then
    command -v iptables >/dev/null || die "loss and partitions need iptables (apt install iptables) and root"
    local chain port flag probability
    chain="$(net_chain "$n")"
    probability=$(awk -v p="$loss" 'BEGIN { printf "%.4f", p / 100 }')
    iptables -N "$chain" || die "could not create the iptables chain $chain (root needed)"
    iptables -I INPUT -j "$chain" || die "could not hook $chain into INPUT"
    for port in "${ports[@]}"; do
      for flag in --dport --sport; do
        if ((partition)); then
          iptables -A "$chain" -p tcp "$flag" "$port" -j DROP
        else
          iptables -A "$chain" -p tcp "$flag" "$port" -m statistic --mode random --probability "$probability" -j DROP
        fi
      done
    done
    if ((partition)); then what+=("partitioned (ports ${ports[*]})"); else what+=("loss ${loss}% (ports ${ports[*]})"); fi
  fi
  ((${#what[@]})) || die "net apply: nothing to do (give --delay-ms, --rate-kbps, --loss-pct or --partition)"
  log "node $n ($links): $(IFS=';'; echo "${what[*]}")"
}

net_clear() {
  local n=$1 p t chain
  chain="$(net_chain "$n")"
  if toxiproxy_running; then
    for p in "client-$n" "peer-$n"; do
      for t in fs-delay fs-rate-upstream fs-rate-downstream; do
        toxi DELETE "/proxies/$p/toxics/$t" >/dev/null 2>&1 || true
      done
    done
  fi
  if command -v iptables >/dev/null; then
    while iptables -D INPUT -j "$chain" 2>/dev/null; do :; done
    iptables -F "$chain" 2>/dev/null || true
    iptables -X "$chain" 2>/dev/null || true
  fi
  return 0
}

net_clear_all() {
  local n
  for n in "${NODES[@]}"; do net_clear "$n"; done
}
