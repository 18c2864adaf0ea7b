#!/usr/bin/env bash
# Cross-node benchmark: two Serve nodes (Orleans silos) in separate processes on loopback. Node B (the primary silo)
# runs the replicas of RemoteEcho; node A runs LocalEcho's and measures, through handles, calls to RemoteEcho (each
# crosses to B) side by side with calls to LocalEcho (local handle calls), 1 and 64 concurrent callers, a small record
# and a 384-float vector, and streams of 1000 items (items/s); then wrk measures HTTP through node A's ingress to
# replicas on B (GET /remote) and on A (GET /local). Each wire format (ServeClusterOptions.WireFormat) runs on a fresh
# pair of nodes. Prints one markdown table; exits non-zero on failure. Takes ~5 minutes with the defaults.
#   benchmarks/cluster/run.sh                  all of the above with the defaults below
#   benchmarks/cluster/run.sh --append FILE    also append the table to FILE
#   WIRES="messagepack json" WARMUP=5 DURATION=5 CALLERS=1,64 REPLICAS=4 HTTP_WARMUP=3 HTTP_DURATION=10 CONNECTIONS=64
#   THREADS=2 PRIMARY_PORT=11111 HTTP_PORT=18090 NO_HTTP=1 FILTER="across nodes" benchmarks/cluster/run.sh
#   BIN=/path/to/ClusterBench benchmarks/cluster/run.sh   measure that build (e.g. a copy of an earlier one) instead of building
# Every process it starts is stopped on exit (also on failure or Ctrl-C). Node A and B, wrk and the build share the
# machine's cores: on a small machine the numbers include all of them competing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
project="$root/benchmarks/cluster/ClusterBench/ClusterBench.csproj"
bin="$root/benchmarks/cluster/ClusterBench/bin/Release/net10.0/ClusterBench"
wires="${WIRES:-messagepack json}"
# 5 s of warm-up per row: on a busy small machine the JIT is still recompiling hot code (tier 1) after 2 s.
warmup="${WARMUP:-5}"
seconds="${DURATION:-5}"
callers="${CALLERS:-1,64}"
replicas="${REPLICAS:-4}"
http_warmup="${HTTP_WARMUP:-3}"
http_duration="${HTTP_DURATION:-10}"
connections="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
primary_port="${PRIMARY_PORT:-11111}"
http_port="${HTTP_PORT:-18090}"
no_http="${NO_HTTP:-}"
filter="${FILTER:-}"
append=""

while [ "$#" -gt 0 ]; do
  case "$1" in
    --append) append="${2:?--append needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[cluster-bench] $*" >&2; }
fail() { echo "[cluster-bench] ERROR: $*" >&2; exit 1; }

for v in warmup seconds replicas http_warmup http_duration connections threads primary_port http_port; do
  [[ "${!v}" =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "${v^^}='${!v}' must be a positive number"
done
[[ "$callers" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || fail "CALLERS='$callers' must be a comma-separated list of positive whole numbers"
for w in $wires; do
  case "$w" in json|messagepack|host) ;; *) fail "WIRES has '$w'; use json, messagepack or host" ;; esac
done
if [ -z "$no_http" ]; then
  command -v wrk >/dev/null 2>&1 || fail "wrk is not installed (Debian: apt-get install -y wrk), or set NO_HTTP=1 to skip the HTTP part."
  command -v curl >/dev/null 2>&1 || fail "curl is needed to check node A's HTTP replies; install it or set NO_HTTP=1."
fi

if [ -n "${BIN:-}" ]; then
  bin="$BIN"
  [ -x "$bin" ] || fail "BIN=$bin is not an executable ClusterBench."
  log "using $bin (BIN; not building)"
else
  log "building $project (Release)"
  timeout 900 dotnet build -c Release --nologo -v quiet "$project" >&2 || fail "the Release build of ClusterBench failed (output above)."
  [ -x "$bin" ] || fail "the build did not produce $bin."
fi

a_pid="" b_pid="" a_log="" b_log=""
stop() { # stop PID: SIGTERM, then SIGKILL after 10 s
  local pid="$1"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "process $pid did not stop within 10 s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
stop_nodes() { stop "$a_pid"; a_pid=""; stop "$b_pid"; b_pid=""; }
cleanup() {
  stop_nodes
  rm -f "$a_log" "$b_log"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for LOG PID LINE SECONDS NAME
wait_for() {
  local file="$1" pid="$2" line="$3" limit="$4" name="$5"
  for _ in $(seq $((limit * 5))); do
    grep -qx "$line" "$file" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; fail "$name exited before printing '$line' (its output is above)."; }
    sleep 0.2
  done
  cat "$file" >&2
  fail "$name did not print '$line' within $limit s (its output is above)."
}

# "1.23ms" / "850.00us" / "1.02s" -> microseconds
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : (u == "m") ? 60000000 : -1
    if (f < 0) { print "?"; exit 1 }
    printf "%.1f", n * f }'
}

# wrk_row NAME URL -> prints a table row
wrk_row() {
  local name="$1" url="$2" out body rps p50 p99
  body="$(curl -sS --max-time 10 "$url")" || fail "GET $url failed."
  [ "$body" = '{"message":"hello","value":42}' ] || fail "GET $url answered '$body'."
  timeout $((http_warmup + 30)) wrk -t"$threads" -c"$connections" -d"${http_warmup}s" "$url" >/dev/null || fail "the wrk warm-up of $url failed."
  out="$(timeout $((http_duration + 30)) wrk -t"$threads" -c"$connections" -d"${http_duration}s" --latency "$url")" || fail "wrk $url failed."
  echo "$out" | sed "s/^/[wrk $name] /" >&2
  grep -qE 'Non-2xx|Socket errors' <<<"$out" && fail "wrk saw errors on $url (above); the numbers would not be comparable."
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
  p50="$(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
  p99="$(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  [ -n "$rps" ] && [ -n "$p50" ] && [ -n "$p99" ] || fail "could not read Requests/sec, 50% and 99% from wrk's output for $url."
  echo "| $name | small JSON reply | $connections connections | $rps | $p50 | $p99 |"
}

rows=""
for wire in $wires; do
  for p in "$primary_port" "$((primary_port + 1))" "$((primary_port + 20000))" "$((primary_port + 20001))" "$http_port"; do
    port_free "$p" || fail "port $p on 127.0.0.1 is in use; free it or set PRIMARY_PORT / HTTP_PORT to other ports."
  done
  b_log="$(mktemp)"; a_log="$(mktemp)"
  log "wire $wire: starting node B"
  "$bin" b --primary-port "$primary_port" --replicas "$replicas" --wire "$wire" >"$b_log" 2>&1 &
  b_pid=$!
  wait_for "$b_log" "$b_pid" ready 120 "node B"
  log "wire $wire: starting node A (measures ${warmup}s warm-up + ${seconds}s per row)"
  "$bin" a --primary-port "$primary_port" --http-port "$http_port" --replicas "$replicas" --wire "$wire" \
    --warmup "$warmup" --seconds "$seconds" --callers "$callers" ${filter:+--filter "$filter"} >"$a_log" 2>&1 &
  a_pid=$!
  wait_for "$a_log" "$a_pid" "bench done" 900 "node A"
  grep '^row ' "$a_log" | sed 's/^row //' >&2
  rows+="$(grep '^row ' "$a_log" | sed 's/^row //')"$'\n'
  if [ -z "$no_http" ]; then
    log "wire $wire: HTTP through node A (wrk -t$threads -c$connections -d${http_duration}s after ${http_warmup}s warm-up)"
    rows+="$(wrk_row "HTTP via node A, replicas on A" "http://127.0.0.1:$http_port/local")"$'\n'
    rows+="$(wrk_row "HTTP via node A, replicas on B ($wire)" "http://127.0.0.1:$http_port/remote")"$'\n'
  fi
  stop_nodes
  rm -f "$a_log" "$b_log"; a_log=""; b_log=""
done

heading="Two Serve nodes on 127.0.0.1 (separate processes, Orleans localhost clustering), $replicas replicas, default options; handle rows: ${warmup}s warm-up + ${seconds}s; $(nproc) cores shared by both nodes and wrk, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
table="| path | payload | callers | calls/s | p50 (µs) | p99 (µs) |"$'\n'"|---|---|---:|---:|---:|---:|"$'\n'"${rows%$'\n'}"
echo
echo "$heading"
echo
echo "$table"
if [ -n "$append" ]; then
  { echo; echo "$heading"; echo; echo "$table"; } >>"$append"
  log "table appended to $append"
fi
