#!/usr/bin/env bash
# HTTP benchmark: a raw ASP.NET Core minimal API next to the same reply from a Serve deployment behind Serve's HTTP
# ingress, both measured with wrk on loopback (127.0.0.1 only) in one run. Prints a markdown table row per server.
#   benchmarks/http/run.sh                      3 rounds of: warm-up 5 s, measure 15 s; 64 connections, 2 wrk threads
#   benchmarks/http/run.sh --append FILE        also append the table to FILE
#   WARMUP=5 DURATION=15 CONNECTIONS=64 THREADS=2 ROUNDS=3 RAW_PORT=18080 SERVE_PORT=18081 benchmarks/http/run.sh
# ROUNDS=N alternates raw, serve, raw, serve ... (a fresh server each time) and reports each side's median round, so
# that load from other processes that comes and goes hits both sides alike; each round is printed too.
# wrk and the servers share the machine's cores: on a small machine the client's own CPU use is part of the numbers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
project="$root/benchmarks/http/HttpBench/HttpBench.csproj"
bin="$root/benchmarks/http/HttpBench/bin/Release/net10.0/HttpBench"
warmup="${WARMUP:-5}"
duration="${DURATION:-15}"
connections="${CONNECTIONS:-64}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-3}"
raw_port="${RAW_PORT:-18080}"
serve_port="${SERVE_PORT:-18081}"
expected='{"message":"hello","value":42}'
append=""

while [ "$#" -gt 0 ]; do
  case "$1" in
    --append) append="${2:?--append needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

for v in warmup duration connections threads rounds raw_port serve_port; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "[http-bench] ERROR: ${v^^}='${!v}' must be a positive whole number" >&2; exit 2; }
done

log() { echo "[http-bench] $*" >&2; }
fail() { echo "[http-bench] ERROR: $*" >&2; exit 1; }

# wrk: from Debian's package when missing.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "wrk is not installed; installing it with apt-get"
    if ! { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq wrk; } >&2; then
      fail "could not install wrk with apt-get (no network or no package source?). Install wrk (Debian package 'wrk') and run again."
    fi
  else
    fail "wrk is not installed and this script cannot install it (needs root and apt-get). Install wrk (Debian: apt-get install -y wrk) and run again."
  fi
fi
command -v curl >/dev/null 2>&1 || fail "curl is needed to check the servers' replies; install curl and run again."

log "building $project (Release)"
timeout 600 dotnet build -c Release --nologo -v quiet "$project" >&2 || fail "the Release build of HttpBench failed (output above)."
[ -x "$bin" ] || fail "the build did not produce $bin."

server_pid=""
server_log=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$server_pid" 2>/dev/null; then
      log "server $server_pid did not stop within 10 s of SIGTERM; killing it"
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  [ -n "$server_log" ] && rm -f "$server_log"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# "1.23ms" / "850.00us" / "1.02s" / "2.00m" -> milliseconds
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
    if (f < 0) { print "?"; exit 1 }
    printf "%.2f", n * f }'
}

# run_one NAME MODE PORT -> sets rps, p50, p99
run_one() {
  local name="$1" mode="$2" port="$3" url="http://127.0.0.1:$3/hello" out body
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port on 127.0.0.1 is already in use; free it or set ${mode^^}_PORT to another port."
  fi
  server_log="$(mktemp)"
  log "$name: starting $bin $mode $port"
  "$bin" "$mode" "$port" >"$server_log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    grep -q '^listening on' "$server_log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$server_log" >&2; fail "$name: the server exited before it listened (its output is above)."; }
    sleep 0.2
  done
  grep -q '^listening on' "$server_log" || { cat "$server_log" >&2; fail "$name: the server did not listen within 60 s (its output is above)."; }
  body="$(curl -sS --max-time 10 "$url")" || fail "$name: GET $url failed."
  [ "$body" = "$expected" ] || fail "$name: GET $url answered '$body', expected '$expected'."

  log "$name: warm-up ${warmup}s"
  timeout $((warmup + 30)) wrk -t"$threads" -c"$connections" -d"${warmup}s" "$url" >/dev/null || fail "$name: the wrk warm-up failed."
  log "$name: measuring ${duration}s (wrk -t$threads -c$connections -d${duration}s --latency $url)"
  out="$(timeout $((duration + 30)) wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$url")" || fail "$name: wrk failed."
  echo "$out" | sed "s/^/[$name] /" >&2
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    fail "$name: wrk saw errors (non-2xx responses or socket errors, above); the numbers would not be comparable."
  fi
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  [ -n "$rps" ] && [ -n "$p50" ] && [ -n "$p99" ] || fail "$name: could not read Requests/sec, 50% and 99% from wrk's output."
  stop_server
  rm -f "$server_log"; server_log=""
}

# median VALUES... (by the first field of "rps p50 p99" lines: the round with the median requests/s)
median_round() { sort -n | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

raw_rounds="" serve_rounds="" round_rows=""
for r in $(seq "$rounds"); do
  run_one "raw" raw "$raw_port"
  raw_rounds+="$rps $p50 $p99"$'\n'
  round_rows+="| $r | raw | $rps | $p50 | $p99 |"$'\n'
  run_one "serve" serve "$serve_port"
  serve_rounds+="$rps $p50 $p99"$'\n'
  round_rows+="| $r | serve | $rps | $p50 | $p99 |"$'\n'
done
read -r raw_rps raw_p50 raw_p99 <<<"$(printf '%s' "$raw_rounds" | median_round)"
read -r serve_rps serve_p50 serve_p99 <<<"$(printf '%s' "$serve_rounds" | median_round)"
ratio="$(awk -v s="$serve_rps" -v r="$raw_rps" 'BEGIN { printf "%.2f", s / r }')"

table="$(cat <<EOF
| server | requests/s | p50 (ms) | p99 (ms) | requests/s vs raw |
|---|---:|---:|---:|---:|
| raw ASP.NET Core minimal API | $raw_rps | $raw_p50 | $raw_p99 | 1.00 |
| Serve deployment via HTTP ingress | $serve_rps | $serve_p50 | $serve_p99 | ${ratio}× |
EOF
)"
echo
if [ "$rounds" -gt 1 ]; then
  table="$(printf '%s\n\n%s\n\n%s' "$table" "Each round (the table above shows each side's median round by requests/s):" \
    "| round | server | requests/s | p50 (ms) | p99 (ms) |"$'\n'"|---:|---|---:|---:|---:|"$'\n'"${round_rows%$'\n'}")"
fi
heading="wrk -t$threads -c$connections -d${duration}s --latency (after ${warmup}s warm-up), GET /hello on 127.0.0.1, $rounds round(s), $(nproc) cores shared by wrk and the server, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$heading"
echo
echo "$table"
if [ -n "$append" ]; then
  { echo; echo "$heading"; echo; echo "$table"; } >>"$append"
  log "table appended to $append"
fi
