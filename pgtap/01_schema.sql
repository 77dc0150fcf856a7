-- Schema shape and hardening: RLS everywhere, fixed search_path, nothing public, pg_dump coverage.
begin;
select plan(13);

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

-- Static catalogs ship with the extension and are recreated by CREATE EXTENSION; progress parts,
-- weld tallies and progress days are rebuilt from the components, welds and events as they are
-- restored; deferrals live inside one transaction.
select is(
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'S')
       and c.relname not in ('error_codes', 'progress_parts', 'progress_deferrals', 'historical_writes',
                             'weld_tallies', 'weld_day_tallies', 'progress_days', 'component_touches')
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
    (select array_agg(c.relname::text order by c.relname) from pg_class c
     where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'p')
       and obj_description(c.oid, 'pg_class') is null),
    null, 'every table says what it holds (comment on table), for a DBA''s \dt+');

select is(
    (select array_agg(p.oid::regprocedure::text order by p.oid::regprocedure::text) from pg_proc p
     where p.pronamespace = 'pipetrak'::regnamespace and obj_description(p.oid, 'pg_proc') is null),
    null, 'every internal function says what it does (comment on function), for a DBA''s \df+');

select * from finish();
rollback;
