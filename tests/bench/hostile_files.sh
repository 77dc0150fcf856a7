#!/usr/bin/env bash
# Hostile-file figures (the suite itself runs in the test command): generates every hostile file
# of tests/hostile_files.rs, uploads, validates and reports on each through the API against the
# project's own server, and writes each one's outcome, time and the backend's peak private memory
# to tests/bench/hostile-files-results.md. Usage: bash tests/bench/hostile_files.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
bench_start quiet
database_create pipetrak_bench_hostile >/dev/null
cd "$PIPETRAK_ROOT"
PIPETRAK_TEST_URL=$(database_url pipetrak_bench_hostile) PIPETRAK_SERVER_LOG=$PIPETRAK_HOME/postgres.log PIPETRAK_HOSTILE_RESULTS="$here/hostile-files-results.md" \
  cargo test --release --test hostile_files -- --ignored --nocapture | grep -E '^\||test result'
