-- Scale-out on Citus: where each table goes, what the schema still lacks, and distribute()'s
-- refusals on a single node (tests/scripts/citus_test.sh runs it on a real cluster).
begin;
\ir fixtures/actors.sql
select plan(24);

select is(
    (select array_agg(o.object order by o.object) from pipetrak.distribution_obstacles() o
     where o.obstacle = 'the table is not in distribution_plan()'),
    null, 'every table of pipetrak has a place in distribution_plan()');

select is(
    (select array_agg(p.table_name order by p.table_name) from pipetrak.distribution_plan() p
     where to_regclass('pipetrak.' || p.table_name) is null),
    null, 'distribution_plan() names only tables that exist');

select is(
    (select array_agg(p.table_name order by p.table_name) from pipetrak.distribution_plan() p
     group by p.table_name having count(*) > 1),
    null, 'distribution_plan() places each table once');

-- A table nobody placed is an obstacle, and one without project_id and a key without it are
-- found once it is placed among the sharded ones (the detector reads the catalog, not a list).
create table pipetrak.probe_unplaced (id bigint primary key);
select is(
    (select array_agg(o.obstacle order by o.obstacle) from pipetrak.distribution_obstacles() o where o.object like 'probe_unplaced%'),
    array['the table is not in distribution_plan()'], 'a new table is an obstacle until distribution_plan() places it');
drop table pipetrak.probe_unplaced;

-- A sharded table (by its name in the plan) with keys, a unique index and a foreign key Citus
-- refuses, a policy with a subquery and a trigger reading a transition table: each is found, and
-- what carries project_id (a unique key, a foreign key pairing it) is not.
alter table pipetrak.weld_day_tallies rename to weld_day_tallies_kept;
create table pipetrak.weld_day_tallies (id bigint primary key, project_id bigint, owner_id bigint, drawing_id bigint,
                                        unique (project_id, owner_id),
                                        foreign key (owner_id, drawing_id) references pipetrak.drawings (project_id, id),
                                        constraint probe_paired foreign key (project_id, drawing_id)
                                            references pipetrak.drawings (project_id, id));
create unique index probe_index on pipetrak.weld_day_tallies (owner_id);
alter table pipetrak.weld_day_tallies enable row level security;
create policy probe_policy on pipetrak.weld_day_tallies using (owner_id in (select 1));
create trigger probe_trigger after insert on pipetrak.weld_day_tallies referencing new table as n
    for each statement execute function pipetrak.flush_rows('progress_days_net_events');
select is(
    (select array_agg(o.object || ': ' || o.obstacle order by o.object, o.obstacle) from pipetrak.distribution_obstacles() o
     where o.object = 'weld_day_tallies' or o.object like 'weld\_day\_tallies.%'),
    array['weld_day_tallies.probe_index: a unique index without project_id',
          'weld_day_tallies.probe_policy: a row-level security policy with a subquery',
          'weld_day_tallies.probe_trigger: a trigger reading transition tables',
          'weld_day_tallies.weld_day_tallies_owner_id_drawing_id_fkey: a foreign key between sharded tables without project_id',
          'weld_day_tallies.weld_day_tallies_pkey: a primary, unique or exclusion key without project_id'],
    'what Citus refuses in a sharded table is each found in the catalog, and nothing else');

-- A sharded table without the column to shard by.
alter table pipetrak.weld_tallies rename to weld_tallies_kept;
create table pipetrak.weld_tallies (note text);
select is(
    (select array_agg(o.obstacle) from pipetrak.distribution_obstacles() o where o.object = 'weld_tallies'),
    array['no project_id column to shard by'], 'a sharded table without project_id is found');

-- Read policies ask a function, not a subquery (Citus refuses those on distributed tables), and
-- the function reads the caller's projects once per query, not once per row.
select is((select count(*) from pipetrak.distribution_obstacles() o where o.obstacle like '%policy%'
           and o.object not like 'weld_day_tallies.%'),
          0::bigint, 'no read policy holds a subquery');
set track_functions = 'all';
select pg_temp.act_as(pg_temp.uid('viewer'));
select coalesce(pg_stat_get_xact_function_calls('pipetrak.my_project_ids(text)'::regprocedure), 0) as calls_before \gset
select count(*) as templates_read from pipetrak.milestone_templates \gset
select coalesce(pg_stat_get_xact_function_calls('pipetrak.my_project_ids(text)'::regprocedure), 0) as calls_after \gset
reset role;
select ok(:templates_read >= 10 and :calls_after - :calls_before = 1,
          format('a read of %s rows asks for the caller''s projects once (asked %s times)', :templates_read,
                 :calls_after - :calls_before));
-- The same question again in the same transaction is asked again (a new query, a new snapshot):
-- a membership removed in between is not remembered.
select pg_temp.act_as(pg_temp.uid('viewer'));
select count(*) as before_removal from pipetrak.milestone_templates where project_id = :project_a \gset
reset role;
delete from pipetrak.memberships where user_id = pg_temp.uid('viewer');
select pg_temp.act_as(pg_temp.uid('viewer'));
select count(*) as after_removal from pipetrak.milestone_templates where project_id = :project_a \gset
reset role;
select ok(:before_removal > 0 and :after_removal = 0,
          'a member removed reads nothing from the next query on, in the same session and transaction');

-- The lookup is read-only, as a STABLE function's queries are: a parallel read through the
-- policies into a new table (whose command the leader has already marked as writing) works.
set parallel_setup_cost = 0;
set parallel_tuple_cost = 0;
set min_parallel_table_scan_size = 0;
select pg_temp.act_as(pg_temp.uid('owner'));
create temporary table probe_parallel as select * from pipetrak.milestone_templates;
reset role;
reset parallel_setup_cost;
reset parallel_tuple_cost;
reset min_parallel_table_scan_size;
select is((select count(*) from probe_parallel),
          (select count(*) from pipetrak.milestone_templates t join pipetrak.projects p on p.id = t.project_id
           where p.organization_id = :org_a),
          'a parallel read through the policies in a statement that writes (create table as) works');

-- The request's project (pipetrak.project; PostgREST's Pipetrak-Project header through the
-- pre-request): calls taking an id look for it in that project alone. It narrows, never widens.
select set_config('request.headers', format('{"pipetrak-project": "%s", "accept": "*/*"}', :project_a), true) \g /dev/null
select pipetrak.pre_request();
select is(current_setting('pipetrak.project'), :'project_a', 'the pre-request copies the Pipetrak-Project header');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Receive'', 100) ->> ''percent_complete''', :valve_a)),
          '10.0000', 'a call on an id of the request''s project works');
select is(pg_temp.try_as('outsider', format('select pipetrak_api.update_milestone(%s, ''Install'', 100)', :valve_a)),
          'PT404', 'naming another organization''s project in the header reaches none of its ids');
select set_config('request.headers', format('{"pipetrak-project": "%s"}', :project_b), true) \g /dev/null
select pipetrak.pre_request();
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Install'', 100)', :valve_a)),
          'PT404', 'an id outside the request''s project is not found, even for a member of its own');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestones(''[{"component_id": %s, "milestone": "Install", "value": 100}]'')', :valve_a)),
          'PT404', 'a batch finds only the request''s project''s ids');
select set_config('request.headers', format('{"pipetrak-project": "%s"}', :project_b), true) \g /dev/null
select pipetrak.pre_request();
select is(pg_temp.try_as('project_manager', format('select pipetrak_api.rename_area(%s, ''Unit 7'')', :area_a)),
          'PT404', 'an area outside the request''s project is not found');
select is(pg_temp.try_as('project_manager', format('select pipetrak_api.revise_drawing(%s, ''C'')', :drawing_a)),
          'PT404', 'a drawing outside the request''s project is not found');
select set_config('request.headers', format('{"pipetrak-project": "%s"}', :project_a), true) \g /dev/null
select pipetrak.pre_request();
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Punch'', 100, client_request_id => ''req-7'') ->> ''percent_complete''', :valve_a)),
          '20.0000', 'a request naming its project stores its result for replay');
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Punch'', 0, client_request_id => ''req-7'') ->> ''percent_complete''', :valve_a)),
          '20.0000', 'its replay in the same project returns the stored result (not Punch at 0)');
select set_config('request.headers', format('{"pipetrak-project": "%s"}', :project_b), true) \g /dev/null
select pipetrak.pre_request();
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Punch'', 0, client_request_id => ''req-7'')', :valve_a)),
          'PT404', 'a replay naming another project finds no stored result there, nor the component');
select set_config('request.headers', '{"accept": "*/*"}', true) \g /dev/null
select pipetrak.pre_request();
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Install'', 100) ->> ''percent_complete''', :valve_a)),
          '80.0000', 'a request without the header finds ids in every project, as before');
select set_config('pipetrak.project', 'project A', true) \g /dev/null
select is(pg_temp.try_as('foreman', format('select pipetrak_api.update_milestone(%s, ''Punch'', 100)', :valve_a)),
          'PT400', 'a malformed request project is refused with invalid_argument');
select set_config('pipetrak.project', '', true) \g /dev/null

select throws_ok('select pipetrak.distribute()', 'PT424', 'Citus is not installed in this database',
                 'distribute() is refused where Citus is not installed');

-- Work a Citus worker leaves to the coordinator (change events, due snapshots) is skipped only in a
-- Citus task: on a single node a session naming itself like one, with a placeholder of Citus's
-- setting, is no task (it would silence its own writes' change events).
set local citus.allow_nested_distributed_execution = on;
set local application_name = 'citus_internal gpid=10000000001';
select is(pipetrak.citus_task(), false, 'a session can''t pass itself off as a Citus task where Citus is not loaded');
reset application_name;

select * from finish();
rollback;
