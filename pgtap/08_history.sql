-- Progress history and man-hours (spec §11): delta and as-of reports on events with known dates,
-- weekly snapshots and a correction after one froze, the man-hour spread and earned man-hours,
-- the dashboard and activity feed, and who may read and change what.
begin;
\ir fixtures/actors.sql
select plan(54);

-- ---- A hand-built project: dates relative to its last locked week (L, a Sunday) ----
-- Valves V-A, V-B and V-D on drawing H-1 (area North), V-C on H-2 (area South); template: Receive 10,
-- Install 60, Punch 10, Test 15, Restore 5. Events, by the owner (exempt from week locks):
--   L-10 (week L-7): V-A Receive, V-B Receive
--   L-3  (week L):   V-A Install, V-C Receive, V-B Receive rolled back
--   L+2  (open):     V-C Install
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_project(organization_id => :org_a, name => 'History', job_number => 'H-1',
                                   time_zone => 'America/Chicago') as project \gset
reset role;
select pipetrak.last_locked_week_end(:project) as l \gset
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_area(project_id => :project, name => 'North') as north \gset
select pipetrak_api.create_area(project_id => :project, name => 'South') as south \gset
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'H-1', area_id => :north) as h1 \gset
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'H-2', area_id => :south) as h2 \gset
create temp table v (tag text primary key, id bigint);
create temp table b (tag text primary key, id bigint, w numeric);
grant select on v, b to public;
insert into v select t, (pipetrak_api.create_component(project_id => :project, drawing_id => case when t = 'V-C' then :h2 else :h1 end,
                                                       component_type => 'valve', tag => t, size => '2') -> 'created' ->> 0)::bigint
from unnest(array['V-A', 'V-B', 'V-C', 'V-D']) t;
create function pg_temp.set(p_tag text, p_milestone text, p_value numeric, p_date date) returns void language sql as $$
    select pipetrak_api.update_milestone(component_id => (select id from v where tag = p_tag union all select id from b where tag = p_tag),
                                         milestone => p_milestone,
                                         value => p_value, work_date => p_date);
$$;
grant execute on all functions in schema pg_temp to public;
select pg_temp.set('V-A', 'Receive', 100, :'l'::date - 10), pg_temp.set('V-B', 'Receive', 100, :'l'::date - 10);
select pg_temp.set('V-A', 'Install', 100, :'l'::date - 3), pg_temp.set('V-C', 'Receive', 100, :'l'::date - 3);
select pg_temp.set('V-B', 'Receive', 0, :'l'::date - 3);
select pg_temp.set('V-C', 'Install', 100, :'l'::date + 2);

create function pg_temp.delta(p_from date, p_to date) returns text language sql as $$
    select coalesce(string_agg(format('%s: %s touched, %s events, %s%% (R %s, I %s)', group_name, components_touched, events,
                                      percent_complete, received_percent, installed_percent), '; ' order by group_name), 'none')
    from pipetrak_api.progress_delta(project_id => (select id from pipetrak.projects where name = 'History'),
                                     date_from => p_from, date_to => p_to, group_by => 'area')
$$;
grant execute on all functions in schema pg_temp to public;
select pg_temp.act_as(pg_temp.uid('viewer'));
select is(pg_temp.delta(:'l'::date - 10, :'l'::date - 10),
    'North: 2 touched, 2 events, 6.67% (R 66.67, I 0.00)', 'one day: two of North''s three receipts');
select is(pg_temp.delta(:'l'::date - 10, :'l'::date - 3),
    'North: 2 touched, 4 events, 23.33% (R 33.33, I 33.33); South: 1 touched, 1 events, 10.00% (R 100.00, I 0.00)',
    'a window spanning a rollback: V-B''s receipt and its rollback cancel');
select is(pg_temp.delta(:'l'::date - 3, :'l'::date - 3),
    'North: 2 touched, 2 events, 16.67% (R -33.33, I 33.33); South: 1 touched, 1 events, 10.00% (R 100.00, I 0.00)',
    'the rollback alone subtracts');
select is(pg_temp.delta(:'l'::date - 40, :'l'::date - 20), 'none', 'an empty window has no rows');
select is((select string_agg(distinct format('%s..%s', date_from, date_to), ',')
           from pipetrak_api.progress_delta(project_id => :project, date_from => :'l'::date - 10, date_to => :'l'::date - 3))
          || ' ' || (select string_agg(distinct as_of::text, ',')
                     from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date - 10)),
    format('%s..%s %s', :'l'::date - 10, :'l'::date - 3, :'l'::date - 10),
    'every report row says the dates it covers, so an exported CSV stands on its own');
select is((select string_agg(format('%s %s', group_name, percent_complete), ', ' order by group_name)
           from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date - 10, group_by => 'area')),
    'North 6.67, South 0.00', 'as of the first day');
select is((select array_agg(a.percent_complete order by a.group_name) from pipetrak_api.progress_as_of(project_id => :project,
               as_of => :'l'::date + 2, group_by => 'area') a),
          (select array_agg(p.percent_complete order by p.area_name) from pipetrak_api.area_progress p where p.project_id = :project),
    'as of the last event''s date equals the rollup');
select is((select percent_complete from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date + 2, group_by => 'project')),
          (select percent_complete from pipetrak_api.project_progress where project_id = :project),
    'and for the whole project');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.progress_delta(project_id => %s, date_from => %L, date_to => %L)', :project, :'l'::date, :'l'::date - 1)),
    'PT400 invalid_argument', 'a window ending before it starts is refused');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.progress_delta(project_id => %s, date_from => %L, date_to => %L, group_by => ''welder'')', :project, :'l'::date, :'l'::date)),
    'PT400 invalid_argument', 'an unknown grouping is refused');

-- A component that moves takes its history along.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.assign_component(component_id => (select id from v where tag = 'V-C'), area_id => :north);
select pg_temp.act_as(pg_temp.uid('viewer'));
select is(pg_temp.delta(:'l'::date - 3, :'l'::date + 2),
    'North: 3 touched, 4 events, 30.00% (R 0.00, I 50.00)', 'V-C moved to North: its receipt and install count there now');
select is(pg_temp.delta(:'l'::date - 60, :'l'::date + 2),
    'North: 3 touched, 6 events, 35.00% (R 50.00, I 50.00)', 'and over a window longer than a month (counted per component)');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.assign_component(component_id => (select id from v where tag = 'V-C'), follow_drawing => true);
select pg_temp.act_as(pg_temp.uid('viewer'));
select is(pg_temp.delta(:'l'::date - 60, :'l'::date + 2),
    'North: 2 touched, 4 events, 23.33% (R 33.33, I 33.33); South: 1 touched, 2 events, 70.00% (R 100.00, I 100.00)',
    'back on its drawing''s area, V-C counts in South again');

-- ---- Weekly snapshots ----
-- The first write took the last locked week before it landed (empty then). Start over as if the
-- project had been live all along: week L-7 freezes with V-A's and V-B's receipts.
reset role;
delete from pipetrak.weekly_snapshots where project_id = :project;
delete from pipetrak.snapshot_weeks where project_id = :project;
select pipetrak.take_snapshot(:project, :'l'::date - 7);
create temp table frozen as select * from pipetrak.weekly_snapshots where project_id = :project;
select is(pipetrak.take_snapshot(:project, :'l'::date - 7), false, 'a week already frozen is not taken again');
select is((select count(*)::int from (select * from pipetrak.weekly_snapshots where project_id = :project
                                      except select * from frozen) x), 0, 'and its rows are as they were');
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select format('%s %s %s', frozen, percent_complete, change) from pipetrak_api.weekly_report(project_id => :project,
               week_end => :'l'::date - 7, group_by => 'area') where group_name = 'North'),
    't 6.67 ', 'the frozen week: North at 6.67 %; the first frozen week has no frozen base, so no change');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.weekly_report(project_id => %s, week_end => %L)', :project, :'l'::date - 14)),
    'PT409 week_not_frozen', 'a week locked before the snapshots began has no report: it could still move');
-- The owner corrects week L-7: V-D was received then too. The engine first freezes week L
-- (locked, not taken yet), then writes.
select pg_temp.act_as(pg_temp.uid('owner'));
select pg_temp.set('V-D', 'Receive', 100, :'l'::date - 9);
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select format('%s %s', frozen, percent_complete) from pipetrak_api.weekly_report(project_id => :project,
               week_end => :'l'::date - 7, group_by => 'area') where group_name = 'North'),
    't 6.67', 'the correction leaves the frozen week as it was');
select is((select format('%s %s %s %s..%s', frozen, percent_complete, change, week_start, week_end)
           from pipetrak_api.weekly_report(project_id => :project, week_end => :'l'::date, group_by => 'area') where group_name = 'North'),
    format('t 23.33 16.67 %s..%s', :'l'::date - 6, :'l'::date),
    'week L was frozen before the correction landed: V-A''s install and V-B''s rollback; the row says the week it covers');
select is((select percent_complete from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date - 7, group_by => 'area')
           where group_name = 'North'), 10.00, 'while the events now say North stood at 10 % then');
-- When the next week locks (taken here as pg_cron would), the correction shows as its change.
reset role;
select pipetrak.take_snapshot(:project, :'l'::date + 7);
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select format('%s %s', percent_complete, change) from pipetrak_api.weekly_report(project_id => :project,
               week_end => :'l'::date + 7, group_by => 'area') where group_name = 'North'),
    '26.67 3.33', 'the next week''s report shows the correction as a change');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.weekly_report(project_id => %s, week_end => %L)', :project, :'l'::date + 14)),
    'PT400 invalid_argument', 'a week not locked has no report yet');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.weekly_report(project_id => %s, week_end => %L)', :project, :'l'::date - 1)),
    'PT400 invalid_argument', 'a week ends on a Sunday');
reset role;
select is(pipetrak.take_due_snapshots(:project), 0, 'taking due snapshots again changes nothing');

-- Any component write through the API freezes the weeks that locked before it lands, as they
-- stood: here a move (which re-dates the component's history into its new area), with week L
-- locked but not taken yet.
delete from pipetrak.weekly_snapshots where project_id = :project and week_end >= :'l'::date;
delete from pipetrak.weekly_groups where project_id = :project and week_end >= :'l'::date;
delete from pipetrak.snapshot_weeks where project_id = :project and week_end >= :'l'::date;
-- What week L's snapshot holds if it is taken just before the move.
create temp table week_l as
select :project::bigint as project_id, :'l'::date as week_end, a.* from pipetrak.parts_at(:project, :'l'::date) a;
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.assign_component(component_id => (select id from v where tag = 'V-C'), area_id => :north) is not null as moved;
reset role;
select is((select count(*)::int from (
              (select * from pipetrak.weekly_snapshots where project_id = :project and week_end = :'l'::date except select * from week_l)
              union all
              (select * from week_l except select * from pipetrak.weekly_snapshots where project_id = :project and week_end = :'l'::date)) d)
          || ' ' || exists (select from week_l)
          || ' ' || exists (select from pipetrak.snapshot_weeks where project_id = :project and week_end = :'l'::date),
          '0 true true', 'a move after a week locked freezes the week first, as it stood');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.assign_component(component_id => (select id from v where tag = 'V-C'), follow_drawing => true) is not null as back;
reset role;
select pipetrak.take_snapshot(:project, :'l'::date + 7);

-- A retired component leaves the history the day it is retired: up to today the history says
-- what the rollups say; an earlier day keeps what was earned then.
select pg_temp.act_as(pg_temp.uid('viewer'));
select string_agg(format('%s %s', group_name, percent_complete), ', ' order by group_name) as before_retirement
from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date - 3, group_by => 'area') \gset
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.retire_component(component_id => (select id from v where tag = 'V-A')) is null as retired;
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select array_agg(a.percent_complete order by a.group_name)
           from pipetrak_api.progress_as_of(project_id => :project, as_of => (now() at time zone 'America/Chicago')::date + 1,
                                            group_by => 'area') a),
          (select array_agg(p.percent_complete order by p.area_name) from pipetrak_api.area_progress p where p.project_id = :project),
    'after a retirement, the history up to today still equals the rollup (its credit left the day it was retired)');
select is((select string_agg(format('%s %s', group_name, percent_complete), ', ' order by group_name)
           from pipetrak_api.progress_as_of(project_id => :project, as_of => :'l'::date - 3, group_by => 'area')),
    'North 40.00, South 10.00',
    'and a day before it keeps the credit earned then (' || :'before_retirement' || '), as a share of what is available now: North''s two live valves');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.restore_components(component_ids => array[(select id from v where tag = 'V-A')], reason => 'retired by mistake') as restored;
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select array_agg(a.percent_complete order by a.group_name)
           from pipetrak_api.progress_as_of(project_id => :project, as_of => (now() at time zone 'America/Chicago')::date + 1,
                                            group_by => 'area') a),
          (select array_agg(p.percent_complete order by p.area_name) from pipetrak_api.area_progress p where p.project_id = :project),
    'restored, its credit is back');
reset role;

-- ---- Man-hours: the spread on a hand-built set ----
-- Weights: valve 4" 4^1.5 = 8; reducer 6X2 ((6+2)/2)^1.5 = 8; 25 ft of 4" pipe 8 × 25 × 0.1 = 20;
-- a valve of size SPECIAL and one without size 0.5 each (guessed). 370 MH over 37.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_project(organization_id => :org_a, name => 'Hours', job_number => 'MH-1') as mh_project \gset
select pipetrak_api.create_drawing(project_id => :mh_project, drawing_no => 'M-1') as m1 \gset
insert into b select x.tag, (pipetrak_api.create_component(project_id => :mh_project, drawing_id => :m1, component_type => x.type,
                                                            tag => x.tag, size => x.size, quantity => x.qty) -> 'created' ->> 0)::bigint, x.w
from (values ('VALVE-4', 'valve', '4', 1, 8.0), ('RED-6X2', 'fitting', '6x2', 1, 8.0), ('PIPE-4', 'pipe', '4', 25, 20.0),
             ('VALVE-X', 'valve', 'SPECIAL', 1, 0.5), ('VALVE-N', 'valve', null, 1, 0.5)) x(tag, type, size, qty, w);
select is(pipetrak_api.spread_budget(project_id => :mh_project, total_mh => 370, reason => 'original estimate') - 'budget_version_id',
    '{"version": 1, "components": 5, "guessed_sizes": 2}'::jsonb, 'version 1 spreads over 5 components, 2 sizes guessed');
select is((select array_agg(c.budget_mh order by b.tag) from b join pipetrak_api.component_budgets c on c.component_id = b.id),
          (select array_agg(round(370 * b.w / 37, 4) order by b.tag) from b),
    'each budget is total × weight ÷ Σ weights');
select pg_temp.set('VALVE-4', 'Receive', 100, null), pg_temp.set('VALVE-4', 'Install', 100, null);
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select format('%s %s %s %s', budget_mh, earned_mh, percent_earned, remaining_mh)
           from pipetrak_api.manhour_progress(project_id => :mh_project)),
    '370.00 56.00 15.14 314.00', 'earned MH = budget × credit: 80 × 70 %');
select is((select format('%s %s', percent_complete, by_man_hours) from pipetrak_api.project_dashboard where project_id = :mh_project),
    '15.14 t', 'the dashboard''s % is by man-hours where a budget exists');
select is((select earned_mh from pipetrak_api.progress_delta(project_id => :mh_project, date_from => current_date - 7,
                                                             date_to => current_date + 1, group_by => 'project')),
    56.00, 'the delta carries the man-hours its events earned');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.spread_budget(project_id => :mh_project, total_mh => 740, reason => 'change order 7') ->> 'version';
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select array_agg(format('%s %s', version, active) order by version) from pipetrak_api.budget_versions
           where project_id = :mh_project), array['1 f', '2 t'], 'one active version at a time');
select is((select earned_mh from pipetrak_api.manhour_progress(project_id => :mh_project)), 112.00,
    'a new version restates earned man-hours');
select is((select format('%s %s', budget_mh, earned_mh) from pipetrak_api.manhour_progress(project_id => :mh_project, group_by => 'project')),
    (select format('%s %s', round(sum(cb.budget_mh), 2), round(sum(cb.budget_mh * c.earned_total) / 1000000, 2))
     from pipetrak.component_budgets cb join pipetrak.components c on c.id = cb.component_id where c.project_id = :mh_project),
    'the man-hour rollup equals a recount from the components');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.spread_budget(project_id => %s, total_mh => 10, reason => '''')', :mh_project)),
    'PT422 reason_required', 'a budget version needs its reason');

-- ---- Man-hours from an import's column ----
-- VALVE-4 takes 30 MH from the file, four new valves share 10 MH, a budget that is not a number
-- is refused; the other components keep the budgets version 2 gave them.
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.import_upload(project_id => :mh_project, kind => 'takeoff', filename => 'mh.csv', content => convert_to(
    E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE,MAN HOURS\nM-1,Valve,1,VALVE-4,4,30\nM-1,Valve,4,NEW-V,2,10\nM-1,Valve,1,BAD,2,lots\n',
    'UTF8')) as mh_import \gset
select pipetrak_api.import_validate(import_id => :mh_import) -> 'rows' ->> 'with_errors' as with_errors \gset
select is((select string_agg(i ->> 'code', ',') || ' ' || :'with_errors' from pipetrak.import_rows r, jsonb_array_elements(r.issues) i
           where r.import_id = :mh_import), 'invalid_budget 1',
    'a budget that is not a number of man-hours is an error of its row');
select is(pipetrak_api.import_commit(import_id => :mh_import, skip_invalid_rows => true) ->> 'status', 'committed',
    'the other rows commit');
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select array_agg(format('%s/%s %s', c.tag, c.seq, cb.budget_mh) order by c.tag, c.seq)
           from pipetrak.components c join pipetrak_api.component_budgets cb on cb.component_id = c.id
           where c.project_id = :mh_project and c.tag in ('VALVE-4', 'NEW-V', 'RED-6X2')),
    array['NEW-V/1 2.5000', 'NEW-V/2 2.5000', 'NEW-V/3 2.5000', 'NEW-V/4 2.5000', 'RED-6X2/1 160.0000', 'VALVE-4/1 30.0000'],
    'the file''s budgets (a counted row''s split over its seqs); the rest as they were');
select is((select format('%s %s %s %s', version, method, active, total_mh) from pipetrak_api.budget_versions
           where project_id = :mh_project order by version desc limit 1),
    '3 import t 620.00', 'an import with budgets makes a new active version: 30 + 10 + 160 + 400 + 10 + 10');

-- ---- The activity feed ----
select is((select sentence from pipetrak_api.activity_feed where project_id = :mh_project order by event_id desc limit 1),
    'a0000000-0000-4000-8000-000000000001@example.com set Install 100 % on valve VALVE-4 4", drawing M-1',
    'a readable sentence: the actor (their email until they have a name) and the component''s label');
reset role;
insert into pipetrak.user_profiles (user_id, display_name) values (pg_temp.uid('owner'), 'J. Ortiz')
on conflict (user_id) do update set display_name = excluded.display_name;
select pg_temp.act_as(pg_temp.uid('owner'));
select (pipetrak_api.create_component(project_id => :mh_project, drawing_id => :m1, component_type => 'valve', tag => 'VBALU-001',
                                      size => '2', quantity => 10) -> 'created' ->> 2)::bigint as third \gset
select pipetrak_api.update_milestone(component_id => :third, milestone => 'Install', value => 100) is not null as set;
select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select sentence from pipetrak_api.activity_feed where project_id = :mh_project order by event_id desc limit 1),
    'J. Ortiz set Install 100 % on valve VBALU-001 2" 3 of 10, drawing M-1', 'a counted item reads "3 of 10"');
select is((select array_agg(event_id) from (select event_id from pipetrak_api.activity_feed limit 3) f),
          (select array_agg(event_id) from (select event_id from pipetrak_api.activity_feed order by event_id desc limit 3) f),
          'the activity feed comes newest first without the client sorting');

-- ---- Who may do what ----
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.spread_budget(project_id => %s, total_mh => 5, reason => ''by %%1$s'')', :mh_project))),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'spread_budget: owner, admin, project manager');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.progress_delta(project_id => %s, date_from => %L, date_to => %L)', :project, :'l'::date - 10, :'l'::date)),
    array['2', '2', '2', '2', '2', '2', '2', 'PT404', '42501'], 'progress_delta: every member; an outsider finds no project');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.progress_as_of(project_id => %s, as_of => %L)', :project, :'l'::date)),
    array['2', '2', '2', '2', '2', '2', '2', 'PT404', '42501'], 'progress_as_of: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.weekly_report(project_id => %s, week_end => %L)', :project, :'l'::date)),
    array['2', '2', '2', '2', '2', '2', '2', 'PT404', '42501'], 'weekly_report: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.manhour_progress(project_id => %s)', :mh_project)),
    array['1', '1', '1', '1', '1', '1', '1', 'PT404', '42501'], 'manhour_progress: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.weld_delta(project_id => %s, date_from => %L, date_to => %L)', :project_a, :'l'::date - 10, :'l'::date)),
    array['0', '0', '0', '0', '0', '0', '0', 'PT404', '42501'], 'weld_delta: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.budget_versions where project_id = %s', :mh_project)),
    array['3', '3', '3', '3', '3', '3', '3', '0', '42501'], 'budget versions: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.activity_feed where project_id = %s', :project)),
    array['7', '7', '7', '7', '7', '7', '7', '0', '42501'], 'activity feed: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.project_dashboard where project_id = %s', :project)),
    array['1', '1', '1', '1', '1', '1', '1', '0', '42501'], 'dashboard: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.weekly_snapshots where project_id = %s', :project)),
    array['3', '3', '3', '3', '3', '3', '3', '0', '42501'], 'snapshot weeks: members only');

select * from finish();
rollback;
