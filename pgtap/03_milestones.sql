-- The milestone engine's contract (spec §5, §9) and the rollups it keeps current.
begin;
\ir fixtures/actors.sql
select plan(23);

-- Rollups recomputed from scratch from the components, to compare with the maintained parts.
create function pg_temp.recomputed_parts() returns table (drawing_id bigint, area_id bigint, component_type text,
    n bigint, done bigint, earned bigint) language sql as $$
    select drawing_id, area_id, component_type, count(*), count(*) filter (where earned_total = 1000000), sum(earned_total)
    from pipetrak.components where retired_at is null group by 1, 2, 3
$$;
create function pg_temp.maintained_parts() returns table (drawing_id bigint, area_id bigint, component_type text,
    n bigint, done bigint, earned bigint) language sql as $$
    select drawing_id, area_id, component_type, sum(component_count), sum(completed_count), sum(earned_total)
    from pipetrak.progress_parts group by 1, 2, 3 having sum(component_count) > 0
$$;

select pg_temp.act_as(pg_temp.uid('foreman'));

select is((pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Receive', value => 100) ->> 'percent_complete')::numeric,
    10.0000, 'Receive on a valve earns its weight, 10 %');
select is((pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'install', value => 100) ->> 'percent_complete')::numeric,
    70.0000, 'milestone names match without case; Install adds 60 %');
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Punch'', value => 50)', :valve_a),
    'PT422', null, 'a discrete milestone takes 0 or 100 only');
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Weld'', value => 100)', :valve_a),
    'PT422', null, 'an unknown milestone is refused');
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 100.5)', :valve_a),
    'PT422', null, 'values above 100 are refused');

-- Sequence: flag (default) accepts, marks the event and opens a review item.
select is(pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Test', value => 100) -> 'violations',
    '["Test requires Punch"]'::jsonb, 'flag mode accepts an out-of-sequence update and says why');
select is((select count(*) from pipetrak_api.review_items where component_id = :valve_a and kind = 'out_of_sequence'),
    1::bigint, 'and opens a review item');
select ok((select out_of_sequence from pipetrak_api.milestone_events where component_id = :valve_a order by id desc limit 1),
    'and marks the event');

-- Enforce refuses; off ignores.
reset role;
update pipetrak.projects set sequence_mode = 'enforce' where id = :project_a;
select pg_temp.act_as(pg_temp.uid('foreman'));
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Receive'', value => 0)', :valve_a),
    'PT409', null, 'enforce mode refuses un-completing a milestone later ones depend on');
reset role;
update pipetrak.projects set sequence_mode = 'off' where id = :project_a;
select pg_temp.act_as(pg_temp.uid('foreman'));
select is(pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Restore', value => 100) -> 'out_of_sequence',
    'false'::jsonb, 'off mode checks nothing');

-- Work dates: never in the future (project time), locked weeks refused except for owners/admins.
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Punch'', value => 100, work_date => (now() at time zone ''America/Chicago'')::date + 1)', :valve_a),
    'PT422', null, 'a work date in the future (project time) is refused');
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Punch'', value => 100, work_date => current_date - 14)', :valve_a),
    'PT403', null, 'a work date in a locked week is refused for a foreman');
select pg_temp.act_as(pg_temp.uid('admin'));
select is((pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Punch', value => 100, work_date => current_date - 14) ->> 'percent_complete')::numeric,
    100.0000, 'an admin may record it; the valve is complete');
select pg_temp.act_as(pg_temp.uid('foreman'));

-- Offline replays and stale versions.
select pipetrak_api.update_milestone(component_id => :weld_a, milestone => 'Fit-up', value => 100, client_request_id => 'tablet-1:42') as first \gset
select is(pipetrak_api.update_milestone(component_id => :weld_a, milestone => 'Fit-up', value => 0, client_request_id => 'tablet-1:42'),
    :'first'::jsonb, 'replaying a client request id returns the original result');
select is((select count(*) from pipetrak_api.milestone_events where client_request_id = 'tablet-1:42'), 1::bigint,
    'and changes nothing');
select throws_ok(format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Fit-up'', value => 0, expected_version => 1)', :weld_a),
    'PT409', null, 'a stale expected_version is a conflict');

-- Bulk: all or nothing.
select throws_ok(format('select pipetrak_api.update_milestones(updates => ''[{"component_id": %s, "milestone": "Fit-up", "value": 0}, {"component_id": %s, "milestone": "Nope", "value": 1}]'')', :weld_a, :weld_a),
    'PT422', null, 'a bad item fails the whole batch');
select is((select milestones ->> 'Fit-up' from pipetrak_api.components where id = :weld_a), '100.00',
    'and the batch''s earlier items are not applied');

-- Drawing assignment flows to components, except a component assigned on its own.
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.create_area(project_id => :project_a, name => 'Unit 2') as area_2 \gset
select pipetrak_api.assign_component(component_id => :weld_a, area_id => :area_a);
select is(pipetrak_api.assign_drawing(drawing_id => :drawing_a, area_id => :area_2, system_id => :system_a, test_package_id => :package_a), 1,
    'assigning a drawing moves its components');
select is((select array_agg(area_id order by id) from pipetrak_api.components where drawing_id = :drawing_a),
    array[:area_2, :area_a]::bigint[], '...but not one assigned on its own');

-- Re-weighting recomputes at once.
select pipetrak_api.reweight_template(project_id => :project_a, component_type => 'valve',
    weights => '{"Receive": 20, "Install": 50, "Punch": 10, "Test": 15, "Restore": 5}');
select pipetrak_api.update_milestone(component_id => :valve_a, milestone => 'Restore', value => 0);
select is((select percent_complete from pipetrak_api.components where id = :valve_a), 95.0000,
    'the re-weighted template applies to existing components');

-- After all of the above, the maintained rollups equal a recomputation from scratch.
reset role;
select set_eq('select * from pg_temp.maintained_parts()', 'select * from pg_temp.recomputed_parts()',
    'progress parts equal a recomputation from the components');

-- A page of drawings rolls each drawing up on its own: the same figures as the rollup of all.
select set_eq(
    $$select project_id, drawing_id, drawing_no, component_count, completed_count, percent_complete, received_percent,
             installed_percent, punched_percent, tested_percent, restored_percent from pipetrak_api.drawing_progress$$,
    $$select r.project_id, r.key_id, d.drawing_no, r.component_count, r.completed_count, r.percent_complete, r.received_percent,
             r.installed_percent, r.punched_percent, r.tested_percent, r.restored_percent
      from pipetrak.progress_rollups r join pipetrak.drawings d on d.id = r.key_id where r.level = 'drawing'$$,
    'drawing_progress holds every drawing with live components, with the rollup''s figures');

select * from finish();
rollback;
