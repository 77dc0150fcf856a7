#!/usr/bin/env bash
# The long soak of the model-based test (tests/job_model.rs): many more generated jobs than the
# test command runs, from a seed of your choice, in a throwaway database of the project's cluster.
#   JOB_MODEL_CASES  jobs to run (default 2000; the test command runs 200)
#   JOB_MODEL_SEED   the first runner's seed (default: today's date as YYYYMMDD, so each day differs)
# A failure prints the shrunk sequence of API calls and adds it to tests/job_model.proptest-regressions,
# which the test command replays first from then on.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
cd "$PIPETRAK_ROOT"
cluster_start
extension_install
database_create pipetrak_soak
export JOB_MODEL_CASES=${JOB_MODEL_CASES:-2000} JOB_MODEL_SEED=${JOB_MODEL_SEED:-$(date +%Y%m%d)}
echo "job model soak: $JOB_MODEL_CASES jobs from seed $JOB_MODEL_SEED"
PIPETRAK_TEST_URL=$(database_url pipetrak_soak) cargo test --test job_model -- --ignored --nocapture
