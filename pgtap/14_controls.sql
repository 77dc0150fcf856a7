-- Project controls: a baseline of known activities, events and hours on known days, and every
-- figure the controls reports give checked against a hand computation; a re-baseline; a locked
-- week that never moves; the stalled components; and who may do what.
begin;
\ir fixtures/actors.sql
select plan(69);

-- ---- The hand-built project (L: the Sunday ending its last locked week) ----
-- Areas North (drawing C-1: valves N1, N2) and South (C-2: S1, S2); valve template Receive 10,
-- Install 60, Punch 10, Test 15, Restore 5; a 100 MH budget spread evenly: 25 MH a valve.
-- Baseline v1 by area, effective L-27:
--   A-N  North  L-27 .. L     linear   40 MH   (28 days)
--   A-S  South  L-13 .. L+14  s_curve  60 MH   (28 days)
-- Events (the owner; locked weeks are theirs to record in):
--   L-10 (week L-7): N1 Receive + Install (70 %), S1 Receive (10 %)
--   L-3  (week L):   N2 Receive (10 %), S1 Install (70 %), S2 Receive (10 %)
-- Hours: L-10 North 30 (J. Ortiz, pipefitter), South 10 (crew C1); L-3 North 20, South 30.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_project(organization_id => :org_a, name => 'Controls', job_number => 'PC-1',
                                   time_zone => 'America/Chicago') as project \gset
reset role;
select pipetrak.last_locked_week_end(:project) as l \gset
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_area(project_id => :project, name => 'North') as north \gset
select pipetrak_api.create_area(project_id => :project, name => 'South') as south \gset
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'C-1', area_id => :north) as c1 \gset
select pipetrak_api.create_drawing(project_id => :project, drawing_no => 'C-2', area_id => :south) as c2 \gset
create temp table v (tag text primary key, id bigint);
grant select on v to public;
insert into v select t, (pipetrak_api.create_component(project_id => :project, drawing_id => case when t like 'N%' then :c1 else :c2 end,
                                                       component_type => 'valve', tag => t, size => '2') -> 'created' ->> 0)::bigint
from unnest(array['N1', 'N2', 'S1', 'S2']) t;
select pipetrak_api.spread_budget(project_id => :project, total_mh => 100, reason => 'estimate') is not null as spread \gset
create function pg_temp.set(p_tag text, p_milestone text, p_value numeric, p_date date) returns void language sql as $$
    select pipetrak_api.update_milestone(component_id => (select id from v where tag = p_tag), milestone => p_milestone,
                                         value => p_value, work_date => p_date);
$$;
grant execute on all functions in schema pg_temp to public;
select pipetrak_api.set_baseline(project_id => :project, group_by => 'area', reason => 'Issued for construction',
    effective_date => :'l'::date - 27,
    activities => jsonb_build_array(
        jsonb_build_object('activity_code', 'A-N', 'name', 'Piping North', 'group', 'north', 'planned_start', :'l'::date - 27,
                           'planned_finish', :'l'::date, 'budget_mh', 40, 'curve', 'linear'),
        jsonb_build_object('activity_code', 'A-S', 'name', 'Piping South', 'group', 'South', 'planned_start', :'l'::date - 13,
                           'planned_finish', :'l'::date + 14, 'budget_mh', 60, 'curve', 's_curve'))) as v1 \gset
select pg_temp.set('N1', 'Receive', 100, :'l'::date - 10), pg_temp.set('N1', 'Install', 100, :'l'::date - 10),
       pg_temp.set('S1', 'Receive', 100, :'l'::date - 10);
select pg_temp.set('N2', 'Receive', 100, :'l'::date - 3), pg_temp.set('S1', 'Install', 100, :'l'::date - 3),
       pg_temp.set('S2', 'Receive', 100, :'l'::date - 3);
select pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date - 10, hours => 30, person => 'J. Ortiz',
                                 craft => 'pipefitter', group_by => 'area', "group" => 'North'),
       pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date - 10, hours => 10, crew => 'C1',
                                 craft => 'pipefitter', group_by => 'area', "group" => 'South'),
       pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date - 3, hours => 20, person => 'J. Ortiz',
                                 craft => 'pipefitter', group_by => 'area', "group" => 'North'),
       pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date - 3, hours => 30, crew => 'C1',
                                 craft => 'welder', group_by => 'area', "group" => 'South');
reset role;
-- The events and hours above were recorded after week L locked (the first write froze it, empty).
-- As on a live project, where they land during their week: freeze week L again as it now stands.
delete from pipetrak.weekly_groups where project_id = :project;
delete from pipetrak.weekly_snapshots where project_id = :project;
delete from pipetrak.snapshot_weeks where project_id = :project;
select pipetrak.take_due_snapshots(:project) as taken \gset

create function pg_temp.week(p_week date, p_group_by text, p_version integer default null) returns text language sql as $$
    select string_agg(format('%s: P %s E %s SV %s SPI %s | PMH %s EMH %s SPImh %s | wk EMH %s h %s | h %s PF %s CPI %s BAC %s EAC %s ETC %s',
                             group_name, planned_percent, earned_percent, schedule_variance, spi, planned_mh, earned_mh, spi_mh,
                             earned_mh_week, actual_hours_week, actual_hours, productivity_factor, cpi, budget_mh, eac_mh, etc_mh),
                      ' / ' order by group_name)
    from pipetrak_api.controls_week(project_id => (select id from pipetrak.projects where name = 'Controls'), week_end => p_week,
                                    group_by => p_group_by, baseline_version => p_version)
$$;
grant execute on all functions in schema pg_temp to public;

-- ---- Week L (frozen), by hand ----
-- North: planned 28/28 = 100 %; earned (0.7 + 0.1) / 2 = 40 %; SV -60; SPI 0.4. BAC 50 (the
-- budget's, over the activity's 40): planned 50, earned 17.5 + 2.5 = 20 MH. Week: 20 - 17.5 = 2.5
-- earned for 20 h (PF 0.125); to date 20 MH for 50 h: CPI 0.4, EAC 50 / 0.4 = 125, ETC 75.
-- South: t = 14/28 = 0.5, s_curve 3t^2 - 2t^3 = 50 %; earned (0.7 + 0.1) / 2 = 40 %; SPI 0.8.
-- Planned 25 MH, earned 20; week 17.5 for 30 h (0.583); CPI 20 / 40 = 0.5, EAC 100, ETC 60.
select pg_temp.act_as(pg_temp.uid('viewer'));
select is(pg_temp.week(:'l', 'area'),
    'North: P 100.00 E 40.00 SV -60.00 SPI 0.400 | PMH 50.00 EMH 20.00 SPImh 0.400 | wk EMH 2.50 h 20.00 | h 50.00 PF 0.125 CPI 0.400 BAC 50.00 EAC 125.00 ETC 75.00'
    ' / South: P 50.00 E 40.00 SV -10.00 SPI 0.800 | PMH 25.00 EMH 20.00 SPImh 0.800 | wk EMH 17.50 h 30.00 | h 40.00 PF 0.583 CPI 0.500 BAC 50.00 EAC 100.00 ETC 60.00',
    'week L by area: planned, earned, SV, SPI, man-hours, PF, CPI, EAC and ETC equal the hand computation');
-- Project: planned 2 x 1.0 + 2 x 0.5 = 3 of 4 components' credit (75 %), earned 1.6 (40 %),
-- SPI 1.6 / 3 = 0.533; planned 50 + 25 = 75 MH, earned 40; week 40 - 20 = 20 MH for 50 h (0.4);
-- CPI 40 / 90 = 0.444, EAC 100 x 90 / 40 = 225, ETC 135.
select is(pg_temp.week(:'l', 'project'),
    'Controls: P 75.00 E 40.00 SV -35.00 SPI 0.533 | PMH 75.00 EMH 40.00 SPImh 0.533 | wk EMH 20.00 h 50.00 | h 90.00 PF 0.400 CPI 0.444 BAC 100.00 EAC 225.00 ETC 135.00',
    'week L of the project: the groups'' plan summed over its available credit');
select is((select format('%s %s %s', frozen, week_start, baseline_version) from pipetrak_api.controls_week(project_id => :project, week_end => :'l',
                                                                                                  group_by => 'project')),
    format('t %s 1', :'l'::date - 6), 'a locked week reads as frozen, says its dates and the version it read');

-- ---- Week L-7 (locked before the project's first snapshot: computed from the days) ----
-- North: t = 21/28 = 0.75 planned; earned 0.7 / 2 = 35 %; SPI 0.35 / 0.75 = 0.467. South: t = 7/28,
-- s_curve 0.15625 (15.63 %); earned 5 %; SPI 0.05 / 0.15625 = 0.32. Hours to date 30 and 10.
select is(pg_temp.week(:'l'::date - 7, 'area'),
    'North: P 75.00 E 35.00 SV -40.00 SPI 0.467 | PMH 37.50 EMH 17.50 SPImh 0.467 | wk EMH 17.50 h 30.00 | h 30.00 PF 0.583 CPI 0.583 BAC 50.00 EAC 85.71 ETC 55.71'
    ' / South: P 15.63 E 5.00 SV -10.63 SPI 0.320 | PMH 7.81 EMH 2.50 SPImh 0.320 | wk EMH 2.50 h 10.00 | h 10.00 PF 0.250 CPI 0.250 BAC 50.00 EAC 200.00 ETC 190.00',
    'week L-7 by area, from the days');
select is((select frozen from pipetrak_api.controls_week(project_id => :project, week_end => :'l'::date - 7, group_by => 'project')),
    false, 'a week before the first snapshot is computed, not frozen');
select is((select format('%s|%s|%s|%s', actual_hours, cpi, eac_mh, etc_mh) from pipetrak_api.controls_week(project_id => :project, week_end => :'l'::date - 14,
                                                                                           group_by => 'area') where group_name = 'North'),
    '0.00|||', 'no hours yet: no CPI, and no estimate at or to complete');

-- ---- The S-curve ----
-- Project, 3 weeks to L: planned (2 x f_N + 2 x f_S) / 4 per week; earned as above. L-14: t_N =
-- 14/28 = 0.5, South not started: 25 % (12.5 % the week before: its change 12.50); nothing earned.
select is((select string_agg(format('%s %s/%s %s/%s %s/%s', week_end - :'l'::date, planned_percent, planned_percent_week, earned_percent,
                                    earned_percent_week, actual_hours, actual_hours_week), ', ' order by week_end)
           from pipetrak_api.s_curve(project_id => :project, weeks => 3, week_end => :'l')),
    '-14 25.00/12.50 0.00/0.00 0.00/0.00, -7 45.31/20.31 20.00/20.00 40.00/40.00, 0 75.00/29.69 40.00/20.00 90.00/50.00',
    'the project''s S-curve: planned and earned, cumulative and per week, and hours, in one call');
select is((select string_agg(format('%s %s %s', group_name, week_end - :'l'::date, earned_percent), ', ' order by group_name, week_end)
           from pipetrak_api.s_curve(project_id => :project, group_by => 'area', group_key => :south::text, weeks => 2, week_end => :'l')),
    'South -7 5.00, South 0 40.00', 'one group''s S-curve');

-- ---- Forecasts as of L ----
-- Trailing 1 week: North 35 -> 40 (5 %/week, 60 % left = 12 weeks: L+84); South 5 -> 40 (35/week:
-- 12 days: L+12); project 20 -> 40 (20/week: 21 days). By SPI: North's 28 days / 0.4 = 70 from
-- L-27 (L+42); South's 28 / 0.8 = 35 from L-13 (L+21); the project's 42 days (L-27 .. L+14) / 0.533
-- = 78.75, 79 days from L-27 (L+51).
select is((select string_agg(format('%s %s %s %s', group_name, velocity_percent_per_week, velocity_finish - :'l'::date,
                                    spi_finish - :'l'::date), ', ' order by group_name)
           from pipetrak_api.forecasts(project_id => :project, group_by => 'area', trailing_weeks => 1, week_end => :'l')),
    'North 5.00 84 42, South 35.00 12 21', 'forecasts by area: by velocity and by SPI');
select is((select format('%s %s %s %s %s', velocity_percent_per_week, velocity_finish - :'l'::date, spi, planned_finish - :'l'::date,
                         spi_finish - :'l'::date)
           from pipetrak_api.forecasts(project_id => :project, trailing_weeks => 1, week_end => :'l')),
    '20.00 21 0.533 14 51', 'forecasts of the project');
-- Two weeks back: L-14 had nothing, so 40 % in 2 weeks: 20 %/week again.
select is((select velocity_percent_per_week from pipetrak_api.forecasts(project_id => :project, trailing_weeks => 2, week_end => :'l')),
    20.00, 'the velocity averages the trailing weeks');
reset role;

-- ---- A locked week never moves; the open week follows ----
-- The owner corrects week L (N2 Install at L-3) and records 10 more hours in it; a foreman may not.
select pg_temp.act_as(pg_temp.uid('owner'));
select pg_temp.set('N2', 'Install', 100, :'l'::date - 3);
select pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date - 3, hours => 10, person => 'K. Lee',
                                 group_by => 'area', "group" => 'North') as late_hours \gset
select pg_temp.set('S2', 'Install', 100, :'l'::date + 1);
reset role;
select is(pg_temp.week(:'l', 'area'),
    'North: P 100.00 E 40.00 SV -60.00 SPI 0.400 | PMH 50.00 EMH 20.00 SPImh 0.400 | wk EMH 2.50 h 20.00 | h 50.00 PF 0.125 CPI 0.400 BAC 50.00 EAC 125.00 ETC 75.00'
    ' / South: P 50.00 E 40.00 SV -10.00 SPI 0.800 | PMH 25.00 EMH 20.00 SPImh 0.800 | wk EMH 17.50 h 30.00 | h 40.00 PF 0.583 CPI 0.500 BAC 50.00 EAC 100.00 ETC 60.00',
    'week L reads the same after a correction and late hours dated in it');
-- This week (open): North (0.7 + 0.7) / 2 = 70 %, South (0.7 + 0.7) / 2 = 70 %; hours to date 60
-- and 40; the week's: the correction's 10 h and 15 + 15 MH (North), 15 MH (South).
select is((select string_agg(format('%s %s %s %s %s %s', group_name, frozen, earned_percent, earned_mh_week, actual_hours_week, actual_hours),
                             ', ' order by group_name)
           from pipetrak_api.controls_week(project_id => :project, week_end => :'l'::date + 7, group_by => 'area')),
    'North f 70.00 15.00 10.00 60.00, South f 70.00 15.00 0.00 40.00', 'the open week shows the correction as its change');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.record_hours(project_id => %s, work_date => %L, hours => 8, person => ''X'')',
                                             :project, :'l'::date - 3)),
    'PT403 work_week_locked', 'a foreman may not record hours in a locked week');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.void_hours(hours_id => %s, reason => ''wrong week'')', :late_hours)),
    'PT403 work_week_locked', 'nor void them there');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.record_hours(project_id => %s, work_date => %L, hours => 8, person => ''X'', group_by => ''area'', "group" => ''West'')',
                                             :project, :'l'::date + 1)),
    'PT400 invalid_argument', 'hours charged to a group the project lacks are refused');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.record_hours(project_id => %s, work_date => %L, hours => 8)', :project, :'l'::date + 1)),
    'PT400 invalid_argument', 'hours need a person or a crew');
-- Voiding takes a row's hours out of the open weeks (the frozen one stays).
select is(pg_temp.error_of('owner', format('select pipetrak_api.void_hours(hours_id => %s, reason => ''entered twice'')', :late_hours)),
    'ok', 'an owner voids a row in a locked week');
select is(pg_temp.error_of('owner', format('select pipetrak_api.void_hours(hours_id => %s, reason => ''entered twice'')', :late_hours)),
    'PT409 hours_voided', 'a row is voided once');
select is((select actual_hours from pipetrak_api.controls_week(project_id => :project, week_end => :'l'::date + 7, group_by => 'area')
           where group_name = 'North'), 50.00, 'a voided row no longer counts');
select is((select actual_hours from pipetrak_api.controls_week(project_id => :project, week_end => :'l', group_by => 'area')
           where group_name = 'North'), 50.00, 'nor did it in the frozen week');
select is((select count(*)::integer from pipetrak_api.timesheet_hours where project_id = :project and voided_at is not null and void_reason = 'entered twice'),
    1, 'the voided row stays, with its reason');

-- ---- Re-baseline ----
select is(pg_temp.error_of('project_manager', format($q$select pipetrak_api.set_baseline(project_id => %s, group_by => 'area', reason => 'late', effective_date => %L,
    activities => '[{"activity_code": "A-N", "group": "North", "planned_start": "2026-01-01", "planned_finish": "2026-02-01"}]')$q$, :project, :'l')),
    'PT400 invalid_argument', 'a new version may not take effect in a locked week');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select (pipetrak_api.set_baseline(project_id => :project, group_by => 'area', reason => 'North slipped two weeks',
    effective_date => :'l'::date + 1,
    activities => jsonb_build_array(
        jsonb_build_object('activity_code', 'A-N', 'group', 'North', 'planned_start', :'l'::date - 27, 'planned_finish', :'l'::date + 14),
        jsonb_build_object('activity_code', 'A-S', 'group', 'South', 'planned_start', :'l'::date - 13, 'planned_finish', :'l'::date + 14,
                           'curve', 'front_loaded'))) ->> 'version')::integer as v2 \gset
reset role;
select is(:v2, 2, 'a re-baseline is version 2');
-- An activity budgeted at 0 MH weighs as one without a budget (its group is still planned).
select pg_temp.act_as(pg_temp.uid('project_manager'));
select (pipetrak_api.set_baseline(project_id => :project, group_by => 'area', reason => 'zero budget', effective_date => :'l'::date + 1,
           activities => jsonb_build_array(jsonb_build_object('activity_code', 'Z', 'group', 'North', 'planned_start', :'l'::date - 27,
                                                              'planned_finish', :'l'::date, 'budget_mh', 0))) ->> 'version')::integer as v3 \gset
select is((select string_agg(format('%s %s', group_name, planned_percent), ', ' order by group_name)
           from pipetrak_api.controls_week(project_id => :project, week_end => :'l', group_by => 'area', baseline_version => :v3)),
    'North 100.00, South 0.00', 'an activity of 0 MH is planned by weight; a group outside the baseline is planned at nothing');
reset role;
delete from pipetrak.baseline_activities where project_id = :project and baseline_id = (select max(id) from pipetrak.baselines where project_id = :project);
delete from pipetrak.baselines where project_id = :project and version = 3;
select is(pg_temp.week(:'l', 'area'),
    'North: P 100.00 E 40.00 SV -60.00 SPI 0.400 | PMH 50.00 EMH 20.00 SPImh 0.400 | wk EMH 2.50 h 20.00 | h 50.00 PF 0.125 CPI 0.400 BAC 50.00 EAC 125.00 ETC 75.00'
    ' / South: P 50.00 E 40.00 SV -10.00 SPI 0.800 | PMH 25.00 EMH 20.00 SPImh 0.800 | wk EMH 17.50 h 30.00 | h 40.00 PF 0.583 CPI 0.500 BAC 50.00 EAC 100.00 ETC 60.00',
    'week L still reads version 1, in effect then');
-- Version 2 at L: North 28/42 = 66.67 %; South front-loaded at t = 0.5: 68.75 %.
select is((select string_agg(format('%s %s %s', group_name, baseline_version, planned_percent), ', ' order by group_name)
           from pipetrak_api.controls_week(project_id => :project, week_end => :'l', group_by => 'area', baseline_version => 2)),
    'North 2 66.67, South 2 68.75', 'a report names another version');
select is((select baseline_version from pipetrak_api.s_curve(project_id => :project, weeks => 1) limit 1), 2,
    'this week reads the version in effect now');
select is((select string_agg(format('v%s %s %s-%s', version, activity_code, planned_start - :'l'::date, planned_finish - :'l'::date), ', '
                             order by version, activity_code)
           from pipetrak_api.baseline_activities where project_id = :project),
    'v1 A-N -27-0, v1 A-S -13-14, v2 A-N -27-14, v2 A-S -13-14', 'the old version stays readable');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.controls_week(project_id => %s, week_end => %L, baseline_version => 9)', :project, :'l')),
    'PT404 baseline_not_found', 'a version the project lacks');
select is(pg_temp.error_of('viewer', format('select * from pipetrak_api.controls_week(project_id => %s, week_end => %L)', :project, :'l'::date - 1)),
    'PT400 invalid_argument', 'a week is named by its Sunday');
select is(pg_temp.error_of('project_manager', format($q$select pipetrak_api.set_baseline(project_id => %s, group_by => 'area', reason => 'bad', effective_date => %L,
    activities => '[{"activity_code": "X", "group": "North", "planned_start": "2026-02-01", "planned_finish": "2026-01-01"}]')$q$, :project, :'l'::date + 1)),
    'PT400 invalid_argument', 'an activity finishing before it starts is refused');
select is(pg_temp.error_of('project_manager', format($q$select pipetrak_api.set_baseline(project_id => %s, group_by => 'area', reason => 'bad', effective_date => %L,
    activities => '[{"activity_code": "X", "group": "North", "planned_start": "2026-01-01", "planned_finish": "2026-02-01", "curve": "steep"}]')$q$, :project, :'l'::date + 1)),
    'PT400 invalid_argument', 'an unknown curve is refused');
select is((select count(*)::integer from pipetrak.baselines where project_id = :project), 2, 'refused versions left nothing behind');

-- ---- Stalled components ----
-- N3 is complete (all milestones on L-10) and S3 untouched: neither is partly complete. With no
-- event for 12 days, only N1 (last event L-10; today is L+2 .. L+8) has stalled.
select pg_temp.act_as(pg_temp.uid('owner'));
insert into v select 'N3', (pipetrak_api.create_component(project_id => :project, drawing_id => :c1, component_type => 'valve',
                                                          tag => 'N3', size => '2') -> 'created' ->> 0)::bigint;
insert into v select 'S3', (pipetrak_api.create_component(project_id => :project, drawing_id => :c2, component_type => 'valve',
                                                          tag => 'S3', size => '2') -> 'created' ->> 0)::bigint;
select pg_temp.set('N3', m, 100, :'l'::date - 10) from unnest(array['Receive', 'Install', 'Punch', 'Test', 'Restore']) m;
reset role;
select is((select string_agg(format('%s %s %s %s', tag, group_name, percent_complete, last_event_on - :'l'::date), ', ')
           from pipetrak_api.stalled_components(project_id => :project, days => 12)),
    'N1 North 70.0000 -10', 'stalled for 12 days: partly complete, no event since');
select is((select string_agg(tag, ',') from pipetrak_api.stalled_components(project_id => :project, days => 1)),
    'N1,N2,S1,S2', 'stalled for a day: most idle first');
select is((select string_agg(tag, ',') from pipetrak_api.stalled_components(project_id => :project, days => 1, group_by => 'area',
                                                                            group_key => :south::text)),
    'S1,S2', 'one group''s');
select is((select string_agg(tag, ',') from pipetrak_api.stalled_components(project_id => :project, days => 1, page_size => 2, page_offset => 2)),
    'S1,S2', 'a page at a time');

-- ---- Who may do what ----
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format($q$select pipetrak_api.set_baseline(project_id => %s, group_by => 'project', reason => 'by %%1$s', effective_date => %L,
    activities => '[{"activity_code": "ALL", "planned_start": "2026-01-01", "planned_finish": "2027-01-01"}]')$q$, :project, :'l'::date + 2))),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'], 'set_baseline: owner, admin, project manager');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.record_hours(project_id => %s, work_date => %L, hours => 8, person => ''%%1$s'')',
                                                                    :project, :'l'::date + 1))),
    array['ok', 'ok', 'ok', 'ok', '42501', '42501', '42501', 'PT404', '42501'], 'record_hours: foreman and up');
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.record_hours(project_id => :project, work_date => :'l'::date + 1, hours => 8, person => 'M. Diaz') as open_hours \gset
reset role;
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.void_hours(hours_id => %s, reason => ''by %%1$s'')', :open_hours))),
    array['ok', 'ok', 'ok', 'ok', '42501', '42501', '42501', 'PT404', '42501'], 'void_hours: foreman and up; an outsider finds no row');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.controls_week(project_id => %s, week_end => %L)', :project, :'l')),
    array['2', '2', '2', '2', '2', '2', '2', 'PT404', '42501'], 'controls_week: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.s_curve(project_id => %s, weeks => 4)', :project)),
    array['4', '4', '4', '4', '4', '4', '4', 'PT404', '42501'], 's_curve: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.forecasts(project_id => %s)', :project)),
    array['1', '1', '1', '1', '1', '1', '1', 'PT404', '42501'], 'forecasts: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.stalled_components(project_id => %s, days => 1)', :project)),
    array['4', '4', '4', '4', '4', '4', '4', 'PT404', '42501'], 'stalled_components: every member');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.baselines where project_id = %s', :project)),
    array['2', '2', '2', '2', '2', '2', '2', '0', '42501'], 'baselines: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.baseline_activities where project_id = %s', :project)),
    array['4', '4', '4', '4', '4', '4', '4', '0', '42501'], 'baseline activities: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.timesheet_hours where project_id = %s', :project)),
    array['6', '6', '6', '6', '6', '6', '6', '0', '42501'], 'timesheet rows: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak.%s where project_id = %s', 'weekly_groups', :project)),
    array['7', '7', '7', '7', '7', '7', '7', '0', '42501'], 'frozen week figures (areas 2, drawings 2, no system, no package, the project): members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak.%s where project_id = %s', 'hours_days', :project)),
    array['5', '5', '5', '5', '5', '5', '5', '0', '42501'], 'hours per day: members only');

-- ---- Importing a schedule and a timesheet (the import pipeline: dry run, issues, remediation) ----
create function pg_temp.upload(p_kind text, p_text text) returns bigint language sql as $$
    select pipetrak_api.import_upload(project_id => (select id from pipetrak.projects where name = 'Controls'), kind => p_kind,
                                      filename => p_kind || '.csv', content => convert_to(p_text, 'UTF8'))
$$;
create function pg_temp.issues(p_import bigint) returns text language sql as $$
    select string_agg(row || ':' || code, ',' order by row, code) from pipetrak_api.import_issues where import_id = p_import
$$;
grant execute on all functions in schema pg_temp to public;
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pg_temp.upload('schedule', format(E'Activity ID,Activity Name,Start,Finish,Budgeted Labor Units,Area,Curve\n'
    'A-100,North piping,%1$s,%2$s,120,North,s-curve\n'
    'A-200,South piping,%1$s,%2$s,80,South,\n'
    'A-200,South again,%1$s,%2$s,,South,\n'
    'A-300,West piping,%1$s,%2$s,,West,\n'
    'A-400,Mobilize,%1$s,%3$s,,,\n'
    'A-500,North test,%4$s,%2$s,,North,\n', :'l'::date + 1, :'l'::date + 60, :'l'::date + 2, :'l'::date + 61)) as schedule \gset
select pipetrak_api.import_validate(:schedule) as schedule_summary \gset
select is(format('%s valid, %s with errors; %s', :'schedule_summary'::jsonb -> 'rows' ->> 'valid',
                 :'schedule_summary'::jsonb -> 'rows' ->> 'with_errors', :'schedule_summary'::jsonb -> 'would' -> 'baseline'),
    format('2 valid, 4 with errors; %s', jsonb_build_object('version', 3, 'group_by', 'area', 'activities', 2, 'budget_mh', 200.0,
                                                            'planned_start', :'l'::date + 1, 'planned_finish', :'l'::date + 60)),
    'a schedule''s dry run: the version it would make, of its valid rows');
select is(pg_temp.issues(:schedule), '4:duplicate_id,5:unknown_group,6:unknown_group,7:finish_before_start',
    'each row''s issue: a repeated activity, an area the project lacks, a row of the project in a schedule by area, dates reversed');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.import_commit(import_id => %s)', :schedule)),
    'PT422 import_has_errors', 'a schedule with errors is not committed unless told to skip them');
select pipetrak_api.import_report_csv(:schedule) as schedule_report \gset
select ok(position('PIPETRAK ISSUES' in :'schedule_report') > 0 and position('No live area of the project is named West' in :'schedule_report') > 0
          and position('A-100' in :'schedule_report') = 0,
    'the remediation CSV holds the rows with issues, each with its issues');
select is((pipetrak_api.import_commit(import_id => :schedule, skip_invalid_rows => true) ->> 'baseline_version')::integer, 3,
    'committed skipping its invalid rows, the schedule is baseline version 3');
select is((select string_agg(format('%s %s %s %s', activity_code, group_name, curve, budget_mh), ', ' order by activity_code)
           from pipetrak_api.baseline_activities where project_id = :project and version = 3),
    'A-100 North s_curve 120.00, A-200 South linear 80.00', 'its activities, as the file planned them');
select pg_temp.upload('schedule', replace(:'schedule_report', 'West', 'North')) as schedule_fix \gset
select pipetrak_api.import_validate(:schedule_fix) is not null as validated \gset
select ok(pg_temp.issues(:schedule_fix) like '%schedule_imported_whole%',
    'a schedule''s remediation CSV is a report: the schedule is imported whole');

select pg_temp.upload('timesheet', format(E'Date,Employee,Crew,Trade,Hours,Area\n'
    '%1$s,J. Ortiz,,Pipefitter,10,North\n'
    '%1$s,,C1,Welder,6.5,South\n'
    '%1$s,K. Lee,,Welder,8,West\n'
    '%1$s,,,Welder,4,North\n', :'l'::date + 1)) as timesheet \gset
select pipetrak_api.import_validate(:timesheet) as timesheet_summary \gset
select is(format('%s valid, %s with errors; %s rows, %s h', :'timesheet_summary'::jsonb -> 'rows' ->> 'valid',
                 :'timesheet_summary'::jsonb -> 'rows' ->> 'with_errors', :'timesheet_summary'::jsonb -> 'would' -> 'hours' ->> 'rows',
                 :'timesheet_summary'::jsonb -> 'would' -> 'hours' ->> 'hours'),
    '2 valid, 2 with errors; 2 rows, 16.50 h', 'a timesheet''s dry run: the hours it would record');
select is(pg_temp.issues(:timesheet), '4:unknown_group,5:missing_value', 'a group the project lacks, nobody named');
select is((pipetrak_api.import_commit(import_id => :timesheet, skip_invalid_rows => true) ->> 'hours_rows_created')::integer, 2,
    'its valid rows are recorded');
select pipetrak_api.import_report_csv(:timesheet) as timesheet_report \gset
select pg_temp.upload('timesheet', replace(replace(:'timesheet_report', 'West', 'North'), ',,,Welder', ',P. Ng,,Welder')) as timesheet_fix \gset
select is((pipetrak_api.import_validate(:timesheet_fix) -> 'rows' ->> 'with_errors')::integer, 0, 'the fixed remediation CSV validates clean');
select is((pipetrak_api.import_commit(import_id => :timesheet_fix) ->> 'hours_rows_created')::integer, 2, 'and records the fixed rows');
-- A remediation row naming a row that was recorded corrects it: J. Ortiz worked 9 hours, not 10.
select pg_temp.upload('timesheet', format(E'PIPETRAK ROW,PIPETRAK REF,Date,Employee,Crew,Trade,Hours,Area\n2,%s:2,%s,J. Ortiz,,Pipefitter,9,North\n',
                                          :timesheet, :'l'::date + 1)) as timesheet_again \gset
select pipetrak_api.import_validate(:timesheet_again) is not null as validated \gset
select is((pipetrak_api.import_commit(import_id => :timesheet_again) ->> 'hours_rows_replaced')::integer, 1, 'a corrected row replaces the one it names');
-- The same correction imported again replaces the first correction: never counted twice.
select pg_temp.upload('timesheet', format(E'PIPETRAK ROW,PIPETRAK REF,Date,Employee,Crew,Trade,Hours,Area\n2,%s:2,%s,J. Ortiz,,Pipefitter,9,North\n',
                                          :timesheet, :'l'::date + 1)) as timesheet_twice \gset
select pipetrak_api.import_validate(:timesheet_twice) is not null as validated \gset
select pipetrak_api.import_commit(import_id => :timesheet_twice) ->> 'status' as committed \gset
select is((select sum(hours) from pipetrak_api.timesheet_hours
           where project_id = :project and person = 'J. Ortiz' and work_date = :'l'::date + 1 and voided_at is null),
    9.00, 'a correction imported twice counts once');
select is((select string_agg(format('%s %s %s', coalesce(person, crew), hours, voided_at is not null), ', ' order by hours_id)
           from pipetrak_api.timesheet_hours where project_id = :project and import_id is not null),
    'J. Ortiz 10.00 t, C1 6.50 f, K. Lee 8.00 f, P. Ng 4.00 f, J. Ortiz 9.00 t, J. Ortiz 9.00 f', 'the timesheet as imported and corrected');
select is((select actual_hours_week from pipetrak_api.controls_week(project_id => :project, week_end => :'l'::date + 7, group_by => 'project')),
    (select sum(hours) from pipetrak.timesheet_hours where project_id = :project and voided_at is null and work_date > :'l'::date),
    'the week''s actual hours are the live rows''');
-- The same timesheet uploaded again: its dry run warns that committing adds its hours again.
select pg_temp.upload('timesheet', format(E'Date,Employee,Crew,Trade,Hours,Area\n'
    '%1$s,J. Ortiz,,Pipefitter,10,North\n'
    '%1$s,,C1,Welder,6.5,South\n'
    '%1$s,K. Lee,,Welder,8,West\n'
    '%1$s,,,Welder,4,North\n', :'l'::date + 1)) as timesheet_same \gset
select is((pipetrak_api.import_validate(:timesheet_same) -> 'issues' ->> 'warning')::integer, 1, 'the dry run counts the warning');
select ok((select message from pipetrak_api.import_issues where import_id = :timesheet_same and code = 'same_file_imported')
          like format('%%import %s)%%', :timesheet), 'a timesheet committed before is flagged, naming its import');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.import_upload(project_id => %s, kind => ''timesheet'', filename => ''t.csv'', content => ''x'')', :project)),
    '42501 permission_denied', 'importing stays with project managers and up');
reset role;

select * from finish();
rollback;
