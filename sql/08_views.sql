-- Read side of the API: security_invoker views, so the caller's RLS applies to every row.

-- Progress parts with the credit available in each category (count × the template's category weight).
create view pipetrak.progress_facts with (security_invoker = true) as
select p.project_id, p.drawing_id, p.area_id, p.system_id, p.test_package_id, p.component_type,
       p.component_count, p.completed_count, p.earned_total,
       p.earned_receive, p.component_count::bigint * t.receive_weight * 10000 as possible_receive,
       p.earned_install, p.component_count::bigint * t.install_weight * 10000 as possible_install,
       p.earned_punch, p.component_count::bigint * t.punch_weight * 10000 as possible_punch,
       p.earned_test, p.component_count::bigint * t.test_weight * 10000 as possible_test,
       p.earned_restore, p.component_count::bigint * t.restore_weight * 10000 as possible_restore
from pipetrak.progress_parts p
join pipetrak.milestone_templates t on t.project_id = p.project_id and t.component_type = p.component_type
where p.component_count > 0;

-- Percent of `p_possible` that `p_earned` is, to two decimals; NULL when nothing is possible.
create function pipetrak.percent_of(p_earned numeric, p_possible numeric)
returns numeric
language sql immutable parallel safe
as $$
    select case when p_possible > 0 then round(100 * p_earned / p_possible, 2) end
$$;

-- Rollup of the progress parts at each level — project, drawing, area, system, test package (key
-- NULL = unassigned) — one row per project, level and key. A view rather than a function taking
-- the level: Citus can't plan a SQL function's query over sharded tables with its parameter
-- (never inlined there). A filter on level and project_id reaches the parts' index; the level
-- picks the key through the one-row VALUES scan the filter leaves (the same cost as the function's
-- constant).
create view pipetrak.progress_rollups with (security_invoker = true) as
select f.project_id, l.level,
       case l.level when 'project' then f.project_id when 'drawing' then f.drawing_id when 'area' then f.area_id
                    when 'system' then f.system_id when 'test_package' then f.test_package_id end as key_id,
       sum(f.component_count)::bigint as component_count, sum(f.completed_count)::bigint as completed_count,
       pipetrak.percent_of(sum(f.earned_total), sum(f.component_count) * 1000000) as percent_complete,
       pipetrak.percent_of(sum(f.earned_receive), sum(f.possible_receive)) as received_percent,
       pipetrak.percent_of(sum(f.earned_install), sum(f.possible_install)) as installed_percent,
       pipetrak.percent_of(sum(f.earned_punch), sum(f.possible_punch)) as punched_percent,
       pipetrak.percent_of(sum(f.earned_test), sum(f.possible_test)) as tested_percent,
       pipetrak.percent_of(sum(f.earned_restore), sum(f.possible_restore)) as restored_percent
from (values ('project'), ('drawing'), ('area'), ('system'), ('test_package')) l(level)
cross join pipetrak.progress_facts f
group by 1, 2, 3;

create view pipetrak_api.project_progress with (security_invoker = true) as
select p.id as project_id, p.name as project_name, coalesce(r.component_count, 0) as component_count,
       coalesce(r.completed_count, 0) as completed_count, coalesce(r.percent_complete, 0) as percent_complete,
       r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.projects p
left join pipetrak.progress_rollups r on r.project_id = p.id and r.level = 'project';
comment on view pipetrak_api.project_progress is 'Progress of each project: component and completed counts, average % complete, and % earned per category (received, installed, punched, tested, restored).';

-- A page of drawings reads a page: the drawings in the order asked (an index gives the drawing
-- number's), each rolled up on its own through the parts' (project, drawing) key, so a client
-- showing 50 of 2,000 drawings rolls up 50 (1.3 ms against 10.6; the whole list of 2,000 costs
-- about 1.5 times one aggregate of them all, 22 ms against 15). The figures are progress_rollups',
-- for one drawing (pgTAP checks the two agree); a drawing without live components has no row.
-- The aggregate is grouped by project and joined on it (the same rows): Citus then sees the
-- project the view is filtered by reach the parts, and runs a project's page on its shard alone.
create view pipetrak_api.drawing_progress with (security_invoker = true) as
select d.project_id, d.id as drawing_id, d.drawing_no, r.component_count, r.completed_count, r.percent_complete,
       r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.drawings d
join lateral (
    select f.project_id, sum(f.component_count)::bigint as component_count, sum(f.completed_count)::bigint as completed_count,
           pipetrak.percent_of(sum(f.earned_total), sum(f.component_count) * 1000000) as percent_complete,
           pipetrak.percent_of(sum(f.earned_receive), sum(f.possible_receive)) as received_percent,
           pipetrak.percent_of(sum(f.earned_install), sum(f.possible_install)) as installed_percent,
           pipetrak.percent_of(sum(f.earned_punch), sum(f.possible_punch)) as punched_percent,
           pipetrak.percent_of(sum(f.earned_test), sum(f.possible_test)) as tested_percent,
           pipetrak.percent_of(sum(f.earned_restore), sum(f.possible_restore)) as restored_percent
    from pipetrak.progress_facts f
    where f.project_id = d.project_id and f.drawing_id = d.id
    group by f.project_id) r on r.project_id = d.project_id;
comment on view pipetrak_api.drawing_progress is 'Progress per drawing (live components only): counts, average % complete, % per category.';

create view pipetrak_api.area_progress with (security_invoker = true) as
select r.project_id, r.key_id as area_id, a.name as area_name, r.component_count, r.completed_count, r.percent_complete,
       r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.progress_rollups r
left join pipetrak.areas a on a.id = r.key_id and a.project_id = r.project_id
where r.level = 'area';
comment on view pipetrak_api.area_progress is 'Progress per area; area_id NULL gathers components without an area.';

create view pipetrak_api.system_progress with (security_invoker = true) as
select r.project_id, r.key_id as system_id, s.name as system_name, r.component_count, r.completed_count, r.percent_complete,
       r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.progress_rollups r
left join pipetrak.systems s on s.id = r.key_id and s.project_id = r.project_id
where r.level = 'system';
comment on view pipetrak_api.system_progress is 'Progress per system; system_id NULL gathers components without a system.';

create view pipetrak_api.test_package_progress with (security_invoker = true) as
select r.project_id, r.key_id as test_package_id, t.name as test_package_name, r.component_count, r.completed_count,
       r.percent_complete, r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.progress_rollups r
left join pipetrak.test_packages t on t.id = r.key_id and t.project_id = r.project_id
where r.level = 'test_package';
comment on view pipetrak_api.test_package_progress is 'Progress per test package; test_package_id NULL gathers components without one.';

create view pipetrak_api.organizations with (security_invoker = true) as
select o.id, o.name, o.created_at,
       (select m.role from pipetrak.memberships m where m.organization_id = o.id and m.user_id = (select pipetrak.current_user_id())) as my_role
from pipetrak.organizations o;
comment on view pipetrak_api.organizations is 'Organizations you belong to, with your role in each.';

create view pipetrak_api.memberships with (security_invoker = true) as
select m.organization_id, m.user_id, m.role, p.email, p.display_name, m.created_at
from pipetrak.memberships m
left join pipetrak.user_profiles p on p.user_id = m.user_id;
comment on view pipetrak_api.memberships is 'Members of your organizations and their roles.';

create view pipetrak_api.my_profile with (security_invoker = true) as
select user_id, email, display_name, created_at, updated_at
from pipetrak.user_profiles
where user_id = (select pipetrak.current_user_id());
comment on view pipetrak_api.my_profile is 'Your profile (from your JWT claims; refresh it with sync_profile).';

create view pipetrak_api.projects with (security_invoker = true) as
select id, organization_id, name, job_number, time_zone, sequence_mode, week_lock, archived_at, created_at
from pipetrak.projects;
comment on view pipetrak_api.projects is 'Projects of your organizations with their settings (time zone, sequence mode, week lock).';

create view pipetrak_api.areas with (security_invoker = true) as
select id, project_id, name, description, retired_at, created_at from pipetrak.areas;
comment on view pipetrak_api.areas is 'Areas of your projects.';

create view pipetrak_api.systems with (security_invoker = true) as
select id, project_id, name, description, retired_at, created_at from pipetrak.systems;
comment on view pipetrak_api.systems is 'Systems of your projects.';

create view pipetrak_api.test_packages with (security_invoker = true) as
select id, project_id, name, description, test_type, test_pressure, test_pressure_unit, target_date,
       requires_coating, requires_insulation, retired_at, created_at
from pipetrak.test_packages;
comment on view pipetrak_api.test_packages is 'Test packages of your projects with their test details.';

create view pipetrak_api.drawings with (security_invoker = true) as
select id, project_id, drawing_no, drawing_key, sheet, revision, title, area_id, system_id, test_package_id,
       retired_at, created_at, updated_at
from pipetrak.drawings;
comment on view pipetrak_api.drawings is 'Drawings of your projects: number as entered, normalized key, assignment.';

create view pipetrak_api.milestone_templates with (security_invoker = true) as
select project_id, component_type, names, weights, is_partial, categories, updated_at
from pipetrak.milestone_templates;
comment on view pipetrak_api.milestone_templates is 'Each project''s milestone template per component type, in milestone order.';

create view pipetrak_api.components with (security_invoker = true) as
select c.id, c.project_id, c.drawing_id, d.drawing_no, c.component_type, c.tag, c.size, c.seq, c.quantity,
       c.description, c.spec, c.attributes, c.area_id, c.system_id, c.test_package_id,
       (select jsonb_object_agg(n, v) from unnest(t.names, c.milestone_values) as u(n, v)) as milestones,
       c.percent_complete, c.version, c.created_at, c.updated_at, c.retired_at
from pipetrak.components c
join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = c.project_id
join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type;
comment on view pipetrak_api.components is 'Components of your projects with their milestone values and % complete (always current).';

create view pipetrak_api.milestone_events with (security_invoker = true) as
select id, project_id, component_id, milestone, old_value, new_value, work_date, user_id, created_at, note,
       out_of_sequence, violations, client_request_id
from pipetrak.milestone_events;
comment on view pipetrak_api.milestone_events is 'The append-only audit log of milestone changes.';

create view pipetrak_api.review_items with (security_invoker = true) as
select id, project_id, component_id, event_id, kind, details, created_at, resolved_at, resolved_by, resolution_note, status
from pipetrak.review_items;
comment on view pipetrak_api.review_items is 'Items for QC: out-of-sequence updates and completed welds; status open, resolved or dismissed.';

create view pipetrak_api.welders with (security_invoker = true) as
select id, project_id, stencil, name, verified, created_at from pipetrak.welders;
comment on view pipetrak_api.welders is 'Welders of your projects by stencil; imported unknown stencils are unverified.';

create view pipetrak_api.field_welds with (security_invoker = true) as
select w.component_id, w.project_id, c.tag as weld_number, c.drawing_id, w.weld_type, w.weld_size, w.schedule,
       w.base_metal, w.spec, w.xray_percent, w.pwht_required, w.nde_types, w.welder_id, w.date_welded,
       w.nde_result, w.nde_date
from pipetrak.field_welds w
join pipetrak.components c on c.id = w.component_id and c.project_id = w.project_id;
comment on view pipetrak_api.field_welds is 'Weld facts of field_weld components.';
