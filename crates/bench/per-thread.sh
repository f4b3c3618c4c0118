#!/usr/bin/env bash
# Where a message's CPU and context switches go, thread by thread (docs/performance.md,
# "Where a message's CPU goes"): runs webex-bench in direct mode against a wrapper that
# starts the bot and attaches `perf stat --per-thread` to it for WINDOW seconds in the
# middle of the run, then prints one markdown row per thread name (threads of one name
# summed) divided by the messages the open-loop generator sent in that window.
#
#   cargo build --release -p webex-chatbot -p relay -p bench
#   crates/bench/per-thread.sh              # from the repository root; needs perf
#
# Environment: B (folder of the binaries, default target/release), BOT (the bot binary,
# default $B/webex-chatbot), RATE (messages/s, default 600), SECONDS_PER_RUN (default 10),
# WINDOW (seconds measured, default SECONDS_PER_RUN - 2).
set -euo pipefail

B=${B:-target/release}
BOT=$(realpath "${BOT:-$B/webex-chatbot}")
RATE=${RATE:-600}
SECS=${SECONDS_PER_RUN:-10}
WINDOW=${WINDOW:-$((SECS - 2))}
command -v perf >/dev/null || { echo "perf is needed" >&2; exit 1; }
[ -d personalities ] || { echo "run from the repository root (personalities/ not found)" >&2; exit 1; }

work=$(mktemp -d -t webex-per-thread.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The benchmark starts the "bot" it is given with the bot's environment and kills it at
# the end (SIGKILL, which a wrapper cannot pass on): the wrapper records the bot's pid so
# that it is stopped below.
cat >"$work/bot" <<WRAPPER
#!/bin/sh
"$BOT" "\$@" &
pid=\$!
echo \$pid >"$work/pid"
( sleep 1.5; perf stat -e task-clock,context-switches --per-thread -x, -p \$pid -o "$work/stat" sleep $WINDOW ) &
wait \$pid
WRAPPER
chmod +x "$work/bot"

"$B/webex-bench" --mode direct --bot-bin "$work/bot" --rate "$RATE" --seconds "$SECS" --runs 1 >"$work/bench.txt" 2>&1 || true
kill -9 "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true
[ -s "$work/stat" ] || { cat "$work/bench.txt" >&2; echo "no perf output" >&2; exit 1; }

messages=$((RATE * WINDOW))
echo "Bot: $BOT; direct mode at $RATE/s, $WINDOW s measured (~$messages messages)"
echo
echo "| thread | context switches per message | CPU ms per message |"
echo "| --- | --- | --- |"
# perf's rows: "name-tid,value,,event,…"; the name loses its "-tid".
awk -F, -v n="$messages" '
    $4 == "context-switches" || $4 == "task-clock" {
        name = $1; sub(/-[0-9]+$/, "", name)
        if ($2 ~ /not/) next
        if ($4 == "context-switches") { sw[name] += $2; tsw += $2 } else { ms[name] += $2; tms += $2 }
    }
    END {
        for (t in sw) if (sw[t] > 0 || ms[t] > 0) printf "| %s | %.1f | %.3f |\n", t, sw[t] / n, ms[t] / n
        printf "| **all** | %.1f | %.3f |\n", tsw / n, tms / n
    }' "$work/stat"
