#!/usr/bin/env bash
# The release checks, run by test.sh after the extension is installed into the project's cluster:
# 1. released install and upgrade scripts are unchanged (sql/releases/SHA256SUMS), and the upgrade
#    to the current version is generated, not written (tests/scripts/release.sh);
# 2. for every released version: a database created at that version and filled with realistic data
#    (the real sample files imported, milestones updated, review items raised), then
#    `ALTER EXTENSION pipetrak UPDATE`, has the schema of a fresh install (pg_dump of every member
#    object, with privileges and policies, normalized; extension membership; pg_dump registration),
#    the same data (a checksum per table), and passes the pgTAP suites;
# 3. that database dumped with pg_dump and restored into a new one holds the same data and keeps
#    working: new ids come after the restored ones, an import and a milestone update succeed, the
#    audit log stays immutable.
# Prints one "ok - …" or "not ok - …" line per check.
set -uo pipefail
source "$(dirname "$0")/cluster.sh"
cd "$PIPETRAK_ROOT"
work=$(mktemp -d)
current=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

# Every object of the extension as pg_dump writes it for a binary upgrade (members listed one by
# one, with their privileges and policies), without what differs between any two databases: OIDs,
# transaction ids, the dump's own session lines, where sequences stand (data_of compares those).
schema_of() {
  pg_dump --schema-only --binary-upgrade --no-owner -d "$1" \
    | grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict' -e 'binary_upgrade_set_' -e 'relfrozenxid' -e "^WHERE oid = " \
      -e '^SELECT pg_catalog.setval' \
    | sed -E "s/(binary_upgrade_create_empty_extension\('pipetrak', 'pipetrak', false, )'[^']*', '[^']*', '[^']*'/\1<version>, <config>, <conditions>/"
  psql -qXAt -d "$1" -c "select 'config: ' || string_agg(c::regclass::text || ' ' || coalesce(f, ''), ', ' order by c::regclass::text)
                          from pg_extension e, unnest(e.extconfig, e.extcondition) as u(c, f) where e.extname = 'pipetrak'"
  psql -qXAt -d "$1" -c "select 'member: ' || pg_describe_object(classid, objid, 0) from pg_depend
                          where refclassid = 'pg_extension'::regclass and deptype = 'e'
                            and refobjid = (select oid from pg_extension where extname = 'pipetrak') order by 1"
}

# The tables of the extension and their columns, and its sequences, as a SQL VALUES list of
# (relation, column).
columns_of() {
  psql -qXAt -d "$1" -c "select string_agg(format('(%L, %L)', c.relname, coalesce(a.attname, '')), ', ')
      from pg_class c left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and c.relkind = 'r'
      where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'S')"
}

# One line per table of the extension (its name, row count and a checksum of its rows) and per
# sequence (where it stands). Given the columns of an earlier state (columns_of), only those
# tables and columns: an upgraded database compares with itself before the upgrade, what the
# upgrade added aside. Generated columns (identity and drawing keys) are left out: they follow
# their columns, and an upgrade that changes their rule computes them again. The error catalog is the extension's own (compared with a fresh install's);
# its refusal counters count what one server refused, and the event outbox and sender hold what
# one server is sending (none of them dumped, none of them data).
# What an upgrade derives again on purpose, left out of the comparison with the data before it and
# checked by rule instead: a weld's examination dates (from its current results) and the tallies
# that count them (compared with a recount below).
mended="('field_welds', 'first_examined_on'), ('field_welds', 'last_examined_on'),
        ('weld_tallies', 'examined_welds'), ('weld_tallies', 'days_to_nde')"

data_of() {
  local columns=${2:-$(columns_of "$1")}
  psql -qXAt -d "$1" <<SQL
select case c.relkind
    when 'r' then format('select %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, ''|'' order by t::text)), ''-'') from (select %s from %s) t',
                         c.oid::regclass::text,
                         (select string_agg(quote_ident(a.attname), ', ' order by a.attnum) from pg_attribute a
                          where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                            and (c.relname::text, a.attname::text) in (values $columns)
                            and (c.relname::text, a.attname::text) not in (values $mended)),
                         c.oid::regclass)
    else format('select %L || '' '' || last_value || '' '' || is_called from %s', c.oid::regclass::text, c.oid::regclass)
end
from pg_class c where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'S') and c.relname <> 'error_codes' and c.relname !~ '^error_count_'
  and c.relname not in ('event_outbox', 'event_outbox_id_seq', 'event_sender')
  and c.relname::text in (select x.t from (values $columns) x(t, a)) order by c.relname \gexec
SQL
}

errors_of() {
  psql -qXAt -d "$1" -c "select code, sqlstate, message, hint from pipetrak.error_codes order by code"
}

fill() { # database: the main job's imports and updates, review items of both kinds, a test package
  psql -qX -d "$1" -v ON_ERROR_STOP=1 -f tests/scripts/main_import.sql >/dev/null &&
    psql -qX -d "$1" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "5a1e0000-0000-4000-8000-000000000001", "role": "authenticated"}', false);
-- Install before Receive: out of sequence, a review item.
select pipetrak_api.update_milestone(component_id => (select min(id) from pipetrak_api.components where component_type = 'gasket'),
                                     milestone => 'Install', value => 100);
-- A welder on a weld: Weld Complete and a QC review item.
select pipetrak_api.assign_welder(component_id => (select max(id) from pipetrak_api.components where component_type = 'field_weld'),
                                  stencil => 'K-12');
-- A test package with a drawing of three valves, one with an open review item (Install before
-- Receive).
select pipetrak_api.create_component(project_id => p.id, drawing_id => pipetrak_api.create_drawing(project_id => p.id,
           drawing_no => 'TP-DWG-1', test_package_id => pipetrak_api.create_test_package(project_id => p.id, name => 'TP-1')),
           component_type => 'valve', tag => 'VTP-1', quantity => 3)
from pipetrak_api.projects p order by p.id limit 1;
select pipetrak_api.update_milestone(component_id => (select min(id) from pipetrak_api.components where tag = 'VTP-1'),
                                     milestone => 'Install', value => 100);
select 1 / (count(*) >= 2)::int from pipetrak.review_items;
-- NDE on the welded weld (where the version records NDE), recorded and then cleared: the upgrade
-- dates such welds again (an examination cleared is no examination).
select to_regprocedure('pipetrak_api.clear_nde(bigint,text,text)') is not null as has_nde \gset
\if :has_nde
select pipetrak_api.record_nde(component_id => w.id, method => 'RT', result => 'FAIL', reason => 'r'),
       pipetrak_api.clear_nde(component_id => w.id, method => 'RT', reason => 'entered on the wrong weld')
from (select max(id) as id from pipetrak_api.components where component_type = 'field_weld') w;
\endif
SQL
}

pgtap_passes() { # database
  psql -qX -d "$1" -c "create extension if not exists pgtap" >/dev/null || return 1
  local suite status=0
  for suite in pgtap/*.sql; do
    pg_prove -d "$1" "$suite" >"$work/prove.txt" 2>&1 || { cat "$work/prove.txt"; status=1; }
  done
  return $status
}

same_file() { diff -u "$1" "$2"; }

check "released install and upgrade scripts are unchanged" bash -c "cd sql/releases && sha256sum --quiet -c SHA256SUMS"
check "the upgrade script to $current is what sql/ and the Rust functions generate (release.sh check)" bash tests/scripts/release.sh check

# Each package's row (what the dashboard and readiness read) equals a recount of its members and
# open review items, on a database that has packages with members.
packages_recounted() {
  [ "$(psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -c "select count(*) from pipetrak.progress_packages where component_count > 0")" != 0 ] &&
    [ "$(psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -f tests/scripts/package_recount.sql)" = 0 ]
}

database_create pipetrak_fresh >/dev/null
schema_of pipetrak_fresh >"$work/fresh.schema"

for script in sql/releases/pipetrak--*.sql; do
  version=$(basename "$script" .sql | sed -n 's/^pipetrak--\([0-9.]*\)$/\1/p')
  [ -n "$version" ] || continue
  db=pipetrak_upgrade
  database_create "$db" "" "$version" >/dev/null
  check "$version: filled with real imports, updates and review items" fill "$db"
  # Columns an upgrade rewrites on purpose are compared on their own below, not as data kept:
  # 0.2.0 names the review item kind `weld_completed` (it was `weld_complete`).
  columns_before=$(columns_of "$db" | sed "s/, ('review_items', 'kind')//; s/('review_items', 'kind'), //")
  kinds_before=$(psql -qXAt -d "$db" -c "select string_agg(regexp_replace(kind, '^weld_complete$', 'weld_completed') || ' ' || n, ', ' order by kind) from (select kind, count(*) n from pipetrak.review_items group by kind) k")
  data_of "$db" "$columns_before" >"$work/before.data"
  check "$version → $current: ALTER EXTENSION pipetrak UPDATE" psql -qX -d "$db" -v ON_ERROR_STOP=1 -c "alter extension pipetrak update"
  schema_of "$db" >"$work/upgraded.schema"
  check "$version → $current: the schema equals a fresh install's" same_file "$work/fresh.schema" "$work/upgraded.schema"
  data_of "$db" "$columns_before" >"$work/after.data"
  check "$version → $current: every table's data is intact" same_file "$work/before.data" "$work/after.data"
  check "$version → $current: the package rows equal a recount of their members and open items" packages_recounted "$db"
  kinds_after=$(psql -qXAt -d "$db" -c "select string_agg(kind || ' ' || n, ', ' order by kind) from (select kind, count(*) n from pipetrak.review_items group by kind) k")
  check "$version → $current: review items keep their kinds under the current names" test "$kinds_before" = "$kinds_after"
  errors_of pipetrak_fresh >"$work/fresh.errors"
  errors_of "$db" >"$work/upgraded.errors"
  check "$version → $current: the error catalog equals a fresh install's" same_file "$work/fresh.errors" "$work/upgraded.errors"
  check "$version → $current: the pgTAP suites pass on the upgraded database" pgtap_passes "$db"
  check "$version → $current: every weld's examination dates are those of its current results" psql -qXAt -d "$db" -v ON_ERROR_STOP=1 -c \
    "select 1 / (count(*) = 0)::int from pipetrak.field_welds w cross join lateral pipetrak.weld_nde_state(w.component_id, w.project_id) s
     where (w.first_examined_on, w.last_examined_on) is distinct from (s.first_examined_on, s.last_examined_on)"
  # The upgrade changes welds' rows (their examination dates) while it replaces the triggers that
  # keep the tallies: each change counted once.
  check "$version → $current: the weld tallies equal a recount of the welds" psql -qXAt -d "$db" -v ON_ERROR_STOP=1 <<'SQL'
create temp table upgraded_tallies as select * from pipetrak.weld_tallies where total <> 0 or rejected <> 0 or lot_welded <> 0;
select 1 / (pipetrak.rebuild_weld_tallies() > 0)::int;
select 1 / (count(*) = 0)::int from (
    (select * from upgraded_tallies except select * from pipetrak.weld_tallies)
    union all
    (select * from pipetrak.weld_tallies except select * from upgraded_tallies)) d;
SQL
done

# Drawing numbers that 0.2.0 reads as one drawing stop the upgrade with a message naming them;
# once one of them is retired, the upgrade goes through. The drawings are written the way 0.1.0's
# library keyed them (case and spaces only: the library installed now folds more), by standing in
# for its key function while they are created.
database_create pipetrak_clash "" 0.1.0 >/dev/null
psql -qX -d pipetrak_clash -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
create or replace function pipetrak.normalize_drawing_key(raw text) returns text
language sql immutable strict parallel safe as $$ select upper(regexp_replace(btrim(raw), '\s+', ' ', 'g')) $$;
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "c1a50000-0000-4000-8000-000000000001", "role": "authenticated"}', false);
select pipetrak_api.create_organization(name => 'Clash') as org \gset
select pipetrak_api.create_project(organization_id => :org, name => 'Clash', job_number => 'C-1') as project \gset
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'P-26B07');
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'P - 26B07');
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'P‐100 Sh 1 of 2');
reset role;
create or replace function pipetrak.normalize_drawing_key(raw text) returns text
language c immutable strict parallel safe as '$libdir/pipetrak', 'normalize_drawing_key_wrapper';
SQL
upgrade_refused() {
  ! psql -qX -d pipetrak_clash -v ON_ERROR_STOP=1 -c "alter extension pipetrak update" 2>"$work/clash.txt" &&
    grep -q "reads these drawing numbers as one drawing: project [0-9]*: P-26B07 = P - 26B07" "$work/clash.txt"
}
check "0.1.0 → $current: drawing numbers that become one stop the upgrade, named" upgrade_refused
check "0.1.0 → $current: with one of them retired, the upgrade goes through and rekeys the drawings" psql -qX -d pipetrak_clash -v ON_ERROR_STOP=1 -c \
  "update pipetrak.drawings set retired_at = now() where drawing_no = 'P - 26B07'; alter extension pipetrak update" \
  -c "select 1 / (count(*) = 1)::int from pipetrak.drawings where drawing_key = 'P-100 1 OF 2'"

# Dump and restore, the way a DBA moves a database (the last upgraded one, filled).
restored=pipetrak_restored
check "pg_dump of a populated database" pg_dump -Fc -d pipetrak_upgrade -f "$work/dump"
database_create "$restored" without-extension >/dev/null
check "pg_restore into a new database" pg_restore -d "$restored" --exit-on-error "$work/dump"
data_of pipetrak_upgrade >"$work/dumped.data"
data_of "$restored" >"$work/restored.data"
check "the restored database holds the same data" same_file "$work/dumped.data" "$work/restored.data"
check "the restored database keeps working: new ids after the restored ones, an import, a milestone update" \
  psql -qX -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
\set log `base64 -w0 tests/data/instance-creation.csv`
select max(id) as last_component from pipetrak.components \gset
select max(id) as last_event from pipetrak.milestone_events \gset
set role authenticated;
select set_config('request.jwt.claims', '{"sub": "5a1e0000-0000-4000-8000-000000000001", "role": "authenticated"}', false);
select id as project from pipetrak_api.projects limit 1 \gset
select pipetrak_api.import_upload(project_id => :project, kind => 'takeoff', filename => 'more.csv',
                                  content => decode(:'log', 'base64')) as import \gset
select pipetrak_api.import_validate(import_id => :import) is not null;
select pipetrak_api.import_commit(import_id => :import, skip_invalid_rows => true) is not null;
select 1 / (min(id) > :last_component)::int from pipetrak.components where id > :last_component;
select pipetrak_api.update_milestone(component_id => (select max(id) from pipetrak_api.components where component_type = 'valve'),
                                     milestone => 'Receive', value => 0) is not null;
select 1 / (max(id) > :last_event)::int from pipetrak.milestone_events;
select 1 / (select count(*) from pipetrak_api.project_progress where project_id = :project)::int;
SQL
check "the restored audit log stays immutable" psql -qX -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
do $$
begin
    update pipetrak.milestone_events set new_value = 0;
    raise exception 'an audit event was changed';
exception when sqlstate 'PT403' then
    null;
end
$$;
SQL
check "the restored rollups equal a recount of the components" psql -qXAt -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
select 1 / (count(*) = 0)::int from (
    select drawing_id, component_type, sum(component_count) as n, sum(earned_total) as e from pipetrak.progress_parts group by 1, 2
    except
    select drawing_id, component_type, count(*), sum(earned_total) from pipetrak.components where retired_at is null group by 1, 2) d;
SQL
check "the restored package rows equal a recount of their members and open items" packages_recounted "$restored"
check "the restored progress parts (readiness counts too) equal a rebuild" psql -qXAt -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
create temp table restored_parts as select * from pipetrak.progress_parts where component_count <> 0;
select 1 / (pipetrak.rebuild_progress_parts() > 0)::int;
select 1 / (count(*) = 0)::int from (
    (select * from restored_parts except select * from pipetrak.progress_parts)
    union all
    (select * from pipetrak.progress_parts except select * from restored_parts)) d;
SQL
check "the restored history days equal a rebuild (retired components' credit out)" psql -qXAt -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
create temp table restored_days as
select project_id, work_date, drawing_id, area_id, system_id, test_package_id, component_type, events, credit_receive,
       credit_install, credit_punch, credit_test, credit_restore from pipetrak.progress_days
where (events, credit_receive, credit_install, credit_punch, credit_test, credit_restore) <> (0, 0, 0, 0, 0, 0);
select 1 / (pipetrak.rebuild_progress_days() >= 0)::int;
select 1 / (count(*) = 0)::int from (
    (select * from restored_days
     except select project_id, work_date, drawing_id, area_id, system_id, test_package_id, component_type, events, credit_receive,
                   credit_install, credit_punch, credit_test, credit_restore from pipetrak.progress_days)
    union all
    (select project_id, work_date, drawing_id, area_id, system_id, test_package_id, component_type, events, credit_receive,
            credit_install, credit_punch, credit_test, credit_restore from pipetrak.progress_days
     where (events, credit_receive, credit_install, credit_punch, credit_test, credit_restore) <> (0, 0, 0, 0, 0, 0)
     except select * from restored_days)) d;
SQL
check "the restored weld tallies equal a recount of the welds" psql -qXAt -d "$restored" -v ON_ERROR_STOP=1 <<'SQL'
create temp table restored_tallies as select * from pipetrak.weld_tallies where total <> 0 or rejected <> 0 or lot_welded <> 0;
select 1 / (count(*) > 0)::int from pipetrak.field_welds;
select 1 / (pipetrak.rebuild_weld_tallies() > 0)::int;
select 1 / (count(*) = 0)::int from (
    (select * from restored_tallies except select * from pipetrak.weld_tallies)
    union all
    (select * from pipetrak.weld_tallies except select * from restored_tallies)) d;
SQL
rm -rf "$work"
