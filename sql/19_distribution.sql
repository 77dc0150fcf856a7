-- Scale-out on Citus, sharded by project (optional: plain PostgreSQL 15 and Supabase are the
-- product as shipped).
--
-- Design notes (decisions where the spec was silent):
-- - One place says where each table goes (`distribution_plan`): reference tables (copied to every
--   node: the catalog, who is who, and the projects themselves, so a project's row is next to its
--   shards), distributed tables (sharded by `project_id`, co-located: one project's rows of every
--   table on one node), and coordinator tables (a backend's own bookkeeping and the change events'
--   outbox, read and written on the node the session runs on). A table the plan does not name is
--   itself an obstacle, so a new table can't be forgotten.
-- - What Citus refuses in the schema is found by reading the catalog (`distribution_obstacles`),
--   on any PostgreSQL: the list shrinks as the schema is made ready, and `distribute()` refuses
--   while it is not empty, with a catalogued error, before it changes anything. A half-distributed
--   database is worse than none.
-- - Keys: every primary, unique and foreign key of a sharded table includes `project_id`. Ids
--   stay global (one sequence per table) and lead their key, `(id, project_id)`: a lookup by id
--   reads the same index it did when the key was the id alone, and Citus accepts the key because
--   it holds the shard column. The job number stays unique per organization: `projects` is a
--   reference table, where Citus enforces any key.
-- - Policies call a function (project_visible and its kin, src/pg/visibility.rs): Citus accepts
--   that on distributed tables, and it costs what the subquery did (the caller's ids read once
--   per query). Change events are queued by row triggers (announce_change), which run wherever a
--   row is written. The derived tables (progress parts, package rows, history days) are kept
--   from each statement's captured rows (src/pg/captured.rs): a row trigger keeps each row's
--   images and a statement trigger without transition tables hands them to the same SQL, which
--   nets a statement into one upsert per derived row — what keeps bulk writes fast. Those SQL
--   functions run with generic plans, as the transition tables' queries did (custom plans of
--   their array parameters were planned again on every call: a weld write cost 1.3× more).
-- - Foreign keys: distribute() drops them, places every table and adds them back (Citus would
--   otherwise turn tables into "Citus local" ones, recreating the extension's views).
-- - Identity: the API's write functions are security definers, so their queries reach the
--   workers as the extension's owner; reads through the views reach them as `authenticated`,
--   which distribute() lets log in on the workers. The claims follow as a SET LOCAL, which Citus
--   sends to every node a transaction uses (`citus.propagate_set_commands = local`, set by
--   distribute()); PostgREST's pre-request, `pipetrak.pre_request`, issues it.
-- - A shard's triggers and policies query other tables from inside the coordinator's task, which
--   Citus allows when told (`citus.allow_nested_distributed_execution`, set on the workers'
--   database): each touches reference tables or the same project's co-located shards, so it runs
--   locally. The upkeep functions work one project at a time and filter every table by it, so
--   each of their statements is planned for one shard.
-- - Calls that take an id (a component's, a weld's, an import's) read its project first — an
--   index read on one node — then lock and write by (id, project), on one shard. The request
--   names its project (pipetrak.project, which the pre-request copies from PostgREST's
--   Pipetrak-Project header; request_project): the first read is then by (id, project) too, on
--   that project's shard; without it, a read of every shard on Citus (component_project,
--   import_project: one SELECT … INTO, its shards' answers merged). Shard rows are of the
--   shard's own type: typed functions get them as the table's rows. Not chosen: a project_id
--   argument on each call taking an id (forty signatures changed for what a request states once),
--   ids that carry their project (every id handed out so far would change, and the sequences
--   with them) and a reference table from id to project (every component a write replicated to
--   every node, each import a two-phase commit of all of them).
-- - Imports: every statement of a validation and a commit reads and writes by the job's project
--   (staged rows shard with it), as views or PL/pgSQL where Citus can't plan a SQL function's
--   parameters, with no stable function in an UPDATE's SET (Citus refuses them there). Row
--   counts of INSERT … SELECT … ON CONFLICT DO NOTHING are counted from RETURNING (Citus reports
--   the rows it sent).
-- - The derived tables (progress, tallies, history) are kept on the worker, by the statement
--   triggers of the shard a write reaches, through Citus's nested execution. Every upkeep
--   statement works on its rows' project, so Citus runs it in the task's own backend (local
--   execution) and it commits with the task, two-phase commits included; one Citus would split
--   over shards is refused there (the workers' citus.multi_task_query_log_level, which
--   distribute() sets): its own connections would commit apart from the task (a worker crashed
--   in COMMIT PREPARED before this was so).
-- - Change events: a row's trigger on a worker queues nothing (a NOTIFY there is not heard by a
--   listener of the coordinator); the calls announce what they write from the coordinator
--   instead (queue_change, a no-op on one node: lock_component, lock_weld, update_milestone,
--   lock_import, the review items a call opens or resolves, a test package created or renamed);
--   an import's commit sends its own event there (the job's ids and counts: the components and
--   welds it writes announce nothing else on Citus).
-- - Weekly snapshots: a component write freezes the weeks due first, from its triggers on one
--   node; on a cluster those run in the workers' tasks, which leave it, and the calls that write
--   components freeze them from the coordinator instead (freeze_due_weeks_here), before the
--   write, so a locked week's figures never include it.
-- - Views a screen filters by project join every sharded table by (id, project) and look up
--   what they aggregate in lateral queries grouped by the project and joined on it: Citus then
--   sees the view's project reach every table and runs the screen on one shard (a correlated
--   lookup in a select list, a join by id alone, or a join condition folded to false all hide
--   it). sampling_lots still reads every shard: its repair chains are a recursive query Citus
--   routes only given a constant project.
-- - Not yet: calls finding rows by an id alone (welders, review items, drawings' assignments, a
--   package's completion, blockers and turnover: its welds awaiting NDE and members are read by
--   the package's id), the history upkeep of moves, retirements, restorations and corrections, the
--   progressive examination an RT FAIL calls, and the welder summary and weld delta refuse on a
--   cluster with not_supported_distributed (refuse_distributed, before they read a sharded
--   table): stage 1's contract is that a call runs on one shard or refuses so, never that it
--   fails halfway with a Citus error. distribute() is refused only for what the catalog shows
--   (distribution_obstacles). A worker added after distribute() lacks its settings (run its
--   worker steps again). What the catalog can't show is found by the cluster test,
--   tests/scripts/citus_test.sh, which runs tests/scripts/citus_flow.sql and
--   tests/scripts/citus_calls.sql on both engines and compares them, each statement of a
--   request on one project asserted to run on one shard.

-- Whether this install's tables are distributed by Citus (distribute() ran): where a writer's
-- single-node shortcut doesn't hold (a bulk write's deferred rollups, kept in a table of the
-- coordinator that the workers' triggers can't see).
create function pipetrak.distributed()
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return false;
    end if;
    return exists (select 1 from pg_catalog.pg_dist_partition d where d.logicalrelid = 'pipetrak.components'::regclass);
end
$$;

-- Where each table of pipetrak goes on a Citus cluster: 'reference', 'distributed' (by project_id)
-- or 'coordinator'.
create function pipetrak.distribution_plan()
returns table (table_name text, placement text)
language sql immutable parallel safe
as $$
    select t, 'reference' from unnest(array['error_codes', 'user_profiles', 'organizations', 'memberships', 'invitations',
                                             'projects', 'project_secrets']) t
    union all
    select t, 'coordinator' from unnest(array['progress_deferrals', 'historical_writes', 'event_outbox', 'event_sender']) t
    union all
    select t, 'distributed' from unnest(array['areas', 'systems', 'test_packages', 'drawings', 'milestone_templates', 'welders',
                                               'components', 'field_welds', 'milestone_events', 'review_items', 'client_requests',
                                               'budget_versions', 'component_budgets', 'progress_parts', 'progress_packages',
                                               'import_jobs', 'import_rows', 'component_sources', 'nde_results', 'weld_events',
                                               'weld_tallies', 'weld_day_tallies', 'examination_calls', 'package_stages',
                                               'stage_signoffs', 'package_events', 'certificate_numbers', 'package_certificates',
                                               'progress_days', 'component_touches', 'snapshot_weeks', 'weekly_snapshots',
                                               'baselines', 'baseline_activities', 'timesheet_hours', 'hours_days',
                                               'weekly_groups',
                                               'component_changes']) t
$$;

-- What stops the schema from being distributed by project on Citus, one row an obstacle: the
-- table (or table.object) and what Citus would refuse. Empty when distribute() can run.
create function pipetrak.distribution_obstacles()
returns table (object text, obstacle text)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    with tables as (
        select c.oid, c.relname::text as name, p.placement
        from pg_class c
        left join pipetrak.distribution_plan() p on p.table_name = c.relname
        where c.relnamespace = 'pipetrak'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition),
    sharded as (
        select t.* from tables t where t.placement = 'distributed'),
    found as (
        select t.name as object, 'the table is not in distribution_plan()' as obstacle
        from tables t where t.placement is null
        union all
        select t.name, 'no project_id column to shard by'
        from sharded t
        where not exists (select from pg_attribute a where a.attrelid = t.oid and a.attname = 'project_id' and not a.attisdropped)
        union all
        -- Keys and exclusion constraints of a sharded table hold only within a shard: each needs
        -- project_id. A foreign key between sharded tables must pair project_id with project_id.
        select t.name || '.' || k.conname, case k.contype when 'f' then 'a foreign key between sharded tables without project_id'
                                                         else 'a primary, unique or exclusion key without project_id' end
        from sharded t
        join pg_constraint k on k.conrelid = t.oid and k.contype in ('p', 'u', 'x', 'f')
        where case when k.contype = 'f' then
                  k.confrelid in (select s.oid from sharded s)
                  and not exists (select from unnest(k.conkey, k.confkey) u(a, b)
                                  join pg_attribute x on x.attrelid = k.conrelid and x.attnum = u.a and x.attname = 'project_id'
                                  join pg_attribute y on y.attrelid = k.confrelid and y.attnum = u.b and y.attname = 'project_id')
              else not exists (select from pg_attribute a
                               where a.attrelid = t.oid and a.attname = 'project_id' and a.attnum = any (k.conkey)) end
        union all
        select t.name || '.' || c.relname, 'a unique index without project_id'
        from sharded t
        join pg_index i on i.indrelid = t.oid and i.indisunique
        join pg_class c on c.oid = i.indexrelid
        where not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = t.oid)
          and not exists (select from pg_attribute a
                          where a.attrelid = t.oid and a.attname = 'project_id' and a.attnum = any (i.indkey::int2[]))
        union all
        -- A reference table is on every node: it can't point at one shard's rows.
        select t.name || '.' || k.conname, 'a foreign key from a reference table to a sharded one'
        from tables t
        join pg_constraint k on k.conrelid = t.oid and k.contype = 'f'
        where t.placement = 'reference' and k.confrelid in (select s.oid from sharded s)
        union all
        select t.name || '.' || p.polname, 'a row-level security policy with a subquery'
        from tables t
        join pg_policy p on p.polrelid = t.oid
        where t.placement in ('distributed', 'reference')
          and concat(pg_get_expr(p.polqual, p.polrelid), ' ', pg_get_expr(p.polwithcheck, p.polrelid)) ~* '\mselect\M'
        union all
        select t.name || '.' || g.tgname, 'a trigger reading transition tables'
        from tables t
        join pg_trigger g on g.tgrelid = t.oid and not g.tgisinternal
        where t.placement in ('distributed', 'reference')
          and (g.tgoldtable is not null or g.tgnewtable is not null)
)
    select f.object, f.obstacle from found f order by f.object, f.obstacle
$$;

-- The calls that don't run on a Citus cluster yet call this first (their SQL, before any read
-- of a sharded table): on a distributed install they refuse with not_supported_distributed,
-- naming the call, rather than fail halfway with a Citus error; on one node it does nothing.
-- What they lack is the same each time: rows found by an id alone (a package's, a welder's, a
-- review item's, a drawing's), or upkeep that reads a component's history by its id alone
-- (moves, retirements, restorations, corrections), or a report joining sharded tables without
-- the project. tests/scripts/citus_test.sh calls every call taking an id on the cluster: each
-- answers as on plain PostgreSQL or refuses so.
create function pipetrak.refuse_distributed(p_call text)
returns void
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if pipetrak.distributed() then
        perform pipetrak.raise_error('not_supported_distributed', jsonb_build_object('what', p_call,
            'why', 'this call does not run on one shard yet'));
    end if;
end
$$;

-- PostgREST's db-pre-request (`db-pre-request = "pipetrak.pre_request"`; SQL clients call it
-- after setting their claims, or set what it sets themselves). It copies the request's
-- Pipetrak-Project header, when sent, into pipetrak.project (request_project: the calls taking an
-- id look in that project alone). On a Citus cluster it also passes the request's claims on to
-- the workers, where the read policies of the shards ask them: PostgREST sets them with
-- set_config(), which Citus keeps on the coordinator; a SET LOCAL it sends to every node the
-- transaction uses.
create function pipetrak.pre_request()
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_headers text := current_setting('request.headers', true);
begin
    -- A SET LOCAL of another setting than the function's own SET outlives the call.
    if current_setting('citus.propagate_set_commands', true) = 'local' then
        execute format('set local %I = %L', 'request.jwt.claims', coalesce(current_setting('request.jwt.claims', true), ''));
    end if;
    -- PostgREST hands the headers over as a JSON object, names in lower case.
    if v_headers like '{%' then
        perform set_config('pipetrak.project', coalesce(v_headers::jsonb ->> 'pipetrak-project', ''), true);
    end if;
end
$$;

-- Distributes pipetrak's tables on a Citus coordinator (as distribution_plan() says, co-located
-- by project) once the schema has no obstacle left. Run it as a superuser, on the coordinator,
-- after the workers are added. Refused where Citus is not installed, and while
-- distribution_obstacles() lists anything (nothing is changed then). The calls that don't run on
-- one shard yet refuse there afterwards (refuse_distributed). Granted to no user role.
create function pipetrak.distribute()
returns table (table_name text, placement text)
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_obstacles jsonb;
    v_table record;
    v_first text;
    v_keys jsonb;
    v_key jsonb;
    v_step record;
begin
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
        perform pipetrak.raise_error('permission_denied', '{"needs": "a superuser (Citus changes every table)"}');
    end if;
    if not exists (select from pg_extension where extname = 'citus') then
        perform pipetrak.raise_error('citus_missing');
    end if;
    select jsonb_agg(jsonb_build_object('object', o.object, 'obstacle', o.obstacle)) into v_obstacles
    from pipetrak.distribution_obstacles() o;
    if v_obstacles is not null then
        perform pipetrak.raise_error('not_supported_distributed', jsonb_build_object(
            'what', 'distributing this schema', 'obstacles', jsonb_array_length(v_obstacles), 'first', v_obstacles -> 0));
    end if;
    -- The workers' own settings first, each committed by its own connection: once this
    -- transaction has changed the database's settings (which Citus sends to the workers in it),
    -- another change of them on a worker would wait for it.
    -- Identity on the workers. A read through the API views runs on the shards as the caller's
    -- role, over a connection Citus opens as that role: authenticated may log in on the workers
    -- (only; workers take connections from the coordinator alone, as Citus requires). anon reads
    -- nothing, so it stays as it is.
    -- On a worker, a shard's triggers (the derived tables' upkeep) and policies (the caller's
    -- projects) run queries of their own inside the coordinator's task, which Citus refuses unless
    -- told. Each reads reference tables or writes the same project's rows, whose shards are
    -- co-located on that worker: executed locally, as on one node.
    for v_step in
        select * from (values
            ('alter role authenticated login', 'a worker refused to let the authenticated role log in'),
            (format('alter database %I set citus.allow_nested_distributed_execution = on', current_database()),
             'a worker refused a setting of its database'),
            -- ... but only on the task's own shards: a statement Citus would split over several
            -- opens connections of the task's own, which commit apart from it (a worker crashed in
            -- COMMIT PREPARED so); refused instead, wherever it comes from (a trigger, a policy).
            (format('alter database %I set citus.multi_task_query_log_level = %L', current_database(), 'error'),
             'a worker refused a setting of its database')) x(command, refused)
    loop
        if exists (select from run_command_on_workers('set citus.enable_ddl_propagation to off; ' || v_step.command) w
                   where not w.success) then
            perform pipetrak.raise_error('not_supported_distributed', jsonb_build_object('what', v_step.refused));
        end if;
    end loop;
    -- pipetrak's tables have triggers (Citus refuses them unless told, here and when they fire),
    -- and one transaction creates every table: sequential, so a table created after one with a
    -- foreign key to a reference table is not refused for the parallel work before it.
    execute format('alter database %I set citus.enable_unsafe_triggers = on', current_database());
    -- The claims reach the workers as a SET LOCAL, which Citus passes on when told to
    -- (pre_request). On the coordinator only: a worker told so too records the coordinator's
    -- whole command string as its own SET LOCAL and sends it again, BEGIN included, on the
    -- connections its triggers open.
    perform set_config('citus.enable_ddl_propagation', 'off', true);
    execute format('alter database %I set citus.propagate_set_commands = %L', current_database(), 'local');
    perform set_config('citus.enable_ddl_propagation', 'on', true);
    perform set_config('citus.enable_unsafe_triggers', 'on', true);
    perform set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- Citus turns a local table with a foreign key to a new reference table into a "Citus local"
    -- table, recreating the views over it: refused for the extension's own views. So the foreign
    -- keys go first — here, and on each worker, where CREATE EXTENSION made the same tables as
    -- plain ones (Citus uses them as the distributed tables' shells there) — and come back once
    -- every table is placed, when Citus creates them on the shards too. The workers' commands
    -- commit on their own: a distribution that fails after them is run again (if exists).
    select jsonb_agg(jsonb_build_object('table', k.conrelid::regclass::text, 'name', k.conname,
                                        'definition', pg_get_constraintdef(k.oid)) order by k.conrelid, k.conname)
    into v_keys
    from pg_constraint k
    join pg_class c on c.oid = k.conrelid
    where k.contype = 'f' and c.relnamespace = 'pipetrak'::regnamespace
      and c.relname in (select p.table_name from pipetrak.distribution_plan() p where p.placement <> 'coordinator');
    for v_key in select * from jsonb_array_elements(coalesce(v_keys, '[]')) loop
        execute format('alter table %s drop constraint %I', v_key ->> 'table', v_key ->> 'name');
        if exists (select from run_command_on_workers(format('alter table %s drop constraint if exists %I',
                                                             v_key ->> 'table', v_key ->> 'name')) w
                   where not w.success) then
            perform pipetrak.raise_error('not_supported_distributed', jsonb_build_object(
                'what', 'a worker refused to drop a foreign key before distributing', 'key', v_key ->> 'name'));
        end if;
    end loop;
    -- Reference tables first, then the sharded ones, all co-located with the first (the foreign
    -- keys are gone until the end, so no other order matters).
    for v_table in
        select p.table_name, p.placement from pipetrak.distribution_plan() p
        where p.placement <> 'coordinator'
        order by p.placement = 'distributed', p.table_name
    loop
        if v_table.placement = 'reference' then
            execute format('select create_reference_table(%L)', 'pipetrak.' || v_table.table_name);
        elsif v_first is null then
            execute format('select create_distributed_table(%L, %L, colocate_with => %L)',
                           'pipetrak.' || v_table.table_name, 'project_id', 'none');
            v_first := 'pipetrak.' || v_table.table_name;
        else
            execute format('select create_distributed_table(%L, %L, colocate_with => %L)',
                           'pipetrak.' || v_table.table_name, 'project_id', v_first);
        end if;
        table_name := v_table.table_name;
        placement := v_table.placement;
        return next;
    end loop;
    for v_key in select * from jsonb_array_elements(coalesce(v_keys, '[]')) loop
        execute format('alter table %s add constraint %I %s', v_key ->> 'table', v_key ->> 'name', v_key ->> 'definition');
    end loop;
end
$$;
