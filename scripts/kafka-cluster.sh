#!/usr/bin/env bash
# kafka-cluster.sh - a real 3-node Apache Kafka cluster (KRaft, combined
# broker+controller mode) on 127.0.0.1, run as plain JVM processes. No Docker.
#
# Usage: scripts/kafka-cluster.sh COMMAND [ARGS]
#
#   fetch          download the Kafka jars and the Prometheus JMX exporter agent with Maven
#                  into .kafka/libs/ (idempotent)
#   start [--security MODES] [--no-metrics]
#                  fetch if needed, format storage on first start, start nodes 1..3,
#                  wait until every broker answers and the quorum has 3 voters.
#                  No-op if all three are already running; starts only missing ones.
#                  Every broker runs the Prometheus JMX exporter java agent
#                  (io.prometheus.jmx:jmx_prometheus_javaagent, config scripts/kafka-jmx-exporter.yaml):
#                  metrics at http://127.0.0.1:BASE+40../metrics (19132-19134).
#                  --no-metrics (or FLEETSTORM_KAFKA_METRICS=0) starts them without it;
#                  remembered for `restart` (a later plain `start` of the stopped cluster
#                  turns it back on).
#                  --security (or FLEETSTORM_KAFKA_SECURITY) adds secured client listeners
#                  beside PLAINTEXT: a comma list, `all` or `none`; remembered for `restart`:
#                    sasl-ssl     SCRAM-SHA-512 over TLS   127.0.0.1:BASE+10.. (19102-19104)
#                    mtls         TLS client certificates  127.0.0.1:BASE+20.. (19112-19114)
#                    oauthbearer  SASL OAUTHBEARER checked by Kafka's unsecured-JWT validator
#                                 (for tests only), no TLS 127.0.0.1:BASE+30.. (19122-19124)
#                  The script makes its own CA, broker and client certificates (openssl,
#                  keytool) and random passwords in .kafka/cluster/security/, turns on the
#                  standard ACL authorizer and creates two principals: User:fleet (SCRAM, the
#                  client certificate CN=fleet, or a token with sub=fleet) may use every topic,
#                  group and transactional id; User:limited (SCRAM) may describe and read but
#                  not write or create. PLAINTEXT and the controllers stay open (their
#                  principal, ANONYMOUS, is a super user). Profiles:
#                  profiles/local-kafka-{sasl-ssl,mtls,oauthbearer}.yaml, with `env`'s variables.
#                  --network (or FLEETSTORM_KAFKA_NETWORK=1) puts a Toxiproxy proxy in front of
#                  every broker's PLAINTEXT clients and replication peers (built with
#                  `go install` on first use), so that `net` can shape them; remembered for
#                  `restart`. See scripts/kafka-net.sh for the ports.
#   net N apply [--links clients|peers|all] [--delay-ms D] [--jitter-ms J] [--loss-pct P]
#                  [--rate-kbps R] [--partition]
#                  degrade or cut node N's links (needs --network; loss and partitions need
#                  root and iptables). One fault per node; `net N clear` undoes it (and
#                  succeeds when nothing is applied); `net clear` clears every node.
#   replace N      broker replacement: refuse if a partition is under-replicated or has its only
#                  replica on node N (wiping would lose data; FLEETSTORM_KAFKA_REPLACE_ALLOW_LONE=1
#                  allows the latter, for throwaway test topics), stop node N, wipe its
#                  partition data (the KRaft metadata log, meta.properties and
#                  bootstrap.checkpoint stay, so it rejoins with its id), start it empty and
#                  wait until every partition is fully replicated again.
#   add-broker N   start node N (4..9) as a broker-only node that joins the running cluster
#                  (formatted on first use); no partitions move (see reassign)
#   remove-broker N  move every partition off node N (reassign), stop it; a broker-only node
#                  (4..9) is also unregistered and its data deleted
#   reassign BROKERS [--topics T,...] [--throttle BYTES_PER_S]
#                  spread the partitions of the topics (default: every topic but the internal
#                  ones) over the comma list BROKERS with Kafka's ReassignPartitionsCommand,
#                  throttled if asked, and wait until it completes (the throttle is removed)
#   scale-out N [--topics T,...] [--throttle B]   start node N (add-broker, or restart for
#                  1..3) and reassign the topics over every running broker (without --topics
#                  nothing moves)
#   scale-in N [--topics T,...] [--throttle B]    reassign the topics off node N, then
#                  remove-broker N (without --topics: every topic with a replica on node N)
#                  replace, reassign, scale-out and scale-in print, last, one line
#                  `fleetstorm: completed_s=S bytes_moved=B bytes_source=SOURCE`: the seconds from
#                  the start of the data movement until every partition is fully replicated on
#                  its new replicas, and the bytes moved, from the brokers' ReassignmentBytesIn /
#                  ReplicationBytesIn counters (`metrics`) or the data directories (`log-dirs`).
#   env            print `export` lines: FLEETSTORM_KAFKA_METRICS_URLS (the brokers' metrics
#                  endpoints, comma separated), each node's client and metrics port
#                  (FLEETSTORM_KAFKA_PORT_N, FLEETSTORM_KAFKA_METRICS_PORT_N, as the profiles use
#                  them) and, with --security, the secured listeners
#                  (bootstrap lists, passwords, the certificates' directory):
#                  eval "$(scripts/kafka-cluster.sh env)"
#   stop           SIGTERM the nodes this script started (pid files), wait up to
#                  FLEETSTORM_KAFKA_STOP_TIMEOUT s (30), then SIGKILL
#   status         one line per node; exit 0 if all 3 are up, 1 otherwise
#   kill N         SIGKILL node N (1..3)
#   restart N      start node N again on its existing data, wait until it answers
#   pause N        SIGSTOP node N           resume N    SIGCONT node N
#   wait [N...]    wait until the given nodes (default: all) answer
#   clean          stop, then delete .kafka/cluster (the jars are kept)
#   bootstrap      print the bootstrap list, e.g. 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
#   metrics-urls   print the brokers' metrics endpoints, e.g. http://127.0.0.1:19132/metrics,...
#   tool CLASS ARGS...   run a Kafka tool class with the fetched jars, e.g.
#                  tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(... bootstrap)" --list
#   logs N         print the path of node N's log file
#   -h | --help    this text
#
# Typical test use:
#   scripts/kafka-cluster.sh start && export KAFKA_BOOTSTRAP=$(scripts/kafka-cluster.sh bootstrap)
#
# Environment (all optional):
#   FLEETSTORM_KAFKA_BASE_PORT             first client port (19092); node N uses BASE+N-1
#   FLEETSTORM_KAFKA_CONTROLLER_BASE_PORT  first controller port (BASE_PORT+100 = 19192)
#   FLEETSTORM_KAFKA_HEAP_OPTS             broker heap ("-Xmx512m -Xms256m")
#   FLEETSTORM_KAFKA_JVM_OPTS              extra broker JVM flags
#   FLEETSTORM_KAFKA_METRICS               0 = start the brokers without the JMX exporter agent
#                                          (like --no-metrics), 1 = with it (default)
#   FLEETSTORM_KAFKA_METRICS_BASE_PORT     first metrics port (BASE_PORT+40 = 19132)
#   FLEETSTORM_KAFKA_EXTRA_PROPS           extra server.properties lines (newline separated,
#                                          applied last so they override the defaults)
#   FLEETSTORM_KAFKA_START_TIMEOUT         seconds to wait for readiness (90)
#   FLEETSTORM_KAFKA_STOP_TIMEOUT          seconds to wait for graceful stop (30)
#   FLEETSTORM_KAFKA_LONE_GRACE            seconds the last node still up during `stop` may take
#                                          before SIGKILL; alone it has no quorum (15)
#   FLEETSTORM_KAFKA_DIR                   state dir (<repo>/.kafka); cluster in $DIR/cluster
#   FLEETSTORM_KAFKA_PROBE=tools           readiness via BrokerApiVersionsCommand/MetadataQuorumCommand
#                                          instead of the compiled AdminClient probe (automatic w/o javac)
#
# Layout: .kafka/libs/ (jars + .fetched marker; the exporter agent in .kafka/libs/agent/, off the
# brokers' classpath), .kafka/etc/ (log4j2 configs),
# .kafka/probe/ (readiness checker), .kafka/cluster/cluster.id,
# .kafka/cluster/node-N/{server.properties,data/,server.log,console.log,kafka.pid}.
# .kafka/ ignores itself (.kafka/.gitignore contains '*').
#
# Only processes whose pid file points at a live `java ... kafka.Kafka
# <node-N/server.properties>` are ever signalled. Everything binds 127.0.0.1.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_DIR="${FLEETSTORM_KAFKA_DIR:-$REPO_ROOT/.kafka}"
LIBS_DIR="$KAFKA_DIR/libs"
ETC_DIR="$KAFKA_DIR/etc"
PROBE_DIR="$KAFKA_DIR/probe"
CLUSTER_DIR="$KAFKA_DIR/cluster"
MARKER="$LIBS_DIR/.fetched"
SEC_DIR="$CLUSTER_DIR/security"
SEC_MODES_FILE="$CLUSTER_DIR/security.modes"
# Prometheus JMX exporter java agent (Maven Central), outside the classpath dir's top level.
JMX_AGENT_COORDS="io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1"
AGENT_DIR="$LIBS_DIR/agent"
AGENT_JAR="$AGENT_DIR/jmx_prometheus_javaagent-${JMX_AGENT_COORDS##*:}.jar"
JMX_EXPORTER_CONFIG="$SCRIPT_DIR/kafka-jmx-exporter.yaml"
METRICS_OFF_FILE="$CLUSTER_DIR/metrics.off"
# Series the agent serves (name prefixes; client-library filter): the config's kafka_* ones, the
# exporter's own health, process_* (CPU, RSS, fds) and the cheap JVM ones. The other default
# jvm_* collectors (threads, pools, buffers, classes) would double the CPU cost of a scrape.
METRICS_NAME_PREFIXES="kafka_,jmx_scrape_duration_seconds,jmx_scrape_error,process_,jvm_gc_collection_seconds,jvm_memory_used_bytes"

NODES=(1 2 3)
BASE_PORT="${FLEETSTORM_KAFKA_BASE_PORT:-19092}"
CONTROLLER_BASE_PORT="${FLEETSTORM_KAFKA_CONTROLLER_BASE_PORT:-$((BASE_PORT + 100))}"
METRICS_BASE_PORT="${FLEETSTORM_KAFKA_METRICS_BASE_PORT:-$((BASE_PORT + 40))}"
HEAP_OPTS="${FLEETSTORM_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
EXTRA_JVM_OPTS="${FLEETSTORM_KAFKA_JVM_OPTS:-}"
START_TIMEOUT="${FLEETSTORM_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${FLEETSTORM_KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"
# Short-lived tool JVMs (StorageTool, probe): small heap, C1 only -> faster startup.
TOOL_JVM_OPTS=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

# shellcheck source=scripts/kafka-net.sh
source "$SCRIPT_DIR/kafka-net.sh"

log() { printf 'kafka-cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

[[ $BASE_PORT =~ ^[0-9]+$ && $CONTROLLER_BASE_PORT =~ ^[0-9]+$ && $METRICS_BASE_PORT =~ ^[0-9]+$ ]] \
  || die "ports must be numbers"

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1; }
client_port() { echo $((BASE_PORT + $1 - 1)); }
controller_port() { echo $((CONTROLLER_BASE_PORT + $1 - 1)); }
metrics_port() { echo $((METRICS_BASE_PORT + $1 - 1)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }
node_conf() { echo "$CLUSTER_DIR/node-$1/server.properties"; }
pid_file() { echo "$CLUSTER_DIR/node-$1/kafka.pid"; }

bootstrap_list() {   # bootstrap_list [OFFSET]  (10, 20, 30: the secured listeners)
  local n out=() off=${1:-0}
  for n in "${NODES[@]}"; do out+=("127.0.0.1:$(($(client_port "$n") + off))"); done
  (IFS=,; echo "${out[*]}")
}

metrics_urls() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("http://127.0.0.1:$(metrics_port "$n")/metrics"); done
  (IFS=,; echo "${out[*]}")
}

# METRICS=1 if the brokers run the exporter agent: what `start` last chose (remembered in
# $METRICS_OFF_FILE), unless --[no-]metrics / FLEETSTORM_KAFKA_METRICS say otherwise.
METRICS=1
load_metrics() {
  if [[ -e $METRICS_OFF_FILE ]]; then METRICS=0; else METRICS=1; fi
}
parse_metrics() {   # parse_metrics VALUE
  case ${1,,} in
    0 | off | no | false) METRICS=0 ;;
    1 | on | yes | true) METRICS=1 ;;
    *) die "FLEETSTORM_KAFKA_METRICS must be 0 or 1, got '$1'" ;;
  esac
}

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@127.0.0.1:$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

check_node_arg() {
  [[ ${1:-} =~ ^[1-3]$ ]] || die "expected a node number 1..3, got '${1:-}'"
}

# Nodes 4..9 are broker-only nodes added to the running cluster (add-broker, scale-out).
MAX_NODE=9
check_any_node() {
  [[ ${1:-} =~ ^[1-9]$ ]] || die "expected a node number 1..$MAX_NODE, got '${1:-}'"
}
running_nodes() {   # the nodes (1..9) whose JVM runs now
  local n out=()
  for ((n = 1; n <= MAX_NODE; n++)); do node_pid "$n" >/dev/null && out+=("$n"); done
  echo "${out[*]}"
}

ensure_state_dir() {
  mkdir -p "$KAFKA_DIR"
  [[ -f $KAFKA_DIR/.gitignore ]] || printf '# generated by scripts/kafka-cluster.sh\n*\n' >"$KAFKA_DIR/.gitignore"
}

# Serialise mutating commands (two test runners calling `start` at once).
# fd 9 is closed for every child we spawn so brokers never hold the lock.
take_lock() {
  ensure_state_dir
  exec 9>"$KAFKA_DIR/.lock"
  command -v flock >/dev/null 2>&1 || return 0
  flock -w 300 9 || die "could not lock $KAFKA_DIR/.lock"
}

# ---------------------------------------------------------------- fetch ----

fetch_marker() { echo "kafka_2.13=$(kafka_version) pom-sha256=$(sha256sum "$POM" | cut -d' ' -f1)"; }

libs_ok() {
  [[ -f $MARKER && "$(cat "$MARKER")" == "$(fetch_marker)" ]]
}

cmd_fetch() {
  ensure_state_dir
  if libs_ok; then
    log "jars for Kafka $(kafka_version) already in ${LIBS_DIR#"$REPO_ROOT"/}"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to download the Kafka jars)"
  log "fetching Kafka $(kafka_version) jars with Maven into ${LIBS_DIR#"$REPO_ROOT"/} ..."
  local tmp="$KAFKA_DIR/libs.tmp.$$" t0=$SECONDS
  rm -rf "$tmp"
  # (mvn -q still emits bare ANSI resets; strip them and the empty lines)
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime 9>&- 2>&1 \
      | { sed -e 's/\x1b\[[0-9;]*m//g' | grep -v '^[[:space:]]*$' || true; } >&2; then
    rm -rf "$tmp"
    die "maven failed to download the Kafka jars"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "maven produced no kafka_2.13 jar"; }
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  fetch_marker >"$MARKER"
  rm -rf "$PROBE_DIR/classes"   # recompile the probe against the new jars
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $((SECONDS - t0))s"
}

agent_ok() { [[ -s $AGENT_JAR ]]; }

# The exporter agent, with the same Maven (from ~/.m2 or the configured mirror) into
# .kafka/libs/agent/: a -javaagent jar must not be on the brokers' classpath (libs/*).
fetch_agent() {
  ensure_state_dir
  agent_ok && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to download $JMX_AGENT_COORDS)"
  log "fetching $JMX_AGENT_COORDS with Maven into ${AGENT_DIR#"$REPO_ROOT"/} ..."
  mkdir -p "$LIBS_DIR"
  local tmp="$LIBS_DIR/agent.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy -Dartifact="$JMX_AGENT_COORDS" \
      -DoutputDirectory="$tmp" 9>&- 2>&1 \
      | { sed -e 's/\x1b\[[0-9;]*m//g' | grep -v '^[[:space:]]*$' || true; } >&2; then
    rm -rf "$tmp"
    die "maven failed to download $JMX_AGENT_COORDS (or start with --no-metrics)"
  fi
  [[ -s $tmp/${AGENT_JAR##*/} ]] || { rm -rf "$tmp"; die "maven produced no ${AGENT_JAR##*/}"; }
  rm -rf "$AGENT_DIR"
  mv "$tmp" "$AGENT_DIR"
}

fetch_if_needed() {
  libs_ok || cmd_fetch
  ((METRICS == 0)) || fetch_agent
}

# ------------------------------------------------------- generated files ----

write_log4j_configs() {
  mkdir -p "$ETC_DIR"
  # Brokers: INFO to <node>/server.log (rolled at 50 MB, 3 kept); nothing on the console.
  cat >"$ETC_DIR/broker-log4j2.properties.tmp" <<'EOF'
# generated by scripts/kafka-cluster.sh
status = warn
name = fleetstorm-kafka-broker
# Kafka's own shutdown hook logs until the very end; the file appender flushes
# every line, so log4j's hook is not needed (it only warns at JVM exit).
shutdownHook = disable
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.request.additivity = false
logger.request.appenderRef.file.ref = FILE
EOF
  # Tools (probe, StorageTool, `tool`): WARN (or -Dfleetstorm.log.level) to stderr.
  cat >"$ETC_DIR/tools-log4j2.properties.tmp" <<'EOF'
# generated by scripts/kafka-cluster.sh
status = warn
name = fleetstorm-kafka-tools
shutdownHook = disable
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:fleetstorm.log.level:-WARN}
rootLogger.appenderRef.err.ref = STDERR
EOF
  local f
  for f in broker-log4j2.properties tools-log4j2.properties; do
    if cmp -s "$ETC_DIR/$f.tmp" "$ETC_DIR/$f"; then rm -f "$ETC_DIR/$f.tmp"; else mv "$ETC_DIR/$f.tmp" "$ETC_DIR/$f"; fi
  done
}

write_server_properties() {
  local n=$1 dir conf
  dir="$(node_dir "$n")"
  conf="$(node_conf "$n")"
  mkdir -p "$dir/data"
  {
    echo "# generated by scripts/kafka-cluster.sh on every start; edit FLEETSTORM_KAFKA_EXTRA_PROPS instead"
    if ((n > 3)); then echo "process.roles=broker"; else echo "process.roles=broker,controller"; fi
    echo "node.id=$n"
    echo "controller.quorum.voters=$(voters)"
    local p listeners advertised map inter=PLAINTEXT
    p=$(client_port "$n")
    listeners="PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$(controller_port "$n")"
    advertised="PLAINTEXT://127.0.0.1:$p"
    map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if ((NETWORK)); then
      # Behind the proxies (scripts/kafka-net.sh): bound elsewhere, advertised at the proxy.
      listeners="PLAINTEXT://127.0.0.1:$(bind_port "$n"),REPLICATION://127.0.0.1:$(repl_bind_port "$n"),CONTROLLER://127.0.0.1:$(controller_port "$n")"
      advertised="PLAINTEXT://127.0.0.1:$p,REPLICATION://127.0.0.1:$(repl_port "$n")"
      map="PLAINTEXT:PLAINTEXT,REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT"
      inter=REPLICATION
    fi
    if has_mode sasl-ssl; then
      listeners+=",SASL_SSL://127.0.0.1:$((p + 10))"
      advertised+=",SASL_SSL://127.0.0.1:$((p + 10))"
      map+=",SASL_SSL:SASL_SSL"
    fi
    if has_mode mtls; then
      listeners+=",MTLS://127.0.0.1:$((p + 20))"
      advertised+=",MTLS://127.0.0.1:$((p + 20))"
      map+=",MTLS:SSL"
    fi
    if has_mode oauthbearer; then
      listeners+=",OAUTH://127.0.0.1:$((p + 30))"
      advertised+=",OAUTH://127.0.0.1:$((p + 30))"
      map+=",OAUTH:SASL_PLAINTEXT"
    fi
    # a broker-only node has no controller listener (it reaches the voters as a client)
    ((n <= 3)) || listeners="${listeners/,CONTROLLER:\/\/127.0.0.1:$(controller_port "$n")/}"
    echo "listeners=$listeners"
    echo "advertised.listeners=$advertised"
    echo "listener.security.protocol.map=$map"
    echo "inter.broker.listener.name=$inter"
    echo "controller.listener.names=CONTROLLER"
    echo "log.dirs=$dir/data"
    echo "min.insync.replicas=2"
    echo "default.replication.factor=3"
    echo "offsets.topic.replication.factor=3"
    echo "transaction.state.log.replication.factor=3"
    echo "transaction.state.log.min.isr=2"
    echo "share.coordinator.state.topic.replication.factor=3"
    echo "share.coordinator.state.topic.min.isr=2"
    echo "group.initial.rebalance.delay.ms=0"
    echo "auto.create.topics.enable=false"
    # Topics with a short retention (the benchmark's) are trimmed within a minute, not five.
    echo "log.retention.check.interval.ms=30000"
    security_properties
    if [[ -n ${FLEETSTORM_KAFKA_EXTRA_PROPS:-} ]]; then
      echo "# FLEETSTORM_KAFKA_EXTRA_PROPS"
      printf '%s\n' "$FLEETSTORM_KAFKA_EXTRA_PROPS"
    fi
  } >"$conf.tmp"
  mv "$conf.tmp" "$conf"
}

# A single JVM that polls the cluster through the AdminClient until the given
# brokers answer: each listed broker must be registered+unfenced (DescribeCluster)
# and answer a DescribeConfigs request sent to it directly, and the KRaft quorum
# must have a leader and exactly the 3 static voters, with the listed nodes
# caught up. Exits early if one of the given pids dies.
write_probe() {
  mkdir -p "$PROBE_DIR"
  cat >"$PROBE_DIR/FleetstormKafkaProbe.java.tmp" <<'EOF'
// generated by scripts/kafka-cluster.sh
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.config.ConfigResource;

public class FleetstormKafkaProbe {
  // args: timeoutSeconds bootstrapList votersCsv requiredIdsCsv [pidsCsv]
  public static void main(String[] a) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(a[0]));
    Set<Integer> voters = ids(a[2]);
    Set<Integer> required = ids(a[3]);
    List<Long> pids = new ArrayList<>();
    if (a.length > 4 && !a[4].isEmpty()) for (String p : a[4].split(",")) pids.add(Long.parseLong(p));
    Properties p = new Properties();
    p.put("bootstrap.servers", a[1]);
    p.put("client.id", "fleetstorm-probe");
    p.put("request.timeout.ms", "3000");
    p.put("default.api.timeout.ms", "4000");
    p.put("socket.connection.setup.timeout.ms", "1000");
    p.put("socket.connection.setup.timeout.max.ms", "2000");
    p.put("reconnect.backoff.ms", "100");
    p.put("reconnect.backoff.max.ms", "500");
    p.put("retry.backoff.ms", "100");
    p.put("retry.backoff.max.ms", "500");
    String last = null;
    try (Admin admin = Admin.create(p)) {
      while (true) {
        for (long pid : pids) {
          if (ProcessHandle.of(pid).map(ph -> !ph.isAlive()).orElse(true)) {
            System.err.println("kafka-cluster: process " + pid + " exited while waiting");
            System.exit(2);
          }
        }
        String why;
        try {
          why = check(admin, voters, required);
        } catch (Exception e) {
          Throwable c = e.getCause() != null ? e.getCause() : e;
          why = "no broker answering yet (" + c.getClass().getSimpleName() + ")";
        }
        if (why == null) System.exit(0);
        if (!why.equals(last)) System.err.println("kafka-cluster:   waiting: " + why);
        last = why;
        if (System.nanoTime() > deadline) {
          System.err.println("kafka-cluster: not ready after " + a[0] + "s: " + why);
          System.exit(1);
        }
        Thread.sleep(300);
      }
    }
  }

  static Set<Integer> ids(String csv) {
    Set<Integer> s = new TreeSet<>();
    for (String x : csv.split(",")) if (!x.isEmpty()) s.add(Integer.parseInt(x));
    return s;
  }

  static String check(Admin admin, Set<Integer> voters, Set<Integer> required) throws Exception {
    Set<Integer> up = new TreeSet<>();
    for (Node n : admin.describeCluster().nodes().get(5, TimeUnit.SECONDS)) up.add(n.id());
    Set<Integer> missing = new TreeSet<>(required);
    missing.removeAll(up);
    if (!missing.isEmpty()) return "brokers " + missing + " not registered/unfenced yet (alive: " + up + ")";
    // DescribeConfigs for a BROKER resource is sent to that broker itself.
    Map<Integer, DescribeConfigsResult> asked = new TreeMap<>();
    for (int id : required)
      asked.put(id, admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(id)))));
    for (Map.Entry<Integer, DescribeConfigsResult> e : asked.entrySet()) {
      try {
        e.getValue().all().get(5, TimeUnit.SECONDS);
      } catch (Exception ex) {
        Throwable c = ex.getCause() != null ? ex.getCause() : ex;
        return "broker " + e.getKey() + " does not answer: " + c.getClass().getSimpleName();
      }
    }
    QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get(5, TimeUnit.SECONDS);
    Set<Integer> vs = new TreeSet<>();
    long leaderLeo = -1;
    for (QuorumInfo.ReplicaState r : q.voters()) {
      vs.add(r.replicaId());
      if (r.replicaId() == q.leaderId()) leaderLeo = r.logEndOffset();
    }
    if (!vs.equals(voters)) return "quorum voters " + vs + ", expected " + voters;
    if (q.leaderId() < 0 || !vs.contains(q.leaderId())) return "quorum has no leader";
    for (QuorumInfo.ReplicaState r : q.voters()) {
      if (required.contains(r.replicaId()) && r.replicaId() != q.leaderId()
          && (r.logEndOffset() < 0 || leaderLeo - r.logEndOffset() > 100))
        return "controller " + r.replicaId() + " not caught up (LEO " + r.logEndOffset() + " vs leader " + leaderLeo + ")";
    }
    System.err.println("kafka-cluster: ready: brokers " + up + " answering, quorum voters " + vs
        + ", leader " + q.leaderId() + ", epoch " + q.leaderEpoch());
    return null;
  }
}
EOF
  if cmp -s "$PROBE_DIR/FleetstormKafkaProbe.java.tmp" "$PROBE_DIR/FleetstormKafkaProbe.java" \
      && [[ -f $PROBE_DIR/classes/FleetstormKafkaProbe.class ]]; then
    rm -f "$PROBE_DIR/FleetstormKafkaProbe.java.tmp"
    return 0
  fi
  mv "$PROBE_DIR/FleetstormKafkaProbe.java.tmp" "$PROBE_DIR/FleetstormKafkaProbe.java"
  rm -rf "$PROBE_DIR/classes"
  command -v javac >/dev/null 2>&1 || return 0   # falls back to the tool classes
  mkdir -p "$PROBE_DIR/classes"
  javac -nowarn -d "$PROBE_DIR/classes" -cp "$LIBS_DIR/*" "$PROBE_DIR/FleetstormKafkaProbe.java" 9>&- >&2 \
    || { rm -rf "$PROBE_DIR/classes"; log "warning: could not compile the readiness probe; using the slower tool classes"; }
}

prepare() {
  fetch_if_needed
  write_log4j_configs
  write_probe
}

# ------------------------------------------------------------- processes ----

# Prints the pid of node N if its pid file names a live java process running
# kafka.Kafka with exactly this node's server.properties; fails otherwise.
node_pid() {
  local n=$1 f pid state args=()
  f="$(pid_file "$n")"
  [[ -f $f ]] || return 1
  pid="$(<"$f")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  mapfile -d '' args <"/proc/$pid/cmdline" 2>/dev/null || return 1
  ((${#args[@]} >= 3)) || return 1
  [[ ${args[0]##*/} == java ]] || return 1
  [[ ${args[-2]} == kafka.Kafka && ${args[-1]} == "$(node_conf "$n")" ]] || return 1
  state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" || return 1
  [[ -n $state && $state != Z && $state != X ]] || return 1
  echo "$pid"
}

node_state() {   # running | paused | stopped
  local pid
  if pid="$(node_pid "$1")"; then
    if [[ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" == T ]]; then
      echo paused
    else
      echo running
    fi
  else
    echo stopped
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_tool() {   # java_tool [JVM-FLAGS] CLASS ARGS...  (quiet logging; classpath $TOOL_CP or the jars)
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$ETC_DIR/tools-log4j2.properties" \
    -cp "${TOOL_CP:-$LIBS_DIR/*}" "$@" 9>&-
}

cluster_id() {
  local f="$CLUSTER_DIR/cluster.id" id n meta
  if [[ -s $f ]]; then cat "$f"; return 0; fi
  mkdir -p "$CLUSTER_DIR"
  # Data from an earlier run without cluster.id? Reuse its id.
  for n in "${NODES[@]}"; do
    meta="$(node_dir "$n")/data/meta.properties"
    if [[ -f $meta ]]; then
      id="$(sed -n 's/^cluster\.id=//p' "$meta")"
      [[ -n $id ]] && { echo "$id" >"$f"; echo "$id"; return 0; }
    fi
  done
  id="$(java_tool kafka.tools.StorageTool random-uuid | tail -n1 | tr -d '[:space:]')"
  [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid returned '$id'"
  echo "$id" >"$f"
  log "generated cluster id $id"
  echo "$id"
}

is_formatted() { [[ -f "$(node_dir "$1")/data/meta.properties" ]]; }

format_nodes() {   # format_nodes ID N...  (in parallel; static voters => no --standalone etc.)
  local id=$1 n i pids=() rc=0
  shift
  local nodes=("$@")
  for n in "${nodes[@]}"; do
    log "formatting node $n storage"
    java_tool kafka.tools.StorageTool format -t "$id" -c "$(node_conf "$n")" \
      >"$(node_dir "$n")/format.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      rc=1
      log "format failed for node ${nodes[$i]}:"
      sed 's/^/    /' "$(node_dir "${nodes[$i]}")/format.log" >&2
    fi
  done
  return $rc
}

launch_node() {
  local n=$1 dir conf pf i
  dir="$(node_dir "$n")"
  conf="$(node_conf "$n")"
  pf="$(pid_file "$n")"
  rm -f "$pf"
  local heap=() extra=()
  read -r -a heap <<<"$HEAP_OPTS"
  read -r -a extra <<<"$EXTRA_JVM_OPTS"
  local jvm=(
    "$JAVA" "${heap[@]}"
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true
    -Dkafka.logs.dir="$dir"
    -Dlog4j2.configurationFile="$ETC_DIR/broker-log4j2.properties"
  )
  if ((METRICS)); then
    [[ -f $JMX_EXPORTER_CONFIG ]] || die "no exporter config $JMX_EXPORTER_CONFIG"
    # before the user's flags, so FLEETSTORM_KAFKA_JVM_OPTS can override the name filter
    jvm+=(
      "-Dio.prometheus.exporter.filter.metricNameMustStartWith=$METRICS_NAME_PREFIXES"
      "-javaagent:$AGENT_JAR=127.0.0.1:$(metrics_port "$n"):$JMX_EXPORTER_CONFIG"
    )
  fi
  jvm+=(
    "${extra[@]}"
    -cp "$LIBS_DIR/*"
    kafka.Kafka "$conf"
  )
  {
    echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting node $n"
  } >>"$dir/console.log"
  # The child writes its own pid and then execs java, so the pid file always
  # holds the java pid; setsid detaches it from our session/terminal.
  # shellcheck disable=SC2016  # $$ / $1 / $@ are for the inner shell
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' fleetstorm-kafka "$pf" "${jvm[@]}" \
    </dev/null >>"$dir/console.log" 2>&1 9>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s $pf ]] && break
    sleep 0.1
  done
  [[ -s $pf ]] || die "node $n did not start (see $dir/console.log)"
}

show_log_tails() {
  local n dir
  for n in "$@"; do
    dir="$(node_dir "$n")"
    log "---- node $n ($(node_state "$n")) tail of $dir/server.log"
    tail -n 12 "$dir/server.log" 2>/dev/null | cut -c1-300 | sed 's/^/    /' >&2 || true
    if [[ -s $dir/console.log ]]; then
      log "---- node $n tail of $dir/console.log"
      tail -n 8 "$dir/console.log" | cut -c1-300 | sed 's/^/    /' >&2
    fi
  done
}

# wait_ready TIMEOUT N...  : the given nodes answer; quorum has the 3 voters.
wait_ready() {
  local timeout=$1 n pids=() pid
  shift
  for n in "$@"; do
    pid="$(node_pid "$n")" || { log "node $n is not running"; show_log_tails "$n"; return 1; }
    pids+=("$pid")
  done
  local req pidcsv
  req="$(IFS=,; echo "$*")"
  pidcsv="$(IFS=,; echo "${pids[*]}")"
  if [[ -f $PROBE_DIR/classes/FleetstormKafkaProbe.class && ${FLEETSTORM_KAFKA_PROBE:-} != tools ]]; then
    if TOOL_CP="$PROBE_DIR/classes:$LIBS_DIR/*" java_tool -Dfleetstorm.log.level=OFF FleetstormKafkaProbe \
        "$timeout" "$(bootstrap_list)" "$(IFS=,; echo "${NODES[*]}")" "$req" "$pidcsv"; then
      return 0
    fi
  else
    wait_ready_tools "$timeout" "$@" && return 0
  fi
  log "not ready; recent logs:"
  show_log_tails "$@"
  return 1
}

# Fallback without javac: BrokerApiVersionsCommand + MetadataQuorumCommand (2 JVMs per try).
wait_ready_tools() {
  local timeout=$1 end n ok out
  shift
  end=$((SECONDS + timeout))
  while ((SECONDS < end)); do
    ok=1
    out="$(java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.BrokerApiVersionsCommand \
      --bootstrap-server "$(bootstrap_list)" 2>/dev/null || true)"
    for n in "$@"; do
      grep -q "127.0.0.1:$(client_port "$n") (id: $n rack: .*) -> (" <<<"$out" || ok=0
    done
    if ((ok)); then
      out="$(java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.MetadataQuorumCommand \
        --bootstrap-server "$(bootstrap_list)" describe --status 2>/dev/null || true)"
      if grep -Eq '^CurrentVoters:[[:space:]]*\[.*"id": ?1.*"id": ?2.*"id": ?3' <<<"$out" \
          || grep -Eq '^CurrentVoters:[[:space:]]*\[1,2,3\]' <<<"$out"; then
        log "ready: brokers $* answering, quorum has 3 voters"
        return 0
      fi
    fi
    sleep 1
  done
  return 1
}


# ------------------------------------------------------------- security ----

# The secured listeners this cluster runs with (from `start --security`).
SEC_MODES=()
load_modes() {
  SEC_MODES=()
  [[ -s $SEC_MODES_FILE ]] || return 0
  local m
  while read -r m; do [[ -n $m ]] && SEC_MODES+=("$m"); done <"$SEC_MODES_FILE"
  return 0
}
has_mode() { local m; for m in "${SEC_MODES[@]}"; do [[ $m == "$1" ]] && return 0; done; return 1; }

parse_modes() {   # parse_modes SPEC -> SEC_MODES
  local spec=$1 m out=() parts=()
  [[ $spec == all ]] && spec="sasl-ssl,mtls,oauthbearer"
  IFS=, read -r -a parts <<<"$spec"
  for m in "${parts[@]}"; do
    case $m in
      sasl-ssl | mtls | oauthbearer) out+=("$m") ;;
      none | "") ;;
      *) die "unknown security mode '$m' (sasl-ssl, mtls, oauthbearer, all or none)" ;;
    esac
  done
  SEC_MODES=("${out[@]}")
}

sec_secret() {   # sec_secret NAME: a random secret kept in the security dir
  local f="$SEC_DIR/$1.secret"
  mkdir -p "$SEC_DIR"
  chmod 700 "$SEC_DIR"
  [[ -s $f ]] || (umask 077; openssl rand -hex 16 >"$f")
  cat "$f"
}

# The CA, the brokers' certificate (one for all three: SAN IP 127.0.0.1), the client
# certificate of User:fleet, and a rogue CA with a client certificate of its own (the brokers
# must refuse it; a client that trusts only the rogue CA must refuse the brokers).
make_certificates() {
  [[ -s $SEC_DIR/truststore.p12 && -s $SEC_DIR/client-rogue.crt ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for --security)"
  command -v keytool >/dev/null 2>&1 || die "keytool not found (needed for --security)"
  local d=$SEC_DIR store
  store="$(sec_secret store)"
  (
    set -e
    cd "$d"
    umask 077
    for ca in ca rogue-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=fleetstorm-local-$ca" \
        -keyout "$ca.key" -out "$ca.crt" 2>/dev/null
    done
    sign() {   # sign NAME CA SUBJECT [EXT]
      openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf '%s\n' "${4:-basicConstraints=CA:FALSE}" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign broker ca "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost"
    sign client-fleet ca "/CN=fleet"
    sign client-rogue rogue-ca "/CN=fleet"
    openssl pkcs12 -export -name broker -in broker.crt -inkey broker.key -certfile ca.crt \
      -passout "pass:$store" -out broker.p12
    rm -f truststore.p12
    keytool -importcert -noprompt -alias ca -file ca.crt -keystore truststore.p12 \
      -storetype PKCS12 -storepass "$store" >/dev/null 2>&1
    chmod 644 ./*.crt
  ) || die "could not make the certificates in $d"
  [[ -s $d/truststore.p12 ]] || die "keytool made no truststore in $d"
  log "made a CA, broker and client certificates in ${d#"$REPO_ROOT"/}"
}

security_properties() {
  ((${#SEC_MODES[@]})) || return 0
  local store
  store="$(sec_secret store)"
  echo "# --security ${SEC_MODES[*]}"
  echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  echo "super.users=User:ANONYMOUS;User:admin"
  echo "allow.everyone.if.no.acl.found=false"
  if has_mode sasl-ssl || has_mode mtls; then
    echo "ssl.keystore.type=PKCS12"
    echo "ssl.keystore.location=$SEC_DIR/broker.p12"
    echo "ssl.keystore.password=$store"
    echo "ssl.key.password=$store"
    echo "ssl.truststore.type=PKCS12"
    echo "ssl.truststore.location=$SEC_DIR/truststore.p12"
    echo "ssl.truststore.password=$store"
  fi
  if has_mode sasl-ssl; then
    echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512"
    echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  fi
  if has_mode mtls; then
    echo "listener.name.mtls.ssl.client.auth=required"
    echo 'ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9._-]+).*$/$1/,DEFAULT'
  fi
  if has_mode oauthbearer; then
    echo "listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER"
    echo 'listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredValidatorAllowableClockSkewMs="3000";'
  fi
}

# Principals and ACLs through the PLAINTEXT listener (its principal is a super user), in one JVM.
write_security_tool() {
  mkdir -p "$PROBE_DIR"
  cat >"$PROBE_DIR/FleetstormKafkaSecurity.java.tmp" <<'JAVA'
// generated by scripts/kafka-cluster.sh
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.resource.*;

public class FleetstormKafkaSecurity {
  // args: bootstrap fleetPassword limitedPassword
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", a[0]);
    p.put("client.id", "fleetstorm-security");
    try (Admin admin = Admin.create(p)) {
      ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192);
      admin.alterUserScramCredentials(List.of(
          new UserScramCredentialUpsertion("fleet", info, a[1]),
          new UserScramCredentialUpsertion("limited", info, a[2]))).all().get(30, TimeUnit.SECONDS);
      List<AclBinding> acls = new ArrayList<>();
      String fleet = "User:fleet", limited = "User:limited";
      for (ResourceType t : List.of(ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID))
        acls.add(allow(t, "*", fleet, AclOperation.ALL));
      for (AclOperation op : List.of(AclOperation.IDEMPOTENT_WRITE, AclOperation.CREATE, AclOperation.DESCRIBE,
          AclOperation.DESCRIBE_CONFIGS))
        acls.add(allow(ResourceType.CLUSTER, "kafka-cluster", fleet, op));
      for (AclOperation op : List.of(AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS))
        acls.add(allow(ResourceType.TOPIC, "*", limited, op));
      for (AclOperation op : List.of(AclOperation.READ, AclOperation.DESCRIBE))
        acls.add(allow(ResourceType.GROUP, "*", limited, op));
      acls.add(allow(ResourceType.CLUSTER, "kafka-cluster", limited, AclOperation.DESCRIBE));
      admin.createAcls(acls).all().get(30, TimeUnit.SECONDS);
      // Every broker must know the credentials before a client tries them.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (true) {
        Map<String, UserScramCredentialsDescription> d =
            admin.describeUserScramCredentials(List.of("fleet", "limited")).all().get(10, TimeUnit.SECONDS);
        if (d.size() == 2) break;
        if (System.nanoTime() > deadline) throw new IllegalStateException("SCRAM users not visible");
        Thread.sleep(200);
      }
    }
    System.err.println("kafka-cluster: principals User:fleet and User:limited and their ACLs are in place");
  }

  static AclBinding allow(ResourceType t, String name, String principal, AclOperation op) {
    return new AclBinding(new ResourcePattern(t, name, PatternType.LITERAL),
        new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW));
  }
}
JAVA
  if cmp -s "$PROBE_DIR/FleetstormKafkaSecurity.java.tmp" "$PROBE_DIR/FleetstormKafkaSecurity.java" \
      && [[ -f $PROBE_DIR/security-classes/FleetstormKafkaSecurity.class ]]; then
    rm -f "$PROBE_DIR/FleetstormKafkaSecurity.java.tmp"
    return 0
  fi
  mv "$PROBE_DIR/FleetstormKafkaSecurity.java.tmp" "$PROBE_DIR/FleetstormKafkaSecurity.java"
  rm -rf "$PROBE_DIR/security-classes"
  command -v javac >/dev/null 2>&1 || die "javac not found (needed for --security)"
  mkdir -p "$PROBE_DIR/security-classes"
  javac -nowarn -d "$PROBE_DIR/security-classes" -cp "$LIBS_DIR/*" "$PROBE_DIR/FleetstormKafkaSecurity.java" 9>&- >&2 \
    || { rm -rf "$PROBE_DIR/security-classes"; die "could not compile the security tool"; }
}

create_principals() {
  ((${#SEC_MODES[@]})) || return 0
  write_security_tool
  TOOL_CP="$PROBE_DIR/security-classes:$LIBS_DIR/*" java_tool -Dfleetstorm.log.level=OFF FleetstormKafkaSecurity \
    "$(bootstrap_list)" "$(sec_secret fleet)" "$(sec_secret limited)" || die "could not create the principals and ACLs"
}

cmd_env() {
  load_modes
  load_metrics
  local n
  for n in "${NODES[@]}"; do
    echo "export FLEETSTORM_KAFKA_PORT_$n=$(client_port "$n")"
    ((METRICS)) && echo "export FLEETSTORM_KAFKA_METRICS_PORT_$n=$(metrics_port "$n")"
  done
  ((METRICS)) && echo "export FLEETSTORM_KAFKA_METRICS_URLS=$(metrics_urls)"
  if ((${#SEC_MODES[@]} == 0)); then
    ((METRICS)) && return 0
    die "the cluster was not started with --security (and runs without the metrics agent)"
  fi
  echo "export FLEETSTORM_KAFKA_SECURITY_DIR=$SEC_DIR"
  if has_mode sasl-ssl; then echo "export FLEETSTORM_KAFKA_SASL_SSL_BOOTSTRAP=$(bootstrap_list 10)"; fi
  if has_mode mtls; then echo "export FLEETSTORM_KAFKA_MTLS_BOOTSTRAP=$(bootstrap_list 20)"; fi
  if has_mode oauthbearer; then echo "export FLEETSTORM_KAFKA_OAUTH_BOOTSTRAP=$(bootstrap_list 30)"; fi
  echo "export FLEETSTORM_KAFKA_SASL_USERNAME=fleet"
  echo "export FLEETSTORM_KAFKA_SASL_PASSWORD=$(sec_secret fleet)"
  echo "export FLEETSTORM_KAFKA_LIMITED_PASSWORD=$(sec_secret limited)"
}

# --------------------------------------------------------------- commands ----

cmd_start() {
  local spec=${FLEETSTORM_KAFKA_SECURITY:-} metrics_spec=${FLEETSTORM_KAFKA_METRICS:-}
  local network_spec=${FLEETSTORM_KAFKA_NETWORK:-}
  while (($#)); do
    case $1 in
      --network) network_spec=1; shift ;;
      --no-network) network_spec=0; shift ;;
      --security) spec=${2:-}; [[ -n $spec ]] || die "--security needs a mode"; shift 2 ;;
      --security=*) spec=${1#--security=}; shift ;;
      --no-metrics) metrics_spec=0; shift ;;
      --metrics) metrics_spec=1; shift ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  take_lock
  load_modes
  load_metrics
  load_network
  local before="${SEC_MODES[*]}" metrics_before=$METRICS network_before=$NETWORK
  if [[ -n $spec ]]; then parse_modes "$spec"; fi
  if [[ -n $metrics_spec ]]; then parse_metrics "$metrics_spec"; fi
  local n todo=() unformatted=() t0=$SECONDS
  local paused=()
  for n in "${NODES[@]}"; do
    case "$(node_state "$n")" in
      stopped) todo+=("$n") ;;
      paused) paused+=("$n") ;;
    esac
  done
  if ((${#todo[@]} < ${#NODES[@]})) && [[ "${SEC_MODES[*]}" != "$before" ]]; then
    die "the cluster is running with security '${before:-none}'; stop it before starting it with '${SEC_MODES[*]:-none}'"
  fi
  # Without --[no-]metrics / FLEETSTORM_KAFKA_METRICS: nodes joining running ones follow them,
  # a cluster started from scratch gets the agent.
  if [[ -z $metrics_spec ]] && ((${#todo[@]} == ${#NODES[@]})); then METRICS=1; fi
  if ((${#todo[@]} < ${#NODES[@]} && METRICS != metrics_before)); then
    die "the cluster is running $( ((metrics_before)) && echo with || echo without) the metrics agent; stop it before starting it $( ((METRICS)) && echo with || echo without)"
  fi
  case ${network_spec,,} in
    "") ((${#todo[@]} < ${#NODES[@]})) || NETWORK=0 ;;
    1 | on | yes | true) NETWORK=1 ;;
    0 | off | no | false) NETWORK=0 ;;
    *) die "FLEETSTORM_KAFKA_NETWORK must be 0 or 1, got '$network_spec'" ;;
  esac
  if ((${#todo[@]} < ${#NODES[@]} && NETWORK != network_before)); then
    die "the cluster is running $( ((network_before)) && echo with || echo without) --network; stop it before starting it $( ((NETWORK)) && echo with || echo without)"
  fi
  if ((${#todo[@]} == 0 && ${#paused[@]} == 0)); then
    log "cluster already running ($(bootstrap_list)$( ((METRICS)) && echo "; metrics $(metrics_urls)"))"
    return 0
  fi
  ((${#paused[@]} == 0)) || die "node(s) ${paused[*]} paused (SIGSTOP); run 'resume N' first"
  prepare
  mkdir -p "$CLUSTER_DIR"
  if ((${#SEC_MODES[@]})); then
    printf '%s\n' "${SEC_MODES[@]}" >"$SEC_MODES_FILE"
    make_certificates
  else
    rm -f "$SEC_MODES_FILE"
  fi
  if ((METRICS)); then rm -f "$METRICS_OFF_FILE"; else : >"$METRICS_OFF_FILE"; fi
  if ((NETWORK)); then : >"$NETWORK_FILE"; else rm -f "$NETWORK_FILE"; fi
  for n in "${todo[@]}"; do check_ports_free "$n"; done
  ((NETWORK == 0)) || start_network
  local id
  id="$(cluster_id)"
  for n in "${todo[@]}"; do
    write_server_properties "$n"
    is_formatted "$n" || unformatted+=("$n")
  done
  if ((${#unformatted[@]})); then
    format_nodes "$id" "${unformatted[@]}" || die "storage format failed"
  fi
  for n in "${todo[@]}"; do
    launch_node "$n"
    log "started node $n (pid $(<"$(pid_file "$n")"), 127.0.0.1:$(client_port "$n"), controller :$(controller_port "$n")$( ((METRICS)) && echo ", metrics :$(metrics_port "$n")"))"
  done
  log "waiting up to ${START_TIMEOUT}s for brokers ${NODES[*]} and the KRaft quorum ..."
  wait_ready "$START_TIMEOUT" "${NODES[@]}" || die "cluster failed to start (see above)"
  ((METRICS == 0)) || wait_metrics "${NODES[@]}"
  create_principals
  log "cluster up in $((SECONDS - t0))s: $(bootstrap_list)${SEC_MODES[*]:+ (security: ${SEC_MODES[*]})}"
  if ((METRICS)); then
    log "metrics (Prometheus JMX exporter): $(metrics_urls)"
  else
    log "metrics: off (--no-metrics)"
  fi
}

check_ports_free() {   # check_ports_free N: die if one of node N's ports is taken
  local n=$1 p ports=("$(client_port "$1")" "$(controller_port "$1")")
  # Behind proxies, the client port is the proxy's (it stays up while the broker is down).
  ((NETWORK == 0)) || ports=("$(bind_port "$n")" "$(repl_bind_port "$n")" "$(controller_port "$n")")
  ((METRICS == 0)) || ports+=("$(metrics_port "$n")")
  for p in "${ports[@]}"; do
    port_in_use "$p" && die "port $p (node $n) is already in use by another process"
  done
  return 0
}

# The agent serves HTTP from premain, before Kafka starts, so by the time the broker answers
# its endpoint does too; a failed agent exits the JVM. Check anyway, briefly, with bash only.
wait_metrics() {
  local n i p ok
  for n in "$@"; do
    p=$(metrics_port "$n")
    ok=0
    for ((i = 0; i < 50; i++)); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p" && printf 'GET /metrics?name[]=jmx_scrape_error HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 \
          && head -n1 <&3 | grep -q ' 200') 2>/dev/null; then
        ok=1
        break
      fi
      sleep 0.2
    done
    ((ok)) || log "warning: node $n's metrics endpoint http://127.0.0.1:$p/metrics does not answer (see $(node_dir "$n")/console.log)"
  done
}

cmd_restart() {
  check_node_arg "${1:-}"
  local n=$1 t0=$SECONDS
  take_lock
  load_modes
  load_metrics
  load_network
  prepare
  if [[ "$(node_state "$n")" != stopped ]]; then
    log "node $n is already running (pid $(node_pid "$n")); waiting until it answers"
  else
    is_formatted "$n" || die "node $n has no formatted data; use 'start' for a fresh cluster"
    check_ports_free "$n"
    write_server_properties "$n"
    launch_node "$n"
    log "restarted node $n (pid $(<"$(pid_file "$n")")), waiting up to ${START_TIMEOUT}s ..."
  fi
  wait_ready "$START_TIMEOUT" "$n" || die "node $n did not come back (see above)"
  ((METRICS == 0)) || wait_metrics "$n"
  log "node $n answering after $((SECONDS - t0))s$( ((METRICS)) && echo "; metrics http://127.0.0.1:$(metrics_port "$n")/metrics")"
}

cmd_wait() {
  local ids=("$@") n
  ((${#ids[@]})) || ids=("${NODES[@]}")
  for n in "${ids[@]}"; do check_node_arg "$n"; done
  load_metrics
  prepare
  wait_ready "$START_TIMEOUT" "${ids[@]}"
}

cmd_stop() {
  take_lock
  local n pid pids=() ids=() end
  # 1..3 and the broker-only nodes that add-broker / scale-out started
  for ((n = 1; n <= MAX_NODE; n++)); do
    if pid="$(node_pid "$n")"; then
      pids+=("$pid")
      ids+=("$n")
    else
      rm -f "$(pid_file "$n")"
    fi
  done
  if ((${#pids[@]} == 0)); then
    stop_network
    log "no nodes running"
    return 0
  fi
  log "stopping nodes ${ids[*]} (SIGTERM) ..."
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true   # in case it was paused
  done
  end=$((SECONDS + STOP_TIMEOUT))
  # A node whose broker is still in controlled shutdown when the other two
  # controllers are gone can never get it approved (no quorum) and would hang
  # for Kafka's 5-minute timeout. A healthy last node needs ~5 s (its Raft
  # client's graceful-shutdown timeout), so once a node is the last one up it
  # gets FLEETSTORM_KAFKA_LONE_GRACE (15) seconds, then SIGKILL.
  local alive lone_since=-1 lone_grace=${FLEETSTORM_KAFKA_LONE_GRACE:-15} killed=0 kill_now
  while :; do
    alive=()
    for n in "${ids[@]}"; do node_pid "$n" >/dev/null && alive+=("$n"); done
    ((${#alive[@]} == 0)) && break
    if ((killed)); then
      if ((SECONDS >= end)); then log "warning: nodes ${alive[*]} survived SIGKILL"; break; fi
      sleep 0.2
      continue
    fi
    kill_now=0
    if ((${#alive[@]} == 1 && lone_since < 0)); then lone_since=$SECONDS; fi
    if ((lone_since >= 0 && SECONDS - lone_since >= lone_grace)); then
      log "node ${alive[0]} is the last node up and cannot finish its controlled shutdown without a quorum; sending SIGKILL"
      kill_now=1
    elif ((SECONDS >= end)); then
      log "nodes ${alive[*]} still up after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill_now=1
    fi
    if ((kill_now)); then
      for n in "${alive[@]}"; do
        if pid="$(node_pid "$n")"; then kill -KILL "$pid" 2>/dev/null || true; fi
      done
      killed=1
      end=$((SECONDS + 10))
    fi
    sleep 0.2
  done
  for n in "${ids[@]}"; do rm -f "$(pid_file "$n")"; done
  # The JVMs were re-parented to init, which may reap them a moment later;
  # give it up to 5 s so "no java left" checks right after stop are reliable.
  local i
  for ((i = 0; i < 25; i++)); do
    alive=()
    for pid in "${pids[@]}"; do [[ -e /proc/$pid ]] && alive+=("$pid"); done
    ((${#alive[@]} == 0)) && break
    sleep 0.2
  done
  stop_network
  log "stopped"
}

cmd_signal() {   # cmd_signal SIGNAL VERB N
  local sig=$1 verb=$2 n=${3:-} pid
  check_node_arg "$n"
  take_lock
  pid="$(node_pid "$n")" || die "node $n is not running"
  kill -"$sig" "$pid"
  if [[ $sig == KILL ]]; then
    local i
    for ((i = 0; i < 50; i++)); do node_pid "$n" >/dev/null || break; sleep 0.1; done
    rm -f "$(pid_file "$n")"
  fi
  log "$verb node $n (pid $pid)"
}

cmd_status() {
  local n st pid up=0
  for n in "${NODES[@]}"; do
    st="$(node_state "$n")"
    pid="$(node_pid "$n" || echo -)"
    printf 'node %s  %-8s pid %-8s client 127.0.0.1:%s  controller 127.0.0.1:%s\n' \
      "$n" "$st" "$pid" "$(client_port "$n")" "$(controller_port "$n")"
    [[ $st == running ]] && up=$((up + 1))
  done
  ((up == ${#NODES[@]}))
}

cmd_clean() {
  cmd_stop
  # Nothing of ours may still be running on these data dirs.
  local n
  for n in "${NODES[@]}"; do
    node_pid "$n" >/dev/null && die "node $n still running; not deleting"
  done
  rm -rf "$CLUSTER_DIR"
  log "deleted ${CLUSTER_DIR#"$REPO_ROOT"/} (jars kept)"
}

cmd_tool() {
  (($#)) || die "usage: tool CLASS [ARGS...]"
  load_metrics
  prepare >&2
  # full JIT here: `tool` may run load generators such as ProducerPerformance
  TOOL_JVM_OPTS=(-Xmx512m -Djava.awt.headless=true)
  java_tool "$@"
}

# ------------------------------------------------ replacement and movement ----

now_s() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }'; }

# metric_sum NAME NODE...: the sum of a series over the nodes' metrics endpoints; fails if one
# does not answer.
metric_sum() {
  local name=$1 n total=0 v
  shift
  for n in "$@"; do
    v=$(curl -sf -m 3 "http://127.0.0.1:$(metrics_port "$n")/metrics?name[]=$name" \
      | awk -v m="$name" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }') || return 1
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The partitions under-replicated now, cluster-wide: the leaders' gauges when the brokers run the
# exporter (cheap, polled), else Kafka's TopicCommand (a JVM per call).
urp_count() {
  local nodes
  read -r -a nodes <<<"$(running_nodes)"
  if ((METRICS)) && metric_sum kafka_server_replicamanager_underreplicatedpartitions "${nodes[@]}"; then
    return 0
  fi
  java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list)" \
    --describe --under-replicated-partitions 2>/dev/null | grep -c 'Partition:' || true
}

# wait_in_sync TIMEOUT: until no partition is under-replicated (checked twice, 1 s apart).
wait_in_sync() {
  local end=$((SECONDS + $1)) urp ok=0
  while ((SECONDS < end)); do
    urp=$(urp_count || echo 1)
    if [[ $urp == 0 ]]; then
      ok=$((ok + 1))
      ((ok >= 2)) && return 0
    else
      ok=0
    fi
    sleep 0.5
  done
  log "still $urp under-replicated partition(s) after ${1}s"
  return 1
}

# data_bytes N: bytes of records in node N's log dir: the segments (*.log) of every partition
# but the KRaft metadata log (indexes are preallocated, 10 MiB each, and not counted).
data_bytes() {
  local d
  d="$(node_dir "$1")/data"
  [[ -d $d ]] || { echo 0; return 0; }
  find "$d" -mindepth 2 -maxdepth 2 -name '*.log' ! -path '*/__cluster_metadata-0/*' -printf '%s\n' 2>/dev/null \
    | awk '{ s += $1 } END { printf "%.0f", s }'
}

stop_node() {   # stop_node N: SIGTERM, wait, SIGKILL after STOP_TIMEOUT
  local n=$1 pid end
  pid="$(node_pid "$n")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  end=$((SECONDS + STOP_TIMEOUT))
  while node_pid "$n" >/dev/null; do
    if ((SECONDS >= end)); then
      log "node $n still up after ${STOP_TIMEOUT}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      end=$((SECONDS + 10))
    fi
    sleep 0.2
  done
  rm -f "$(pid_file "$n")"
}

cmd_replace() {
  check_any_node "${1:-}"
  local n=$1
  take_lock
  load_modes
  load_metrics
  load_network
  prepare
  node_pid "$n" >/dev/null || die "node $n is not running"
  # Wiping a replica is safe only if every partition has other in-sync replicas.
  local desc urp lone
  desc="$(java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$(bootstrap_list)" --describe 2>/dev/null)" || die "cannot describe the topics"
  urp=$(java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list)" \
    --describe --under-replicated-partitions 2>/dev/null | grep -c 'Partition:' || true)
  ((urp == 0)) || die "refusing to wipe node $n: $urp partition(s) are under-replicated now (acknowledged data could be lost)"
  lone=$(grep -cE "Replicas: $n[[:space:]]+Isr" <<<"$desc" || true)
  if ((lone)); then
    # Tests on a shared throwaway cluster meet other tests' single-replica topics.
    [[ ${FLEETSTORM_KAFKA_REPLACE_ALLOW_LONE:-0} == 1 ]] \
      || die "refusing to wipe node $n: it holds the only replica of $lone partition(s) (FLEETSTORM_KAFKA_REPLACE_ALLOW_LONE=1 wipes them anyway)"
    log "warning: wiping the only replica of $lone partition(s) on node $n (FLEETSTORM_KAFKA_REPLACE_ALLOW_LONE=1): their records are lost"
  fi
  log "replace: stopping node $n"
  stop_node "$n"
  local d f wiped
  d="$(node_dir "$n")/data"
  wiped=$(data_bytes "$n")
  # Keep what makes it the same node of the same cluster: meta.properties (cluster and directory
  # ids), bootstrap.checkpoint and the KRaft metadata log; everything else goes.
  for f in "$d"/* "$d"/.[!.]*; do
    [[ -e $f ]] || continue
    case ${f##*/} in meta.properties | bootstrap.checkpoint | __cluster_metadata-0) ;; *) rm -rf -- "$f" ;; esac
  done
  log "replace: wiped $wiped bytes of partition data of node $n; starting it empty"
  local t0
  t0=$(now_s)
  check_ports_free "$n"
  write_server_properties "$n"
  launch_node "$n"
  wait_ready "$START_TIMEOUT" "$n" || die "node $n did not come back (see above)"
  ((METRICS == 0)) || wait_metrics "$n"
  wait_in_sync "$START_TIMEOUT" || die "node $n is not back in every ISR after ${START_TIMEOUT}s"
  local secs bytes
  secs=$(since "$t0")
  bytes=$(data_bytes "$n")
  log "replace: node $n back in every ISR ${secs}s after its empty start; it holds $bytes bytes again"
  echo "fleetstorm: completed_s=$secs bytes_moved=$bytes bytes_source=log-dirs"
}

cmd_add_broker() {
  check_any_node "${1:-}"
  local n=$1
  ((n > 3)) || die "add-broker: node $n is a controller of the quorum; use restart"
  load_modes
  load_metrics
  load_network
  prepare
  if node_pid "$n" >/dev/null; then
    log "node $n is already running"
    return 0
  fi
  mkdir -p "$(node_dir "$n")"
  check_ports_free "$n"
  write_server_properties "$n"
  is_formatted "$n" || format_nodes "$(cluster_id)" "$n" || die "storage format of node $n failed"
  if ((NETWORK)); then
    ensure_proxy "client-$n" "$(client_port "$n")" "$(bind_port "$n")"
    ensure_proxy "peer-$n" "$(repl_port "$n")" "$(repl_bind_port "$n")"
  fi
  launch_node "$n"
  log "started broker-only node $n (pid $(<"$(pid_file "$n")"), 127.0.0.1:$(client_port "$n"))"
  wait_ready "$START_TIMEOUT" "$n" || die "node $n did not join (see above)"
  ((METRICS == 0)) || wait_metrics "$n"
}

# user_topics: every topic but the internal ones, comma separated.
user_topics() {
  java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list)" \
    --list --exclude-internal 2>/dev/null | paste -sd, -
}

# topics_on N: the non-internal topics with a replica on node N, comma separated.
topics_on() {
  java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list)" \
    --describe --exclude-internal 2>/dev/null \
    | awk -v n="$1" '/Partition:/ { for (i = 1; i < NF; i++) if ($i == "Replicas:") { k = split($(i + 1), r, ","); for (j = 1; j <= k; j++) if (r[j] == n) print $2 } }' \
    | sort -u | paste -sd, -
}

# moved_bytes_start / moved_bytes: bytes fetched for reassignments since, summed over the nodes
# that ran at both reads (the counters), else the growth of the data dirs.
MOVE_SOURCE=log-dirs
declare -A MOVE_BEFORE=()
moved_bytes_start() {
  local n v
  MOVE_BEFORE=()
  MOVE_SOURCE=log-dirs
  if ((METRICS)); then
    MOVE_SOURCE=metrics
    for n in $(running_nodes); do
      v=$(metric_sum kafka_server_brokertopicmetrics_reassignmentbytesin_total "$n") || { MOVE_SOURCE=log-dirs; break; }
      MOVE_BEFORE[$n]=$v
    done
  fi
  if [[ $MOVE_SOURCE == log-dirs ]]; then
    for n in $(running_nodes); do MOVE_BEFORE[$n]=$(data_bytes "$n"); done
  fi
}
moved_bytes() {
  local n v d total=0
  for n in $(running_nodes); do
    [[ -n ${MOVE_BEFORE[$n]:-} ]] || { [[ $MOVE_SOURCE == log-dirs ]] && continue; MOVE_BEFORE[$n]=0; }
    if [[ $MOVE_SOURCE == metrics ]]; then
      v=$(metric_sum kafka_server_brokertopicmetrics_reassignmentbytesin_total "$n") || continue
    else
      v=$(data_bytes "$n")
    fi
    d=$((v - MOVE_BEFORE[$n]))
    ((d > 0)) && total=$((total + d))
  done
  echo "$total"
}

# reassign BROKERS [--topics T,...] [--throttle B]: prints the fleetstorm: line.
cmd_reassign() {
  local brokers=${1:-} topics="" throttle=""
  [[ $brokers =~ ^[1-9](,[1-9])*$ ]] || die "usage: reassign BROKERS(e.g. 1,2,3,4) [--topics T,...] [--throttle BYTES_PER_S]"
  shift
  while (($#)); do
    case $1 in
      --topics) topics=${2:-}; shift 2 ;;
      --throttle) throttle=${2:-}; [[ $throttle =~ ^[0-9]+$ ]] || die "--throttle needs bytes per second"; shift 2 ;;
      *) die "reassign: unknown argument '$1'" ;;
    esac
  done
  load_modes
  load_metrics
  load_network
  prepare
  [[ -n $topics ]] || topics=$(user_topics)
  [[ -n $topics ]] || die "reassign: no topics to move"
  local work="$CLUSTER_DIR/reassign" t first=1
  mkdir -p "$work"
  {
    printf '{"version":1,"topics":['
    for t in ${topics//,/ }; do
      ((first)) || printf ','
      first=0
      printf '{"topic":"%s"}' "$t"
    done
    printf ']}\n'
  } >"$work/topics.json"
  local tool=(java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.reassign.ReassignPartitionsCommand
    --bootstrap-server "$(bootstrap_list)")
  "${tool[@]}" --generate --topics-to-move-json-file "$work/topics.json" --broker-list "$brokers" >"$work/generate.out" 2>&1 \
    || die "reassign --generate failed: $(tail -n 5 "$work/generate.out")"
  sed -n '/^Proposed partition reassignment configuration/{n;p}' "$work/generate.out" >"$work/plan.json"
  [[ -s $work/plan.json ]] || die "reassign: no plan in $(tail -n 5 "$work/generate.out")"
  moved_bytes_start
  local t0 args=(--execute --reassignment-json-file "$work/plan.json")
  [[ -z $throttle ]] || args+=(--throttle "$throttle")
  t0=$(now_s)
  "${tool[@]}" "${args[@]}" >"$work/execute.out" 2>&1 || die "reassign --execute failed: $(tail -n 5 "$work/execute.out")"
  log "reassign: moving $topics onto brokers $brokers${throttle:+ (throttle $throttle B/s)}"
  local end=$((SECONDS + ${FLEETSTORM_KAFKA_REASSIGN_TIMEOUT:-300}))
  while :; do
    # --verify also removes the throttle once every partition is done.
    if "${tool[@]}" --verify --reassignment-json-file "$work/plan.json" >"$work/verify.out" 2>&1 \
        && ! grep -q 'still in progress' "$work/verify.out"; then
      break
    fi
    ((SECONDS < end)) || die "reassign: not complete after ${FLEETSTORM_KAFKA_REASSIGN_TIMEOUT:-300}s: $(tail -n 3 "$work/verify.out")"
    sleep 0.5
  done
  local secs bytes
  secs=$(since "$t0")
  bytes=$(moved_bytes)
  log "reassign: complete after ${secs}s, $bytes bytes moved ($MOVE_SOURCE)"
  echo "fleetstorm: completed_s=$secs bytes_moved=$bytes bytes_source=$MOVE_SOURCE"
}

# Every running broker, plus or minus one, comma separated.
brokers_with() {
  local n out=()
  for n in $(running_nodes) "$1"; do [[ " ${out[*]} " == *" $n "* ]] || out+=("$n"); done
  (IFS=,; echo "${out[*]}")
}
brokers_without() {
  local n out=()
  for n in $(running_nodes); do [[ $n == "$1" ]] || out+=("$n"); done
  (IFS=,; echo "${out[*]}")
}

cmd_scale_out() {
  check_any_node "${1:-}"
  local n=$1
  shift
  take_lock
  if ((n > 3)); then
    cmd_add_broker "$n"
  elif ! node_pid "$n" >/dev/null; then
    exec 9>&-
    "${BASH_SOURCE[0]}" restart "$n" || die "could not restart node $n"
    take_lock
  fi
  if [[ " $* " != *" --topics "* ]]; then
    # Without --topics (`fleetstorm restore` undoing a scale-in): the node is back, nothing moves.
    log "scale-out: node $n running; no --topics, so no partitions moved"
    return 0
  fi
  cmd_reassign "$(brokers_with "$n")" "$@"
}

cmd_scale_in() {
  check_any_node "${1:-}"
  local n=$1
  shift
  take_lock
  cmd_remove_broker "$n" "$@"
}

# remove-broker N [--topics T,...] [--throttle B]
cmd_remove_broker() {
  check_any_node "${1:-}"
  local n=$1
  shift
  load_modes
  load_metrics
  load_network
  if node_pid "$n" >/dev/null; then
    local rest
    rest=$(brokers_without "$n")
    (($(tr ',' '\n' <<<"$rest" | wc -l) >= 3)) || die "remove-broker: only $rest would be left (the topics have 3 replicas)"
    if [[ " $* " != *" --topics "* ]]; then
      # Without --topics (e.g. `fleetstorm restore` undoing a scale-out): only the topics that
      # have a replica on node N move, so nothing else is reshuffled.
      local on
      on=$(topics_on "$n")
      if [[ -n $on ]]; then set -- --topics "$on" "$@"; fi
    fi
    if [[ " $* " == *" --topics "* ]]; then
      cmd_reassign "$rest" "$@"
    else
      log "remove-broker: no partition has a replica on node $n"
    fi
    log "remove-broker: stopping node $n"
    stop_node "$n"
  else
    log "node $n is not running"
  fi
  if ((n > 3)); then
    java_tool -Dfleetstorm.log.level=OFF org.apache.kafka.tools.ClusterTool unregister \
      --bootstrap-server "$(bootstrap_list)" --id "$n" >/dev/null 2>&1 \
      || log "warning: could not unregister broker $n (it may already be)"
    rm -rf -- "$(node_dir "$n")"
    log "remove-broker: node $n unregistered, its data deleted"
  fi
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    fetch) take_lock; cmd_fetch; fetch_agent ;;
    start) cmd_start "$@" ;;
    env) cmd_env ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill) cmd_signal KILL killed "$@" ;;
    pause) cmd_signal STOP paused "$@" ;;
    resume) cmd_signal CONT resumed "$@" ;;
    restart) cmd_restart "$@" ;;
    net) cmd_net "$@" ;;
    replace) cmd_replace "$@" ;;
    add-broker) take_lock; cmd_add_broker "$@" ;;
    remove-broker) take_lock; cmd_remove_broker "$@" ;;
    reassign) take_lock; cmd_reassign "$@" ;;
    scale-out) cmd_scale_out "$@" ;;
    scale-in) cmd_scale_in "$@" ;;
    wait) cmd_wait "$@" ;;
    clean) cmd_clean ;;
    bootstrap) bootstrap_list ;;
    metrics-urls) metrics_urls ;;
    tool) cmd_tool "$@" ;;
    logs) check_node_arg "${1:-}"; echo "$(node_dir "$1")/server.log" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) log "unknown command '$cmd'"; usage >&2; exit 2 ;;
  esac
}

main "$@"
