#!/usr/bin/env bash
# `just bench`: builds release, starts cardgate (`cardgate dev`: a private PostgreSQL, migrated,
# with the demo policy) on 127.0.0.1, seeds a large store (bench/seed.sql), sets up the bench
# user's credentials through the admin API, measures the machine's single-core ES256 sign rate
# (`openssl speed`), then drives the token endpoint with wrk (bench/token.lua), one scenario
# after the other. Prints the results and writes them to bench/results.md.
#
# Environment: BENCH_DURATION (s per scenario, 15), BENCH_CONNECTIONS (64), BENCH_THREADS (wrk
# threads, 1), BENCH_PORT (18080), BENCH_DIR (/var/tmp/cardgate-bench, emptied first),
# BENCH_OPENSSL_SECONDS (10), BENCH_LOG_FILTER (cardgate's log filter, info), BENCH_INSTANCES
# (1; with N > 1, scenario 7 is also run through haproxy in front of one instance, then in front
# of N instances on the same database: `cardgate serve` processes next to the dev one, on the
# ports after BENCH_PORT; needs haproxy), BENCH_ONLY (`events`: only scenarios 8 and 9, the
# registry's notifications, after the seeding).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-15}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-1}
PORT=${BENCH_PORT:-18080}
DIR=${BENCH_DIR:-/var/tmp/cardgate-bench}
OPENSSL_SECONDS=${BENCH_OPENSSL_SECONDS:-10}
RESULTS=bench/results.md
BASE=http://127.0.0.1:$PORT
SERVICE=registry.dev.local
TOKEN_PATH="/v1/registry?service=$SERVICE"
ORGS=1000 USERS=10000 ROBOTS=1000 IMAGES=100000 LARGE_CARDS=1000000
INSTANCES=${BENCH_INSTANCES:-1}
EVENTS_SECRET=bench-registry-events-secret

tools=(wrk psql openssl curl jq)
[ "$INSTANCES" -gt 1 ] && tools+=(haproxy)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done

cargo build --release -p cardgate

if curl -s -o /dev/null "$BASE/healthz"; then
    echo "bench: something already answers on port $PORT; set BENCH_PORT" >&2
    exit 1
fi
rm -rf "$DIR"
mkdir -p "$DIR"
CARDGATE__SERVER__LISTEN=127.0.0.1:$PORT CARDGATE__LOG__FILTER=${BENCH_LOG_FILTER:-info} \
    CARDGATE__REGISTRY__EVENTS_SECRET=$EVENTS_SECRET \
    target/release/cardgate dev --data-dir "$DIR" >"$DIR/cardgate.out" 2>"$DIR/cardgate.log" &
PID=$!
PIDS=("$PID")
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

for _ in $(seq 300); do
    curl -sf "$BASE/readyz" >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || { cat "$DIR/cardgate.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf "$BASE/readyz" >/dev/null

PGPORT=$(grep -o 'private PostgreSQL on 127.0.0.1:[0-9]*' "$DIR/cardgate.log" | head -1 | cut -d: -f2 || true)
[ -n "$PGPORT" ] || { echo "bench: cardgate did not start:" >&2; cat "$DIR/cardgate.log" >&2; exit 1; }
export PGHOST=127.0.0.1 PGPORT PGUSER=cardgate PGDATABASE=cardgate
PGPASSWORD=$(cat "$DIR/postgres.password")
export PGPASSWORD

seed() {
    psql -q -X -v people="$1" -v orgs=$ORGS -v users=$USERS -v robots=$ROBOTS \
        -v first_image="$2" -v last_image="$3" -f bench/seed.sql
}
cards() { psql -At -X -c "SELECT count(*) FROM cards"; }

echo "seeding: $ORGS orgs, $USERS users, $ROBOTS robots, $IMAGES images..."
start=$(date +%s)
seed 1 1 $IMAGES
echo "seeded $(cards) cards, $(psql -At -X -c 'SELECT count(*) FROM links') links in $(($(date +%s) - start)) s"

# The bench user's password and session, through the admin API (the real code paths).
admin_login() {
    curl -sf -X POST "$BASE/v1/admin/login" -H 'content-type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$2\"}" | jq -r .token
}
ADMIN=$(admin_login admin admin-dev-password)
curl -sf -X PUT "$BASE/v1/admin/users/u00001/password" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' -d '{"password": "bench-password"}' >/dev/null
SESSION=$(admin_login u00001 bench-password)
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
SESSION_AUTH=$(basic u00001 "$SESSION")
PASSWORD_AUTH=$(basic u00001 bench-password)

# u00001 is a developer of o0001: pull (and push) on its private images.
PRIVATE=o0001/app-000001
SECOND=o0001/app-001001
PUBLIC=o0010/app-000010

echo "openssl speed -seconds $OPENSSL_SECONDS ecdsap256 (one core)..."
OPENSSL=$(openssl speed -seconds "$OPENSSL_SECONDS" ecdsap256 2>/dev/null | awk '/nistp256/ {print $(NF-1)}')
echo "openssl: $OPENSSL signs/s"

ROWS=()
declare -A RATE
# scenario name, path, auth, [wrk connections], [env...]
scenario() {
    local key=$1 name=$2 path=$3 auth=$4 connections=${5:-$CONNECTIONS}
    shift 5 || shift $#
    local granted
    granted=$(curl -s -H "authorization: $auth" "$BASE$path" | jq -r '.scope // .error')
    [ -z "$auth" ] && granted=$(curl -s "$BASE$path" | jq -r '.scope // .error')
    echo "== $name (granted: ${granted:-nothing})"
    echo 5 >"/proc/$PID/clear_refs"
    local out
    out=$(env BENCH_PATH="$path" BENCH_AUTH="$auth" BENCH_RUN="$(date +%s%N)" "$@" \
        wrk -t"$THREADS" -c"$connections" -d"${DURATION}s" --latency -s bench/token.lua "$BASE")
    local line
    line=$(grep '^RESULT' <<<"$out")
    local rss
    rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status")
    local row
    row=$(awk -v l="$line" -v o="$OPENSSL" -v name="$name" -v rss="$rss" 'BEGIN {
        n = split(l, kv, /[ =]/); for (i = 2; i < n; i += 2) v[kv[i]] = kv[i + 1];
        rate = v["requests"] / (v["duration_us"] / 1e6);
        printf "%s|%.0f|%.2f|%.2f|%.2f|%.2f|%d|%s", name, rate, rate / o,
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["p999_us"] / 1000, v["errors"], rss }')
    RATE[$key]=$(cut -d'|' -f2 <<<"$row")
    ROWS+=("$row")
    echo "$row" | awk -F'|' '{printf "   %s tokens/s (%s x openssl), p50 %s ms, p99 %s ms, p99.9 %s ms, %s errors, peak RSS %s MiB\n", $2, $3, $4, $5, $6, $7, $8}'
}

# Registry notifications (scenarios 8 and 9): scenario 1 without them, then in the same run
# while the registry reports 1,000 manifest pulls a second (10 connections, each posting an
# envelope of 25 events 225 ms after its previous answer, bench/background.lua); then the
# audit trail must hold every event answered 200 (a refused envelope, which the registry would send again, none).
events_scenario() {
    local before after sent errors log="$DIR/background-events.out"
    before=$(psql -At -X -c "SELECT count(*) FROM registry_activity")
    scenario e0 "8 = 1 without registry notifications (same run as 9)" \
        "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$SESSION_AUTH"
    env BENCH_KIND=events BENCH_RUN="$(date +%s%N)" BENCH_DELAY_MS=225 \
        BENCH_EVENTS_PER_ENVELOPE=25 BENCH_EVENTS_SECRET="$EVENTS_SECRET" BENCH_EVENTS_REPOSITORY="$PRIVATE" \
        wrk -t1 -c10 -d"$((DURATION + 1))s" -s bench/background.lua "$BASE" >"$log" &
    local events_pid=$!
    sleep 0.5
    scenario e1 "9 = 1 while the registry reports 1,000 pulls/s" \
        "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$SESSION_AUTH"
    wait "$events_pid"
    sent=$(($(grep -o 'requests=[0-9]*' "$log" | cut -d= -f2) * 25))
    errors=$(($(grep -o 'errors=[0-9]*' "$log" | cut -d= -f2) * 25))
    after=$(psql -At -X -c "SELECT count(*) FROM registry_activity")
    EVENTS_RESULT=$(awk -v a="${RATE[e1]}" -v b="${RATE[e0]}" -v s="$sent" -v e="$errors" \
        -v r="$((after - before))" -v d="$((DURATION + 1))" 'BEGIN {
        printf "with notifications %.2f x without (target >= 0.9); events sent %d (%.0f/s), %d of them in refused envelopes, %d recorded (target: sent - refused)", a / b, s, s / d, e, r }')
    echo "   $EVENTS_RESULT"
}
if [ "${BENCH_ONLY:-}" = events ]; then
    events_scenario
    exit 0
fi

scenario s1 "1 session token, pull on a private image" \
    "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$SESSION_AUTH"
scenario s2 "2 password (argon2id), same user and scope" \
    "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$PASSWORD_AUTH"
# Scenario 3's decisions, from /metrics: answered from the cache (hits) or computed (misses).
metric() { curl -s "$BASE/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
decisions() {
    echo "$(metric 'cardgate_cache_requests_total{cache="decisions",result="hit"}')" \
        "$(metric 'cardgate_cache_requests_total{cache="decisions",result="miss"}')"
}
read -r hits0 misses0 <<<"$(decisions)"
scenario s3 "3 push+pull on two scopes, 10% new repositories" \
    "$TOKEN_PATH&scope=repository:$PRIVATE:push,pull" "$SESSION_AUTH" "$CONNECTIONS" \
    BENCH_NEW_SHARE=0.1 BENCH_NEW_PREFIX=o0001/new
read -r hits1 misses1 <<<"$(decisions)"
S3_CACHE=$(awk -v h=$((hits1 - hits0)) -v m=$((misses1 - misses0)) -v d="$DURATION" 'BEGIN {
    printf "%.0f decisions/s from the cache, %.0f/s computed (first pushes), %.1f%% hits", h / d, m / d, 100 * h / (h + m) }')
echo "   scenario 3: $S3_CACHE"
scenario s4 "4 anonymous pull of a public image" \
    "$TOKEN_PATH&scope=repository:$PUBLIC:pull" ""

# p99 at half of scenario 1's peak rate: wrk paces each connection (closed loop), a request
# after a random pause of 10 ms on average (exponentially distributed: together the connections
# send a Poisson stream, as independent clients do) plus its latency (about 1 ms), so the
# connections are as many as that rate needs.
HALF=$((RATE[s1] / 2))
DELAY=10
PACED=$(((HALF * 11 + 999) / 1000))
scenario s1half "1 at half its peak rate ($HALF/s asked: $PACED connections, $DELAY ms apart on average)" \
    "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$SESSION_AUTH" "$PACED" BENCH_DELAY_MS=$DELAY

# Churn: 1,000 password users (u00101..u01100, argon2id) and 1,000 session-token users
# (u01101..u02100), each pulling its own private image (user n is a member of image n's org),
# a random user per request; first alone, then with a background of 10 first pushes,
# 10 `docker login`s (password grant, offline) and 1 admin change (a grant added, removed, a
# member's role changed, in turn) per second.
echo "churn: 1,000 password users and 1,000 session-token users..."
HASH=$(printf '%s' churn-password | target/release/cardgate hash-password)
psql -q -X -At -F ' ' -v hash="$HASH" >"$DIR/churn.users" <<'SQL'
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO cards (id, slug, type, markers, data)
SELECT gen_random_uuid(), 'authentication-password-' || replace(gen_random_uuid()::text, '-', ''),
       'authentication-password@1.0.0', ARRAY[u.slug],
       jsonb_build_object('actor', u.id, 'hash', :'hash')
FROM generate_series(101, 1100) AS i JOIN cards u ON u.slug = 'user-u' || lpad(i::text, 5, '0');
CREATE TEMP TABLE churn_sessions ON COMMIT DROP AS
SELECT i, u.id AS user_id, u.slug, gen_random_uuid() AS id,
       encode(sha256(gen_random_uuid()::text::bytea), 'hex') AS secret
FROM generate_series(1101, 2100) AS i JOIN cards u ON u.slug = 'user-u' || lpad(i::text, 5, '0');
INSERT INTO cards (id, slug, type, markers, data)
SELECT id, 'session-' || replace(id::text, '-', ''), 'session@1.0.0', ARRAY[slug],
       jsonb_build_object('actor', user_id,
                          'expiration', to_char((now() + interval '1 day') AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                          'token', jsonb_build_object('authentication',
                                                      encode(sha256(secret::bytea), 'hex')))
FROM churn_sessions;
SELECT 'u' || lpad(i::text, 5, '0'), 'churn-password',
       'o' || lpad((((i - 1) % 1000) + 1)::text, 4, '0') || '/app-' || lpad(i::text, 6, '0')
FROM generate_series(101, 1100) AS i
UNION ALL
SELECT 'u' || lpad(i::text, 5, '0'), id || '.' || secret,
       'o' || lpad((((i - 1) % 1000) + 1)::text, 4, '0') || '/app-' || lpad(i::text, 6, '0')
FROM churn_sessions;
COMMIT;
SQL
while read -r name secret repository; do
    printf '%s\t%s\n' "$(basic "$name" "$secret")" "$TOKEN_PATH&scope=repository:$repository:pull"
done <"$DIR/churn.users" >"$DIR/churn.requests"
echo "churn: $(wc -l <"$DIR/churn.requests") users"
# Each user once before measuring: the first check of each password is an argon2id check
# (1,000 of them take longer than a scenario); the scenarios measure the caches under churn.
warm() {
    echo "churn: warming the caches of $1, each user once..."
    BASE=$1 xargs -P 4 -d '\n' -n 1 sh -c \
        'curl -s -o /dev/null -H "authorization: ${1%%	*}" "$BASE${1#*	}"' _ <"$DIR/churn.requests"
}
warm "$BASE"

# The background's admin: user-admin; its changes touch churn users (u00150's grant, u01150's
# role in o0150).
BACKGROUND=(
    "push -c10 BENCH_PATH=$TOKEN_PATH BENCH_PREFIX=o0001/churn"
    "login -c10 BENCH_PATH=/v1/registry BENCH_FORM=grant_type=password&username=u00001&password=bench-password&service=$SERVICE&client_id=docker&access_type=offline"
    "admin -c1 BENCH_ADMIN=$ADMIN BENCH_GRANT_HOLDER=user-u00150 BENCH_GRANT_REPOSITORY=o0151/app-000151 BENCH_MEMBER_PATH=/v1/admin/orgs/o0150/members/u01150"
)
# churn KEY NAME BACKGROUND [CONNECTIONS [DELAY_MS]]
churn() {
    local key=$1 name=$2 background=$3 connections=${4:-$CONNECTIONS} delay=${5:-0}
    echo "== $name"
    echo 5 >"/proc/$PID/clear_refs"
    local pids=() logs=()
    if [ "$background" = yes ]; then
        for job in "${BACKGROUND[@]}"; do
            read -r kind job_connections vars <<<"$job"
            local log="$DIR/background-$kind.out"
            # shellcheck disable=SC2086
            env BENCH_KIND="$kind" BENCH_AUTH="$SESSION_AUTH" BENCH_RUN="$(date +%s%N)" \
                BENCH_DELAY_MS=1000 $vars \
                wrk -t1 "$job_connections" -d"${DURATION}s" -s bench/background.lua "$BASE" >"$log" &
            pids+=($!)
            logs+=("$log")
        done
    fi
    local out
    out=$(env BENCH_USERS="$DIR/churn.requests" BENCH_DELAY_MS="$delay" \
        wrk -t"$THREADS" -c"$connections" -d"${DURATION}s" --latency -s bench/churn.lua "$BASE")
    for pid in "${pids[@]}"; do wait "$pid"; done
    # The admin background adds and removes a grant in turn: leave it removed for the next run.
    curl -s -o /dev/null -X DELETE -H "authorization: Bearer $ADMIN" \
        "$BASE/v1/admin/grants?holder=user-u00150&repository=o0151/app-000151"
    local line rss row
    line=$(grep '^RESULT' <<<"$out")
    rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$PID/status")
    row=$(awk -v l="$line" -v o="$OPENSSL" -v name="$name" -v rss="$rss" 'BEGIN {
        n = split(l, kv, /[ =]/); for (i = 2; i < n; i += 2) v[kv[i]] = kv[i + 1];
        rate = v["requests"] / (v["duration_us"] / 1e6);
        printf "%s|%.0f|%.2f|%.2f|%.2f|%.2f|%d|%s", name, rate, rate / o,
            v["p50_us"] / 1000, v["p99_us"] / 1000, v["p999_us"] / 1000, v["errors"], rss }')
    RATE[$key]=$(cut -d'|' -f2 <<<"$row")
    ROWS+=("$row")
    echo "$row" | awk -F'|' '{printf "   %s tokens/s (%s x openssl), p50 %s ms, p99 %s ms, p99.9 %s ms, %s errors, peak RSS %s MiB\n", $2, $3, $4, $5, $6, $7, $8}'
    P99[$key]=$(cut -d'|' -f5 <<<"$row")
    ERRORS[$key]=$(cut -d'|' -f7 <<<"$row")
    for log in "${logs[@]}"; do
        local result
        result=$(grep '^BACKGROUND' "$log" || echo "BACKGROUND kind=$log requests=0 errors=1")
        echo "   $result"
        BACKGROUND_RESULTS+=("$result")
    done
}
declare -A P99 ERRORS
BACKGROUND_RESULTS=()
churn c0 "6 churn: 2,000 users, no background" no
churn c1 "7 churn: 2,000 users, background of pushes, logins and admin changes" yes
# Scenario 7's latency when the server is not saturated: half of scenario 6's rate, paced as
# scenario 1's half-rate run is.
CHURN_HALF=$((RATE[c0] / 2))
CHURN_PACED=$(((CHURN_HALF * 11 + 999) / 1000))
churn c1half "7 at half of 6's rate ($CHURN_HALF/s asked: $CHURN_PACED connections, $DELAY ms apart on average)" \
    yes "$CHURN_PACED" "$DELAY"
events_scenario

current=$(cards)
grow=$(((LARGE_CARDS - current + 1) / 2))
echo "growing the store to $LARGE_CARDS cards ($grow more images)..."
start=$(date +%s)
seed 0 $((IMAGES + 1)) $((IMAGES + grow))
LARGE=$(cards)
echo "$LARGE cards in $(($(date +%s) - start)) s"
# The vacuum autovacuum would start after that many inserts, done now: scenario 5 measures a
# grown store, not the bulk load's aftermath sharing the cores.
psql -q -X -c "VACUUM (ANALYZE) cards" -c "VACUUM (ANALYZE) links"
scenario s5 "5 = 1 against $LARGE cards" \
    "$TOKEN_PATH&scope=repository:$PRIVATE:pull" "$SESSION_AUTH"

# A fleet: more instances on the same database (the dev one's keys and settings), haproxy in
# front of the first one, then of all of them (round robin, checks on /readyz).
if [ "$INSTANCES" -gt 1 ]; then
    BACKENDS=("127.0.0.1:$PORT")
    for i in $(seq 1 $((INSTANCES - 1))); do
        port=$((PORT + i))
        CARDGATE_PROFILE=dev CARDGATE__SERVER__LISTEN=127.0.0.1:$port \
            CARDGATE__LOG__FILTER=${BENCH_LOG_FILTER:-info} \
            CARDGATE__TOKEN__KEY="$DIR/cardgate-dev.pem" \
            CARDGATE__TOKEN__CERTIFICATE="$DIR/cardgate-dev.crt" \
            CARDGATE__DATABASE__URL="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE" \
            CARDGATE__DATABASE__MIGRATE=false \
            target/release/cardgate serve >"$DIR/cardgate-$i.out" 2>"$DIR/cardgate-$i.log" &
        PIDS+=("$!")
        BACKENDS+=("127.0.0.1:$port")
    done
    for backend in "${BACKENDS[@]}"; do
        for _ in $(seq 120); do
            curl -sf "http://$backend/readyz" >/dev/null 2>&1 && break
            sleep 0.5
        done
        curl -sf "http://$backend/readyz" >/dev/null
    done
    # haproxy in front of the first `count` instances, on port `front`.
    balancer() {
        local count=$1 front=$2 config="$DIR/haproxy-$1.cfg"
        {
            printf 'global\n    maxconn 4096\n'
            printf 'defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n'
            printf '    timeout server 30s\n    retries 3\n    option redispatch 1\n'
            printf 'frontend tokens\n    bind 127.0.0.1:%s\n    default_backend cardgate\n' "$front"
            printf 'backend cardgate\n    balance roundrobin\n    option httpchk\n'
            printf '    http-check send meth GET uri /readyz\n'
            for i in $(seq 0 $((count - 1))); do
                printf '    server c%s %s check inter 1s\n' "$i" "${BACKENDS[$i]}"
            done
        } >"$config"
        haproxy -db -f "$config" >"$DIR/haproxy-$count.log" 2>&1 &
        PIDS+=("$!")
        for _ in $(seq 60); do
            curl -sf "http://127.0.0.1:$front/readyz" >/dev/null 2>&1 && break
            sleep 0.5
        done
    }
    # Growing the store was a bulk load, which empties every cache: warm each instance again.
    for backend in "${BACKENDS[@]}"; do warm "http://$backend"; done
    balancer 1 $((PORT + 100))
    balancer "$INSTANCES" $((PORT + 101))
    BASE=http://127.0.0.1:$((PORT + 100)) churn f1 "7 through haproxy, one instance" yes
    BASE=http://127.0.0.1:$((PORT + 101)) churn fn "7 through haproxy, $INSTANCES instances" yes
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
{
    echo "# cardgate bench"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load generator on the same machine."
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per scenario; store: $ORGS orgs, $USERS users, $ROBOTS robots, $IMAGES images (scenario 5: $LARGE cards)."
    echo "openssl speed ecdsap256, one core: **$OPENSSL** signs/s."
    echo
    echo "| scenario | tokens/s | x openssl | p50 ms | p99 ms | p99.9 ms | errors | peak RSS MiB |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
    echo
    echo "Targets: scenario 1 >= 0.4 x openssl: $(ratio "${RATE[s1]}" "$OPENSSL");" \
        "scenario 2 >= 0.8 x scenario 1: $(ratio "${RATE[s2]}" "${RATE[s1]}");" \
        "scenario 5 >= 0.8 x scenario 1: $(ratio "${RATE[s5]}" "${RATE[s1]}");" \
        "p99 <= 5 ms at half rate; peak RSS <= 128 MiB."
    echo
    echo "Churn: with background >= 0.8 x without: $(ratio "${RATE[c1]}" "${RATE[c0]}");" \
        "p99 <= 10 ms with background at half of 6's rate: ${P99[c1half]} ms (saturated:" \
        "${P99[c0]} ms without, ${P99[c1]} ms with); errors: ${ERRORS[c1]} and" \
        "${ERRORS[c1half]}; background: $(printf '%s; ' "${BACKGROUND_RESULTS[@]}")"
    echo
    echo "Scenario 3: $S3_CACHE."
    echo
    echo "Registry notifications (scenarios 8, 9): $EVENTS_RESULT."
    if [ "$INSTANCES" -gt 1 ]; then
        echo
        echo "Through haproxy, churn with its background: $INSTANCES instances give" \
            "$(ratio "${RATE[fn]}" "${RATE[f1]}") x one instance (p99 ${P99[f1]} and ${P99[fn]} ms," \
            "errors ${ERRORS[f1]} and ${ERRORS[fn]}; all on this machine's $(nproc) cores, with wrk" \
            "and haproxy; peak RSS is the dev instance's)."
    fi
} >"$RESULTS"
echo
cat "$RESULTS"
