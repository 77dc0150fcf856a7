-- Field welds and QC (spec §7): NDE results and the weld's status, the weld's history, welders,
-- and who may do what (per role, anon, and a member of another organization).
begin;
\ir fixtures/actors.sql
select plan(116);

-- ---- NDE on a weld, its status and its history ----
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''RT'', result => ''PASS'')', :weld_a)),
    'PT409 weld_not_welded', 'NDE on a weld without welder and date welded is refused');
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_a, stencil => 'K-12', date_welded => current_date - 2) is not null as welded;
select is((select count(*)::int from pipetrak.review_items where component_id = :weld_a and kind = 'weld_completed' and resolved_at is null), 1,
    'welding raised a review item');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.assign_welder(component_id => %s, stencil => ''K-99'', date_welded => current_date - 1)', :weld_a))
          || ' ' || (select w.stencil || ' ' || (current_date - f.date_welded) from pipetrak.field_welds f join pipetrak.welders w on w.id = f.welder_id
                     where f.component_id = :weld_a),
    'PT409 weld_already_welded K-12 2', 'a welded weld is not assigned again: its welder and date change only by edit_welder, with a reason');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.record_nde(component_id => %s, method => ''RT'', result => ''PASS'')', :weld_a)),
    '42501 permission_denied', 'a foreman does not record NDE');

select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'rt', result => 'pass', report_number => 'RT-001') ->> 'status',
    'accepted', 'with no method required, a PASS accepts the weld (method and result in any case)');
select is((select count(*)::int from pipetrak.review_items where component_id = :weld_a and kind = 'weld_completed' and resolved_at is null), 0,
    'recording NDE resolves the weld''s review item');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''RT'', result => ''FAIL'')', :weld_a)),
    'PT422 reason_required', 'superseding a result needs a reason');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'RT', result => 'FAIL', reason => 'film re-read: porosity') ->> 'status',
    'rejected', 'a current FAIL rejects the weld');
select is((select array_agg(result || ':' || is_current order by id) from pipetrak_api.nde_results where component_id = :weld_a),
    array['PASS:false', 'FAIL:true'], 'the PASS stays in the record, superseded');
select is((select supersedes from pipetrak.nde_results where component_id = :weld_a order by id desc limit 1),
    (select min(id) from pipetrak.nde_results where component_id = :weld_a), 'the new record names the one it supersedes');

-- Required methods: the listed ones, and RT for an x-ray tier above 0.
reset role;
update pipetrak.field_welds set nde_types = '{PT}', xray_percent = 5 where component_id = :weld_a;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'RT', result => 'PASS', reason => 'repaired in place, re-shot') ->> 'status',
    'active', 'RT passed but PT (required) has no result: active');
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'PT', result => 'PENDING') ->> 'status',
    'active', 'a PENDING required method keeps it active');
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'PT', result => 'PASS', reason => 'developer read') ->> 'status',
    'accepted', 'every required method passed: accepted');
select is(pipetrak_api.record_nde(component_id => :weld_a, method => 'UT', result => 'FAIL') ->> 'status',
    'rejected', 'a FAIL of a method nobody asked for still rejects');
select is(pipetrak_api.clear_nde(component_id => :weld_a, method => 'UT', reason => 'wrong weld scanned') ->> 'status',
    'accepted', 'clearing that result (with a reason) accepts it again');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.clear_nde(component_id => %s, method => ''PT'', reason => '''')', :weld_a)),
    'PT422 reason_required', 'clearing needs a reason');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.clear_nde(component_id => %s, method => ''MT'', reason => ''never shot'')', :weld_a)),
    'PT409 nde_not_recorded', 'nothing to clear for a method never recorded');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.clear_nde(component_id => %s, method => ''UT'', reason => ''again'')', :weld_a)),
    'PT409 nde_not_recorded', 'nor for one already cleared');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''XR'', result => ''PASS'')', :weld_a)),
    'PT422 invalid_nde', 'an unknown method is refused');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''VT'', result => ''OK'')', :weld_a)),
    'PT422 invalid_nde', 'an unknown result is refused');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''VT'', result => ''PASS'', examined_on => current_date + 30)', :weld_a)),
    'PT422 work_date_in_future', 'an examination can''t be dated in the future');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''VT'', result => ''PASS'')', :valve_a)),
    'PT422 not_a_field_weld', 'NDE is for field welds only');

select is((select array_agg(action || ':' || coalesce(after ->> 'status', '') order by id) from pipetrak_api.weld_events where component_id = :weld_a),
    array['nde_recorded:accepted', 'nde_recorded:rejected', 'nde_recorded:active', 'nde_recorded:active',
          'nde_recorded:accepted', 'nde_recorded:rejected', 'nde_cleared:accepted'],
    'every NDE change is in the weld''s history with the status it left');
select is((select status from pipetrak.field_welds where component_id = :weld_a), 'accepted', 'the weld row keeps the status');
reset role;
select throws_ok(format('update pipetrak.nde_results set result = ''PASS'' where component_id = %s', :weld_a), 'PT403', null,
    'NDE results can''t be changed, even by the table''s owner');
select throws_ok(format('delete from pipetrak.weld_events where component_id = %s', :weld_a), 'PT403', null,
    'nor weld events deleted');

-- ---- who may do what ----
select is(pg_temp.matrix(format('select pipetrak_api.record_nde(component_id => %s, method => ''VT'', result => ''PASS'', reason => ''seen by %%1$s'') ->> ''status''', :weld_a)),
    array['accepted', 'accepted', 'accepted', '42501', 'accepted', '42501', '42501', 'PT404', '42501'],
    'record_nde: owner, admin, project manager, QC; the outsider can''t find the weld');
select is(pg_temp.matrix(format('select pipetrak_api.clear_nde(component_id => %s, method => ''VT'', reason => ''cleared by %%1$s'') ->> ''method''', :weld_a)),
    array['VT', 'PT409', 'PT409', '42501', 'PT409', '42501', '42501', 'PT404', '42501'],
    'clear_nde: the same roles (after the owner cleared VT, nothing is left to clear)');
select is(pg_temp.matrix(format('select pipetrak_api.create_welder(project_id => %s, stencil => left(md5(''%%1$s''), 8), name => ''%%1$s'') > 0', :project_a)),
    array['true', 'true', 'true', 'true', 'true', '42501', '42501', 'PT404', '42501'],
    'create_welder: foreman and up, QC too');
select pg_temp.act_as(pg_temp.uid('owner'));
select (select id from pipetrak_api.welders where project_id = :project_a and stencil = 'K-12') as welder_a \gset
select pg_temp.act_as(pg_temp.uid('outsider'));
select pipetrak_api.create_welder(project_id => :project_b, stencil => 'B-1') as welder_b \gset
reset role;
select is(pg_temp.matrix(format('select pipetrak_api.rename_welder(welder_id => %s, name => ''Name by %%1$s'')', :welder_a)),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'rename_welder: owner, admin, project manager, QC');
select is(pg_temp.matrix(format('select pipetrak_api.verify_welder(welder_id => %s)', :welder_a)),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'verify_welder: the same');
select is(pg_temp.matrix(format('select pipetrak_api.verify_welder(welder_id => %s)', :welder_b)),
    array['PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', 'ok', '42501'],
    'another organization''s welder is not found by anyone of A');
select is(pg_temp.error_of('owner', 'select pipetrak_api.create_welder(project_id => ' || :project_a || ', stencil => ''k-12'')'),
    'PT409 stencil_taken', 'stencils are unique in a project (compared uppercase)');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.nde_results where component_id = %s', :weld_a)),
    array['12', '12', '12', '12', '12', '12', '12', '0', '42501'],
    'members read the NDE records; the outsider sees none; anon is refused');

-- A weld's examination dates are its current results': a corrected date replaces the one it
-- corrects, and a cleared method no longer dates the weld.
select pg_temp.act_as(pg_temp.uid('owner'));
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld', tag => 'E-1') -> 'created' ->> 0)::bigint as weld_e \gset
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_e, stencil => 'K-12', date_welded => current_date - 5) is not null as welded;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => :weld_e, method => 'RT', result => 'PASS', examined_on => current_date - 1) is not null as shot;
select pipetrak_api.record_nde(component_id => :weld_e, method => 'RT', result => 'PASS', examined_on => current_date - 4,
                               reason => 'report dated wrongly') is not null as corrected;
select is((select (current_date - first_examined_on) || ' ' || (current_date - last_examined_on) from pipetrak.field_welds where component_id = :weld_e),
    '4 4', 'a corrected examination date replaces the one it corrects (first and last examined)');
select pipetrak_api.clear_nde(component_id => :weld_e, method => 'RT', reason => 'film belongs to another weld') is not null as cleared;
select is((select last_examined_on from pipetrak_api.weld_log where component_id = :weld_e), null::date,
    'a cleared method no longer dates the weld''s examination');

-- ---- welder and date, un-welding, retiring and moving ----
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'P-200') as drawing_2 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld', tag => 'W-2') -> 'created' ->> 0)::bigint as weld_2 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld', tag => 'W-3') -> 'created' ->> 0)::bigint as weld_3 \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_2, component_type => 'field_weld', tag => 'W-3') -> 'created' ->> 0)::bigint as weld_3b \gset
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_2, stencil => 'K-12', date_welded => current_date - 3) is not null as welded;
select is(pg_temp.error_of('foreman', format('select pipetrak_api.edit_welder(component_id => %s, reason => '''', stencil => ''K-14'')', :weld_2)),
    'PT422 reason_required', 'editing the welder needs a reason');
select pg_temp.act_as(pg_temp.uid('foreman'));
select is(pipetrak_api.edit_welder(component_id => :weld_2, reason => 'wrong stencil on the sheet', stencil => 'k-14', date_welded => current_date - 4) ->> 'date_welded',
    (current_date - 4)::text, 'a foreman changes the welder and date with a reason');
select is((select w.stencil from pipetrak.field_welds f join pipetrak.welders w on w.id = f.welder_id where f.component_id = :weld_2), 'K-14',
    'the weld has the new welder (created unverified)');
select ok((select percent_complete > 0 from pipetrak_api.components where id = :weld_2), 'and keeps its milestones');
-- Lowering Weld Complete by hand is un-welding too.
select is(pg_temp.error_of('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Weld Complete'', value => 0)', :weld_a)),
    'PT422 reason_required', 'lowering Weld Complete needs a note saying why');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.update_milestone(component_id => %s, milestone => ''Weld Complete'', value => 0, note => ''cut out'')', :weld_a)),
    'PT409 weld_has_nde', 'and is refused while the weld has an NDE result');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.clear_welder(component_id => %s, reason => ''not welded after all'')', :weld_a)),
    'PT409 weld_has_nde', 'un-welding is refused while the weld has an NDE result');
select pg_temp.act_as(pg_temp.uid('foreman'));
select is((pipetrak_api.clear_welder(component_id => :weld_2, reason => 'joint cut out') ->> 'component_id')::bigint, :weld_2::bigint,
    'a weld without NDE is un-welded with a reason');
select ok((select welder_id is null and date_welded is null from pipetrak.field_welds where component_id = :weld_2),
    'its welder and date are cleared');
select is((select c.milestone_values[array_position(t.names, 'Weld Complete')] from pipetrak.components c
           join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type where c.id = :weld_2),
    0::numeric, 'and Weld Complete is back to 0');
select is((select array_agg(action order by id) from pipetrak_api.weld_events where component_id = :weld_2),
    array['welder_edited', 'welder_cleared'], 'both changes are in the weld''s history');

select is(pg_temp.error_of('owner', format('select pipetrak_api.move_weld(component_id => %s, drawing_id => %s)', :weld_a, :drawing_2)),
    'PT409 weld_already_welded', 'a welded weld does not move');
select is(pg_temp.error_of('owner', format('select pipetrak_api.move_weld(component_id => %s, drawing_id => %s)', :weld_3, :drawing_2)),
    'PT409 duplicate_component', 'nor onto a drawing that has a weld of its number');
select is(pg_temp.error_of('owner', format('select pipetrak_api.move_weld(component_id => %s, drawing_id => %s)', :weld_3, :drawing_b)),
    'PT404 drawing_not_found', 'nor onto another organization''s drawing');
select is(pg_temp.matrix(format('select pipetrak_api.move_weld(component_id => %s, drawing_id => %s, reason => ''by %%1$s'')', :weld_2, :drawing_2)),
    array['ok', 'PT409', 'PT409', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'move_weld: owner, admin, project manager (once on P-200, it can''t move there again)');
select is(pg_temp.error_of('owner', format('select pipetrak_api.retire_weld(component_id => %s, reason => ''dup'')', :weld_3)),
    'PT422 reason_required', 'retiring a weld needs a reason of 10 characters');
select is(pg_temp.matrix(format('select pipetrak_api.retire_weld(component_id => %s, reason => ''duplicate of W-3 on P-200'')', :weld_3)),
    array['ok', 'PT409', 'PT409', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'retire_weld: owner, admin, project manager (once retired, it takes no more changes)');
select is(pg_temp.matrix(format('select pipetrak_api.edit_welder(component_id => %s, reason => ''by %%1$s'', date_welded => current_date - 5) ->> ''component_id''', :weld_a)),
    array[:'weld_a', :'weld_a', :'weld_a', :'weld_a', :'weld_a', '42501', '42501', 'PT404', '42501'],
    'edit_welder: foreman and up, QC too');

-- ---- unplanned welds and repairs ----
select is(pg_temp.error_of('foreman', format('select pipetrak_api.create_unplanned_weld(project_id => %s, drawing_id => %s, weld_number => ''U-1'', weld_type => ''BW'', size => ''2'', spec => ''A1'', note => '''')', :project_a, :drawing_a)),
    'PT422 reason_required', 'an unplanned weld needs a note');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.create_unplanned_weld(project_id => %s, drawing_id => %s, weld_number => ''U-1'', weld_type => ''ZZ'', size => ''2'', spec => ''A1'', note => ''tie-in added'')', :project_a, :drawing_a)),
    'PT400 invalid_argument', 'and a weld type');
select is(pg_temp.matrix(format('select pipetrak_api.create_unplanned_weld(project_id => %s, drawing_id => %s, weld_number => ''U-%%1$s'', weld_type => ''BW'', size => ''2'', spec => ''A1'', note => ''tie-in added'') > 0', :project_a, :drawing_a)),
    array['true', 'true', 'true', 'true', 'true', '42501', '42501', 'PT404', '42501'],
    'create_unplanned_weld: foreman and up, QC too');
select is((select (f.unplanned, f.xray_percent, f.weld_type, c.size) from pipetrak.components c join pipetrak.field_welds f on f.component_id = c.id
           where c.project_id = :project_a and c.tag = 'U-FOREMAN')::text,
    '(t,5,BW,2)', 'it is flagged unplanned, at 5 % unless given');
select is(pg_temp.error_of('foreman', format('select pipetrak_api.create_unplanned_weld(project_id => %s, drawing_id => %s, weld_number => ''u-foreman'', weld_type => ''BW'', size => ''2'', spec => ''A1'', note => ''again'')', :project_a, :drawing_a)),
    'PT409 duplicate_component', 'a number the drawing already has is refused');

select (select id from pipetrak.components where project_id = :project_a and tag = 'U-QC_INSPECTOR') as weld_r \gset
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.create_repair(component_id => %s)', :weld_r)),
    'PT409 weld_not_rejected', 'only a rejected weld is repaired');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.assign_welder(component_id => :weld_r, stencil => 'K-12', date_welded => current_date - 2) is not null as welded;
select pipetrak_api.record_nde(component_id => :weld_r, method => 'RT', result => 'FAIL') ->> 'status' as rejected;
select is(pg_temp.matrix(format('select pipetrak_api.create_repair(component_id => %s, note => ''by %%1$s'') ->> ''weld_number''', :weld_r)),
    array['U-QC_INSPECTOR.1', 'PT409', 'PT409', 'PT409', 'PT409', '42501', '42501', 'PT404', '42501'],
    'create_repair: foreman and up; once repaired, the weld takes no second repair (weld_has_repair)');
select (select id from pipetrak.components where project_id = :project_a and tag = 'U-QC_INSPECTOR.1') as repair_1 \gset
select ok((select retired_at is not null from pipetrak.components where id = :weld_r)
          and (select retired_at is null and percent_complete > 0 from pipetrak_api.components where id = :repair_1)
          and (select repair_of from pipetrak.field_welds where component_id = :repair_1) = :weld_r,
    'the repair is live with Fit-up done and names the weld it repairs; the rejected weld left the rollups');
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.record_nde(component_id => %s, method => ''RT'', result => ''PASS'', reason => ''re-read'')', :weld_r)),
    'PT409 weld_has_repair', 'the FAIL of a repaired weld can''t be superseded');
select is(pg_temp.error_of('owner', format('select pipetrak_api.retire_weld(component_id => %s, reason => ''no longer needed at all'')', :weld_r)),
    'PT409 weld_has_repair', 'nor the repaired weld retired');
select is((select sum(p.component_count)::int from pipetrak.progress_parts p where p.drawing_id = :drawing_a and p.component_type = 'field_weld'),
    (select count(*)::int from pipetrak.components c where c.drawing_id = :drawing_a and c.component_type = 'field_weld' and c.retired_at is null),
    'the rollups count the repaired joint once');

-- A chain of repairs: each repair of a repair numbers on from the original; the 11th is refused.
create function pg_temp.reject_and_repair(p_weld bigint) returns bigint language plpgsql as $$
begin
    perform pg_temp.act_as(pg_temp.uid('qc_inspector'));
    perform pipetrak_api.assign_welder(component_id => p_weld, stencil => 'K-12', date_welded => current_date - 1);
    perform pipetrak_api.record_nde(component_id => p_weld, method => 'RT', result => 'FAIL');
    return (pipetrak_api.create_repair(component_id => p_weld) ->> 'repair_id')::bigint;
end $$;
grant execute on all functions in schema pg_temp to public;
select pg_temp.reject_and_repair(:repair_1) as repair_2 \gset
select is((select tag from pipetrak.components where id = :repair_2), 'U-QC_INSPECTOR.2', 'the repair of .1 is .2');
select pg_temp.reject_and_repair(pg_temp.reject_and_repair(pg_temp.reject_and_repair(pg_temp.reject_and_repair(
       pg_temp.reject_and_repair(pg_temp.reject_and_repair(pg_temp.reject_and_repair(pg_temp.reject_and_repair(:repair_2)))))))) as repair_10 \gset
select is((select tag from pipetrak.components where id = :repair_10), 'U-QC_INSPECTOR.10', 'ten repairs number .1 to .10');
select is(pg_temp.error_of('qc_inspector', format('select pg_temp.reject_and_repair(%s)', :repair_10)),
    'PT409 repair_limit', 'the 11th repair is refused: engineering review required');
select is((select count(*)::int from pipetrak.components where project_id = :project_a and tag like 'U-QC_INSPECTOR%' and retired_at is null), 1,
    'of the whole chain, one weld counts: the last repair');

-- ---- the QC queue ----
select pg_temp.act_as(pg_temp.uid('owner'));
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld', tag => 'Q-1') -> 'created' ->> 0)::bigint as weld_q \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_a, component_type => 'field_weld', tag => 'Q-2') -> 'created' ->> 0)::bigint as weld_q2 \gset
select pg_temp.act_as(pg_temp.uid('foreman'));
select pipetrak_api.assign_welder(component_id => :weld_q, stencil => 'K-12', date_welded => current_date - 1) is not null as welded;
select pipetrak_api.assign_welder(component_id => :weld_q2, stencil => 'K-12', date_welded => current_date - 1) is not null as welded;
select (select review_item_id from pipetrak_api.qc_queue where component_id = :weld_q and kind = 'weld_completed') as item_q \gset
select (select review_item_id from pipetrak_api.qc_queue where component_id = :weld_q2 and kind = 'weld_completed') as item_q2 \gset
select is((select drawing_no || ' ' || tag || ' ' || welder || ' ' || weld_status from pipetrak_api.qc_queue where review_item_id = :item_q),
    'P-100 01of02 Q-1 K-12 active', 'the queue shows the joint: drawing, weld, welder, status');
-- The oldest open item rewritten (its row now lies after the others): the queue still starts with it.
select set_config('role', 'postgres', true);
update pipetrak.review_items set details = details || '{"touched": true}'
where id = (select min(id) from pipetrak.review_items where project_id = :project_a and resolved_at is null);
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select is(array(select review_item_id from pipetrak_api.qc_queue where project_id = :project_a limit 3),
          array(select id from pipetrak.review_items where project_id = :project_a and resolved_at is null order by id limit 3),
          'the QC queue comes oldest first without the client sorting');
select pg_temp.act_as(pg_temp.uid('foreman'));
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.dismiss_review_item(review_item_id => %s, note => '''')', :item_q)),
    'PT422 reason_required', 'dismissing needs a note');
select is(pg_temp.matrix(format('select pipetrak_api.dismiss_review_item(review_item_id => %s, note => ''by %%1$s'')', :item_q)),
    array['ok', 'ok', 'ok', '42501', 'ok', '42501', '42501', 'PT404', '42501'],
    'dismiss_review_item: owner, admin, project manager, QC; the outsider can''t find the item');
select is((select status || ': ' || resolution_note from pipetrak_api.review_items where id = :item_q), 'dismissed: by owner',
    'the first dismissal stands, with its note');
select ok(not exists (select from pipetrak_api.qc_queue where review_item_id = :item_q), 'and the item leaves the queue');
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.retire_weld(component_id => :weld_q2, reason => 'duplicate of weld Q-1') is null as retired;
select is((select status || ': ' || resolution_note from pipetrak_api.review_items where id = :item_q2), 'resolved: weld retired',
    'retiring a weld resolves its items');
select is((select array_agg(distinct status order by status) from pipetrak_api.review_items where project_id = :project_a and resolved_at is null),
    array['open'], 'every unresolved item is open, and only those');

-- ---- weld reports on a hand-built set ----
-- Area "Unit R", drawing R-1: R1 passes RT, R2 fails and is repaired as R2.1, R3 is welded without
-- NDE, R4 is not welded. Welders W-R1 (R1, R2) and W-R2 (R3), all welded three days ago,
-- examined yesterday.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_area(project_id => :project_a, name => 'Unit R') as area_r \gset
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'R-1', area_id => :area_r) as drawing_r \gset
select (pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_r, component_type => 'field_weld', tag => t) -> 'created' ->> 0)::bigint
from unnest(array['R1', 'R2', 'R3', 'R4']) t;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.assign_welder(component_id => c.id, stencil => case when c.tag = 'R3' then 'W-R2' else 'W-R1' end, date_welded => current_date - 3)
from pipetrak.components c where c.drawing_id = :drawing_r and c.tag in ('R1', 'R2', 'R3');
select pipetrak_api.record_nde(component_id => (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R1'), method => 'RT', result => 'PASS', examined_on => current_date - 1);
select pipetrak_api.record_nde(component_id => (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R2'), method => 'RT', result => 'FAIL', examined_on => current_date - 1);
select pipetrak_api.create_repair(component_id => (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R2'));
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.restore_components(component_ids => array[%s], reason => ''retired by mistake'')',
                                                    (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R2'))),
    'PT409 weld_has_repair', 'a repaired weld is not restored beside its repair: the joint counts once');
select is((select to_jsonb(p) - 'group_id' from pipetrak_api.weld_progress(project_id => :project_a, group_by => 'area') p where p.group_id = :area_r),
    '{"group_name": "Unit R", "total": 4, "fitted_up": 3, "welded": 2, "accepted": 1, "rejected": 1, "nde_required": 1,
      "nde_pass": 1, "nde_fail": 1, "nde_pending": 0, "pass_rate": 0.5000, "repairs": 1, "repair_rate": 0.5000,
      "first_pass_accepted": 1, "mean_days_to_nde": 2.0}'::jsonb,
    'weld progress by area: the joint of R2 counts once (as R2.1, which must pass the RT that failed R2), its FAIL still in the quality figures; welded welds are fitted up');
select is((select jsonb_agg(jsonb_build_array(welder, welded, examined, rejects, reject_rate, examined_percent) order by welder)
           from pipetrak_api.welder_summary(project_id => :project_a, date_from => current_date - 7, date_to => current_date) s
           where welder in ('W-R1', 'W-R2')),
    '[["W-R1", 2, 2, 1, 0.5000, 100.0000], ["W-R2", 1, 0, 0, null, 0.0000]]'::jsonb,
    'welder summary: welded, examined by RT, rejects, reject rate and examined % per welder');
select is((select count(*)::int from pipetrak_api.welder_summary(project_id => :project_a, date_from => current_date - 1, date_to => current_date) s
           where welder in ('W-R1', 'W-R2')), 0, 'the date window counts welds welded in it only');
select is((select jsonb_agg(weld_number || ' ' || coalesce(welder, '-') || ' ' || status || ' ' || coalesce(current_nde ->> 'RT', '-')
                            || case when retired_at is null then '' else ' retired' end order by weld_number)
           from pipetrak_api.weld_log where drawing_id = :drawing_r),
    '["R1 W-R1 accepted PASS", "R2 W-R1 rejected FAIL retired", "R2.1 - active -", "R3 W-R2 active -", "R4 - active -"]'::jsonb,
    'the weld log: one row per weld with welder, status and current NDE');
select is((select array_agg(weld_number order by weld_number) from pipetrak_api.weld_log where search_text like '%r-1%w-r2%'),
    array['R3'], 'search_text finds a weld by drawing and stencil');
-- weld_log_page is the weld log a page at a time: for each filter, its pages laid end to end are
-- the view's rows under the same filter, in weld number order (pages of 2, so keyset paging runs).
create function pg_temp.paged(p_project bigint, p_filters text, p_size integer) returns text[] language plpgsql as $f$
declare
    v_rows text[] := '{}';
    v_page text[];
    v_last text[];
begin
    loop
        execute format('select array_agg(weld_number || %L || component_id order by weld_number, component_id)
                        from pipetrak_api.weld_log_page(project_id => %s%s, page_size => %s, after_weld_number => %L, after_component_id => %L)',
                       '|', p_project, p_filters, p_size, v_last[1], v_last[2]) into v_page;
        exit when v_page is null;
        v_rows := v_rows || v_page;
        exit when cardinality(v_page) < p_size;
        v_last := string_to_array(v_page[cardinality(v_page)], '|');
    end loop;
    return v_rows;
end $f$;
create function pg_temp.viewed(p_project bigint, p_where text) returns text[] language plpgsql as $f$
declare v_rows text[];
begin
    execute format('select coalesce(array_agg(weld_number || %L || component_id order by weld_number, component_id), ''{}'')
                    from pipetrak_api.weld_log where project_id = %s and %s', '|', p_project, p_where) into v_rows;
    return v_rows;
end $f$;
select pg_temp.act_as(pg_temp.uid('viewer'));
select is(pg_temp.paged(:project_a, f.filters, 2), pg_temp.viewed(:project_a, f.condition),
          format('weld_log_page(%s) pages through the weld log rows %s', f.filters, f.condition))
from (values (', drawing_id => ' || :drawing_r, format('drawing_id = %s and retired_at is null', :drawing_r)),
             (', welder => ''W-R1''', 'welder = ''W-R1'' and retired_at is null'),
             (', status => ''active''', 'status = ''active'' and retired_at is null'),
             (', search => ''R-1 w''', 'search_text like ''%r-1 w%'' and retired_at is null'),
             (', test_package_id => ' || :package_a, format('test_package_id = %s and retired_at is null', :package_a)),
             ('', 'retired_at is null'),
             (', retired => true', 'true'),
             (', drawing_id => ' || :drawing_r || ', retired => true, search => ''R2''', format('drawing_id = %s and search_text like ''%%r2%%''', :drawing_r)))
     as f(filters, condition);
select is(pg_temp.paged(:project_a, ', search => ''%''', 50), '{}'::text[],
          'a search for % looks for the character, not for anything');
select is(pg_temp.matrix(format('select count(*) >= 0 from pipetrak_api.weld_log_page(project_id => %s)', :project_a)),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'],
    'weld_log_page: every member; the outsider can''t find the project; anon is refused');
select is(pg_temp.error_of('viewer', format('select count(*) from pipetrak_api.weld_log_page(project_id => %s, page_size => 501)', :project_a)),
          'PT400 invalid_argument', 'a page holds at most 500 rows');
select is(pg_temp.error_of('project_manager', format('select pipetrak_api.retire_component(component_id => %s)', :weld_a))
          || ' ' || (select (retired_at is null)::text from pipetrak.components where id = :weld_a),
          'PT422 reason_required true', 'retire_component, which takes no reason, refuses a weld and leaves it live (retire_weld takes one)');
select is(pg_temp.matrix(format('select count(*) > 0 from pipetrak_api.weld_progress(project_id => %s, group_by => ''welder'')', :project_a)),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'],
    'weld_progress: every member; the outsider can''t find the project; anon is refused');
select is(pg_temp.matrix(format('select count(*) > 0 from pipetrak_api.welder_summary(project_id => %s)', :project_a)),
    array['true', 'true', 'true', 'true', 'true', 'true', 'true', 'PT404', '42501'],
    'welder_summary: the same');
select is(pg_temp.error_of('viewer', format('select pipetrak_api.weld_progress(project_id => %s, group_by => ''drawing'')', :project_a)),
    'PT400 invalid_argument', 'weld progress groups by area, system, test package or welder');

-- ---- x-ray sampling and progressive examination (§7), written by hand ----
-- Welder S-1: 40 BW welds at 5 % on drawing S-1 → 2 examinations required. One examined and
-- rejected → 2 tracers; one tracer fails → 4 more; one of those fails → every weld of the lot.
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_drawing(project_id => :project_a, drawing_no => 'S-1') as drawing_s \gset
select count(pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_s, component_type => 'field_weld', tag => 'S1-' || n))
from generate_series(1, 40) n;
select count(pipetrak_api.create_component(project_id => :project_a, drawing_id => :drawing_s, component_type => 'field_weld', tag => 'S2-' || n))
from generate_series(1, 40) n;
reset role;
update pipetrak.field_welds f set weld_type = 'BW', xray_percent = 5
from pipetrak.components c where c.id = f.component_id and c.drawing_id = :drawing_s;
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select count(pipetrak_api.assign_welder(component_id => c.id, stencil => case when c.tag like 'S1-%' then 'S-1' else 'S-2' end,
                                        date_welded => current_date - 2))
from pipetrak.components c where c.drawing_id = :drawing_s;
create function pg_temp.lot(p_welder text) returns jsonb language sql as $$
    select to_jsonb(l) - 'project_id' - 'welder_id' - 'called_for' || jsonb_build_object('called', cardinality(l.called_for))
    from pipetrak_api.sampling_lots l where l.welder = p_welder
$$;
create function pg_temp.weld(p_tag text) returns bigint language sql as $$
    select id from pipetrak.components where tag = p_tag and retired_at is null
$$;
create function pg_temp.called(p_stage integer, p_welder text) returns bigint[] language sql as $$
    select array_agg(e.component_id order by e.component_id) from pipetrak.examination_calls e
    join pipetrak.field_welds f on f.component_id = e.component_id join pipetrak.welders w on w.id = f.welder_id
    where e.stage = p_stage and w.stencil = p_welder
$$;
grant execute on all functions in schema pg_temp to public;
select is(pg_temp.lot('S-1'),
    '{"welder": "S-1", "weld_type": "BW", "xray_percent": 5, "welded": 40, "examined": 0, "required": 2, "shortfall": 2,
      "stage": 0, "state": "sampling", "called": 0, "repairs_awaiting_reexamination": 0}'::jsonb,
    'a lot of 40 welds at 5 % needs 2 examinations');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => pg_temp.weld('S1-7'), method => 'RT', result => 'FAIL') ->> 'status' as rejected;
select is(pg_temp.lot('S-1') - 'welder' - 'weld_type' - 'xray_percent',
    '{"welded": 40, "examined": 1, "required": 2, "shortfall": 1, "stage": 1, "state": "progressive", "called": 2,
      "repairs_awaiting_reexamination": 0}'::jsonb,
    'a reject calls two tracers: stage 1');
select is((select jsonb_array_length(details -> 'welds') from pipetrak_api.review_items
           where component_id = pg_temp.weld('S1-7') and kind = 'examination_called' and status = 'open'), 2,
    'and opens a review item naming them');
select pg_temp.called(1, 'S-1') as tracers \gset
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (:'tracers'::bigint[])[1], method => 'RT', result => 'FAIL') ->> 'status' as tracer_failed;
select is(cardinality(pg_temp.called(2, 'S-1')), 2, 'one tracer fails: two more are called (two per failed tracer)');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (:'tracers'::bigint[])[2], method => 'RT', result => 'PASS') ->> 'status' as tracer_passed;
select is((select status from pipetrak_api.review_items where component_id = pg_temp.weld('S1-7') and kind = 'examination_called'),
    'resolved', 'once both tracers are examined, their call resolves itself');
select pipetrak_api.record_nde(component_id => (pg_temp.called(2, 'S-1'))[2], method => 'RT', result => 'FAIL') ->> 'status' as second_round_failed;
select is(pg_temp.lot('S-1') ->> 'state', 'full_examination', 'a failed second round calls for every weld of the lot');
select is((select count(*)::int from pipetrak.examination_calls e join pipetrak.field_welds f on f.component_id = e.component_id
           join pipetrak.welders w on w.id = f.welder_id where w.stencil = 'S-1'), 39,
    'every weld of the lot but the first reject is called');

-- Welder S-2: the same start, both tracers pass → accepted once the reject is repaired.
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => pg_temp.weld('S2-3'), method => 'RT', result => 'FAIL') ->> 'status' as rejected;
select pg_temp.called(1, 'S-2') as tracers_2 \gset
select is(pg_temp.error_of('qc_inspector', format('select pipetrak_api.repick_examination(component_id => %s, replacement_id => %s)',
                                                  (:'tracers_2'::bigint[])[1], pg_temp.weld('S1-1'))),
    'PT400 invalid_argument', 'QC''s pick must come from the same lot');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.repick_examination(component_id => (:'tracers_2'::bigint[])[1],
    replacement_id => (select min(c.id) from pipetrak.components c where c.tag like 'S2-%' and c.id <> all (:'tracers_2'::bigint[])
                       and c.id <> pg_temp.weld('S2-3'))) is null as repicked;
select is((select chosen_by from pipetrak.examination_calls e where e.component_id = (select min(c.id) from pipetrak.components c
           where c.tag like 'S2-%' and c.id <> all (:'tracers_2'::bigint[]) and c.id <> pg_temp.weld('S2-3'))), 'qc',
    'QC picks a weld of the lot instead of a random one');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select count(pipetrak_api.record_nde(component_id => e.component_id, method => 'RT', result => 'PASS'))
from pipetrak.examination_calls e join pipetrak.field_welds f on f.component_id = e.component_id
join pipetrak.welders w on w.id = f.welder_id where w.stencil = 'S-2';
select is(pg_temp.lot('S-2') ->> 'state', 'progressive', 'both tracers passed, but the reject is not repaired yet');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.create_repair(component_id => pg_temp.weld('S2-3')) ->> 'weld_number' as repaired;
select is(pg_temp.lot('S-2') - 'welder' - 'weld_type' - 'xray_percent',
    '{"welded": 40, "examined": 3, "required": 2, "shortfall": 0, "stage": 1, "state": "progressive", "called": 0,
      "repairs_awaiting_reexamination": 1}'::jsonb,
    'repaired but the repair not radiographed: the lot stays in progression, its repair awaiting re-examination');
select is((select nde_types from pipetrak_api.weld_log where weld_number = 'S2-3.1'), '{RT}'::text[],
    'the repair of a 5 % weld that failed RT must pass RT itself: it carries the duty');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.assign_welder(component_id => pg_temp.weld('S2-3.1'), stencil => 'S-2', date_welded => current_date - 1) is not null
    as repair_welded;
select pipetrak_api.record_nde(component_id => pg_temp.weld('S2-3.1'), method => 'VT', result => 'PASS') ->> 'status' as visual_only \gset
select is(:'visual_only'::text, 'active', 'a repair that passed only VT is not accepted: it still owes RT');
select is(pg_temp.lot('S-2') ->> 'state', 'progressive', 'nor is its lot');
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => pg_temp.weld('S2-3.1'), method => 'RT', result => 'PASS') ->> 'status' as repair_passed \gset
select is(:'repair_passed' || ' ' || (pg_temp.lot('S-2') - 'welder' - 'weld_type' - 'xray_percent')::text,
    'accepted ' || '{"welded": 41, "examined": 4, "required": 3, "shortfall": 0, "stage": 1, "state": "accepted", "called": 0,
                     "repairs_awaiting_reexamination": 0}'::jsonb::text,
    'the repair passed RT: accepted, and its lot is accepted');
select is(pg_temp.matrix(format('select pipetrak_api.repick_examination(component_id => %s, replacement_id => %s)',
                                (pg_temp.called(2, 'S-1'))[2], pg_temp.weld('S1-1'))),
    array['PT400', 'PT400', 'PT400', '42501', 'PT400', '42501', '42501', 'PT404', '42501'],
    'repick_examination: owner, admin, project manager, QC may (an examined weld is not swapped); others are refused');

-- Clearing a weld's only result leaves it with none.
select pg_temp.act_as(pg_temp.uid('qc_inspector'));
select pipetrak_api.record_nde(component_id => (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R3'),
                               method => 'VT', result => 'PASS') ->> 'status' as passed;
select pipetrak_api.clear_nde(component_id => (select id from pipetrak.components where drawing_id = :drawing_r and tag = 'R3'),
                              method => 'VT', reason => 'wrong joint') ->> 'status' as cleared \gset
select is(:'cleared' || ' ' ||
          (select coalesce(current_nde::text, 'none') from pipetrak_api.weld_log where drawing_id = :drawing_r and weld_number = 'R3'),
    'active none', 'clearing the only result leaves the weld active with no current result');

-- The tallies the weld reports read equal a recount from the welds after everything above
-- (repairs, moves, retirements, NDE superseded and cleared, welders edited and cleared).
reset role;
create function pg_temp.tally_rows() returns text language sql as $$
    select string_agg(r, E'\n' order by r) from (
        select t::text as r from pipetrak.weld_tallies t
        where (total, fitted_up, welded, accepted, nde_required, repairs, first_pass_accepted, rejected, nde_pass, nde_fail,
               nde_pending, examined_welds, days_to_nde, lot_welded, lot_examined, lot_open_rejects)
              <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        union all
        select d::text from pipetrak.weld_day_tallies d where (welded, examined, rejects) <> (0, 0, 0)) x
$$;
select pg_temp.tally_rows() as kept \gset
select ok(pipetrak.rebuild_weld_tallies() > 0 and pg_temp.tally_rows() = :'kept',
    'the weld tallies kept by the triggers equal a recount from the welds');

select * from finish();
rollback;
