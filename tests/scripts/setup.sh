#!/usr/bin/env bash
# Installs everything the build, the main job and the tests need on a fresh Debian 12 machine (run as root).
# Idempotent: each step is skipped when its result is already present.
set -euo pipefail

packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libclang-dev clang pkg-config sudo
          postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q '0.18.1'; then
  echo "setup: installing cargo-pgrx 0.18.1 (a few minutes, once)"
  cargo install --locked cargo-pgrx --version 0.18.1 >/dev/null
fi

# Points pgrx at Debian's PostgreSQL 15; a plain `cargo pgrx init` would download PostgreSQL instead.
if ! grep -qs '^pg15' "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  cargo pgrx init --pg15=/usr/lib/postgresql/15/bin/pg_config >/dev/null
fi
