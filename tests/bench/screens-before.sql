-- The project dashboard as it was written before its figures became lateral subqueries of each
-- project (tests/bench/screens.sh measures the two side by side): every figure aggregated over
-- every visible project first, then joined to the projects; this week's credit joined to the
-- project for its time zone, which reads every day of the project's history.
create schema if not exists bench;
grant usage on schema bench to authenticated;
create view bench.project_dashboard_before with (security_invoker = true) as
with parts as (
    select p.project_id, sum(p.component_count) as components, sum(p.completed_count) as completed,
           sum(p.earned_total) as earned, sum(p.budget_mh) as budget,
           sum(p.mh_receive + p.mh_install + p.mh_punch + p.mh_test + p.mh_restore) / 1000000 as earned_mh
    from pipetrak.progress_parts p group by p.project_id),
packages as (
    select p.project_id, count(*) as ready
    from (select p.project_id, p.test_package_id from pipetrak.progress_parts p
          join pipetrak.test_packages t on t.id = p.test_package_id and t.retired_at is null
          group by 1, 2
          having sum(p.component_count - p.post_hydro_count) > 0 and sum(p.component_count - p.post_hydro_count - p.ready_count) = 0) p
    group by 1),
items as (select r.project_id, count(*) as open from pipetrak.review_items r where r.resolved_at is null group by 1),
week as (
    select d.project_id, sum(d.credit_receive + d.credit_install + d.credit_punch + d.credit_test + d.credit_restore) as credit
    from pipetrak.progress_days d join pipetrak.projects pr on pr.id = d.project_id
    where d.work_date >= date_trunc('week', now() at time zone pr.time_zone)::date
    group by 1)
select pr.id as project_id, pr.name as project_name,
       coalesce(case when x.budget > 0 then pipetrak.percent_of(x.earned_mh, x.budget)
                     else pipetrak.percent_of(x.earned, x.components * 1000000) end, 0) as percent_complete,
       x.budget > 0 as by_man_hours, coalesce(x.components, 0) as components, coalesce(x.completed, 0) as completed,
       coalesce(k.ready, 0) as packages_ready, coalesce(i.open, 0) as open_review_items,
       coalesce(pipetrak.percent_of(w.credit, x.components * 1000000), 0) as earned_this_week_percent,
       round(x.budget, 2) as budget_mh, round(x.earned_mh, 2) as earned_mh
from pipetrak.projects pr
left join parts x on x.project_id = pr.id
left join packages k on k.project_id = pr.id
left join items i on i.project_id = pr.id
left join week w on w.project_id = pr.id;
grant select on bench.project_dashboard_before to authenticated;

-- The drawing page as it was: every drawing of the project rolled up, then sorted and cut.
create view bench.drawing_progress_before with (security_invoker = true) as
select r.project_id, r.key_id as drawing_id, d.drawing_no, r.component_count, r.completed_count, r.percent_complete,
       r.received_percent, r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
from pipetrak.progress_rollups r
join pipetrak.drawings d on d.id = r.key_id
where r.level = 'drawing';
grant select on bench.drawing_progress_before to authenticated;

-- Package readiness as it was: each open review item looked up its component to find its package.
create view bench.test_package_readiness_before with (security_invoker = true) as
with parts as (
    select p.project_id, p.test_package_id, sum(p.component_count) as members,
           sum(p.component_count - p.post_hydro_count) as testable, sum(p.ready_count) as ready, sum(p.post_hydro_count) as post_hydro
    from pipetrak.progress_parts p
    where p.test_package_id is not null
    group by p.project_id, p.test_package_id),
-- Open items are few beside the members: each looks up its component (a lateral join the planner
-- can't flatten — `limit 1` — so it never walks the components' primary key to match them).
items as (
    select r.project_id, c.test_package_id, count(*) as n
    from pipetrak.review_items r
    cross join lateral (select c.test_package_id from pipetrak.components c
                        where c.id = r.component_id and c.retired_at is null limit 1) c
    where r.resolved_at is null and c.test_package_id is not null
    group by r.project_id, c.test_package_id),
examinations as (
    select e.project_id, c.test_package_id, count(*) as n
    from pipetrak.examination_calls e
    join pipetrak.components c on c.id = e.component_id
    join pipetrak.field_welds f on f.component_id = e.component_id
    where c.test_package_id is not null and c.retired_at is null and coalesce(f.current_nde ->> 'RT', '') not in ('PASS', 'FAIL')
    group by e.project_id, c.test_package_id),
stages as (
    select s.project_id, s.test_package_id,
           pipetrak.package_state(array_agg(s.stage order by s.position), array_agg(s.status order by s.position)) as state
    from pipetrak.package_stages s
    group by s.project_id, s.test_package_id)
select t.id as test_package_id, t.project_id, t.name as test_package_name, t.test_type, t.target_date,
       coalesce(p.members, 0)::bigint as members, coalesce(p.testable, 0)::bigint as testable, coalesce(p.ready, 0)::bigint as ready,
       case when coalesce(p.testable, 0) = 0 then 100.00 else round(100.0 * p.ready / p.testable, 2) end as ready_percent,
       coalesce(p.post_hydro, 0)::bigint as post_hydro, coalesce(i.n, 0) as open_review_items,
       coalesce(x.n, 0) as open_examinations, coalesce(s.state, 'draft') as state
from pipetrak.test_packages t
left join parts p on p.project_id = t.project_id and p.test_package_id = t.id
left join items i on i.project_id = t.project_id and i.test_package_id = t.id
left join examinations x on x.project_id = t.project_id and x.test_package_id = t.id
left join stages s on s.project_id = t.project_id and s.test_package_id = t.id
where t.retired_at is null;
grant select on bench.test_package_readiness_before to authenticated;
