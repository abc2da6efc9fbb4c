#!/usr/bin/env bash
# Soak test: a release build of `cardgate dev` (private PostgreSQL, demo data) under wrk at
# about half its measured capacity for SOAK_SECONDS, sampling the server's RSS, open file
# descriptors and database connections. Fails unless wrk saw no error, RSS grew by less than
# 10% after the warm-up, and neither descriptors nor connections grew.
#
# Usage: bench/soak.sh [seconds]   (default 600; also SOAK_SECONDS)
# Settings (environment): SOAK_WARMUP (60 s), SOAK_CONNECTIONS (8), SOAK_SAMPLE_EVERY (5 s),
# SOAK_PORT (18080), CARDGATE (target/release/cardgate). Traffic goes to 127.0.0.1 only.
set -euo pipefail

cd "$(dirname "$0")/.."
duration=${1:-${SOAK_SECONDS:-600}}
warmup=${SOAK_WARMUP:-60}
connections=${SOAK_CONNECTIONS:-8}
every=${SOAK_SAMPLE_EVERY:-5}
port=${SOAK_PORT:-18080}
binary=${CARDGATE:-target/release/cardgate}
base="http://127.0.0.1:$port"

command -v wrk >/dev/null || { echo "soak: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$binary" ] || { echo "soak: $binary is missing (cargo build --release -p cardgate)" >&2; exit 2; }
(( duration > warmup )) || { echo "soak: the run ($duration s) must outlast the warm-up ($warmup s)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/cardgate-soak.XXXXXX)
chmod 755 "$work"
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The server, quiet: a log line per request would measure the terminal.
CARDGATE__SERVER__LISTEN="127.0.0.1:$port" CARDGATE__LOG__FILTER=warn \
    "$binary" dev --data-dir "$work/dev" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 120); do
    curl -fs "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
    sleep 1
done
curl -fs "$base/readyz" >/dev/null || { echo "soak: the server is not ready" >&2; exit 1; }
pg_port=$(sed -n 's/.*private PostgreSQL on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/server.err" | head -n1)
[ -n "$pg_port" ] || { echo "soak: cannot tell the PostgreSQL port" >&2; exit 1; }

# Half the requests are a developer's pull and push (password checked every time, as docker
# does), half anonymous pulls of a public image.
cat >"$work/requests.lua" <<'LUA'
local auth = "Basic " .. "Y2Fyb2w6Y2Fyb2wtZGV2LXBhc3N3b3Jk" -- carol:carol-dev-password
local n = 0
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local service = os.getenv("SOAK_SERVICE")
request = function()
    n = n + 1
    if n % 2 == 0 then
        return wrk.format("GET", "/v1/registry?service=" .. service .. "&scope=repository:acme/web:pull,push",
            { ["Authorization"] = auth })
    end
    return wrk.format("GET", "/v1/registry?service=" .. service .. "&scope=repository:acme/base:pull")
end
delay = function()
    return pause
end
LUA

service=$(sed -n 's/^ *service: //p' "$work/server.out" | head -n1)
[ -n "$service" ] || { echo "soak: cannot tell the service" >&2; exit 1; }
export SOAK_SERVICE=$service

# Errors wrk reports: socket errors and non-2xx answers.
errors_of() {
    awk '/Socket errors/ { gsub(/,/, ""); for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) e += $i }
         /Non-2xx or 3xx responses/ { e += $NF }
         END { print e + 0 }' "$1"
}
rate_of() { awk '/^Requests\/sec/ { printf "%d", $2 }' "$1"; }

echo "soak: measuring capacity (10 s, $connections connections)..."
wrk -t 2 -c "$connections" -d 10s -s "$work/requests.lua" "$base" >"$work/capacity.txt"
capacity=$(rate_of "$work/capacity.txt")
(( capacity > 0 )) || { cat "$work/capacity.txt"; echo "soak: no capacity measured" >&2; exit 1; }
# Each connection waits between requests so that all of them together send half of it: at
# least 10 ms apart (a shorter pause rounds to nothing), with as many connections as needed.
delay_ms=$(( 1000 * connections * 2 / capacity ))
(( delay_ms >= 10 )) || delay_ms=10
paced=$(( (capacity / 2 * delay_ms + 999) / 1000 ))
(( paced >= connections )) || paced=$connections
echo "soak: capacity $capacity requests/s; $duration s at about $(( capacity / 2 ))/s ($paced connections, pause ${delay_ms} ms each)"

sample() {
    local rss fds conns hex
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status")
    fds=$(find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    hex=$(printf '%04X' "$pg_port")
    # Established connections to PostgreSQL's port (the server's pool is the only client).
    conns=$(awk -v p=":$hex" 'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == p { c++ } END { print c + 0 }' \
        /proc/net/tcp /proc/net/tcp6)
    echo "$1 $rss $fds $conns"
}

SOAK_DELAY_MS=$delay_ms wrk -t 2 -c "$paced" -d "${duration}s" --timeout 10s --latency \
    -s "$work/requests.lua" "$base" >"$work/soak.txt" &
wrk_pid=$!
started=$(date +%s)
: >"$work/samples.txt"
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep "$every"
    kill -0 "$server_pid" 2>/dev/null || { echo "soak: the server died" >&2; exit 1; }
    sample $(( $(date +%s) - started )) >>"$work/samples.txt"
done
wait "$wrk_pid"
cat "$work/soak.txt"

echo "seconds rss_kib fds db_connections"
cat "$work/samples.txt"
errors=$(errors_of "$work/soak.txt")
rate=$(rate_of "$work/soak.txt")
# Baseline: the first three samples after the warm-up; end: the last three.
read -r base_rss base_fds base_conns < <(awk -v w="$warmup" '$1 >= w && n < 3 { n++; r += $2; if ($3 > f) f = $3; if ($4 > c) c = $4 }
    END { if (n) printf "%d %d %d\n", r / n, f, c; else print "0 0 0" }' "$work/samples.txt")
read -r end_rss end_fds end_conns < <(tail -n 3 "$work/samples.txt" | awk '{ n++; r += $2; if ($3 > f) f = $3; if ($4 > c) c = $4 }
    END { printf "%d %d %d\n", r / n, f, c }')
max_rss=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$work/samples.txt")
growth=$(awk -v a="$base_rss" -v b="$end_rss" 'BEGIN { if (a > 0) printf "%.1f", (b - a) * 100 / a; else print "inf" }')

echo
echo "soak summary: $duration s, $rate requests/s (capacity $capacity), errors $errors"
echo "  RSS after warm-up ${base_rss} KiB, at the end ${end_rss} KiB (growth ${growth}%), highest ${max_rss} KiB"
echo "  open fds after warm-up ${base_fds}, at the end ${end_fds}"
echo "  database connections after warm-up ${base_conns}, at the end ${end_conns}"

failed=0
(( errors == 0 )) || { echo "FAIL: $errors errors"; failed=1; }
(( base_rss > 0 )) || { echo "FAIL: no sample after the warm-up"; failed=1; }
awk -v g="$growth" 'BEGIN { exit !(g == "inf" || g >= 10) }' && { echo "FAIL: RSS grew by ${growth}%"; failed=1; }
(( end_fds <= base_fds )) || { echo "FAIL: open fds grew from $base_fds to $end_fds"; failed=1; }
(( end_conns <= base_conns )) || { echo "FAIL: database connections grew from $base_conns to $end_conns"; failed=1; }
(( failed == 0 )) && echo "soak: PASS"
exit "$failed"
