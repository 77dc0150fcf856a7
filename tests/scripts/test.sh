#!/usr/bin/env bash
# Runs every test: Rust domain tests (cargo test), pgTAP suites, and the client/concurrency tests
# against a throwaway database in the project's own cluster. Prints "N passed, N failed" last and
# exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
source "$here/cluster.sh"
cd "$PIPETRAK_ROOT"
# The Citus cluster test builds Citus from the source kept beside a clone in CI.
if [ -z "${PIPETRAK_CITUS_SOURCE:-}" ] && [ -d "$PIPETRAK_ROOT/../shared/vendor/citus" ]; then
  export PIPETRAK_CITUS_SOURCE=$PIPETRAK_ROOT/../shared/vendor/citus
fi

passed=0
failed=0
skipped=0
log=$(mktemp -d)

# Adds the "N passed; N failed" counts of cargo's result lines.
count_cargo() {
  local p f
  p=$(grep -Eo '[0-9]+ passed' "$1" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' "$1" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p)); failed=$((failed + f))
}

# A check (cluster.sh) counted into the totals.
counted() {
  if check "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# A script printing "ok - …" / "not ok - …" lines, counted into the totals; one that printed
# neither failed, unless it said it skipped (a test needing what this machine lacks).
counted_script() {
  local out=$log/$1.txt p f
  bash "$here/$1.sh" >"$out" 2>&1
  grep -E '^(not )?ok - |^#' "$out"
  p=$(grep -c '^ok - ' "$out")
  f=$(grep -c '^not ok - ' "$out")
  [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && ! grep -q '^# SKIPPED' "$out" && { tail -20 "$out"; f=1; }
  if grep -q '^# SKIPPED' "$out"; then skipped=$((skipped + 1)); fi
  passed=$((passed + p)); failed=$((failed + f))
}

echo "== code checks"
counted "cargo fmt --check" cargo fmt --check
counted "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings
counted "src/domain uses no pgrx" bash -c '! grep -rnE "(use|extern crate) pgrx|pgrx::" src/domain'

echo "== cargo test (domain)"
if ! cargo test --lib --tests 2>&1 | tee "$log/cargo.txt" | grep -E '^test result|FAILED|panicked'; then :; fi
grep -q '^test result' "$log/cargo.txt" || failed=$((failed + 1))
count_cargo "$log/cargo.txt"

echo "== build and install the extension"
if ! { cluster_start && extension_install; } >"$log/install.txt" 2>&1; then
  cat "$log/install.txt"; echo "$passed passed, $((failed + 1)) failed"; exit 1
fi

echo "== pgTAP"
database_create pipetrak_test with-pgtap
for suite in pgtap/*.sql; do
  pg_prove -v -d pipetrak_test "$suite" >"$log/tap.txt" 2>&1
  p=$(grep -cE '^ok [0-9]+' "$log/tap.txt")
  f=$(grep -cE '^not ok [0-9]+' "$log/tap.txt")
  if ! grep -q 'Result: PASS' "$log/tap.txt"; then
    grep -E '^not ok|^#|ERROR|Parse errors|Bad plan' "$log/tap.txt" | head -40
    [ "$f" -eq 0 ] && f=1
  fi
  echo "$suite: $p passed, $f failed"
  passed=$((passed + p)); failed=$((failed + f))
done

# The generated API reference (sql/API.md) is what the catalog says (blank lines at its ends aside).
api_reference_current() {
  diff <(psql -qXAt -d pipetrak_test -f tests/scripts/api_reference.sql | sed '/./,$!d') \
       <(sed -n '/<!-- api-reference:begin -->/,/<!-- api-reference:end -->/p' sql/API.md | sed '1d;$d' | sed '/./,$!d')
}
counted "the API reference (sql/API.md) is current" api_reference_current
# The functions' comments (sql/98_comments.sql) are what the comments above them say.
counted "the function comments (sql/98_comments.sql) are current" \
  bash -c 'diff <(cargo run -q --example function_comments) sql/98_comments.sql'


echo "== client and concurrency tests (live server)"
database_create pipetrak_client
PIPETRAK_TEST_URL=$(database_url pipetrak_client) PIPETRAK_SERVER_LOG=$PIPETRAK_HOME/postgres.log cargo test --no-fail-fast --test client --test hostile_files --test job_model -- --ignored --test-threads 1 >"$log/client.txt" 2>&1
grep -E '^test |panicked|^test result' "$log/client.txt"
grep -q '^test result' "$log/client.txt" || failed=$((failed + 1))
count_cargo "$log/client.txt"

echo "== the snapshot schedule against a real pg_cron"
counted_script cron_test

echo "== pipetrak on a real Citus cluster (PIPETRAK_CITUS_SOURCE: a Citus source tarball's folder)"
counted_script citus_test

echo "== releases: upgrade from every released version, dump and restore"
counted_script release_test

[ "$skipped" -gt 0 ] && echo "($skipped suite(s) SKIPPED: see the lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
