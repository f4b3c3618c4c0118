#!/usr/bin/env bash
# Checks that a release binary of the bot was laid out by crates/bot/link-order.txt
# (crates/bot/build.rs): its code must begin with functions the file names. Prints how
# many of the file's names the binary has (the file lists two build shapes, see
# crates/bench/link-order.sh: two thirds of them is what a fresh file gives one build).
#
#   crates/bench/link-order-check.sh target/release/webex-chatbot
#
# Exits 1 when the binary's first 100 functions are not mostly (90 %) the file's: the
# order was not applied (another linker, WEBEX_CHATBOT_LINK_ORDER=off, a debug build), or
# the file no longer names this build's functions (run crates/bench/link-order.sh).
set -euo pipefail
bin=${1:?usage: link-order-check.sh BINARY}
order=${ORDER:-$(dirname "$0")/../bot/link-order.txt}
command -v nm >/dev/null || { echo "needs nm (binutils)" >&2; exit 1; }

nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u >"${TMPDIR:-/tmp}/link-order-check.$$"
found=$(sort -u "$order" | comm -12 - "${TMPDIR:-/tmp}/link-order-check.$$" | wc -l)
rm -f "${TMPDIR:-/tmp}/link-order-check.$$"
first=$(nm -n --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }' | awk 'NR <= 100' |
    awk 'NR == FNR { named[$1] = 1; next } ($1 in named) { n++ } END { print n + 0 }' "$order" -)
echo "$bin: $found of the $(wc -l <"$order") functions in $order; $first of its first 100 are the file's"
[ "$first" -ge 90 ] || { echo "the code is not laid out by $order" >&2; exit 1; }
