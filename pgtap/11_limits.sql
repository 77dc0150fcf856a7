-- Every text, JSON and list argument of every pipetrak_api function has a size limit that is
-- enforced before anything else: found from the catalog (a function added later is covered
-- without a line here), each is sent one item, character or byte over its limit by a signed-in
-- user of another organization (every other argument null), and must come back as the catalogued
-- size error naming that argument, within a second. Multi-byte text checks that characters, not
-- bytes, are counted.
begin;
\ir fixtures/actors.sql

create temp view api_arguments as
select p.oid as function_oid, p.proname::text as function_name, a.name::text as argument, a.type as type_oid,
       case when a.type = 'text'::regtype then 'text' when a.type = 'jsonb'::regtype then 'jsonb' else 'list' end as kind
from pg_proc p,
     unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) as a(name, type)
where p.pronamespace = 'pipetrak_api'::regnamespace
  and (a.type in ('text'::regtype, 'jsonb'::regtype)
       or exists (select from pg_type t where t.oid = a.type and t.typcategory = 'A'));

select plan((select count(*)::integer from api_arguments) + 3);

-- One call: the function with `p_argument` just over its limit and every other argument null.
-- Returns 'SQLSTATE code argument' of what it raised ('ok' if nothing), and ' slow' past 1 s.
create function pg_temp.oversized_call(p_function oid, p_argument text, p_kind text) returns text language plpgsql as $$
declare
    v_max integer := coalesce(pipetrak.argument_limit(p_argument), 1000000);
    v_value text := case p_kind
        when 'text' then format('repeat(%L, %s)', 'é', v_max + 1)
        when 'jsonb' then format('jsonb_build_object(%L, repeat(%L, %s))', 'x', 'x', v_max)
        else format('array_fill(0, array[%s])', v_max + 1) end;
    v_call text;
    v_state text := 'ok';
    v_detail text;
    v_started timestamptz;
begin
    select format('select %s(%s)', p.oid::regproc, string_agg(
               format('%I => %s::%s', a.name, case when a.name = p_argument then v_value else 'null' end, format_type(a.type, null)),
               ', ' order by a.i))
    into v_call
    from pg_proc p, unnest(p.proargnames[1:p.pronargs], p.proargtypes::oid[]) with ordinality as a(name, type, i)
    where p.oid = p_function
    group by p.oid;
    perform pg_temp.act_as(pg_temp.uid('outsider'));
    v_started := clock_timestamp();
    begin
        execute v_call;
    exception when others then
        get stacked diagnostics v_state = returned_sqlstate, v_detail = pg_exception_detail;
        v_state := v_state || ' ' || coalesce(v_detail::jsonb ->> 'code', '') || ' ' || coalesce(v_detail::jsonb ->> 'argument', '');
    end;
    perform set_config('role', 'postgres', true);
    return v_state || case when clock_timestamp() - v_started > interval '1 second' then ' slow' else '' end;
end $$;

select is(pg_temp.oversized_call(a.function_oid, a.argument, a.kind),
          case a.kind when 'text' then 'PT422 text_too_long ' when 'jsonb' then 'PT413 value_too_large '
                      else 'PT413 batch_too_large ' end || a.argument,
          format('%s(%s => %s over its limit) is refused at once', a.function_name, a.argument,
                 case a.kind when 'text' then 'a text' when 'jsonb' then 'JSON' else 'a list' end))
from api_arguments a
order by a.function_name, a.argument;

-- The registry speaks of the API's arguments only, each with the unit of its type.
select set_eq($$select argument from pipetrak.argument_limits()$$,
              $$select distinct argument from api_arguments$$,
              'the registry names exactly the API''s text, JSON and list arguments');
select is_empty($$select distinct a.argument from api_arguments a join pipetrak.argument_limits() l using (argument)
                  where l.unit <> case a.kind when 'text' then 'characters' when 'jsonb' then 'bytes' else 'items' end$$,
                'each limit is counted in the unit of its argument''s type');
-- At its limit a value passes: a name of exactly 200 characters, twice as many bytes.
select repeat('é', pipetrak.argument_limit('name')) as longest_name \gset
select pg_temp.act_as(pg_temp.uid('outsider'));
select ok(pipetrak_api.create_organization(name => :'longest_name') is not null,
          'a name of exactly its limit in characters (twice as many bytes) is accepted');
select set_config('role', 'postgres', true);

select * from finish();
rollback;
