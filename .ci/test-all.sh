#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine: formatting, lints, unit and
# integration tests, the compat tests against real Dovecot 2.3 (installed from Debian's
# packages when missing), the fuzz targets' build and the contrib configs' validation.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_pkgs=()
for p in dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  step "installing ${need_pkgs[*]} (Debian packages, for the compat tests)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Keep the package from starting a system-wide dovecot: the tests run private instances.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  [ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build binaries"
cargo build --workspace --bins --locked

step "validate contrib configs"
for f in contrib/*.toml; do
  [ -e "$f" ] || continue
  ./target/debug/directord --check-config --config "$f"
done

step "build fuzz targets"
cargo build --manifest-path parsers/fuzz/Cargo.toml --locked

step "cargo test (unit, integration and compat tests against real Dovecot)"
cargo test --workspace --locked --no-fail-fast
