#!/usr/bin/env bash
# Checks the systemd units in this folder with `systemd-analyze verify` (no running systemd
# needed) and their hardening with `systemd-analyze security --offline`.
#
#   deploy/systemd/verify.sh BIN_DIR
#
# BIN_DIR holds the built `webex-chatbot` and `webex-relay` (target/debug or target/release).
# `verify` insists that ExecStart= points at an existing executable, so the units are checked
# as copies whose /usr/bin/ is rewritten to BIN_DIR; nothing is installed on the host.
#
# `systemd-analyze verify` exits 0 on many mistakes (an unknown key or a bad value is only
# "ignoring" on stderr), so any output at all counts as a failure here. Before trusting a
# pass, the script checks that a deliberately broken copy of each unit is caught.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin_dir="${1:?usage: $0 BIN_DIR (folder with the built webex-chatbot and webex-relay)}"
bin_dir="$(cd "$bin_dir" && pwd)"
units=(webex-chatbot webex-relay)
# Exposure score x10 above which `systemd-analyze security` fails (the units score 14 and 15).
max_exposure=16

for unit in "${units[@]}"; do
  [[ -x "$bin_dir/$unit" ]] || { echo "verify.sh: $bin_dir/$unit is not an executable; build it first" >&2; exit 1; }
done
command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Prints systemd-analyze's complaints about one unit file; succeeds only when there are none.
check() {
  local file="$1" out rc=0
  out="$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$file" 2>&1)" || rc=$?
  if [[ $rc -ne 0 || -n "$out" ]]; then
    printf '%s\n' "${out:-systemd-analyze verify exited $rc}"
    return 1
  fi
}

failed=0
for unit in "${units[@]}"; do
  mkdir -p "$tmp/good" "$tmp/bad"
  sed "s#/usr/bin/#$bin_dir/#g" "$here/$unit.service" >"$tmp/good/$unit.service"

  # The checker must catch a mistake of each kind verify only warns about.
  for mistake in 'NoNewPriviliges=yes' 'ProtectSystem=stricter' 'RestartSec=soon'; do
    sed "s#^\[Service\]#[Service]\n$mistake#" "$tmp/good/$unit.service" >"$tmp/bad/$unit.service"
    if check "$tmp/bad/$unit.service" >/dev/null; then
      echo "verify.sh: a broken $unit.service ($mistake) passed verification; the checker is not trustworthy" >&2
      exit 1
    fi
  done

  if out="$(check "$tmp/good/$unit.service")"; then
    echo "systemd-analyze verify $unit.service: OK"
  else
    echo "systemd-analyze verify $unit.service: FAILED" >&2
    printf '%s\n' "$out" >&2
    failed=1
  fi
  if score="$(systemd-analyze security --offline=yes --threshold="$max_exposure" "$tmp/good/$unit.service" 2>&1)"; then
    echo "  $(printf '%s\n' "$score" | grep 'Overall exposure' | sed 's/^→ //')"
  else
    printf '%s\n' "$score" | grep -E '✗|Overall' >&2 || true
    echo "systemd-analyze security $unit.service: exposure above $max_exposure/100" >&2
    failed=1
  fi
done
exit "$failed"
