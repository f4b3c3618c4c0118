#!/usr/bin/env bash
# Builds the Debian packages webex-chatbot and webex-relay (docs/deployment.md):
#
#   deploy/debian/build.sh            # → target/debian/webex-chatbot_*.deb, webex-relay_*.deb
#
# Steps: install cargo-deb if missing; build both release binaries (one cargo build);
# generate their man pages and bash/zsh/fish completions with the binaries' own `man` and
# `completions` commands into target/release/debian-assets/; package each with `cargo deb --no-build`.
# Needs the toolchain of the README (Rust 1.95, a C compiler) plus dpkg-dev (dpkg-shlibdeps
# finds the shared libraries the binaries need), and network for crates.io on the first run.
# Prints the paths of the two packages last.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The version DEPENDENCIES.md names; newer 3.x releases read the same metadata.
cargo_deb_version="3.8.0"
if ! command -v cargo-deb >/dev/null; then
  cargo install --locked "cargo-deb@$cargo_deb_version"
fi

cargo build --release --locked --bin webex-chatbot --bin webex-relay
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"

# Beside the binaries: cargo-deb reads assets under target/release/ (crates/*/Cargo.toml)
# from the real target directory, wherever CARGO_TARGET_DIR puts it.
assets="$target_dir/release/debian-assets"
rm -rf "$assets"
for bin in webex-chatbot webex-relay; do
  exe="$target_dir/release/$bin"
  mkdir -p "$assets/$bin/man" "$assets/$bin/completions"
  "$exe" man --out-dir "$assets/$bin/man" >/dev/null
  # Debian compresses man pages; -n keeps the archive free of a timestamp (reproducible).
  gzip -9n "$assets/$bin/man"/*.1
  "$exe" completions bash >"$assets/$bin/completions/$bin.bash"
  "$exe" completions zsh >"$assets/$bin/completions/_$bin"
  "$exe" completions fish >"$assets/$bin/completions/$bin.fish"
done

out="$target_dir/debian"
cargo deb --no-build --locked -p webex-chatbot --output "$out"
cargo deb --no-build --locked -p relay --output "$out"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
ls "$out"/webex-chatbot_"$version"-*.deb "$out"/webex-relay_"$version"-*.deb
