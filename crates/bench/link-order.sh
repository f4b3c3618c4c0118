#!/usr/bin/env bash
# Makes crates/bot/link-order.txt, the order the release binary's code is laid out in
# (crates/bot/build.rs): the bot's functions that run in start-up, at idle and on the
# message path, hottest first. It runs the release bot under valgrind's callgrind while
# webex-bench drives it in the modes of docs/performance.md (direct, relay, slow-llm with
# and without streaming), a few messages each, and keeps every function of the bot's
# binary that ran, by the instructions it ran.
#
#   crates/bench/link-order.sh              # from the repository root; ~15 minutes here
#   cargo build --release -p webex-chatbot  # the binary with the new order
#
# Symbol names carry a hash of their crate's build, which changes with the features Cargo
# unifies over the packages built together. The bot is built two ways: with the whole
# workspace's features (`cargo build --release`, `cargo run --release --bin
# webex-chatbot`, the Debian packages' `--bin webex-chatbot --bin webex-relay`, the
# benchmark's build) and alone (`-p webex-chatbot`, `cargo install --path crates/bot`).
# The script builds and profiles both, and the file lists the functions of both; the
# linker skips names not in the binary it links. So a file made before a change still
# helps, less: run the script again when the message path changed much, or after a
# toolchain or dependency upgrade.
#
# Environment: OUT (folder for the binaries and profiles, default a new temporary
# folder), ORDER (the file written, default crates/bot/link-order.txt).
set -euo pipefail

OUT=${OUT:-$(mktemp -d -t link-order.XXXXXX)}
ORDER=${ORDER:-crates/bot/link-order.txt}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -d personalities ] || { echo "run from the repository root (personalities/ not found)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
B="$target_dir/release"

cargo build --release --locked -p webex-chatbot -p relay -p bench
cp "$B/webex-bench" "$B/webex-relay" "$OUT/"
cp "$B/webex-chatbot" "$OUT/webex-chatbot.workspace"
cargo build --release --locked -p webex-chatbot
cp "$B/webex-chatbot" "$OUT/webex-chatbot.alone"

# profile SHAPE: runs that build of the bot under callgrind in each mode, then prints
# "instructions name" for every function of its binary that ran.
profile() {
    local bot="$OUT/webex-chatbot.$1" dir="$OUT/$1"
    mkdir -p "$dir"
    # The benchmark ends each run with SIGKILL, which a profile written at exit would not
    # survive: callgrind writes one every 2 million basic blocks instead (the last part of
    # each run, messages like the ones before it, is lost).
    cat >"$dir/bot.sh" <<WRAPPER
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$dir/callgrind.%p \\
    --dump-every-bb=2000000 --dump-instr=no --compress-strings=no --compress-pos=no \\
    --demangle=no "$bot" "\$@"
WRAPPER
    chmod +x "$dir/bot.sh"
    run() { # run NAME ARGS...
        echo "== $1: $*" >&2
        local name=$1
        shift
        "$OUT/webex-bench" --bot-bin "$dir/bot.sh" --runs 1 "$@" >"$dir/$name.txt" 2>"$dir/$name.err" ||
            { cat "$dir/$name.err" >&2; exit 1; }
    }
    run direct --mode direct --rate 5 --seconds 6
    run direct-nostream --mode direct --rate 5 --seconds 4 --streaming off
    run relay --mode relay --relay-bin "$OUT/webex-relay" --rate 5 --seconds 4
    run slow-llm --mode slow-llm --conversations 20 --llm-delay-ms 3000
    run slow-llm-nostream --mode slow-llm --conversations 20 --llm-delay-ms 1000 --streaming off
    # Self cost (the lines after `calls=` are a callee's) of the functions in the bot's
    # own binary (`ob=`), summed over every part written.
    cat "$dir"/callgrind.* | awk -v bin="$bot" '
        /^ob=/ { ob = substr($0, 4); next }
        /^fn=/ { fn = substr($0, 4); sub(/'"'"'[0-9]+$/, "", fn); mine = (ob == bin); next }
        /^calls=/ { call = 1; next }
        /^[0-9]/ { if (call) { call = 0; next } if (mine) cost[fn] += $2; next }
        END { for (f in cost) if (cost[f] > 0) print cost[f], f }
    '
}

for shape in workspace alone; do
    profile "$shape" >"$OUT/cost.$shape"
    echo "$shape: $(wc -l <"$OUT/cost.$shape") functions ran" >&2
done
# One list, hottest first; a name in several builds once.
cat "$OUT"/cost.* | sort -k1,1nr | awk '!seen[$2]++ { print $2 }' >"$ORDER.new"
mv "$ORDER.new" "$ORDER"
echo "$(wc -l <"$ORDER") functions in $ORDER (binaries and profiles in $OUT)" >&2
