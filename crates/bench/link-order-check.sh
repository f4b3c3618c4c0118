#!/usr/bin/env bash
# Checks that a release binary of the bot was laid out by crates/bot/link-order.txt
# (crates/bot/build.rs): its code must begin with functions the file names. Prints how
# many of the file's names the binary has (the file lists two build shapes, see
# crates/bench/link-order.sh: two thirds of them is what a fresh file gives one build).
#
#   crates/bench/link-order-check.sh target/release/webex-chatbot
#
# Exits 1 when the binary's first 100 functions are not mostly (90 %) the file's (the
# order was not applied: another linker, WEBEX_CHATBOT_LINK_ORDER=off, a debug build), or
# when the binary has fewer than 40 % of the file's Rust functions (a fresh file gives a
# build ~60 %: the file is stale, as after a toolchain or dependency upgrade, which renames
# them; the C functions of SQLite and aws-lc keep their names): run
# crates/bench/link-order.sh.
set -euo pipefail
bin=${1:?usage: link-order-check.sh BINARY}
order=${ORDER:-$(dirname "$0")/../bot/link-order.txt}
command -v nm >/dev/null || { echo "needs nm (binutils)" >&2; exit 1; }

have="${TMPDIR:-/tmp}/link-order-check.$$"
trap 'rm -f "$have"' EXIT
nm --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u >"$have"
# The file's names that the binary has, once.
common=$(sort -u "$order" | comm -12 - "$have")
found=$(printf '%s\n' "$common" | grep -c . || true)
# Rust's symbols: legacy (_ZN) and v0 (_R) mangling.
rust=$(grep -c '^_ZN\|^_R' "$order" || true)
rust_found=$(printf '%s\n' "$common" | grep -c '^_ZN\|^_R' || true)
first=$(nm -n --defined-only "$bin" | awk '$2 ~ /^[tT]$/ { print $3 }' | awk 'NR <= 100' |
    awk 'NR == FNR { named[$1] = 1; next } ($1 in named) { n++ } END { print n + 0 }' "$order" -)
echo "$bin: $found of the $(wc -l <"$order") functions in $order ($rust_found of its $rust Rust functions); $first of its first 100 are the file's"
[ "$first" -ge 90 ] || { echo "the code is not laid out by $order" >&2; exit 1; }
[ $((rust_found * 100)) -ge $((rust * 40)) ] ||
    { echo "$order is stale: make it again with crates/bench/link-order.sh" >&2; exit 1; }
