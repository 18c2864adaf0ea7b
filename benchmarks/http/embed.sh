#!/usr/bin/env bash
# Embedding HTTP benchmark (issue 14): 64 concurrent wrk connections on loopback, one sentence per request, POST /embed
# against all-MiniLM-L6-v2 (ONNX Runtime, CPU) served by
#   minimal    a hand-written ASP.NET Core minimal API calling one InferenceSession per request (ORT default threads)
#   serve-b1   Serve, one model run per request (no batching)
#   serve-b32  Serve, the Embeddings sample: [Batch(MaxBatchSize = 32, BatchWaitTimeoutMs = 5)]
# then a replicas × intra-op threads sweep. Prints one markdown table.
#   benchmarks/http/embed.sh                       warm-up 5 s, measure 15 s per configuration, one round
#   WARMUP=5 DURATION=15 CONNECTIONS=64 THREADS=2 PORT=18090 benchmarks/http/embed.sh [--append FILE]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
project="$root/benchmarks/http/EmbedBench/EmbedBench.csproj"
bin="$root/benchmarks/http/EmbedBench/bin/Release/net10.0/EmbedBench"
warmup="${WARMUP:-5}" duration="${DURATION:-15}" connections="${CONNECTIONS:-64}" threads="${THREADS:-2}" port="${PORT:-18090}"
append=""
[ "${1:-}" = "--append" ] && append="${2:?--append needs a file}"
log() { echo "[embed-bench] $*" >&2; }
fail() { echo "[embed-bench] ERROR: $*" >&2; exit 1; }
command -v wrk >/dev/null || fail "wrk is not installed (Debian: apt-get install -y wrk)."
timeout 600 dotnet build -c Release --nologo -v quiet "$project" >&2 || fail "the Release build of EmbedBench failed."

script="$(mktemp --suffix .lua)"
cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.body = '"A man is playing a guitar while his friend sings along."'
wrk.headers["Content-Type"] = "application/json"
LUA
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap 'stop_server; rm -f "$script"' EXIT
to_ms() { awk -v v="$1" 'BEGIN { n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
  f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : -1; if (f < 0) { print "?"; exit 1 }; printf "%.1f", n * f }'; }

rows=""
# run NAME ARGS... : one server configuration
run() {
  local name="$1"; shift
  local out server_log; server_log="$(mktemp)"
  "$bin" "$@" >"$server_log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do grep -q '^listening on' "$server_log" && break; kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
  grep -q '^listening on' "$server_log" || { cat "$server_log" >&2; fail "$name did not start."; }
  curl -sS --max-time 30 -X POST "http://127.0.0.1:$port/embed" -H 'content-type: application/json' -d '"check"' | grep -q '"dimensions":384' \
    || fail "$name: POST /embed did not answer an embedding."
  log "$name: warm-up ${warmup}s, then wrk -t$threads -c$connections -d${duration}s"
  timeout $((warmup + 60)) wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$script" "http://127.0.0.1:$port/embed" >/dev/null
  out="$(timeout $((duration + 60)) wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$script" "http://127.0.0.1:$port/embed")"
  echo "$out" | sed "s/^/[$name] /" >&2
  grep -qE 'Non-2xx|Socket errors' <<<"$out" && fail "$name: wrk saw errors (above)."
  local rps p50 p99
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  rows+="| $name | $rps | $p50 | $p99 |"$'\n'
  stop_server; rm -f "$server_log"
}

run "(a) minimal API, 1 session, ORT default threads" minimal "$port" 0
run "(a) minimal API, 1 session, IntraOpNumThreads 1" minimal "$port" 1
run "(b) Serve, no batching, 1 replica × NumCpus 1" serve-b1 "$port" 1 1
run "(c) Serve [Batch] 32, 1 replica × NumCpus 1" serve-b32 "$port" 1 1
run "(c) Serve [Batch] 32, 1 replica × NumCpus 2" serve-b32 "$port" 1 2
run "(c) Serve [Batch] 32, 2 replicas × NumCpus 1" serve-b32 "$port" 2 1
run "(b) Serve, no batching, 2 replicas × NumCpus 1" serve-b1 "$port" 2 1

heading="wrk -t$threads -c$connections -d${duration}s --latency (after ${warmup}s warm-up), POST /embed with one sentence, 127.0.0.1, $(nproc) cores shared by wrk and the server, $(date -u +%Y-%m-%dT%H:%MZ)"
table="| server | sentences/s | p50 (ms) | p99 (ms) |"$'\n'"|---|---:|---:|---:|"$'\n'"${rows%$'\n'}"
echo; echo "$heading"; echo; echo "$table"
[ -n "$append" ] && { echo; echo "$heading"; echo; echo "$table"; } >>"$append" && log "appended to $append"
exit 0
