#!/usr/bin/env bash
# The whole table of docs/performance.md in one go: runs webex-bench in every mode the
# page reports and prints one markdown table of the medians (each mode's full output,
# every run and its medians, is kept in $OUT). The floor rows are not the bot: they are
# the least a bot must do per message (crates/bench/src/floor.rs), the yardstick for the
# bot's CPU per answer. The steal column is the machine's CPU time the hypervisor took.
#
#   cargo build --release -p webex-chatbot -p relay -p bench
#   crates/bench/run-all.sh                 # from the repository root
#
# Environment: B (folder of the binaries, default target/release), BOT (the bot binary,
# default $B/webex-chatbot), RUNS (runs per mode, default 3), SECONDS_PER_RUN (default
# 10), OUT (folder for the raw outputs, default a new temporary folder), LABEL (what the
# bot binary was built from, for the output; default the checkout's commit).
set -euo pipefail

B=${B:-target/release}
BENCH="$B/webex-bench"
BOT=${BOT:-$B/webex-chatbot}
RELAY=${RELAY:-$B/webex-relay}
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-10}
OUT=${OUT:-$(mktemp -d -t webex-bench.XXXXXX)}
LABEL=${LABEL:-commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
mkdir -p "$OUT"

for bin in "$BENCH" "$BOT" "$RELAY"; do
    [ -x "$bin" ] || { echo "missing $bin: cargo build --release -p webex-chatbot -p relay -p bench" >&2; exit 1; }
done
[ -d personalities ] || { echo "run from the repository root (personalities/ not found)" >&2; exit 1; }
# 2,000 conversations need ~4,000 open files here and ~2,000 in the bot.
ulimit -n 20000 2>/dev/null || echo "warning: ulimit -n is $(ulimit -n); slow-llm may fail" >&2

# The median row of one webex-bench output, as "name=value" lines (column names from
# the header of its table).
medians() {
    awk -F'|' '
        /^\| run \|/ { for (i = 2; i < NF; i++) { h = $i; gsub(/^ +| +$/, "", h); name[i] = h } }
        /^\| \*\*median\*\* \|/ { for (i = 3; i < NF; i++) { v = $i; gsub(/^ +| +$/, "", v); print name[i] "=" v } }
    ' "$1"
}

# col FILE NAME: one median.
col() { medians "$1" | awk -F= -v n="$2" '$1 == n { print $2 }'; }

run() { # run NAME ARGS...: one mode, its output kept in $OUT/NAME.txt
    local name=$1
    shift
    echo "== $name: webex-bench $*" >&2
    "$BENCH" "$@" --runs "$RUNS" >"$OUT/$name.txt" 2>"$OUT/$name.err"
    cat "$OUT/$name.txt" >&2
}

run generator --mode generator --rate 1000 --seconds "$SECS"
run direct-1000 --mode direct --bot-bin "$BOT" --rate 1000 --seconds "$SECS"
run direct-600 --mode direct --bot-bin "$BOT" --rate 600 --seconds "$SECS"
run direct-200 --mode direct --bot-bin "$BOT" --rate 200 --seconds "$SECS"
run relay-200 --mode relay --bot-bin "$BOT" --relay-bin "$RELAY" --rate 200 --seconds "$SECS"
run slow-llm --mode slow-llm --bot-bin "$BOT" --conversations 2000 --llm-delay-ms 2000
run slow-llm-nostream --mode slow-llm --bot-bin "$BOT" --conversations 2000 --llm-delay-ms 2000 --streaming off
run direct-200-nostream --mode direct --bot-bin "$BOT" --rate 200 --seconds "$SECS" --streaming off
run stream-on --mode slow-llm --bot-bin "$BOT" --conversations 200 --llm-delay-ms 6000 --streaming on
run stream-off --mode slow-llm --bot-bin "$BOT" --conversations 200 --llm-delay-ms 6000 --streaming off
run floor-1000 --mode floor --rate 1000 --seconds "$SECS"
run floor-600 --mode floor --rate 600 --seconds "$SECS"
run floor-200 --mode floor --rate 200 --seconds "$SECS"

echo
echo "Generator alone:"
grep -E '^\| (closed|open) loop' "$OUT/generator.txt" |
    awk -F'|' '{ printf "- %s: %s req/s, p50 %s ms, p99 %s ms, CPU %s %%\n", $2, $4, $5, $6, $7 }' |
    sed 's/  */ /g'
echo
echo "Bot: $LABEL ($BOT); medians of $RUNS runs; raw outputs in $OUT"
echo
echo "| mode | rate | streaming | ack p50 | ack p99 | e2e p50 | e2e p99 | replies/s | lost | dup | idle RSS | peak RSS | bot CPU | CPU ms/answer | Webex calls/answer | steal |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
line() { # line FILE MODE RATE STREAMING
    local f="$OUT/$1.txt" cpu
    cpu="$(col "$f" 'bot CPU %') %"
    if [ "$(col "$f" 'relay CPU %')" != "0" ]; then
        cpu="$cpu (relay $(col "$f" 'relay CPU %') %)"
    fi
    echo "| $2 | $3 | $4 | $(col "$f" 'ack p50 ms') ms | $(col "$f" 'ack p99 ms') ms | $(col "$f" 'e2e p50 ms') ms | $(col "$f" 'e2e p99 ms') ms | $(col "$f" 'replies/s') | $(col "$f" lost) | $(col "$f" dup) | $(col "$f" 'idle RSS MiB') MiB | $(col "$f" 'peak RSS MiB') MiB | $cpu | $(col "$f" 'bot CPU ms/answer') | $(col "$f" 'Webex calls/answer') | $(col "$f" 'steal %') % |"
}
line direct-1000 direct 1,000/s on
line direct-600 direct 600/s on
line direct-200 direct 200/s on
line direct-200-nostream direct 200/s off
line relay-200 'relay → bot' 200/s on
line slow-llm 'slow-llm, 2,000 conversations, 2 s LLM' 'all at once' on
line slow-llm-nostream 'slow-llm, 2,000 conversations, 2 s LLM' 'all at once' off
line stream-on 'slow-llm, 200 conversations, 6 s LLM' 'all at once' on
line stream-off 'slow-llm, 200 conversations, 6 s LLM' 'all at once' off
line floor-1000 'floor (yardstick, not the bot)' 1,000/s off
line floor-600 'floor (yardstick, not the bot)' 600/s off
line floor-200 'floor (yardstick, not the bot)' 200/s off
