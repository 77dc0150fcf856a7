-- What a DBA operates the extension with: the settings registry (src/pg/settings.rs) — only a
-- superuser changes a setting, a limit can be lowered and then holds for every request — and the
-- refusal counters pipetrak.metrics() reports, which count a refusal although its transaction
-- rolls back.
begin;
\ir fixtures/actors.sql
select plan(14);

select set_eq($$select name from pipetrak.settings()$$,
              $$values ('pipetrak.change_events'), ('pipetrak.event_sender'), ('pipetrak.log_imports'),
                       ('pipetrak.log_refusals'), ('pipetrak.max_batch_items'), ('pipetrak.max_upload_mb')$$,
              'pipetrak.settings() lists every setting of the extension');
select is_empty($$select name from pipetrak.settings() where value is null or default_value is null or description = ''$$,
                'each setting has its value, its default and a description');
select results_eq($$select name, default_value, max_value from pipetrak.settings() where max_value is not null order by name$$,
                  $$values ('pipetrak.max_batch_items', '10000', 10000), ('pipetrak.max_upload_mb', '50', 50)$$,
                  'a limit defaults to its highest value: it can be lowered, never raised past what was measured');

select pg_temp.act_as(pg_temp.uid('owner'));
select throws_ok($$set pipetrak.max_batch_items = 10$$, '42501', null,
                 'a signed-in user with SQL access can''t change a limit for their session');
select throws_ok($$select pipetrak.count_error('project_not_found')$$, '42501', null,
                 'nor inflate a refusal counter');
reset role;

-- A DBA lowers the limits (here for this transaction; ALTER DATABASE … SET for good).
set local pipetrak.max_batch_items = 2;
set local pipetrak.max_upload_mb = 1;
select coalesce(pg_sequence_last_value('pipetrak.error_count_batch_too_large'), 0) as batches_refused \gset

select pg_temp.act_as(pg_temp.uid('foreman'));
select throws_like(
    format($$select pipetrak_api.update_milestones(updates => '[{"component_id": %s, "milestone": "Receive", "value": 100},
             {"component_id": %s, "milestone": "Receive", "value": 100}, {"component_id": %s, "milestone": "Install", "value": 100}]')$$,
           :valve_a, :valve_a, :valve_a),
    '%Too many items%', 'a lowered batch limit refuses a milestone batch over it');
select pg_temp.act_as(pg_temp.uid('project_manager'));
select throws_ok(format('select pipetrak_api.retire_components(component_ids => array[%s, %s, 0], reason => %L)', :valve_a, :weld_a, 'x'),
                 'PT413', null, 'and a component list over it');
create temp table refusal (detail jsonb);
grant all on refusal to public;
do $$
begin
    perform pipetrak_api.retire_components(component_ids => array[1, 2, 3], reason => 'x');
exception when others then
    declare v_detail text;
    begin
        get stacked diagnostics v_detail = pg_exception_detail;
        insert into refusal values (v_detail::jsonb);
    end;
end $$;
select is((select detail ->> 'limit' from refusal), '2', 'the refusal gives the lowered limit');
select throws_ok(format('select pipetrak_api.import_upload(project_id => %s, kind => %L, filename => %L, content => %L::bytea)',
                        :project_a, 'takeoff', 'big.csv', convert_to(repeat('x', 1024 * 1024 + 1), 'UTF8')),
                 'PT413', 'The file is larger than the upload limit', 'a lowered upload limit refuses a file over it');
select ok(pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'small.csv',
                                     content => convert_to(E'DRAWING,TYPE,TAG\nP-1,valve,V-9\n', 'UTF8')) is not null,
          'and takes a file under it');
reset role;

select is(pg_sequence_last_value('pipetrak.error_count_batch_too_large'), :batches_refused + 3::bigint,
          'every refusal is counted, although each rolled back');
select is((pipetrak.metrics() -> 'overall' -> 'refusals_by_code' ->> 'batch_too_large')::bigint, :batches_refused + 3::bigint,
          'metrics report refusals by error code');
select is((pipetrak.metrics() -> 'overall' ->> 'events_waiting')::bigint, (select count(*) from pipetrak.event_outbox),
          'metrics report the change events waiting for the sender');
select is_empty($$select code from pipetrak.error_codes
                  where to_regclass(pipetrak.error_counter(code)) is null$$,
                'every catalogued error has its refusal counter');

select * from finish();
rollback;
