#!/usr/bin/env bash
# Releases and upgrade scripts.
#
#   release.sh upgrade   writes sql/pipetrak--LAST--CURRENT.sql: the hand-written state changes of
#                        sql/updates/LAST--CURRENT.sql, then every code object of the current install
#                        script (tests/examples/upgrade_script.rs). Run it after changing sql/ or src/.
#   release.sh check     fails when that script is not what `upgrade` would write (the test command).
#   release.sh freeze    releases the current version: its install script goes to sql/releases/,
#                        and it and the upgrade script are checksummed (sql/releases/SHA256SUMS);
#                        then raise the version in Cargo.toml and start sql/updates/CURRENT--NEXT.sql.
#
# LAST is the newest install script in sql/releases/, CURRENT the version in Cargo.toml. Released
# files are never edited; `cargo pgrx install` and `package` ship sql/pipetrak--*--*.sql.
set -euo pipefail
source "$(dirname "$0")/cluster.sh"
cd "$PIPETRAK_ROOT"
current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
last=$(ls sql/releases/pipetrak--*.sql | sed -n 's|^sql/releases/pipetrak--\([0-9.]*\)\.sql$|\1|p' | sort -V | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The current version's install script, as `cargo pgrx install` writes it.
install_script() {
  cargo pgrx schema pg15 --release --pg-config "$PG_BIN/pg_config" -o "$1" >/dev/null 2>&1
}

# The upgrade script from the last release to the current version, into $1.
generate_upgrade() {
  local state=sql/updates/$last--$current.sql
  [ -f "$state" ] || { echo "missing $state (the state changes of $current, empty if none)" >&2; return 1; }
  install_script "$work/install.sql"
  cargo run -q --example upgrade_script -- "$work/install.sql" "$state" "$last" "$current" >"$1"
}

case "${1:-}" in
  upgrade)
    [ "$last" != "$current" ] || { echo "$current is released: raise the version in Cargo.toml first" >&2; exit 1; }
    generate_upgrade "sql/pipetrak--$last--$current.sql"
    echo "wrote sql/pipetrak--$last--$current.sql"
    ;;
  check)
    [ "$last" != "$current" ] || exit 0
    generate_upgrade "$work/upgrade.sql"
    diff -u "sql/pipetrak--$last--$current.sql" "$work/upgrade.sql" >&2
    ;;
  freeze)
    [ "$last" != "$current" ] || { echo "$current is already released" >&2; exit 1; }
    generate_upgrade "$work/upgrade.sql"
    diff -q "sql/pipetrak--$last--$current.sql" "$work/upgrade.sql" >/dev/null ||
      { echo "sql/pipetrak--$last--$current.sql is not current: run release.sh upgrade" >&2; exit 1; }
    install_script "sql/releases/pipetrak--$current.sql"
    (cd sql/releases && sha256sum "pipetrak--$current.sql" "../pipetrak--$last--$current.sql" >>SHA256SUMS)
    echo "released $current"
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
