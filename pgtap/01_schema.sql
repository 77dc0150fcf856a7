-- Schema shape and hardening: RLS everywhere, fixed search_path, nothing public, pg_dump coverage.
begin;
select plan(16);

select is(
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     where c.relnamespace = 'pipetrak'::regnamespace and c.relkind = 'r' and not c.relrowsecurity),
    null, 'every table in pipetrak has row-level security enabled');

select is(
    (select array_agg(p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace) and p.prosecdef
       and not exists (select from unnest(p.proconfig) s where s like 'search_path=%')),
    null, 'every security definer function has a fixed search_path');

select is(
    (select array_agg(p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak_api'::regnamespace and p.prosecdef),
    null, 'pipetrak_api holds no security definer function');

select is(
    (select array_agg(c.relname::text) from pg_class c
     where c.relnamespace = 'pipetrak_api'::regnamespace and c.relkind = 'v'
       and not coalesce('security_invoker=true' = any (c.reloptions), false)),
    null, 'every pipetrak_api view is security_invoker');

select is(
    (select array_agg(p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace)
       and (has_function_privilege('public', p.oid, 'execute') or has_function_privilege('anon', p.oid, 'execute'))),
    null, 'no function of the extension is executable by public or anon');

select is(
    (select array_agg(p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and p.prorettype = 'trigger'::regtype
       and has_function_privilege('authenticated', p.oid, 'execute')),
    null, 'no trigger function is executable by authenticated');

select ok(not has_schema_privilege('anon', 'pipetrak', 'usage') and not has_schema_privilege('anon', 'pipetrak_api', 'usage'),
    'anon has no usage on either schema');

select is(
    (select array_agg(c.relname::text) from pg_class c
     where c.relnamespace in ('pipetrak'::regnamespace, 'pipetrak_api'::regnamespace) and c.relkind in ('r', 'v', 'S')
       and (has_table_privilege('anon', c.oid, 'select') or has_table_privilege('authenticated', c.oid, 'insert')
            or has_table_privilege('authenticated', c.oid, 'update') or has_table_privilege('authenticated', c.oid, 'delete'))),
    null, 'anon reads nothing and authenticated writes no table directly');

-- Static catalogs ship with the extension and are recreated by CREATE EXTENSION (with their
-- refusal counters, which count on the server they run on); progress parts,
-- weld tallies and progress days are rebuilt from the components, welds and events as they are
-- restored; deferrals live inside one transaction.
select is(
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'S')
       and c.relname not in ('error_codes', 'progress_parts', 'progress_packages', 'progress_deferrals', 'historical_writes',
                             'weld_tallies', 'weld_day_tallies', 'progress_days', 'component_touches')
       and c.relname !~ '^error_count_' and c.relname not in ('event_outbox', 'event_outbox_id_seq', 'event_sender')
       and not exists (select from pg_extension e where e.extname = 'pipetrak' and c.oid = any (e.extconfig))),
    null, 'every data table and sequence is registered for pg_dump');

select is(
    (select array_agg(p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak_api'::regnamespace and obj_description(p.oid, 'pg_proc') is null),
    null, 'every API function has a comment');

select is(
    (select array_agg(c.relname::text) from pg_class c
     where c.relnamespace = 'pipetrak_api'::regnamespace and obj_description(c.oid, 'pg_class') is null),
    null, 'every API view has a comment');

select is(
    (select array_agg(c.relname::text || '.' || a.attname::text order by c.relname, a.attnum) from pg_class c
     join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace = 'pipetrak_api'::regnamespace and c.relkind = 'v' and col_description(c.oid, a.attnum) is null),
    null, 'every API view column says what it holds');

select is(
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'p')
       and obj_description(c.oid, 'pg_class') is null),
    null, 'every table says what it holds (comment on table), for a DBA''s \dt+');

select is(
    (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and obj_description(p.oid, 'pg_proc') is null),
    null, 'every internal function says what it does (comment on function), for a DBA''s \df+');

-- One vocabulary, one list: a column's check constraint allows exactly the words Rust decides
-- with (pipetrak.vocabulary), and columns holding the same words allow the same ones.
create function pg_temp.allowed(p_table text, p_column text) returns text[] language sql as $$
    select array(select m[1] from pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g') m
                 where c.conrelid = ('pipetrak.' || p_table)::regclass and c.contype = 'c'
                   and c.conkey = array[(select a.attnum from pg_attribute a where a.attrelid = c.conrelid and a.attname = p_column)]
                 order by 1)
$$;
create temp table vocabulary_columns (table_name text, column_name text, vocabulary text);
insert into vocabulary_columns values
    ('field_welds', 'status', 'weld_status'), ('field_welds', 'weld_type', 'weld_type'),
    ('field_welds', 'nde_result', 'nde_result'), ('field_welds', 'nde_types', 'nde_method'),
    ('nde_results', 'method', 'nde_method'),
    ('nde_results', 'result', 'nde_result'), ('package_stages', 'stage', 'package_stage'),
    ('package_stages', 'status', 'stage_status'), ('import_jobs', 'kind', 'import_kind'),
    ('baseline_activities', 'curve', 'baseline_curve'),
    ('import_jobs', 'format', 'import_format'), ('import_rows', 'status', 'import_row_status'),
    ('projects', 'sequence_mode', 'sequence_mode');
select is_empty($$select v.table_name || '.' || v.column_name || ' allows ' || pg_temp.allowed(v.table_name, v.column_name)::text
                         || ', Rust knows ' || array(select w from unnest(pipetrak.vocabulary(v.vocabulary)) w order by 1)::text
                  from vocabulary_columns v
                  where pg_temp.allowed(v.table_name, v.column_name) is distinct from array(select w from unnest(pipetrak.vocabulary(v.vocabulary)) w order by 1)
                  union all
                  select 'vocabulary ' || n || ' is checked by no column' from unnest(pipetrak.vocabularies()) n
                  where n not in (select vocabulary from vocabulary_columns)$$,
                'every column holding one of Rust''s vocabularies allows exactly its words, and each vocabulary is checked');
select is_empty($$select 'memberships.role / invitations.role / member_roles()' where pg_temp.allowed('memberships', 'role') is distinct from pg_temp.allowed('invitations', 'role')
                     or pg_temp.allowed('memberships', 'role') is distinct from array(select r from unnest(pipetrak.member_roles()) r order by 1)
                  union all
                  select 'test_packages / package_certificates test_pressure_unit'
                  where pg_temp.allowed('test_packages', 'test_pressure_unit') is distinct from pg_temp.allowed('package_certificates', 'test_pressure_unit')$$,
                'columns sharing a vocabulary of SQL''s allow the same words');

select * from finish();
rollback;
