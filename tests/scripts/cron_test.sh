#!/usr/bin/env bash
# The snapshot schedule against a real pg_cron (Debian's postgresql-15-cron, loaded by the
# project's cluster for the database pipetrak_cron): installing pipetrak schedules nothing;
# schedule_snapshots() names one job, again changes nothing; DROP EXTENSION pipetrak removes it,
# and dropping another extension leaves it. Prints one "ok - …" or "not ok - …" line per check.
set -uo pipefail
source "$(dirname "$0")/cluster.sh"
cd "$PIPETRAK_ROOT"
db=pipetrak_cron
q() { psql -qXAt -d "$db" -v ON_ERROR_STOP=1 "$@"; }
jobs() { q -c "select count(*) || ' ' || coalesce(string_agg(schedule || ' ' || (command like '%pipetrak.take_all_due_snapshots()%')::text, ', '), '') from cron.job where jobname = 'pipetrak-weekly-snapshots'"; }

database_create "$db" without-extension >/dev/null
q -c "create extension pg_cron" -c "create extension pipetrak cascade" >/dev/null
check "installing pipetrak schedules nothing" test "$(jobs)" = "0 "
q -c "select pipetrak.schedule_snapshots()" >/dev/null
check "schedule_snapshots() schedules the due snapshots hourly" test "$(jobs)" = "1 7 * * * * true"
q -c "select pipetrak.schedule_snapshots('*/30 * * * *')" >/dev/null
check "scheduling again keeps one job, with the new schedule" test "$(jobs)" = "1 */30 * * * * true"
q -c "create extension if not exists pg_trgm" -c "create extension citext" -c "drop extension citext" >/dev/null
check "dropping another extension leaves the job" test "$(jobs | cut -c1)" = 1
check "a drop that fails keeps the job" bash -c \
  "! psql -qX -d $db -v ON_ERROR_STOP=1 -c 'begin; create table keep_me (c pipetrak.search_result); drop extension pipetrak; commit' 2>/dev/null && test \"\$(psql -qXAt -d $db -c \"select count(*) from cron.job where jobname = 'pipetrak-weekly-snapshots'\")\" = 1"
q -c "drop extension pipetrak cascade" >/dev/null
check "DROP EXTENSION pipetrak removes the job" test "$(jobs)" = "0 "
q -c "create extension pipetrak" >/dev/null
check "unschedule_snapshots() says there was nothing to remove" test "$(q -c 'select pipetrak.unschedule_snapshots()')" = f
# A drop the trigger can't see (here: with it disabled) leaves a job that removes itself when it runs.
q -c "select pipetrak.schedule_snapshots()" -c "alter event trigger pipetrak_drop_unschedules disable" \
  -c "drop extension pipetrak" >/dev/null
q -c "select command from cron.job where jobname = 'pipetrak-weekly-snapshots'" >"$PIPETRAK_HOME/cron_job.sql"
psql -qX -d "$db" -v ON_ERROR_STOP=1 -f "$PIPETRAK_HOME/cron_job.sql" >/dev/null
check "a job left behind by a drop the trigger misses removes itself at its next run" test "$(jobs)" = "0 "
