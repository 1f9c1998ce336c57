#!/usr/bin/env bash
# Local infrastructure stack for orderstream: a real single-node Cassandra 5.0 and a
# real single-node Kafka 4.x (KRaft), both run from Maven Central artifacts on Java 17.
# No Docker, no tarballs: `mvn dependency:copy-dependencies` builds each classpath.
#
# Usage: scripts/stack.sh COMMAND [cassandra|kafka]      (no component = both)
#
#   up     | start   fetch if needed, start, wait until ready (both start in parallel)
#   down   | stop    SIGTERM the recorded pid, SIGKILL after STACK_STOP_TIMEOUT; keeps data
#   kill             SIGKILL the recorded pid (a crash: no shutdown, no flush); keeps data
#   status           print state of each component; exit 0 only if all requested are ready
#   logs [-f]        print the last STACK_LOG_LINES (100) log lines, or follow with -f
#   reset            stop and delete the component's data (.run/stack/<component>)
#   fetch            only download the artifacts into .cache/stack/<component>/lib
#
# Endpoints: Cassandra CQL 127.0.0.1:9042 (storage 7000, no JMX),
#            Kafka PLAINTEXT 127.0.0.1:9092 (controller 127.0.0.1:9093).
#
# Environment:
#   STACK_TIMEOUT       readiness timeout per component in seconds (180)
#   STACK_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (60)
#   STACK_LOG_LINES     lines shown by `logs` (100)
#   CASSANDRA_VERSION   cassandra-all version (default: scripts/stack/cassandra/pom.xml;
#                       without an override older 5.0.x are tried if it cannot be resolved)
#   CASSANDRA_HEAP      Cassandra -Xms/-Xmx (1G)
#   CASSANDRA_MLOCK     1 = let Cassandra mlockall() its memory when run as root (off)
#   KAFKA_VERSION       kafka_2.13 version (default: scripts/stack/kafka/pom.xml; without an
#                       override older 4.x releases are tried if it cannot be resolved)
#   KAFKA_HEAP          Kafka -Xmx (1G);  KAFKA_HEAP_MIN  Kafka -Xms (512M)
#   LOG4J_VERSION       log4j2 backend for Kafka (default: the one the Kafka release uses)
#
# Layout (both git-ignored):
#   .cache/stack/<component>/lib      jars (re-fetched only when the pom/version changes)
#   .run/stack/<component>/           conf/ (rendered), data/, logs/stdout.log, <component>.pid
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd -P)"
TPL_BASE="$SCRIPT_DIR/stack"
CACHE_BASE="$ROOT/.cache/stack"
RUN_BASE="$ROOT/.run/stack"
ALL_COMPONENTS=(cassandra kafka)

STACK_TIMEOUT="${STACK_TIMEOUT:-180}"
STACK_STOP_TIMEOUT="${STACK_STOP_TIMEOUT:-60}"
STACK_LOG_LINES="${STACK_LOG_LINES:-100}"
LOG_ROTATE_BYTES=$((64 * 1024 * 1024))

JAVA17_HOME=""
APT_UPDATED=0

# ----------------------------------------------------------------------------- helpers

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

now_ms() { date +%s%3N; }
elapsed() { # start_ms -> "12.3s"
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100))
}

run_dir()  { printf '%s/%s' "$RUN_BASE" "$1"; }
pid_file() { printf '%s/%s/%s.pid' "$RUN_BASE" "$1" "$1"; }
log_file() { printf '%s/%s/logs/stdout.log' "$RUN_BASE" "$1"; }
lib_dir()  { printf '%s/%s/lib' "$CACHE_BASE" "$1"; }

main_port() {
  case "$1" in cassandra) echo 9042 ;; kafka) echo 9092 ;; esac
}
all_ports() {
  case "$1" in cassandra) echo "9042 7000" ;; kafka) echo "9092 9093" ;; esac
}

port_open() { # port -> 0 if something accepts on 127.0.0.1:port
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Render a template: render SRC DST KEY VALUE [KEY VALUE...] (literal replacement).
render() {
  local src="$1" dst="$2" content
  shift 2
  content="$(<"$src")"
  while (($#)); do
    content="${content//"$1"/"$2"}"
    shift 2
  done
  printf '%s\n' "$content" >"$dst.tmp"
  mv -f "$dst.tmp" "$dst"
}

# Read a rendered jvm.options file into the array named by $2.
read_jvm_opts() {
  local -n _out="$2"
  local line
  _out=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    [[ -z "$line" || "$line" == \#* ]] && continue
    _out+=("$line")
  done <"$1"
}

to_mib() { # 512M / 1G / 1024m -> MiB
  local s="${1^^}"
  case "$s" in
    *[0-9]G) echo $((${s%G} * 1024)) ;;
    *[0-9]M) echo "${s%M}" ;;
    *) die "bad heap size '$1' (use e.g. 512M or 1G)" ;;
  esac
}

# ----------------------------------------------------------------------------- tools

is_java17() { # JAVA_HOME candidate
  local h="$1"
  [[ -n "$h" && -x "$h/bin/java" ]] || return 1
  if [[ -r "$h/release" ]]; then
    grep -Eq '^JAVA_VERSION="17([."]|$)' "$h/release"
  else
    local out re='version "17([."]|$)'
    out="$("$h/bin/java" -version 2>&1 || true)"
    [[ "$out" =~ $re ]]
  fi
}

find_java17() {
  local arch c
  arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
  # JAVA_HOME only if it is a 17; never whatever `java` is first on PATH
  # (a Temurin 25 may be installed, and Cassandra 5.0 supports only 11 and 17).
  for c in "${JAVA_HOME:-}" "/usr/lib/jvm/java-17-openjdk-$arch" /usr/lib/jvm/java-17-openjdk-amd64 \
           /usr/lib/jvm/java-17-openjdk* /usr/lib/jvm/*-17-* /usr/lib/jvm/*-17; do
    if is_java17 "$c"; then
      JAVA17_HOME="$c"
      return 0
    fi
  done
  return 1
}

apt_install() {
  if [[ "$(id -u)" -ne 0 ]]; then
    die "missing: $* - install them (e.g. 'sudo apt-get install -y openjdk-17-jre-headless maven') or set JAVA_HOME to a Java 17 and put mvn on PATH"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing: $* and no apt-get to install them"
  if [[ "$APT_UPDATED" -eq 0 ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_java() {
  [[ -n "$JAVA17_HOME" ]] && return 0
  if ! find_java17; then
    apt_install openjdk-17-jre-headless
    find_java17 || die "Java 17 not found after installing openjdk-17-jre-headless (looked at JAVA_HOME and /usr/lib/jvm/java-17-openjdk-*)"
  fi
}

ensure_mvn() {
  ensure_java
  if ! command -v mvn >/dev/null 2>&1; then
    apt_install maven
    command -v mvn >/dev/null 2>&1 || die "mvn not found after installing maven"
  fi
}

# ----------------------------------------------------------------------------- fetch

pom_property() { # pom name
  sed -n "s:.*<$2>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</$2>.*:\1:p" "$1" | head -n1
}

# Versions to try, best first. An explicit override is used alone.
candidate_versions() {
  local c="$1" pom="$TPL_BASE/$1/pom.xml" def major minor patch m p
  case "$c" in
    cassandra)
      if [[ -n "${CASSANDRA_VERSION:-}" ]]; then echo "$CASSANDRA_VERSION"; return; fi
      def="$(pom_property "$pom" cassandra.version)"
      IFS=. read -r major minor patch <<<"$def"
      for ((p = patch; p >= 0; p--)); do echo "$major.$minor.$p"; done
      ;;
    kafka)
      if [[ -n "${KAFKA_VERSION:-}" ]]; then echo "$KAFKA_VERSION"; return; fi
      def="$(pom_property "$pom" kafka.version)"
      IFS=. read -r major minor patch <<<"$def"
      for ((m = minor; m >= 0; m--)); do
        if ((m == minor)); then p=$patch; else p=2; fi
        for (( ; p >= 0; p--)); do echo "$major.$m.$p"; done
      done
      ;;
  esac
}

log4j_for_kafka() { # kafka version -> log4j2 version it is built against
  if [[ -n "${LOG4J_VERSION:-}" ]]; then echo "$LOG4J_VERSION"; return; fi
  case "$1" in
    4.0.* | 4.1.*) echo 2.24.3 ;;
    *) echo 2.25.3 ;;
  esac
}

# Hash of the pom plus the overrides that change what gets resolved.
fetch_stamp_for() {
  local c="$1"
  {
    sha256sum <"$TPL_BASE/$c/pom.xml"
    case "$c" in
      cassandra) echo "CASSANDRA_VERSION=${CASSANDRA_VERSION:-}" ;;
      kafka) echo "KAFKA_VERSION=${KAFKA_VERSION:-} LOG4J_VERSION=${LOG4J_VERSION:-}" ;;
    esac
  } | sha256sum | cut -d' ' -f1
}

fetch_needed() {
  local c="$1" cache="$CACHE_BASE/$1"
  [[ -d "$cache/lib" && -f "$cache/stamp" ]] || return 0
  [[ "$(<"$cache/stamp")" != "$(fetch_stamp_for "$c")" ]]
}

run_mvn() { # component outdir version [extra -D...]
  local c="$1" out="$2" v="$3"
  shift 3
  local -a props=()
  case "$c" in
    cassandra) props=("-Dcassandra.version=$v") ;;
    kafka) props=("-Dkafka.version=$v" "-Dlog4j.version=$(log4j_for_kafka "$v")") ;;
  esac
  JAVA_HOME="$JAVA17_HOME" mvn -B -q -Dstyle.color=never -f "$TPL_BASE/$c/pom.xml" \
    dependency:copy-dependencies "-DoutputDirectory=$out" "${props[@]}" "$@" \
    >>"$CACHE_BASE/$c/mvn.log" 2>&1 </dev/null
}

fetch() {
  local c="$1" cache="$CACHE_BASE/$1" tmp v resolved="" t0
  fetch_needed "$c" || return 0
  if get_pid "$c" >/dev/null; then
    die "$c is running but its artifacts are out of date; run 'scripts/stack.sh down $c' first"
  fi
  ensure_mvn
  mkdir -p "$cache"
  : >"$cache/mvn.log"
  tmp="$cache/lib.tmp"
  t0="$(now_ms)"
  for v in $(candidate_versions "$c"); do
    log "$c: resolving $v from Maven Central (mvn dependency:copy-dependencies)"
    rm -rf "$tmp"
    if run_mvn "$c" "$tmp" "$v"; then
      resolved="$v"
      break
    fi
    log "$c: $v could not be resolved (see $cache/mvn.log)"
  done
  if [[ -z "$resolved" ]]; then
    tail -n 30 "$cache/mvn.log" >&2 || true
    die "$c: no version could be resolved (tried: $(candidate_versions "$c" | paste -sd' '))"
  fi
  if [[ "$c" == kafka ]] && compgen -G "$tmp/slf4j-api-2.*.jar" >/dev/null \
     && compgen -G "$tmp/log4j-slf4j-impl-*.jar" >/dev/null; then
    # slf4j 2.x needs the slf4j2 binding instead of the 1.7 one.
    log "kafka: slf4j-api 2.x on the classpath, switching to log4j-slf4j2-impl"
    rm -rf "$tmp"
    run_mvn "$c" "$tmp" "$resolved" -Dlog4j.slf4j.artifact=log4j-slf4j2-impl \
      || { tail -n 30 "$cache/mvn.log" >&2; die "kafka: could not resolve log4j-slf4j2-impl"; }
  fi
  rm -rf "${cache:?}/lib"
  mv "$tmp" "$cache/lib"
  echo "$resolved" >"$cache/version"
  fetch_stamp_for "$c" >"$cache/stamp"
  log "$c: $resolved fetched, $(find "$cache/lib" -name '*.jar' | wc -l) jars, $(du -sh "$cache/lib" | cut -f1) in $(elapsed "$t0")"
}

# ----------------------------------------------------------------------------- processes

# A process is alive while any of its threads is not a zombie. A SIGKILLed
# java's main thread turns zombie first; its other threads, and the sockets
# they share, go a moment later, and the ports are not free until they have.
pid_alive() { # pid
  local t stat
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  for t in /proc/"$1"/task/*/stat; do
    { IFS= read -r stat <"$t"; } 2>/dev/null || continue
    stat="${stat##*) }" # after "tid (comm) "; comm may hold spaces and parentheses
    [[ -n "$stat" && "${stat%% *}" != [ZX] ]] && return 0
  done
  return 1
}

# A live process is ours only once its command line carries our run-dir
# marker (guards against pid reuse). That decides whose process it is, not
# whether it is alive: between the fork and the exec of the launch chain
# (subshell -> setsid -> nohup -> [setpriv] -> java) the command line is
# still stack.sh's, and on a busy machine that lasts a while.
pid_is_ours() { # component pid
  local marker
  marker="-Dorderstream.stack.run=$(run_dir "$1")"
  pid_alive "$2" || return 1
  # (no grep -q in pipelines: an early exit would SIGPIPE the writer and, with
  # pipefail, turn a match into a failure)
  tr '\0' '\n' <"/proc/$2/cmdline" 2>/dev/null | grep -xF -- "$marker" >/dev/null
}

# Print the pid of the live server of this checkout's component, found by
# its marker among all processes (only java itself, not a launcher on its
# way to exec it); fails if there is none.
find_ours() { # component
  local c="$1" d pid exe
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    IFS= read -r -d '' exe <"$d/cmdline" 2>/dev/null || continue
    [[ "$exe" == */java ]] || continue
    if pid_is_ours "$c" "$pid"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# Print the pid of this checkout's running component. The pid file is
# deleted only when its process is gone; a live process that is not ours
# yet may be one still on its way to exec java. A server of ours that lost
# its pid file (an older stack.sh dropped it) is found by its marker and
# recorded again, so that it can be stopped.
get_pid() {
  local c="$1" pf pid=""
  pf="$(pid_file "$c")"
  if [[ -f "$pf" ]]; then
    pid="$(tr -dc '0-9' <"$pf" 2>/dev/null || true)"
    if [[ -n "$pid" ]] && pid_is_ours "$c" "$pid"; then
      echo "$pid"
      return 0
    fi
    if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
      log "$c: removing stale pid file (pid ${pid:-?} is not running)"
      rm -f "$pf"
    fi
  fi
  if pid="$(find_ours "$c")"; then
    log "$c: pid $pid is this checkout's $c and had no pid file; recording it"
    mkdir -p "$(dirname "$pf")"
    echo "$pid" >"$pf"
    echo "$pid"
    return 0
  fi
  return 1
}

tail_log() {
  local c="$1" lf
  lf="$(log_file "$c")"
  if [[ -f "$lf" ]]; then
    log "----- last 60 lines of $lf -----"
    tail -n 60 "$lf" >&2
    log "----- end of $c log -----"
  else
    log "$c: no log file at $lf"
  fi
}

log_since_start_has() { # component fixed-string
  local lf off size
  lf="$(log_file "$1")"
  [[ -f "$lf" ]] || return 1
  off="$(cat "$(run_dir "$1")/log.offset" 2>/dev/null || echo 0)"
  size="$(stat -c %s "$lf")"
  ((size >= off)) || off=0
  tail -c "+$((off + 1))" "$lf" | grep -F -- "$2" >/dev/null
}

is_ready() {
  case "$1" in
    cassandra)
      log_since_start_has cassandra "Starting listening for CQL clients" &&
        log_since_start_has cassandra "Startup complete" && port_open 9042 ;;
    kafka)
      log_since_start_has kafka "Kafka Server started" && port_open 9092 ;;
  esac
}

wait_ready() { # component pid start_ms
  local c="$1" pid="$2" t0="$3" deadline found
  deadline=$((SECONDS + STACK_TIMEOUT))
  while :; do
    if ! pid_alive "$pid"; then
      # With job control on, setsid forks: the server lives on under
      # another pid that carries our marker.
      if found="$(find_ours "$c")"; then
        log "$c: pid $pid handed over to pid $found"
        pid="$found"
        echo "$pid" >"$(pid_file "$c")"
        continue
      fi
      log "$c: process $pid exited during startup"
      tail_log "$c"
      rm -f "$(pid_file "$c")"
      return 1
    fi
    if pid_is_ours "$c" "$pid" && is_ready "$c"; then
      log "$c: ready on 127.0.0.1:$(main_port "$c") (pid $pid) after $(elapsed "$t0")"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "$c: not ready after ${STACK_TIMEOUT}s (pid $pid is left running; 'scripts/stack.sh down $c' stops it)"
      tail_log "$c"
      return 1
    fi
    sleep 0.5
  done
}

prepare_logs() { # rotate a big log and remember where this start's output begins
  local c="$1" lf
  lf="$(log_file "$c")"
  mkdir -p "$(dirname "$lf")"
  if [[ -f "$lf" ]] && (($(stat -c %s "$lf") > LOG_ROTATE_BYTES)); then
    mv -f "$lf" "$lf.1"
  fi
  touch "$lf"
  stat -c %s "$lf" >"$(run_dir "$c")/log.offset"
  printf '\n===== scripts/stack.sh: starting %s at %s =====\n' "$c" "$(date -Is)" >>"$lf"
}

# Launch detached; $1 = component, rest = java args. Prints the pid.
# LAUNCH_PREFIX (array) may hold a command that execs the rest (e.g. setpriv).
LAUNCH_PREFIX=()
launch() {
  local c="$1" lf
  shift
  lf="$(log_file "$c")"
  (
    close_inherited_fds
    exec setsid nohup "${LAUNCH_PREFIX[@]}" "$JAVA17_HOME/bin/java" "-Dorderstream.stack.run=$(run_dir "$c")" "$@" \
      </dev/null >>"$lf" 2>&1
  ) &
  echo $!
}

# The server inherits no descriptor but stdin, stdout and stderr: not our
# lock (fd 9), and not one a caller holds either (`flock -x FILE
# scripts/stack.sh up` hands its lock's descriptor down), which the server
# would otherwise hold for as long as it runs, blocking every later flock.
close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd="${fd##*/}"
    if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}

start_cassandra() {
  local c=cassandra run conf lib jamm heap
  run="$(run_dir $c)"
  conf="$run/conf"
  lib="$(lib_dir $c)"
  heap="${CASSANDRA_HEAP:-1G}"
  to_mib "$heap" >/dev/null
  mkdir -p "$conf" "$run/logs" "$run/triggers" "$run/data"/{data,commitlog,saved_caches,hints,cdc_raw}
  jamm="$(compgen -G "$lib/jamm-*.jar" | head -n1 || true)"
  [[ -n "$jamm" ]] || die "cassandra: no jamm jar in $lib"
  render "$TPL_BASE/$c/cassandra.yaml" "$conf/cassandra.yaml" @RUN_DIR@ "$run"
  render "$TPL_BASE/$c/logback.xml" "$conf/logback.xml"
  render "$TPL_BASE/$c/jvm.options" "$conf/jvm.options" \
    @HEAP@ "$heap" @RUN_DIR@ "$run" @CONF_DIR@ "$conf" @LOG_DIR@ "$run/logs" @JAMM_JAR@ "$jamm"
  local -a opts
  read_jvm_opts "$conf/jvm.options" opts
  prepare_logs "$c"
  # As root, CassandraDaemon's mlockall() succeeds and faults in + pins the whole heap
  # (~1.4 GiB RSS, ~2 s slower start). A normal user cannot lock more than RLIMIT_MEMLOCK
  # anyway, so drop CAP_IPC_LOCK to get the same behaviour (Cassandra then logs one
  # "Unable to lock JVM memory (ENOMEM)" warning). CASSANDRA_MLOCK=1 keeps the lock.
  if [[ "$(id -u)" -eq 0 && "${CASSANDRA_MLOCK:-0}" != 1 ]] && command -v setpriv >/dev/null 2>&1; then
    LAUNCH_PREFIX=(setpriv --bounding-set -ipc_lock)
  fi
  launch "$c" "${opts[@]}" "-Dcassandra.config=file://$conf/cassandra.yaml" \
    -cp "$conf:$lib/*" org.apache.cassandra.service.CassandraDaemon
}

kafka_cluster_id() { # stable per run dir; base64url of 16 random bytes, never starting with '-'
  local f="$1/cluster.id" id
  if [[ ! -s "$f" ]]; then
    while :; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
      [[ "$id" != -* ]] && break
    done
    echo "$id" >"$f"
  fi
  cat "$f"
}

start_kafka() {
  local c=kafka run conf lib heap heap_min cid
  run="$(run_dir $c)"
  conf="$run/conf"
  lib="$(lib_dir $c)"
  heap="${KAFKA_HEAP:-1G}"
  heap_min="${KAFKA_HEAP_MIN:-512M}"
  if (($(to_mib "$heap_min") > $(to_mib "$heap"))); then heap_min="$heap"; fi
  mkdir -p "$conf" "$run/logs" "$run/data/kraft-logs"
  render "$TPL_BASE/$c/server.properties" "$conf/server.properties" @RUN_DIR@ "$run"
  render "$TPL_BASE/$c/log4j2.properties" "$conf/log4j2.properties"
  render "$TPL_BASE/$c/jvm.options" "$conf/jvm.options" \
    @HEAP_MIN@ "$heap_min" @HEAP@ "$heap" @RUN_DIR@ "$run" @CONF_DIR@ "$conf" @LOG_DIR@ "$run/logs"
  local -a opts
  read_jvm_opts "$conf/jvm.options" opts
  prepare_logs "$c"
  if [[ ! -f "$run/data/kraft-logs/meta.properties" ]]; then
    cid="$(kafka_cluster_id "$run")"
    log "kafka: formatting storage (cluster id $cid)"
    # -g: ignore an already formatted directory, so this is safe to re-run.
    "$JAVA17_HOME/bin/java" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto \
      "-Dlog4j2.configurationFile=file://$conf/log4j2.properties" -Dkafka.root.loglevel=warn -cp "$lib/*" \
      kafka.tools.StorageTool format -t "$cid" -c "$conf/server.properties" -g \
      </dev/null >>"$(log_file $c)" 2>&1 9>&- \
      || { tail_log "$c"; die "kafka: storage format failed"; }
  fi
  launch "$c" "${opts[@]}" -cp "$lib/*" kafka.Kafka "$conf/server.properties"
}

# Start (if needed) and wait. Runs in its own subshell when both start in parallel.
up_one() {
  local c="$1" pid p t0
  t0="$(now_ms)"
  if pid="$(get_pid "$c")"; then
    if is_ready "$c"; then
      log "$c: already running (pid $pid)"
      return 0
    fi
    log "$c: already running (pid $pid), waiting until it is ready"
    wait_ready "$c" "$pid" "$t0"
    return
  fi
  for p in $(all_ports "$c"); do
    if port_open "$p"; then
      die "$c: 127.0.0.1:$p is already in use by a process not started by this checkout's stack.sh"
    fi
  done
  pid="$("start_$c")"
  echo "$pid" >"$(pid_file "$c")"
  log "$c: started pid $pid (java $(sed -n 's/^JAVA_VERSION="\(.*\)"/\1/p' "$JAVA17_HOME/release" 2>/dev/null), $(<"$CACHE_BASE/$c/version")), log: $(log_file "$c")"
  wait_ready "$c" "$pid" "$t0"
}

down_one() {
  local c="$1" pid deadline
  if ! pid="$(get_pid "$c")"; then
    log "$c: not running"
    return 0
  fi
  log "$c: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STACK_STOP_TIMEOUT))
  # (alive, not ours: a zombie main thread has no command line left while
  # the other threads still hold the ports)
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.5; done
  if pid_alive "$pid"; then
    log "$c: still running after ${STACK_STOP_TIMEOUT}s, sending SIGKILL"
    sigkill "$c" "$pid"
  fi
  rm -f "$(pid_file "$c")"
  log "$c: stopped"
}

# sigkill COMPONENT PID: SIGKILL, then wait (bounded) until every thread is gone.
sigkill() {
  local deadline=$((SECONDS + 15))
  kill -KILL "$2" 2>/dev/null || true
  while pid_alive "$2" && ((SECONDS < deadline)); do sleep 0.1; done
  if pid_alive "$2"; then die "$1: pid $2 survived SIGKILL"; fi
}

# SIGKILL, as a crash or the OOM killer would: no shutdown, no flush. The data
# is kept; `up` starts it again and it recovers from its commit log.
kill_one() {
  local c="$1" pid
  if ! pid="$(get_pid "$c")"; then
    log "$c: not running"
    return 0
  fi
  log "$c: killing pid $pid (SIGKILL)"
  sigkill "$c" "$pid"
  rm -f "$(pid_file "$c")"
  log "$c: killed"
}

# ----------------------------------------------------------------------------- commands

cmd_up() {
  local c rc=0
  ensure_java
  for c in "$@"; do
    get_pid "$c" >/dev/null || fetch "$c"
  done
  if (($# == 1)); then
    up_one "$1"
    return
  fi
  local -A pids=()
  for c in "$@"; do
    up_one "$c" &
    pids[$c]=$!
  done
  for c in "$@"; do
    wait "${pids[$c]}" || { rc=1; log "$c: FAILED to come up"; }
  done
  return "$rc"
}

cmd_down() {
  local c rc=0
  if (($# == 1)); then
    down_one "$1"
    return
  fi
  local -A pids=()
  for c in "$@"; do
    down_one "$c" &
    pids[$c]=$!
  done
  for c in "$@"; do
    wait "${pids[$c]}" || rc=1
  done
  return "$rc"
}

cmd_status() {
  local c pid rc=0 ver
  for c in "$@"; do
    ver="$(cat "$CACHE_BASE/$c/version" 2>/dev/null || echo '?')"
    if pid="$(get_pid "$c")"; then
      if port_open "$(main_port "$c")"; then
        printf '%-9s running  pid %-7s 127.0.0.1:%s  version %s  rss %s MiB\n' "$c" "$pid" \
          "$(main_port "$c")" "$ver" "$(($(ps -o rss= -p "$pid" 2>/dev/null || echo 0) / 1024))"
      else
        printf '%-9s starting pid %-7s (127.0.0.1:%s not accepting yet)\n' "$c" "$pid" "$(main_port "$c")"
        rc=1
      fi
    else
      printf '%-9s stopped\n' "$c"
      rc=1
    fi
  done
  return "$rc"
}

cmd_logs() {
  local follow=0 c
  local -a files=()
  if [[ "${1:-}" == "-f" ]]; then follow=1; shift; fi
  (($#)) || set -- "${ALL_COMPONENTS[@]}"
  for c in "$@"; do
    valid_component "$c" || die "unknown component '$c' (cassandra|kafka)"
    [[ -f "$(log_file "$c")" ]] && files+=("$(log_file "$c")")
  done
  ((${#files[@]})) || die "no logs yet under $RUN_BASE"
  if ((follow)); then
    exec tail -n "$STACK_LOG_LINES" -F "${files[@]}"
  fi
  tail -n "$STACK_LOG_LINES" "${files[@]}"
}

cmd_reset() {
  local c
  for c in "$@"; do
    down_one "$c"
    case "$(run_dir "$c")" in
      "$ROOT"/.run/stack/cassandra | "$ROOT"/.run/stack/kafka) rm -rf "$(run_dir "$c")" ;;
      *) die "refusing to delete $(run_dir "$c")" ;;
    esac
    log "$c: data deleted"
  done
}

cmd_fetch() {
  local c
  for c in "$@"; do
    if fetch_needed "$c"; then
      fetch "$c"
    else
      log "$c: $(cat "$CACHE_BASE/$c/version" 2>/dev/null) already in $(lib_dir "$c")"
    fi
  done
}

valid_component() { [[ "$1" == cassandra || "$1" == kafka ]]; }

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    -h | --help | help) usage; return 0 ;;
    "") usage >&2; exit 2 ;;
    logs) cmd_logs "$@"; return ;;
  esac

  local -a comps=()
  local c
  for c in "$@"; do
    valid_component "$c" || die "unknown component '$c' (cassandra|kafka)"
    [[ " ${comps[*]-} " == *" $c "* ]] || comps+=("$c")
  done
  ((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")

  case "$cmd" in
    status) cmd_status "${comps[@]}"; return ;;
    up | start | down | stop | kill | reset | fetch) ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac

  # One mutating invocation at a time per checkout.
  mkdir -p "$RUN_BASE" "$CACHE_BASE"
  exec 9>"$RUN_BASE/.lock"
  flock -w $((STACK_TIMEOUT * 2 + 300)) 9 || die "another scripts/stack.sh is still running (lock $RUN_BASE/.lock)"

  case "$cmd" in
    up | start) cmd_up "${comps[@]}" ;;
    down | stop) cmd_down "${comps[@]}" ;;
    kill) for c in "${comps[@]}"; do kill_one "$c"; done ;;
    reset) cmd_reset "${comps[@]}" ;;
    fetch) cmd_fetch "${comps[@]}" ;;
  esac
}

# Sourced (by the tests of this script), define the functions only.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
