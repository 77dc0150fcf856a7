#!/usr/bin/env bash
# Shared helpers of the benchmarks in this directory. A benchmark sources it right after
# `set -euo pipefail`:   source "$(dirname "$0")/lib.sh"
# Sourcing sets `here` (this directory, where the *-results.md files go), sources
# tests/scripts/cluster.sh (cluster_start, extension_install, database_create, database_url and the
# PIPETRAK_* settings) and defines the functions below; it runs nothing else. The helpers that talk
# to the database use the benchmark's $db; those that write or run pgbench scripts use $work.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/../scripts/cluster.sh"

# Runs setup.sh, starts the cluster and installs the extension; quiet hides all three's output, quiet-install the build's.
bench_start() {
  case ${1:-} in
    '') bash "$here/../scripts/setup.sh"; cluster_start; extension_install ;;
    quiet-install) bash "$here/../scripts/setup.sh"; cluster_start; extension_install >/dev/null 2>&1 ;;
    quiet) bash "$here/../scripts/setup.sh" >/dev/null; cluster_start; extension_install >/dev/null 2>&1 ;;
    *) echo "bench_start: unknown mode '$1' (use quiet or quiet-install)" >&2; return 1 ;;
  esac
}

# Makes the scratch directory $work (mktemp -d), set to mode $1 when given (777 where pgbench writes its logs).
bench_work() {
  work=$(mktemp -d)
  if [ -n "${1:-}" ]; then chmod "$1" "$work"; fi
}

# psql on $db, unaligned and tuples only, stopping at the first error; further arguments are psql's.
q() { psql -qXAt -d "$db" -v ON_ERROR_STOP=1 "$@"; }

# Prints the lines that open a transaction as JWT user $1 (role authenticated, claims set locally).
as_user() { printf 'begin;\nset local role authenticated;\nselect set_config(%s, %s, true);\n' "'request.jwt.claims'" "'{\"sub\": \"$1\", \"role\": \"authenticated\"}'"; }

# Writes the pgbench script $work/$2.sql: the statements $3… (one a line) as user $1, committed.
user_script() {
  local user=$1 name=$2
  shift 2
  { as_user "$user"; printf '%s\n' "$@"; echo "commit;"; } >"$work/$name.sql"
}

# Creates the bare baseline in schema bench: a copy of the components where $1 (with its primary key) and an empty events table, no triggers or RLS.
baseline_tables() {
  psql -qX -d "$db" -v ON_ERROR_STOP=1 <<SQL
create schema if not exists bench;
create table bench.components as select * from pipetrak.components where $1;
alter table bench.components add primary key (id);
create table bench.milestone_events (like pipetrak.milestone_events including defaults including indexes);
create sequence bench.events_id_seq;
alter table bench.milestone_events alter id set default nextval('bench.events_id_seq');
vacuum analyze bench.components;
SQL
}

# Runs pgbench in $work on $db: script $1, $2 clients and threads, limit $3 ("-T secs" or "-t n"); per-transaction log in $work/log.*, output in $work/out.txt (printed, and the shell exits, on failure).
pgbench_logged() {
  local script=$1 clients=$2 limit=$3
  rm -f "$work"/log.*
  # shellcheck disable=SC2086 # $limit is an option and its value
  (cd "$work" && pgbench -n -d "$db" -f "$script" -c "$clients" -j "$clients" $limit -l --log-prefix=log >"$work/out.txt" 2>&1) \
    || { cat "$work/out.txt"; exit 1; }
}

# Prints the latency in µs of every transaction the last pgbench_logged logged, one a line.
logged_latencies() { cat "$work"/log.* | awk '{print $3}'; }

# Prints the median in ms (three decimals) of the µs latencies on stdin; the mean of the middle two for an even count.
median_ms() { sort -n | awk '{a[NR]=$1} END {printf "%.3f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000}'; }

# Runs pgbench as pgbench_logged does; prints "median_ms tps" (median latency, throughput rounded).
pgbench_run() {
  pgbench_logged "$@"
  local median tps
  median=$(logged_latencies | median_ms)
  tps=$(grep -Eo 'tps = [0-9.]+' "$work/out.txt" | head -1 | awk '{printf "%.0f", $3}')
  echo "$median $tps"
}

# Runs pgbench as pgbench_logged does; prints the median latency in ms.
pgbench_median() {
  pgbench_logged "$@"
  logged_latencies | median_ms
}

# Prints the median of its arguments as given (the lower middle one for an even count).
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# Prints $1 / $2 with two decimals, followed by $3 when given (e.g. x).
ratio() { awk -v a="$1" -v b="$2" -v s="${3:-}" 'BEGIN {printf "%.2f%s", a / b, s}'; }

# Seeds the history benchmarks' database $db (history.sh, controls.sh): organization Bench (owner $1,
# foreman $2, viewer $3), 5 projects of 200,000 valves on 2,000 drawings in 20 areas, and 2,000,000
# milestone events spread over the past year in the first (receipts and installs set and, one in
# ten, rolled back), dated from $4 days ago back (0: from today).
seed_history() {
  local owner=$1 foreman=$2 viewer=$3 newest=${4:-0}
  q <<SQL
select set_config('request.jwt.claims', '{"sub": "$owner"}', false) is not null as signed_in;
select pipetrak.create_organization('Bench') as org \gset
insert into pipetrak.memberships (organization_id, user_id, role, created_by)
values (:org, '$foreman', 'foreman', '$owner'), (:org, '$viewer', 'viewer', '$owner');
select count(pipetrak.create_project(:org, 'Bench ' || n, 'B-' || n, 'America/Chicago', 'flag', true)) from generate_series(1, 5) n;
select min(id) as project from pipetrak.projects \gset
insert into pipetrak.areas (project_id, name) select p.id, 'Area ' || a from pipetrak.projects p, generate_series(1, 20) a;
insert into pipetrak.drawings (project_id, drawing_no, area_id)
select p.id, 'DWG-' || d, (select id from pipetrak.areas where project_id = p.id order by id offset d % 20 limit 1)
from pipetrak.projects p, generate_series(0, 1999) d;
select format(\$f\$
insert into pipetrak.components (project_id, drawing_id, component_type, tag, seq, size, area_id, milestone_values,
                                 earned_total, earned_receive)
select d.project_id, d.id, 'valve', 'V-' || i, 1, (1 + i %% 8)::text, d.area_id,
       case when i %% 2 = 0 then '{100,0,0,0,0}'::numeric[] else '{0,0,0,0,0}' end,
       case when i %% 2 = 0 then 100000 else 0 end, case when i %% 2 = 0 then 100000 else 0 end
from generate_series(0, 199999) i
join pipetrak.drawings d on d.project_id = %s and d.drawing_no = 'DWG-' || (i %% 2000)
\$f\$, id) from pipetrak.projects order by id \gexec
insert into pipetrak.milestone_events (project_id, component_id, milestone, old_value, new_value, work_date, user_id,
                                       category, credit, mh)
select :project, (select min(id) from pipetrak.components) + (i::bigint * 7919) % 200000,
       case when i % 3 = 0 then 'Install' else 'Receive' end,
       case when i % 10 = 0 then 100 else 0 end, case when i % 10 = 0 then 0 else 100 end,
       current_date - $newest - (i % 365), '$foreman',
       case when i % 3 = 0 then 'install' else 'receive' end,
       (case when i % 3 = 0 then 600000 else 100000 end) * (case when i % 10 = 0 then -1 else 1 end), null
from generate_series(1, 2000000) i;
SQL
}
