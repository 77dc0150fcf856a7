-- Supabase Storage and Realtime where they exist, and search (spec §12).
--
-- Design notes (decisions where the spec was silent):
-- - Storage paths: the first segment is always the project id.
--     pipetrak-drawings/<project>/<drawing id>/<file>           drawing PDFs (project managers and up)
--     pipetrak-imports/<project>/<file>                          import files (project managers and up)
--     pipetrak-attachments/<project>/welds/<weld id>/<file>      NDE reports (QC inspectors and up)
--     pipetrak-attachments/<project>/packages/<package id>/<file> certificates (QC inspectors and up)
--   Members of the project read; writing needs the role above, a live target of that project and a
--   project not archived. `pipetrak_api.attachments` lists the files with what they are linked to.
-- - Realtime: the policy on `realtime.messages` lets a member of the project receive on the private
--   topic `project:<id>` and nobody send into it (no insert policy of pipetrak's). It checks each
--   row's topic (and that it is the subscribed one), never only the session's.
-- - Both are installed by `pipetrak.install_platform()`, run at CREATE EXTENSION and by the upgrade;
--   a database that gets Supabase's schemas later runs it once (as their owner or a superuser).
--   Without them it does nothing; without the privilege to create policies it warns and does nothing.
-- - Search ranks an exact match first, then prefixes (shortest first), then near codes, then
--   trigram similarity (see search_project). It shows what row-level security shows: the
--   project's rows, to its members only.

-- Whether the caller may read (or write) the object `p_name` of bucket `p_bucket`.
create function pipetrak.storage_allows(p_bucket text, p_name text, p_write boolean)
returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_path text[] := string_to_array(p_name, '/');
    v_project_id bigint;
    v_target bigint;
    v_permission text;
begin
    -- A path is its segments as written: one that another reader would resolve elsewhere (`..`,
    -- `.`, an empty segment, a backslash, a control character) belongs to no project.
    if p_name is null or v_path[1] is null or v_path[1] !~ '^[0-9]{1,18}$' or length(p_name) > 1024
       or exists (select from unnest(v_path) s where s in ('', '.', '..'))
       or p_name ~ '[\\[:cntrl:]]' then
        return false;
    end if;
    v_project_id := v_path[1]::bigint;
    if not p_write then
        return v_project_id in (select pipetrak.my_project_ids('read'));
    end if;
    v_permission := case
        when p_bucket in ('pipetrak-drawings', 'pipetrak-imports') then 'manage_project_data'
        when p_bucket = 'pipetrak-attachments' and v_path[2] in ('welds', 'packages') then 'quality_control'
    end;
    if v_permission is null or cardinality(v_path) < (case when p_bucket = 'pipetrak-imports' then 2 else 3 end)
       or v_project_id not in (select pipetrak.my_project_ids(v_permission))
       or exists (select from pipetrak.projects p where p.id = v_project_id and p.archived_at is not null) then
        return false;
    end if;
    if p_bucket = 'pipetrak-imports' then
        return true;
    end if;
    v_target := case when p_bucket = 'pipetrak-drawings' and v_path[2] ~ '^[0-9]{1,18}$' then v_path[2]::bigint
                     when v_path[3] ~ '^[0-9]{1,18}$' then v_path[3]::bigint end;
    return cardinality(v_path) >= case when p_bucket = 'pipetrak-drawings' then 3 else 4 end
       and case
        when p_bucket = 'pipetrak-drawings' then
            exists (select from pipetrak.drawings d where d.id = v_target and d.project_id = v_project_id and d.retired_at is null)
        when v_path[2] = 'welds' then
            exists (select from pipetrak.field_welds w where w.component_id = v_target and w.project_id = v_project_id)
        else
            exists (select from pipetrak.test_packages t where t.id = v_target and t.project_id = v_project_id and t.retired_at is null)
       end;
end
$$;

-- Whether the caller may receive on the Realtime topic `p_topic` (project:<id> of theirs).
create function pipetrak.realtime_topic_allows(p_topic text)
returns boolean
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return p_topic ~ '^project:[0-9]{1,18}$'
       and substr(p_topic, 9)::bigint in (select pipetrak.my_project_ids('read'));
end
$$;

-- Installs the buckets, the storage.objects policies, the attachments view and the Realtime policy
-- where Supabase's schemas exist. Safe to run again.
create function pipetrak.install_platform()
returns text[]
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_installed text[] := '{}';
    v_buckets constant text := $b$bucket_id in ('pipetrak-drawings', 'pipetrak-imports', 'pipetrak-attachments')$b$;
begin
    if to_regclass('storage.objects') is not null and to_regclass('storage.buckets') is not null then
        begin
            insert into storage.buckets (id, name, public)
            values ('pipetrak-drawings', 'pipetrak-drawings', false), ('pipetrak-imports', 'pipetrak-imports', false),
                   ('pipetrak-attachments', 'pipetrak-attachments', false)
            on conflict (id) do nothing;
            drop policy if exists pipetrak_read on storage.objects;
            drop policy if exists pipetrak_insert on storage.objects;
            drop policy if exists pipetrak_update on storage.objects;
            drop policy if exists pipetrak_delete on storage.objects;
            execute format('create policy pipetrak_read on storage.objects for select to authenticated
                using (%s and pipetrak.storage_allows(bucket_id, name, false))', v_buckets);
            execute format('create policy pipetrak_insert on storage.objects for insert to authenticated
                with check (%s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute format('create policy pipetrak_update on storage.objects for update to authenticated
                using (%1$s and pipetrak.storage_allows(bucket_id, name, true))
                with check (%1$s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute format('create policy pipetrak_delete on storage.objects for delete to authenticated
                using (%s and pipetrak.storage_allows(bucket_id, name, true))', v_buckets);
            execute $v$
                create or replace view pipetrak_api.attachments with (security_invoker = true) as
                select o.id, o.bucket_id as bucket, o.name as path, split_part(o.name, '/', 1)::bigint as project_id,
                       case when o.bucket_id = 'pipetrak-drawings' then 'drawing'
                            when o.bucket_id = 'pipetrak-imports' then 'import'
                            when split_part(o.name, '/', 2) = 'welds' then 'weld'
                            when split_part(o.name, '/', 2) = 'packages' then 'package' end as linked_to,
                       case when o.bucket_id = 'pipetrak-drawings' then nullif(split_part(o.name, '/', 2), '')::bigint
                            when o.bucket_id = 'pipetrak-attachments' then nullif(split_part(o.name, '/', 3), '')::bigint end as linked_id,
                       o.metadata ->> 'mimetype' as content_type, (o.metadata ->> 'size')::bigint as size,
                       o.owner as uploaded_by, o.created_at
                from storage.objects o
                where o.bucket_id in ('pipetrak-drawings', 'pipetrak-imports', 'pipetrak-attachments')
                  and split_part(o.name, '/', 1) ~ '^[0-9]{1,18}$'
                  and (o.bucket_id = 'pipetrak-imports' or split_part(o.name, '/', case when o.bucket_id = 'pipetrak-drawings' then 2 else 3 end) ~ '^[0-9]{1,18}$')$v$;
            comment on view pipetrak_api.attachments is
                'Files of your projects in Supabase Storage and what each is linked to: drawing PDFs (pipetrak-drawings/<project>/<drawing>/…), import files, NDE reports (pipetrak-attachments/<project>/welds/<weld>/…) and certificates (…/packages/<package>/…).';
            if exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
                grant select on pipetrak_api.attachments to authenticated;
            end if;
            if exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
                grant select on pipetrak_api.attachments to service_role;
            end if;
            -- Its columns' words (when Storage came after the extension; an install describes them later).
            if to_regprocedure('pipetrak.describe_api_columns()') is not null then
                perform pipetrak.describe_api_columns();
            end if;
            v_installed := v_installed || 'storage'::text;
        exception when insufficient_privilege then
            raise warning 'pipetrak: no privilege to install the Storage buckets and policies; run select pipetrak.install_platform() as their owner';
        end;
    end if;
    if to_regclass('realtime.messages') is not null and to_regprocedure('realtime.topic()') is not null then
        begin
            drop policy if exists pipetrak_receive on realtime.messages;
            -- The row's own topic decides, and only on the topic the session subscribed to: setting
            -- realtime.topic to one's own project reads that project's messages, no other's.
            create policy pipetrak_receive on realtime.messages for select to authenticated
                using (topic = (select realtime.topic()) and pipetrak.realtime_topic_allows(topic));
            v_installed := v_installed || 'realtime'::text;
        exception when insufficient_privilege then
            raise warning 'pipetrak: no privilege to install the Realtime policy; run select pipetrak.install_platform() as its owner';
        end;
    end if;
    return v_installed;
end
$$;

-- `p_text` as a LIKE pattern matching what starts with it (its wildcards taken literally).
create function pipetrak.like_prefix(p_text text)
returns text
language sql immutable parallel safe
as $$
    select replace(replace(replace(p_text, '\', '\\'), '%', '\%'), '_', '\_') || '%'
$$;

-- `p_text` as a LIKE pattern matching what contains it.
create function pipetrak.like_infix(p_text text)
returns text
language sql immutable parallel safe
as $$
    select '%' || pipetrak.like_prefix(p_text)
$$;

-- Search: one call per project over drawings, components (tag, spool id), welds (number), welders
-- (stencil, name) and test packages, in tiers, each read only when the ones before left room:
--   3      an exact match (case-insensitive),
--   2 - …  a prefix (shorter first),
--   1 + …  a near code: the query's longest leading part (at least 60 % of it) that some tag starts
--          with, so VGATE-012345 finds VGATE-01234x beside itself,
--   0 … 1  trigram similarity, for typos (0.3 and up among codes that keep half of the query; for
--          drawings, welders and packages pg_trgm's % at 0.6).
-- Codes of a takeoff share most of their trigrams, so pg_trgm's % operator would meet a large part
-- of the database's components (its index can't tell VBALU-012345 from VBALU-999999 by the
-- trigrams of VBALU); the tiers use btree prefixes and trigram LIKE, which need all of a text.
-- pg_trgm may live in any schema, so the function is written against the schema it was installed
-- in (as similar_drawings).
create type pipetrak.search_result as (kind text, id bigint, label text, detail text, score real);
create index components_tag_prefix_idx on pipetrak.components (project_id, upper(tag) text_pattern_ops)
    where retired_at is null;
do $$
begin
    execute format('create index components_tag_trgm_idx on pipetrak.components using gin (tag %I.gin_trgm_ops) where retired_at is null',
                   (select n.nspname from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
                    where e.extname = 'pg_trgm'));
end
$$;
-- Code (an upgrade runs it again): `create or replace`.
do $$
declare
    v_schema text;
begin
    select n.nspname into v_schema
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
    where e.extname = 'pg_trgm';
    execute format($f$
        create or replace function pipetrak.search_project(p_project_id bigint, p_query text, p_limit integer)
        returns setof pipetrak.search_result
        language plpgsql stable security definer
        set search_path = pg_catalog, pg_temp
        set pg_trgm.similarity_threshold = 0.6
        -- The prefix tiers need the pattern at planning time to use the btree index.
        set plan_cache_mode = force_custom_plan
        as $body$
        declare
            v_query text := upper(btrim(coalesce(p_query, '')));
            v_limit integer := least(greatest(coalesce(p_limit, 20), 1), 100);
            v_found pipetrak.search_result[];
            v_length integer;
            v_half integer;
        begin
            if v_query = '' then
                perform pipetrak.raise_error('invalid_argument', '{"argument": "query", "expected": "some text to look for"}');
            end if;
            perform pipetrak.check_text_length('query', v_query, pipetrak.argument_limit('query'));
            -- The policies' rule, checked once: a member of the project reads it, anyone else finds no
            -- project. Row-level security itself would keep the indexes out: its filter must run
            -- before any operator that isn't leakproof, and LIKE and pg_trgm's are not.
            perform pipetrak.require_project_role(p_project_id, 'read');
            -- SELECT … INTO rather than assignments: Citus sends an assignment's parameters to
            -- the worker with gaps it can't type.
            select array(
                (select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                            case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                            || ' on ' || d.drawing_no,
                            case when upper(c.tag) = v_query then 3 else 2 - length(c.tag) / 1000.0 end)::pipetrak.search_result
                 from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
                 where c.project_id = p_project_id and c.retired_at is null
                   and upper(c.tag) like pipetrak.like_prefix(v_query)
                 order by length(c.tag), c.tag, c.id limit v_limit)
                union all
                (select row('drawing', d.id, d.drawing_no, d.title,
                            case when d.drawing_key = pipetrak.normalize_drawing_key(v_query) then 3
                                 when upper(d.drawing_no) like pipetrak.like_prefix(v_query) then 2 - length(d.drawing_no) / 1000.0
                                 else %1$I.similarity(lower(d.drawing_key), lower(pipetrak.normalize_drawing_key(v_query))) end)::pipetrak.search_result
                 from pipetrak.drawings d
                 where d.project_id = p_project_id and d.retired_at is null
                   and (upper(d.drawing_no) like pipetrak.like_prefix(v_query)
                        or lower(d.drawing_key) operator(%1$I.%%) lower(pipetrak.normalize_drawing_key(v_query)))
                 order by length(d.drawing_no), d.drawing_no limit v_limit)
                union all
                (select row('welder', w.id, w.stencil, w.name,
                            case when w.stencil = v_query then 3
                                 when w.stencil like pipetrak.like_prefix(v_query) or upper(w.name) like pipetrak.like_prefix(v_query)
                                     then 2 - length(w.stencil) / 1000.0
                                 else greatest(%1$I.similarity(w.stencil, v_query), %1$I.similarity(upper(coalesce(w.name, '')), v_query)) end)::pipetrak.search_result
                 from pipetrak.welders w
                 where w.project_id = p_project_id
                   and (w.stencil like pipetrak.like_prefix(v_query) or upper(w.name) like pipetrak.like_prefix(v_query)
                        or w.stencil operator(%1$I.%%) v_query or upper(w.name) operator(%1$I.%%) v_query)
                 limit v_limit)
                union all
                (select row('package', t.id, t.name, t.test_type,
                            case when upper(t.name) = v_query then 3
                                 when upper(t.name) like pipetrak.like_prefix(v_query) then 2 - length(t.name) / 1000.0
                                 else %1$I.similarity(upper(t.name), v_query) end)::pipetrak.search_result
                 from pipetrak.test_packages t
                 where t.project_id = p_project_id and t.retired_at is null
                   and (upper(t.name) like pipetrak.like_prefix(v_query) or upper(t.name) operator(%1$I.%%) v_query)
                 limit v_limit)) into v_found;
            -- Near codes: the longest leading part of the query some tag starts with.
            v_length := length(v_query) - 1;
            while (select count(*) from unnest(v_found) f where f.score >= 1) < v_limit
                  and v_length >= greatest(3, ceil(length(v_query) * 0.6)) loop
                select v_found || array(
                    select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                               case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                               || ' on ' || d.drawing_no,
                               1 + v_length::real / length(v_query) - abs(length(c.tag) - length(v_query)) / 1000.0)::pipetrak.search_result
                    from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
                    where c.project_id = p_project_id and c.retired_at is null
                      and upper(c.tag) like pipetrak.like_prefix(left(v_query, v_length))
                      and upper(c.tag) not like pipetrak.like_prefix(left(v_query, v_length + 1))
                    order by abs(length(c.tag) - length(v_query)), c.tag, c.id limit v_limit) into v_found;
                v_length := v_length - 1;
            end loop;
            -- Typos: a code with one slip keeps one of its halves. Candidates start with the query's
            -- first half (btree) or contain its second half (a trigram LIKE, which needs every
            -- trigram of it: selective), at most 1,000 of each (a half as common as VBALU- tells
            -- nothing); they rank by trigram similarity, 0.3 and up.
            if (select count(*) from unnest(v_found) f where f.score >= 1) < v_limit and length(v_query) >= 4 then
                v_half := length(v_query) / 2;
                select v_found || array(
                    select row(case when c.component_type = 'field_weld' then 'weld' else 'component' end, c.id, c.tag,
                               case when c.component_type = 'field_weld' then 'weld ' || c.tag else c.component_type || ' ' || c.size end
                               || ' on ' || d.drawing_no, %1$I.similarity(c.tag, v_query))::pipetrak.search_result
                    from ((select k.id from pipetrak.components k
                           where k.project_id = p_project_id and k.retired_at is null
                             and upper(k.tag) like pipetrak.like_prefix(left(v_query, v_half)) limit 1000)
                          union
                          (select k.id from pipetrak.components k
                           where k.project_id = p_project_id and k.retired_at is null
                             and k.tag ilike pipetrak.like_infix(right(v_query, -v_half)) limit 1000)) candidate
                    join pipetrak.components c on c.id = candidate.id
                    join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = p_project_id
                    where upper(c.tag) not like pipetrak.like_prefix(left(v_query, greatest(3, ceil(length(v_query) * 0.6))::integer))
                      and %1$I.similarity(c.tag, v_query) >= 0.3
                    order by %1$I.similarity(c.tag, v_query) desc, c.tag limit v_limit) into v_found;
            end if;
            return query select * from unnest(v_found) f order by f.score desc, f.label, f.id limit v_limit;
        end
        $body$
    $f$, v_schema);
end
$$;
comment on function pipetrak.search_project(bigint, text, integer) is
    'Search of a project for its members: drawings, components, welds, welders and test packages, ranked: exact, prefix, near code, similar; the API''s search.';

create function pipetrak_api.search(project_id bigint, query text, max_results integer default 20)
returns table (kind text, id bigint, label text, detail text, score real)
language sql stable
as $$ select * from pipetrak.search_project(project_id, pipetrak.limited('query', query), max_results) $$;
comment on function pipetrak_api.search(bigint, text, integer) is
    'Finds in a project drawings, components (commodity code, tag, spool id), welds (number), welders (stencil, name) and test packages by prefix or similarity: ranked (exact 3, prefix ~2, near code 1–2, similar 0–1), 20 results by default (at most 100); members only.';

select pipetrak.install_platform();

-- ---- Operations ----

-- What a DBA watches, overall and per project: live and retired components, milestone events in
-- the last day and per day over the last week, imports by status with the median and longest
-- validation and commit of the last 30 days, open review items, staged import rows, and the
-- NOTIFY queue's use. Across every tenant, so no user role may call it (it is not on the
-- allow-list): a superuser or the extension's owner runs `select pipetrak.metrics()`. Reads the
-- last week's events (a scan of milestone_events by time) and counts components per project.
create function pipetrak.metrics()
returns jsonb
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    with projects as (
        select p.id, p.name, p.organization_id, p.archived_at is not null as archived,
               (select count(*) from pipetrak.components c where c.project_id = p.id and c.retired_at is null) as components,
               (select count(*) from pipetrak.components c where c.project_id = p.id and c.retired_at is not null) as retired_components,
               (select count(*) from pipetrak.review_items r where r.project_id = p.id and r.resolved_at is null) as open_review_items
        from pipetrak.projects p),
    events as (
        select e.project_id, e.created_at::date as day, count(*) as n
        from pipetrak.milestone_events e
        where e.created_at >= now() - interval '7 days'
        group by 1, 2),
    imports as (
        select j.project_id, j.status, count(*) as n,
               percentile_cont(0.5) within group (order by extract(epoch from j.validated_at - j.created_at))
                   filter (where j.validated_at >= now() - interval '30 days') as validate_median_s,
               max(extract(epoch from j.committed_at - j.validated_at)) filter (where j.committed_at >= now() - interval '30 days') as commit_max_s,
               percentile_cont(0.5) within group (order by extract(epoch from j.committed_at - j.validated_at))
                   filter (where j.committed_at >= now() - interval '30 days') as commit_median_s
        from pipetrak.import_jobs j
        group by 1, 2)
    select jsonb_build_object(
        'at', now(),
        'overall', jsonb_build_object(
            'organizations', (select count(*) from pipetrak.organizations),
            'projects', (select count(*) from projects),
            'components', (select coalesce(sum(components), 0) from projects),
            'retired_components', (select coalesce(sum(retired_components), 0) from projects),
            'milestone_events_last_day', (select count(*) from pipetrak.milestone_events e where e.created_at >= now() - interval '1 day'),
            'milestone_events_per_day', (select coalesce(jsonb_object_agg(d.day, d.n order by d.day), '{}')
                                         from (select day, sum(n) as n from events group by day) d),
            'imports', (select coalesce(jsonb_object_agg(i.status, i.n), '{}') from (select status, sum(n) as n from imports group by status) i),
            'import_validate_median_s', (select percentile_cont(0.5) within group (order by extract(epoch from j.validated_at - j.created_at))
                                         from pipetrak.import_jobs j where j.validated_at >= now() - interval '30 days'),
            'import_commit_median_s', (select percentile_cont(0.5) within group (order by extract(epoch from j.committed_at - j.validated_at))
                                       from pipetrak.import_jobs j where j.committed_at >= now() - interval '30 days'),
            'import_commit_max_s', (select max(extract(epoch from j.committed_at - j.validated_at))
                                    from pipetrak.import_jobs j where j.committed_at >= now() - interval '30 days'),
            'open_review_items', (select coalesce(sum(open_review_items), 0) from projects),
            'staged_import_rows', (select count(*) from pipetrak.import_rows),
            'notify_queue_usage', pg_notification_queue_usage(),
            -- Change events committed and not yet sent by the event sender (src/pg/sender.rs).
            'events_waiting', (select count(*) from pipetrak.event_outbox),
            -- Refusals by catalogued error since the extension was installed (count_error).
            'refusals_by_code', (select coalesce(jsonb_object_agg(e.code, x.n order by e.code), '{}')
                                 from pipetrak.error_codes e,
                                      lateral (select pg_sequence_last_value(to_regclass(pipetrak.error_counter(e.code))) as n) x
                                 where x.n is not null)),
        'projects', (select coalesce(jsonb_agg(jsonb_build_object(
                         'project_id', p.id, 'name', p.name, 'organization_id', p.organization_id, 'archived', p.archived,
                         'components', p.components, 'retired_components', p.retired_components,
                         'open_review_items', p.open_review_items,
                         'milestone_events_per_day', (select coalesce(jsonb_object_agg(e.day, e.n order by e.day), '{}')
                                                      from events e where e.project_id = p.id),
                         'imports', (select coalesce(jsonb_object_agg(i.status, jsonb_strip_nulls(jsonb_build_object(
                                         'count', i.n, 'validate_median_s', round(i.validate_median_s::numeric, 3),
                                         'commit_median_s', round(i.commit_median_s::numeric, 3),
                                         'commit_max_s', round(i.commit_max_s::numeric, 3)))), '{}')
                                     from imports i where i.project_id = p.id)) order by p.id), '[]')
                     from projects p))
$$;
comment on function pipetrak.metrics() is
    'For a DBA (superuser): components, milestone events per day, imports by status with durations, open review items, staged rows, NOTIFY queue use, change events waiting to be sent and refusals by error code, overall and per project.';

-- The extension's settings (registry: src/pg/settings.rs) with the value this session sees, the
-- default and the range: `select * from pipetrak.settings()`. PL/pgSQL so the library is loaded
-- (and its settings defined) before pg_settings is read.
create function pipetrak.settings()
returns table (name text, value text, default_value text, min_value integer, max_value integer, description text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.max_batch_items();
    return query
        select r.name, s.setting, s.boot_val, r.min_value, r.max_value, r.description
        from pipetrak.setting_registry() r left join pg_settings s on s.name = r.name
        order by r.name;
end
$$;
