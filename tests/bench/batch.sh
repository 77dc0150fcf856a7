#!/usr/bin/env bash
# Benchmark (not a test): the batch calls with 1,000 and 10,000 items (the largest batch each
# takes) — update_milestones as an authenticated foreman, correct_components and retire_components
# as the owner — through RLS, in the same run; a batch must cost time linear in its items (10,000
# items within 10x the time of 1,000). Five runs of each size, alternating, each its own
# transaction (the writes of the correction and retirement runs rolled back); medians.
# Usage: bash tests/bench/batch.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
db=pipetrak_bench_batch
owner=c0000000-0000-4000-8000-000000000001
foreman=c0000000-0000-4000-8000-000000000004

bench_start quiet-install
database_create "$db"
psql -qX -d "$db" -v ON_ERROR_STOP=1 >/dev/null <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false);
select pipetrak.create_organization('Batch') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by) values (:org, '$foreman', 'foreman', '$owner');
select pipetrak.create_project(:org, 'Batch', 'B-1', 'UTC', 'flag', true) as project \gset
select pipetrak.create_drawing(:project, 'B-1', null, null, null, null, null, null) as drawing \gset
select pipetrak.create_component(:project, :drawing, 'valve', 'V-1', '2', 10000, null, null, null);
SQL

# Milliseconds one update_milestones call of $1 items (Receive = $2) takes, as the foreman.
timed_batch() {
  psql -qAtX -d "$db" -v ON_ERROR_STOP=1 <<SQL | tail -1
begin;
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "$foreman", "role": "authenticated"}', true) \g /dev/null
select jsonb_agg(jsonb_build_object('component_id', id, 'milestone', 'Receive', 'value', $2)) as updates
from (select id from pipetrak.components order by id limit $1) c \gset
select clock_timestamp() as started \gset
select jsonb_array_length(pipetrak_api.update_milestones(updates => :'updates')) \g /dev/null
select round(extract(epoch from clock_timestamp() - :'started'::timestamptz) * 1000, 1);
commit;
SQL
}

# Milliseconds one call of $2 ($1: correct or retire) over $1 items takes, as the owner; undone.
timed_component_batch() {
  psql -qAtX -d "$db" -v ON_ERROR_STOP=1 <<SQL | tail -1
begin;
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "$owner", "role": "authenticated"}', true) \g /dev/null
select jsonb_agg(jsonb_build_object('component_id', id, 'description', 'corrected ' || id)) as corrections,
       array_agg(id) as ids
from (select id from pipetrak.components order by id limit $2) c \gset
select clock_timestamp() as started \gset
select case '$1' when 'correct' then pipetrak_api.correct_components(corrections => :'corrections', reason => 'bench')
                 else pipetrak_api.retire_components(component_ids => :'ids', reason => 'bench') end \g /dev/null
select round(extract(epoch from clock_timestamp() - :'started'::timestamptz) * 1000, 1);
rollback;
SQL
}

# The median of the lines on stdin (the mean of the middle two for an even count).
median_lines() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

small=() large=()
for run in 1 2 3 4 5; do
  small+=("$(timed_batch 1000 $((run % 2 * 100)))")
  large+=("$(timed_batch 10000 $(((run + 1) % 2 * 100)))")
done
s=$(printf '%s\n' "${small[@]}" | median_lines)
l=$(printf '%s\n' "${large[@]}" | median_lines)
ratio=$(ratio "$l" "$s")
declare -A cs cl cr
for action in correct retire; do
  small=() large=()
  for run in 1 2 3 4 5; do
    small+=("$(timed_component_batch $action 1000)")
    large+=("$(timed_component_batch $action 10000)")
  done
  cs[$action]=$(printf '%s\n' "${small[@]}" | median_lines)
  cl[$action]=$(printf '%s\n' "${large[@]}" | median_lines)
  cr[$action]=$(ratio "${cl[$action]}" "${cs[$action]}")
done

report=$(cat <<TXT
| measurement (one call, as a foreman through RLS; median of 5) | time | ratio to 1,000 items |
|---|---|---|
| update_milestones, 1,000 items | $s ms | 1.00x |
| update_milestones, 10,000 items | $l ms | ${ratio}x (linear: 10x; target ≤ 10x) |
| correct_components, 1,000 items | ${cs[correct]} ms | 1.00x |
| correct_components, 10,000 items | ${cl[correct]} ms | ${cr[correct]}x (target ≤ 10x) |
| retire_components, 1,000 items | ${cs[retire]} ms | 1.00x |
| retire_components, 10,000 items | ${cl[retire]} ms | ${cr[retire]}x (target ≤ 10x) |
TXT
)
echo "$report" | tee "$here/batch-results.md"
