-- Test packages and turnover (spec §10): attributes, readiness, workflow stages and their refusals,
-- Test and Restore earned by the package, certificates, and who may do what (per role, anon, and a
-- member of another organization).
begin;
\ir fixtures/actors.sql
select plan(88);

-- The detail (JSON) of the error p_sql raises as p_actor.
create function pg_temp.detail_of(p_actor text, p_sql text) returns jsonb language plpgsql as $$
declare
    v_detail text;
begin
    perform pg_temp.act_as(pg_temp.uid(p_actor));
    begin
        execute p_sql;
    exception when others then
        get stacked diagnostics v_detail = pg_exception_detail;
    end;
    perform set_config('role', 'postgres', true);
    return v_detail::jsonb;
end $$;
grant execute on all functions in schema pg_temp to public;

-- ---- A hand-built package ----
-- TP-R holds, on drawing R-1 (through the drawing): V-10 punched, V-11 post-hydro, W-10 punched
-- but rejected by RT, W-11 punched and needing no NDE, S-1 (support) punched; on drawing R-2 (no
-- package) V-20, pinned to TP-R, installed but not punched.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_test_package(project_id => :project_a, name => 'TP-R') as pkg \gset
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'R-1', test_package_id => :pkg) as drawing_r1 \gset
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'R-2') as drawing_r2 \gset
create temp table member (tag text primary key, id bigint);
insert into member
select t, (pipetrak_api.create_component(project_id => :project_a, drawing_id => case when t = 'V-20' then :drawing_r2 else :drawing_r1 end,
                                         component_type => case when t like 'W%' then 'field_weld' when t like 'S%' then 'support' else 'valve' end,
                                         tag => t, size => case when t like 'W%' then null else '2' end) -> 'created' ->> 0)::bigint
from unnest(array['V-10', 'V-11', 'W-10', 'W-11', 'S-1', 'V-20']) t;
grant select on member to public;
select pipetrak_api.assign_component(component_id => (select id from member where tag = 'V-20'), test_package_id => :pkg);
select pg_temp.act_as(pg_temp.uid('foreman'));
select count(pipetrak_api.update_milestone(component_id => m.id, milestone => x.milestone, value => 100))
from member m cross join lateral unnest(case when m.tag like 'W%' then array['Fit-up']
                                             when m.tag = 'V-20' then array['Receive', 'Install']
                                             else array['Receive', 'Install', 'Punch'] end) with ordinality as x(milestone, n)
order by 1;
select count(pipetrak_api.assign_welder(component_id => id, stencil => 'K-7', date_welded => current_date - 3)) from member where tag like 'W%';
select count(pipetrak_api.update_milestone(component_id => id, milestone => 'Punch', value => 100)) from member where tag like 'W%';
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (select id from member where tag = 'W-10'), method => 'RT', result => 'FAIL') ->> 'status' as rejected;
select pg_temp.act_as(pg_temp.uid('project_manager'));
select is(pipetrak_api.set_post_hydro(component_ids => array[(select id from member where tag = 'V-11')]), 1,
    'a component is flagged post-hydro');

select pg_temp.act_as(pg_temp.uid('viewer'));
select is((select (members, testable, ready, ready_percent, post_hydro, open_review_items, state)::text
           from pipetrak_api.test_package_readiness where test_package_id = :pkg),
    '(6,5,3,60.00,1,1,draft)',
    'readiness: 6 members (pinned and inherited), 5 testable, 3 ready, 60 %, 1 post-hydro, W-11''s open review item');
select is((select jsonb_agg(jsonb_build_object(b.drawing_no, (select jsonb_agg(jsonb_build_array(x ->> 'tag', x -> 'lacks'))
                                                              from jsonb_array_elements(b.blockers) x)))
           from pipetrak_api.test_package_blockers(test_package_id => :pkg) b),
    '[{"R-1": [["W-10", ["NDE rejected"]]]}, {"R-2": [["V-20", ["Punch"]]]}]'::jsonb,
    'blockers by drawing: the rejected weld lacks NDE, the pinned valve lacks Punch');
select is((select ready_percent from pipetrak_api.test_package_readiness where test_package_id = :package_a), 0.00,
    'a package whose members are all unready is 0 % ready');

-- Readiness follows NDE and milestones as soon as they commit.
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (select id from member where tag = 'W-11'), method => 'VT', result => 'PENDING') ->> 'status';
select is((select ready from pipetrak_api.test_package_readiness where test_package_id = :pkg), 2::bigint,
    'a PENDING result takes a weld out of the ready count');
select pipetrak_api.record_nde(component_id => (select id from member where tag = 'W-11'), method => 'VT', result => 'PASS', reason => 'read') ->> 'status';
select is((select ready from pipetrak_api.test_package_readiness where test_package_id = :pkg), 3::bigint,
    'accepted: it is back');

-- ---- Test type, pressure, stages ----
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.update_test_package(test_package_id => %s, test_type => ''Hydrostatic'')', :pkg)),
    'PT422 pressure_required', 'a hydrostatic test needs its pressure');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.update_test_package(test_package_id => %s, test_type => ''Other'', test_pressure => 10, test_pressure_unit => ''psig'')', :pkg)),
    'ok', 'units are taken in any case');
select is((select (test_pressure, test_pressure_unit)::text from pipetrak.test_packages where id = :pkg), '(10.00,PSIG)',
    'and kept in the spec''s spelling');
create function pg_temp.stages_for(p_type text, p_coating boolean, p_insulation boolean) returns text language plpgsql as $$
begin
    perform pipetrak_api.update_test_package(test_package_id => (select id from pipetrak.test_packages where name = 'TP-R'),
        test_type => p_type, test_pressure => 150, test_pressure_unit => 'PSIG', requires_coating => p_coating,
        requires_insulation => p_insulation);
    return (select string_agg(stage, ',' order by position) from pipetrak_api.test_package_stages
            where test_package_id = (select id from pipetrak.test_packages where name = 'TP-R'));
end $$;
grant execute on all functions in schema pg_temp to public;
select pg_temp.act_as(pg_temp.uid('project_manager'));
select is(pg_temp.stages_for('Pneumatic', true, false), 'pre_hydro,test,post_hydro,coatings,final', 'Pneumatic: 1, 2, 4, coatings, final');
select is(pg_temp.stages_for('Sensitive Leak', false, false), 'pre_hydro,test,final', 'Sensitive Leak: 1, 2, final');
select is(pg_temp.stages_for('In-service', false, true), 'insulation,final', 'In-service: none of 1–4');
select is(pg_temp.stages_for('Hydrostatic', false, false), 'pre_hydro,test,drain_flush,post_hydro,final', 'Hydrostatic: 1–4, final');

-- ---- The state machine ----
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''test'')', :pkg)),
    'PT409 stage_out_of_order', 'a stage starts only after the one before it');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''coatings'')', :pkg)),
    'PT404 stage_not_found', 'a stage the test type doesn''t call for');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'')', :pkg)),
    'PT409 stage_state', 'a stage not started does not complete');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.skip_stage(test_package_id => %s, stage => ''test'', reason => ''no test'')', :pkg)),
    'PT409 stage_state', 'Test Acceptance is never skipped');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''pre_hydro'')', :pkg)),
    'ok', 'QC starts Pre-Hydro');
select is((select state from pipetrak_api.test_package_readiness where test_package_id = :pkg), 'testing', 'the package is testing');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''pre_hydro'')', :pkg)),
    'PT409 stage_state', 'a started stage does not start again');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.update_test_package(test_package_id => %s, test_type => ''Pneumatic'', test_pressure => 1, test_pressure_unit => ''BAR'')', :pkg)),
    'PT409 stages_started', 'the test type is fixed once a stage has started');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'')', :pkg)),
    'PT422 stage_incomplete', 'completing needs the stage''s data and sign-offs');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.sign_stage(test_package_id => %s, stage => ''pre_hydro'', signoff => ''client'', name => ''A'', company_role => ''B'')', :pkg)),
    'PT400 invalid_argument', 'Pre-Hydro takes a QC sign-off only');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.sign_stage(test_package_id => %s, stage => ''pre_hydro'', signoff => ''qc'', name => ''A'', company_role => ''B'', signed_on => current_date + 5)', :pkg)),
    'PT422 work_date_in_future', 'a sign-off is never dated ahead');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'pre_hydro', signoff => 'qc', name => 'J. Ruiz', company_role => 'QC lead');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "J. Ruiz", "nde_complete": true}'')', :pkg)),
    'PT409 nde_outstanding', 'NDE complete is refused while a member weld awaits NDE or repair');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (select id from member where tag = 'W-10'), method => 'RT', result => 'PASS', reason => 'film re-read') ->> 'status';
select is(pipetrak_api.complete_stage(test_package_id => :pkg, stage => 'pre_hydro', data => '{"inspector": "J. Ruiz", "nde_complete": true}') ->> 'status',
    'completed', 'with every member weld accepted, Pre-Hydro completes');

-- Test Acceptance: refused while a testable member is not ready; then earns Test on exactly the testable ones.
select pipetrak_api.start_stage(test_package_id => :pkg, stage => 'test');
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'test', signoff => 'qc', name => 'J. Ruiz', company_role => 'QC lead');
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'test', signoff => 'client', name => 'M. Chen', company_role => 'Owner''s rep');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''test'', data => jsonb_build_object(''test_date'', current_date + 1, ''medium'', ''water'', ''pressure_held'', 150, ''hold_time_min'', 30, ''gauges'', ''[{"number": "G-7", "calibration_date": "2026-01-05"}]''::jsonb))', :pkg)),
    'PT422 work_date_in_future', 'a test is never dated ahead');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.save_stage(test_package_id => :pkg, stage => 'test',
    data => jsonb_build_object('test_date', current_date - 1, 'medium', 'water', 'pressure_held', 150, 'hold_time_min', 30,
                               'gauges', '[{"number": "G-7", "calibration_date": "2026-01-05"}]'::jsonb)) ->> 'medium';
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''test'')', :pkg)),
    'PT409 package_not_ready', 'Test Acceptance is refused while a testable member is not ready');
select is((select d - 'code' - 'test_package_id' from pg_temp.detail_of('qc_inspector',
               format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''test'')', :pkg)) d),
    '{"not_ready": 1, "needs": "ready", "drawings": [{"drawing_no": "R-2", "members": 1}]}'::jsonb,
    'the refusal says how many members are not ready, and where');
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.update_milestone(component_id => (select id from member where tag = 'V-20'), milestone => 'Punch', value => 100) ->> 'percent_complete';
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.complete_stage(test_package_id => :pkg, stage => 'test') ->> 'earned', '5',
    'Test Acceptance completes and earns Test on the 5 testable members');
select is((select array_agg(m.tag order by m.tag) from member m join pipetrak.components c on c.id = m.id
           join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
           where c.milestone_values[array_position(t.names, 'Test')] = 100),
    array['S-1', 'V-10', 'V-20', 'W-10', 'W-11'], 'Test = 100 on exactly the testable members (not the post-hydro valve)');
select is((select count(*)::int from pipetrak.milestone_events e join member m on m.id = e.component_id
           where e.milestone = 'Test' and e.new_value = 100 and e.work_date = current_date - 1),
    5, 'one audited event each, dated the test date');
select is((select (state, ready)::text from pipetrak_api.test_package_readiness where test_package_id = :pkg), '(tested,5)',
    'the package is tested');
select is((select sum(earned_test)::bigint from pipetrak.progress_parts where test_package_id = :pkg),
    (select sum(earned_test)::bigint from pipetrak.components where test_package_id = :pkg and retired_at is null),
    'the rollups carry the earned Test');

-- A completed stage changes only with a reason, and the change is kept.
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.save_stage(test_package_id => %s, stage => ''test'', data => ''{"medium": "glycol"}'')', :pkg)),
    'PT422 reason_required', 'editing a completed stage needs a reason');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.save_stage(test_package_id => :pkg, stage => 'test', data => '{"medium": "water + inhibitor"}', reason => 'medium misspelled') ->> 'medium';
select is((select (action, before -> 'data' ->> 'medium', after -> 'data' ->> 'medium', reason)::text
           from pipetrak_api.package_events where test_package_id = :pkg and action = 'stage_edited'),
    '(stage_edited,water,"water + inhibitor","medium misspelled")', 'the edit is audited with before, after and reason');
select is(pg_temp.try_as('owner', format('update pipetrak.package_events set reason = ''x'' where test_package_id = %s', :pkg)),
    '42501', 'nobody writes package events directly');
reset role;
select throws_ok(format('delete from pipetrak.package_events where test_package_id = %s', :pkg), 'PT403', null,
    'package events are append-only, even for the table owner');

-- Certificates: PKG-NNN per project on first save, locked once Test Acceptance completes.
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.save_certificate(test_package_id => %s, client => ''ACME'')', :pkg)),
    'PT409 certificate_locked', 'the certificate is locked after Test Acceptance');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.save_certificate(test_package_id => :package_a, client => 'ACME', test_pressure => 10, test_pressure_unit => 'bar'),
    'PKG-001', 'the first certificate of the project');
select is(pipetrak_api.save_certificate(test_package_id => :package_a, client => 'ACME Corp', medium => 'water'),
    'PKG-001', 'saving it again keeps its number');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_test_package(project_id => :project_a, name => 'TP-C') as pkg_c \gset
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.save_certificate(test_package_id => :pkg_c), 'PKG-002', 'the next package gets the next number');

-- Drain/flush skipped, post-hydro skipped, Final earns Restore; the package is turned over.
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''final'')', :pkg)),
    'PT409 stage_out_of_order', 'Final waits for the stages before it');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''test'')', :pkg)),
    'PT409 stage_state', 'a completed stage does not complete again (nothing is earned twice)');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.skip_stage(test_package_id => %s, stage => ''pre_hydro'', reason => ''late'')', :pkg)),
    'PT409 stage_state', 'a completed stage is not skipped');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.sign_stage(test_package_id => %s, stage => ''final'', signoff => ''qc'', name => ''A'', company_role => ''B'')', :pkg)),
    'PT409 stage_state', 'a stage not started takes no sign-off');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.skip_stage(test_package_id => %s, stage => ''drain_flush'', reason => '''')', :pkg)),
    'PT422 reason_required', 'skipping needs a reason');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.skip_stage(test_package_id => :pkg, stage => 'drain_flush', reason => 'vented, no liquid');
select pipetrak_api.skip_stage(test_package_id => :pkg, stage => 'post_hydro', reason => 'no post-hydro work');
select pipetrak_api.start_stage(test_package_id => :pkg, stage => 'final');
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'final', signoff => 'qc', name => 'J. Ruiz', company_role => 'QC lead');
select is((select d -> 'missing_signoffs' from pg_temp.detail_of('qc_inspector',
               format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''final'', data => ''{"notes": "handed over"}'')', :pkg)) d),
    '["client", "manufacturer"]'::jsonb, 'Final needs the client''s and the manufacturer''s sign-offs');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'final', signoff => 'client', name => 'M. Chen', company_role => 'Owner''s rep');
select pipetrak_api.sign_stage(test_package_id => :pkg, stage => 'final', signoff => 'manufacturer', name => 'P. Ode', company_role => 'Fabricator');
select is(pipetrak_api.complete_stage(test_package_id => :pkg, stage => 'final', data => '{"notes": "handed over"}') ->> 'earned', '5',
    'Final earns Restore on the 5 testable members');
select is((select state from pipetrak_api.test_package_readiness where test_package_id = :pkg), 'turned_over',
    'every stage completed or skipped: turned over');
select is((select array_agg(m.tag order by m.tag) from member m join pipetrak.components c on c.id = m.id where c.percent_complete = 100),
    array['S-1', 'V-10', 'V-20', 'W-10', 'W-11'], 'the testable members are complete');

-- The turnover report.
select pg_temp.act_as(pg_temp.uid('viewer'));
select pipetrak_api.turnover_report(test_package_id => :pkg) as report \gset
select is((:'report'::jsonb -> 'package' ->> 'state') || ' ' || (:'report'::jsonb -> 'certificate')::text, 'turned_over null',
    'the report''s header carries the state; this package has no certificate');
select is((select jsonb_agg(jsonb_build_array(d ->> 'drawing_no', d -> 'components', jsonb_array_length(d -> 'welds'), d -> 'nde'))
           from jsonb_array_elements(:'report'::jsonb -> 'drawings') d),
    '[["R-1", 5, 2, {"welds": 2, "nde_required": 0, "pass": 2, "fail": 0, "pending": 0}], ["R-2", 1, 0, {"welds": 0, "nde_required": 0, "pass": 0, "fail": 0, "pending": 0}]]'::jsonb,
    'per drawing: components, weld log rows and the NDE summary');
select is((select jsonb_agg(s.v ->> 'status' order by s.n) from jsonb_array_elements(:'report'::jsonb -> 'stages') with ordinality as s(v, n)),
    '["completed", "completed", "skipped", "skipped", "completed"]'::jsonb, 'the stages in order with their outcome');
select is(:'report'::jsonb -> 'supports', '[{"commodity_code": "S-1", "size": "2", "quantity": 1}]'::jsonb, 'the support summary');

-- ---- Post-hydro in bulk: by drawing, all-or-nothing ----
select pg_temp.act_as(pg_temp.uid('project_manager'));
select is(pipetrak_api.set_post_hydro(drawing_id => :drawing_r2), 1, 'a drawing flags its live components');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.set_post_hydro(component_ids => array[%s, %s])', :valve_a, :valve_b)),
    'PT404 component_not_found', 'another organization''s component fails the whole call');
select is((select post_hydro from pipetrak.components where id = :valve_a), false, 'and nothing changed');

-- ---- Who may do what ----
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.set_post_hydro(component_ids => array[%s])', :valve_a))),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'set_post_hydro: owner, admin, project manager');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.update_test_package(test_package_id => %s, test_type => ''Other'', test_pressure => 5, test_pressure_unit => ''PSI'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'update_test_package: owner, admin, project manager');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.update_test_package(test_package_id => :pkg_c, test_type => 'Sensitive Leak');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.start_stage(test_package_id => %s, stage => ''pre_hydro'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'start_stage: QC inspector and up');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.start_stage(test_package_id => :pkg_c, stage => 'pre_hydro');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.save_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "x"}'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'save_stage: QC inspector and up');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.sign_stage(test_package_id => %s, stage => ''pre_hydro'', signoff => ''qc'', name => ''n'', company_role => ''r'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'sign_stage: QC inspector and up');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.skip_stage(test_package_id => %s, stage => ''pre_hydro'', reason => ''not needed'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'skip_stage: QC inspector and up');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "x", "nde_complete": true}'')', :pkg_c))),
    array['PT422', 'PT422', 'PT422', '42501', 'PT422', '42501', '42501', 'PT404', '42501'],
    'complete_stage: QC inspector and up (here refused for the missing sign-off)');
select is(pg_temp.matrix(format('select pg_temp.undone(%L)', format('select pipetrak_api.save_certificate(test_package_id => %s, client => ''c'')', :pkg_c))),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'save_certificate: QC inspector and up');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.test_package_blockers(test_package_id => %s)', :pkg_c)),
    array['0', '0', '0', '0', '0', '0', '0', 'PT404', '42501'],
    'test_package_blockers: every member reads; others get not found');
select is(pg_temp.matrix(format('select pipetrak_api.turnover_report(test_package_id => %s) -> ''package'' ->> ''state''', :pkg_c)),
    array['testing', 'testing', 'testing', 'testing', 'testing', 'testing', 'testing', 'PT404', '42501'],
    'turnover_report: every member reads; others get not found');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.test_package_readiness where test_package_id = %s', :pkg)),
    array['1', '1', '1', '1', '1', '1', '1', '0', '42501'],
    'readiness: members see their packages; an outsider sees none');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.test_package_stages where test_package_id = %s', :pkg)),
    array['5', '5', '5', '5', '5', '5', '5', '0', '42501'],
    'stages: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.test_package_certificates where test_package_id = %s', :package_a)),
    array['1', '1', '1', '1', '1', '1', '1', '0', '42501'],
    'certificates: members only');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.package_events where test_package_id = %s', :pkg)),
    array['9', '9', '9', '9', '9', '9', '9', '0', '42501'],
    'package events: members only');

-- ---- Sampling meets the package: a lot's shortfall and a repair's own examination ----
-- TP-X holds drawing X-1 with four 10 % BW welds by welder X-9, punched. The lot of four owes one
-- random examination (ceil(4 × 10 %)), so Pre-Hydro waits for it; then one weld rejected and repaired
-- at 10 %: the repair counts as ready only once it has passed RT itself.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_test_package(project_id => :project_a, name => 'TP-X') as pkg_x \gset
select pipetrak_api.update_test_package(test_package_id => :pkg_x, test_type => 'Sensitive Leak', test_pressure => 10,
                                        test_pressure_unit => 'PSIG') is not null as typed;
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'X-1', test_package_id => :pkg_x) as drawing_x \gset
create temp table xweld (tag text primary key, id bigint);
insert into xweld
select t, (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_x, component_type => 'field_weld', tag => t)
           -> 'created' ->> 0)::bigint
from unnest(array['X-1', 'X-2', 'X-3', 'X-4']) t;
grant select on xweld to public;
reset role;
update pipetrak.field_welds set weld_type = 'BW', xray_percent = 10 where component_id in (select id from xweld);
select pg_temp.act_as(pg_temp.uid('foreman'));
select count(pipetrak_api.assign_welder(component_id => id, stencil => 'X-9', date_welded => current_date - 3)) from xweld;
select count(pipetrak_api.update_milestone(component_id => id, milestone => 'Punch', value => 100)) from xweld;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.start_stage(test_package_id => :pkg_x, stage => 'pre_hydro') is not null as started;
select pipetrak_api.sign_stage(test_package_id => :pkg_x, stage => 'pre_hydro', signoff => 'qc', name => 'J. Ruiz', company_role => 'QC lead') is not null as signed;
select is(pg_temp.detail_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "J. Ruiz", "nde_complete": true}'')', :pkg_x))
          ->> 'welds', '4',
    'Pre-Hydro is held while the lot owes a random examination: each unexamined weld of it awaits NDE');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (select id from xweld where tag = 'X-2'), method => 'RT', result => 'FAIL') ->> 'status' as rejected;
select pipetrak_api.create_repair(component_id => (select id from xweld where tag = 'X-2')) ->> 'repair_id' as repair_x \gset
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :repair_x, stencil => 'X-9', date_welded => current_date - 1) is not null as rewelded;
select pipetrak_api.update_milestone(component_id => :repair_x, milestone => 'Punch', value => 100) is not null as repair_punched;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select count(pipetrak_api.record_nde(component_id => e.component_id, method => 'RT', result => 'PASS'))
from pipetrak.examination_calls e where e.failed_weld = (select id from xweld where tag = 'X-2');
select is((select (testable, ready)::text from pipetrak_api.test_package_readiness where test_package_id = :pkg_x), '(4,3)',
    'the repair of a 10 % weld, never radiographed, is not ready for its package');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "J. Ruiz", "nde_complete": true}'')', :pkg_x)),
    'PT409 nde_outstanding', 'nor does Pre-Hydro pass while the repair awaits its RT');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => :repair_x, method => 'RT', result => 'PASS') ->> 'status' as repair_passed;
select is((select (testable, ready)::text from pipetrak_api.test_package_readiness where test_package_id = :pkg_x), '(4,4)',
    'once the repair passes RT it is ready');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.complete_stage(test_package_id => %s, stage => ''pre_hydro'', data => ''{"inspector": "J. Ruiz", "nde_complete": true}'')', :pkg_x)),
    'ok', 'and Pre-Hydro completes: sample taken, tracers examined, repair passed');

-- Another organization's owner can't reach this package, and this owner can't reach theirs.
select pg_temp.act_as(pg_temp.uid('outsider'));
select pipetrak_api.create_test_package(project_id => :project_b, name => 'TP-B') as pkg_b \gset
select is(pg_temp.error_of('owner', format('select pipetrak_api.save_certificate(test_package_id => %s)', :pkg_b)),
    'PT404 test_package_not_found', 'an owner passing another organization''s package id finds nothing');
select is(pg_temp.error_of('owner', format('select pipetrak_api.set_post_hydro(drawing_id => %s)', :drawing_b)),
    'PT404 drawing_not_found', 'nor its drawing');

-- An open review item counts in its component's package, and follows the component to another
-- package; a retired component's item counts nowhere.
insert into pipetrak.review_items (project_id, component_id, kind) values (:project_a, :valve_a, 'out_of_sequence');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_test_package(project_id => :project_a, name => 'TP-moved') as package_moved \gset
select set_config('role', 'postgres', true);
create temp table items_before as
select test_package_id, open_review_items from pipetrak_api.test_package_readiness where project_id = :project_a;
select is((select open_review_items from items_before where test_package_id = :package_a),
          (select count(*) from pipetrak.review_items r join pipetrak.components c on c.id = r.component_id
           where r.resolved_at is null and c.retired_at is null and c.test_package_id = :package_a),
          'a package counts the open review items of its live members');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.assign_component(component_id => :valve_a, test_package_id => :package_moved);
select set_config('role', 'postgres', true);
select is(array(select open_review_items from pipetrak_api.test_package_readiness
                where test_package_id in (:package_a, :package_moved) order by test_package_id),
          array[(select open_review_items from items_before where test_package_id = :package_a)
                  - (select count(*) from pipetrak.review_items where component_id = :valve_a and resolved_at is null),
                (select count(*) from pipetrak.review_items where component_id = :valve_a and resolved_at is null)],
          'a component moved to another package takes its open review items there');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.retire_component(component_id => :valve_a);
select set_config('role', 'postgres', true);
select is((select open_review_items from pipetrak_api.test_package_readiness where test_package_id = :package_moved),
          0::bigint, 'a retired component''s open review items count in no package');

-- The package rows the dashboard and readiness read follow every writer of the parts and the
-- review items (milestones, NDE, stages earning Test and Restore, moves, retirements, items raised
-- and resolved above): each equals a recount of the package's live members and open items.
create temp view package_recount as
select k.project_id, k.test_package_id, coalesce(m.n, 0) as component_count, coalesce(m.done, 0) as completed_count,
       coalesce(m.earned, 0) as earned_total, coalesce(m.post_hydro, 0) as post_hydro_count, coalesce(m.ready, 0) as ready_count,
       coalesce(r.n, 0) as open_review_items
from (select project_id, test_package_id from pipetrak.components where retired_at is null and test_package_id is not null
      union
      select project_id, test_package_id from pipetrak.review_items where resolved_at is null and test_package_id is not null) k
left join (select c.project_id, c.test_package_id, count(*)::integer as n, count(*) filter (where c.earned_total = 1000000)::integer as done,
                  sum(c.earned_total)::bigint as earned, count(*) filter (where c.post_hydro)::integer as post_hydro,
                  count(*) filter (where not c.post_hydro and pipetrak.ready_for_test(c.milestone_values, t.names,
                                         pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde)))::integer as ready
           from pipetrak.components c
           join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
           left join pipetrak.field_welds f on f.component_id = c.id
           where c.retired_at is null and c.test_package_id is not null
           group by 1, 2) m on m.project_id = k.project_id and m.test_package_id = k.test_package_id
left join (select project_id, test_package_id, count(*)::integer as n from pipetrak.review_items
           where resolved_at is null and test_package_id is not null group by 1, 2) r
       on r.project_id = k.project_id and r.test_package_id = k.test_package_id;
create temp view package_rows as
select project_id, test_package_id, component_count, completed_count, earned_total, post_hydro_count, ready_count, open_review_items
from pipetrak.progress_packages
where (component_count, completed_count, earned_total, post_hydro_count, ready_count, open_review_items) <> (0, 0, 0, 0, 0, 0);
select is((select format('%s differ; packages with members: %s', count(*),
                         (select count(*) > 0 from package_recount where component_count > 0 and open_review_items > 0)) from (
              (select * from package_recount except select * from package_rows)
              union all (select * from package_rows except select * from package_recount)) e),
          '0 differ; packages with members: t',
          'each package''s row equals a recount of its live members, ready members and open review items, after every operation above');
-- Open items reach their package from each statement's captured rows (src/pg/captured.rs): a
-- statement of more rows than the capture holds before it flushes on its own (10,000) counts
-- each row once, and so does one deleting them; a savepoint rolled back takes its rows along.
select c.id as packaged_component from pipetrak.components c
where c.test_package_id = :package_a and c.retired_at is null limit 1 \gset
insert into pipetrak.review_items (project_id, component_id, kind, test_package_id)
select c.project_id, c.id, 'out_of_sequence', c.test_package_id
from pipetrak.components c, generate_series(1, 10050) where c.id = :packaged_component;
select is((select count(*) from ((select * from package_recount except select * from package_rows)
                                 union all (select * from package_rows except select * from package_recount)) e),
          0::bigint, 'a statement of 10,050 new open items counts each once in its package');
savepoint items_kept;
delete from pipetrak.review_items where component_id = :packaged_component and kind = 'out_of_sequence'
                                    and event_id is null and resolved_at is null;
rollback to savepoint items_kept;
update pipetrak.review_items set resolved_at = now(), resolved_by = pg_temp.uid('owner'), status = 'resolved'
where component_id = :packaged_component and kind = 'out_of_sequence' and event_id is null and resolved_at is null;
select is((select count(*) from ((select * from package_recount except select * from package_rows)
                                 union all (select * from package_rows except select * from package_recount)) e),
          0::bigint, 'resolving them in one statement after a rolled-back delete of them leaves the package recounted');

-- A weld row deleted with the triggers on (a DBA's delete) puts its component back in its
-- package's ready count, as a recount counts it: no weld row clears the weld.
select pg_temp.act_as(pg_temp.uid('owner'));
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_r1, component_type => 'field_weld',
                                      tag => 'W-DEL') -> 'created' ->> 0)::bigint as weld_del \gset
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.update_milestone(component_id => :weld_del, milestone => 'Fit-up', value => 100) is not null;
select pipetrak_api.assign_welder(component_id => :weld_del, stencil => 'K-7', date_welded => current_date - 3) is not null;
select pipetrak_api.update_milestone(component_id => :weld_del, milestone => 'Punch', value => 100) is not null;
select set_config('role', 'postgres', true);
update pipetrak.field_welds set nde_types = '{RT}' where component_id = :weld_del;
select ready_count as ready_before from package_recount where test_package_id = :pkg \gset
delete from pipetrak.field_welds where component_id = :weld_del;
select is((select ready_count from package_recount where test_package_id = :pkg), :ready_before + 1,
          'a punched weld waiting for RT counts as ready once its weld row is gone (the recount)');
select is((select count(*) from ((select * from package_recount except select * from package_rows)
                                 union all (select * from package_rows except select * from package_recount)) e),
          0::bigint, 'and its package''s row follows the delete, as the recount');

-- A DBA's rebuild of the parts mends package rows that drifted.
update pipetrak.progress_packages set ready_count = ready_count + 7, open_review_items = open_review_items + 3
where test_package_id = :package_a;
select pipetrak.rebuild_progress_parts();
select is((select count(*) from ((select * from package_recount except select * from package_rows)
                                 union all (select * from package_rows except select * from package_recount)) e),
          0::bigint, 'rebuilding the parts recounts the package rows (members and open review items)');

select * from finish();
rollback;
