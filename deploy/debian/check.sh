#!/usr/bin/env bash
# Inspects the Debian packages that deploy/debian/build.sh made, and with --install also
# installs, upgrades, removes and purges them on this machine (CI: a throwaway box, root,
# no systemd as PID 1, so no service starts).
#
#   deploy/debian/check.sh [--install] DEB_DIR
#
# Fails on the first thing that is not as docs/deployment.md says; lintian errors fail,
# its warnings are printed.
set -euo pipefail

install=0
if [[ "${1:-}" == "--install" ]]; then
  install=1
  shift
fi
deb_dir="${1:?usage: $0 [--install] DEB_DIR (where build.sh put the .deb files)}"
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -n1)"

fail() {
  echo "check.sh: $*" >&2
  exit 1
}

# One package: `pkg` with its subcommands (what the completions and man pages must name).
inspect() {
  local pkg="$1" deb="$2"
  shift 2
  local subcommands=("$@")
  local tmp listing
  tmp="$(mktemp -d)"
  listing="$(dpkg-deb -c "$deb")"

  for path in \
    "./usr/bin/$pkg" \
    "./usr/lib/systemd/system/$pkg.service" \
    "./etc/$pkg/.env" \
    "./usr/share/man/man1/$pkg.1.gz" \
    "./usr/share/bash-completion/completions/$pkg" \
    "./usr/share/zsh/vendor-completions/_$pkg" \
    "./usr/share/fish/vendor_completions.d/$pkg.fish" \
    "./usr/share/doc/$pkg/changelog.Debian.gz" \
    "./usr/share/doc/$pkg/copyright" \
    "./usr/lib/$pkg/webex-cert-hook"; do
    grep -q " $path\$" <<<"$listing" || fail "$pkg: $path is not in $deb"
  done
  grep -q "^-rwxr-xr-x root/root .* ./usr/bin/$pkg\$" <<<"$(sed 's#0/0 #root/root #' <<<"$listing")" ||
    fail "$pkg: /usr/bin/$pkg is not an executable owned by root"
  grep -q "^-rw------- .* ./etc/$pkg/.env\$" <<<"$listing" || fail "$pkg: /etc/$pkg/.env is not mode 600"
  # A man page per subcommand as well.
  for sub in "${subcommands[@]}"; do
    grep -q " ./usr/share/man/man1/$pkg-$sub.1.gz\$" <<<"$listing" || fail "$pkg: no man page for $pkg $sub"
  done

  local info
  info="$(dpkg-deb -I "$deb")"
  grep -q "^ Package: $pkg\$" <<<"$info" || fail "$pkg: wrong Package field"
  grep -q "^ Version: $version-" <<<"$info" || fail "$pkg: the version is not $version-*"
  grep -q "^ Depends: .*adduser" <<<"$info" || fail "$pkg: does not depend on adduser (postinst uses it)"
  for script in postinst postrm prerm; do
    grep -q " $script " <<<"$info" || fail "$pkg: no $script"
  done

  dpkg-deb -e "$deb" "$tmp/control"
  [[ "$(cat "$tmp/control/conffiles")" == "/etc/$pkg/.env" ]] ||
    fail "$pkg: conffiles is not exactly /etc/$pkg/.env: $(cat "$tmp/control/conffiles")"
  for script in postinst postrm prerm; do
    sh -n "$tmp/control/$script" || fail "$pkg: $script is not valid sh"
  done

  dpkg-deb -x "$deb" "$tmp/root"
  local unit="$tmp/root/usr/lib/systemd/system/$pkg.service"
  grep -q "^ExecStart=/usr/bin/$pkg\b" "$unit" || fail "$pkg: the unit's ExecStart is not /usr/bin/$pkg"
  grep -q "^EnvironmentFile=/etc/$pkg/.env\$" "$unit" || fail "$pkg: the unit's EnvironmentFile is not /etc/$pkg/.env"
  grep -q "^User=$pkg\$" "$unit" || fail "$pkg: the unit does not run as $pkg"
  zcat "$tmp/root/usr/share/man/man1/$pkg.1.gz" | grep -q "^\.TH $pkg 1" || fail "$pkg: $pkg.1 is not a roff man page"
  local bash_completion="$tmp/root/usr/share/bash-completion/completions/$pkg"
  bash -n "$bash_completion" || fail "$pkg: the bash completion is not valid bash"
  for sub in "${subcommands[@]}"; do
    # roff escapes each hyphen: webex\-chatbot\-serve(1).
    zcat "$tmp/root/usr/share/man/man1/$pkg.1.gz" | grep -qF "$(sed 's/-/\\-/g' <<<"$pkg-$sub")(1)" ||
      fail "$pkg: $pkg.1 does not name $sub"
    for completion in "$bash_completion" "$tmp/root/usr/share/zsh/vendor-completions/_$pkg" \
      "$tmp/root/usr/share/fish/vendor_completions.d/$pkg.fish"; do
      grep -qw -- "$sub" "$completion" || fail "$pkg: $(basename "$completion") does not complete $sub"
    done
  done

  # Errors fail; warnings are shown. Root is fine on a CI box (lintian only complains).
  lintian --fail-on error --allow-root "$deb" || fail "$pkg: lintian found errors"
  rm -rf "$tmp"
  echo "$pkg: contents, control files, unit, man pages, completions and lintian OK"
}

bot_deb="$(ls "$deb_dir"/webex-chatbot_"$version"-*.deb)"
relay_deb="$(ls "$deb_dir"/webex-relay_"$version"-*.deb)"
inspect webex-chatbot "$bot_deb" serve chat webhooks users doctor dev completions man
inspect webex-relay "$relay_deb" completions man

[[ $install == 1 ]] || exit 0

# ---- install → upgrade → remove → purge, on this machine ---------------------------
[[ $(id -u) == 0 ]] || fail "--install needs root"
for pkg in webex-chatbot webex-relay; do
  dpkg -s "$pkg" >/dev/null 2>&1 && fail "$pkg is installed already; --install only runs on a machine without it"
done
mode_owner() { stat -c '%a %U:%G' "$1"; }
# Whatever fails below, the machine is left without the packages.
trap 'dpkg --purge webex-chatbot webex-relay >/dev/null 2>&1 || true' EXIT

dpkg -i "$bot_deb" "$relay_deb"
for pkg in webex-chatbot webex-relay; do
  getent passwd "$pkg" >/dev/null || fail "$pkg: no system user after install"
  [[ "$(mode_owner "/etc/$pkg/.env")" == "600 $pkg:$pkg" ]] ||
    fail "$pkg: /etc/$pkg/.env is $(mode_owner "/etc/$pkg/.env"), not 600 $pkg:$pkg"
  "/usr/bin/$pkg" --version | grep -q "$version" || fail "$pkg: --version does not say $version"
done
[[ "$(mode_owner /var/lib/webex-chatbot/data)" == "700 webex-chatbot:webex-chatbot" ]] || fail "/var/lib/webex-chatbot/data is not the service user's"
[[ "$(readlink /var/lib/webex-chatbot/.env)" == /etc/webex-chatbot/.env ]] || fail "/var/lib/webex-chatbot/.env is not a link to /etc/webex-chatbot/.env"
# The service user runs the CLI in its working directory with the service's settings.
(cd /var/lib/webex-chatbot && runuser -u webex-chatbot -- webex-chatbot users add ci@example.com) ||
  fail "the service user cannot run webex-chatbot users add in /var/lib/webex-chatbot"
[[ -f /var/lib/webex-chatbot/data/bot.db ]] || fail "users add did not create data/bot.db"

# Upgrade (the same package again): the operator's edit of the conffile and the state stay.
echo "# edited by check.sh" >>/etc/webex-chatbot/.env
dpkg -i "$bot_deb"
tail -n1 /etc/webex-chatbot/.env | grep -q "edited by check.sh" || fail "an upgrade replaced the edited .env"
[[ "$(mode_owner /etc/webex-chatbot/.env)" == "600 webex-chatbot:webex-chatbot" ]] || fail "an upgrade changed the mode of .env"
(cd /var/lib/webex-chatbot && runuser -u webex-chatbot -- webex-chatbot users list) | grep -q ci@example.com ||
  fail "an upgrade lost the database"

# Remove keeps settings and state; purge deletes them.
dpkg -r webex-chatbot webex-relay
[[ -f /var/lib/webex-chatbot/data/bot.db && -f /etc/webex-chatbot/.env ]] || fail "dpkg -r deleted settings or state"
dpkg --purge webex-chatbot webex-relay
for path in /var/lib/webex-chatbot /etc/webex-chatbot /etc/webex-relay /usr/bin/webex-chatbot \
  /usr/bin/webex-relay /usr/lib/systemd/system/webex-chatbot.service; do
  [[ ! -e "$path" ]] || fail "$path is still there after purge"
done
if dpkg-statoverride --list | grep -q webex-; then fail "purge left a dpkg-statoverride behind"; fi
echo "install, upgrade, remove and purge OK (the system users webex-chatbot and webex-relay stay, as Debian packages leave them)"
