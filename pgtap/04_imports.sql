-- Imports (spec §6): dry run, commit, idempotent re-import, remediation round trip, chunked
-- commit, and who may do what. Files are real ones from tests/data (read by psql) or built here.
begin;
\ir fixtures/actors.sql
select plan(59);

\set takeoff `base64 -w0 tests/data/quantity-instances.csv`
\set weld_log `base64 -w0 tests/data/field-weld-log-664.xlsx`
\set instances `base64 -w0 tests/data/instance-creation.csv`
\set legacy_log `base64 -w0 tests/fixtures/legacy-weld-log.xls`

-- What the project holds, to compare before and after.
create function pg_temp.holdings(p_project bigint) returns jsonb language sql as $$
    select jsonb_build_object(
        'components', (select count(*) from pipetrak.components where project_id = p_project and retired_at is null),
        'drawings', (select count(*) from pipetrak.drawings where project_id = p_project),
        'areas', (select count(*) from pipetrak.areas where project_id = p_project),
        'welders', (select count(*) from pipetrak.welders where project_id = p_project),
        'welds', (select count(*) from pipetrak.field_welds where project_id = p_project),
        'events', (select count(*) from pipetrak.milestone_events where project_id = p_project))
$$;
-- A CSV takeoff from text, uploaded by the current actor into project_a.
create function pg_temp.upload(p_project bigint, p_kind text, p_text text) returns bigint language sql as $$
    select pipetrak_api.import_upload(project_id => p_project, kind => p_kind, filename => 'test.csv',
                                      content => convert_to(p_text, 'UTF8'))
$$;

select pg_temp.act_as(pg_temp.uid('project_manager'));

-- ---- dry run, commit, re-import on the real takeoff ----
select pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'quantity-instances.csv',
                                  content => decode(:'takeoff', 'base64')) as takeoff_1 \gset
select pg_temp.holdings(:project_a) as before_validate \gset
select pipetrak_api.import_validate(:takeoff_1) as summary \gset
select is(pg_temp.holdings(:project_a), :'before_validate'::jsonb, 'a dry run writes nothing to the project');
select is((:'summary'::jsonb -> 'would' -> 'components' ->> 'create')::int, 15, 'the dry run promises 15 components (QTY 3+2+1+5+4)');
select is(:'summary'::jsonb ->> 'status', 'validated', 'the job is validated');
select pipetrak_api.import_commit(import_id => :takeoff_1) as result \gset
select is((:'result'::jsonb ->> 'components_created')::int, 15, 'the commit creates exactly what the dry run promised');
select is((pg_temp.holdings(:project_a) ->> 'components')::int - (:'before_validate'::jsonb ->> 'components')::int, 15,
    'and the project holds 15 more components');
select is((:'result'::jsonb ->> 'drawings_created')::int, (:'summary'::jsonb -> 'would' -> 'drawings' ->> 'create')::int,
    'drawings created on first sight, as promised');
select is((select array_agg(seq order by seq) from pipetrak.components where project_id = :project_a and tag = 'SUPPORT001'),
    array[1, 2, 3, 4, 5], 'QTY 5 explodes into seqs 1..5');
select ok((select bool_and(percent_complete = 0) from pipetrak_api.components where project_id = :project_a and tag = 'SUPPORT001')
    and (select component_count from pipetrak_api.project_progress where project_id = :project_a) >= 15,
    'new components start at 0 % and count in the project rollup');

select pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'again.csv',
                                  content => decode(:'takeoff', 'base64')) as takeoff_2 \gset
select pg_temp.holdings(:project_a) as before_reimport \gset
select is(pipetrak_api.import_validate(:takeoff_2) -> 'would' -> 'components',
    '{"create": 0, "update": 0, "unchanged": 15}'::jsonb, 'validating the same file again promises nothing new');
select pipetrak_api.import_commit(import_id => :takeoff_2) \gset
select is(pg_temp.holdings(:project_a), :'before_reimport'::jsonb, 're-importing the same file creates nothing');
select is(pipetrak_api.import_commit(import_id => :takeoff_2) ->> 'status', 'committed',
    'committing a committed job again (a retried request) returns its result');
select is(pg_temp.holdings(:project_a), :'before_reimport'::jsonb, 'and writes nothing');
select throws_ok(format('select pipetrak_api.import_validate(%s)', :takeoff_2), 'PT409', null,
    'a committed job can''t be validated again');

-- ---- a first import into a project without components ----
select pg_temp.act_as(pg_temp.uid('owner'));
select pipetrak_api.create_project(organization_id => :org_a, name => 'Empty', job_number => 'E-1') as project_e \gset
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.import_upload(project_id => :project_e, kind => 'takeoff', filename => 'quantity-instances.csv',
                                  content => decode(:'takeoff', 'base64')) as first_import \gset
select pipetrak_api.import_validate(:first_import) -> 'would' as first_would \gset
select is(:'first_would'::jsonb -> 'components', '{"create": 15, "update": 0, "unchanged": 0}'::jsonb,
    'into an empty project every component is promised as new');
select is(:'first_would'::jsonb -> 'drawings', :'summary'::jsonb -> 'would' -> 'drawings',
    'and the same drawings as into a project that had none of them');
select is(pipetrak_api.import_commit(import_id => :first_import) -> 'components_created', '15',
    'the commit creates exactly those');

-- ---- quantities up and down ----
select pg_temp.upload(:project_a, 'takeoff', E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nP-91010_1,Support,7,SUPPORT001,3\n') as more \gset
select pipetrak_api.import_validate(:more) \gset
select is((pipetrak_api.import_commit(import_id => :more) ->> 'components_created')::int, 2, 'a higher QTY adds only the missing seqs');
select pg_temp.upload(:project_a, 'takeoff', E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nP-91010_1,Support,4,SUPPORT001,3\n') as fewer \gset
select pipetrak_api.import_validate(:fewer) \gset
select is((select code || ' ' || severity from pipetrak_api.import_issues where import_id = :fewer and code = 'quantity_below_existing'),
    'quantity_below_existing warning', 'a lower QTY is a warning naming the surplus components');
select is((pipetrak_api.import_commit(import_id => :fewer) ->> 'components_created')::int, 0, 'and deletes nothing');

-- ---- pipe footage adds up; a later file's footage updates the aggregate ----
select pg_temp.upload(:project_a, 'takeoff', E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nISO-PIPE-0007,Pipe,12.5,PIPE-CS,2\nISO-PIPE-0007,Pipe,7.25,PIPE-CS,2\nISO-PIPE-0007,Instrument,1,FT-700,1\nISO-PIPE-0007,Instrument,1,FT-700,1\n') as pipe_1 \gset
select is(pipetrak_api.import_validate(:pipe_1) -> 'would' -> 'components' -> 'create', '2', 'two rows of one pipe and of one instrument promise one component each');
select is(pipetrak_api.import_commit(import_id => :pipe_1) -> 'components_created', '2', 'and the commit creates one of each');
select is((select quantity from pipetrak.components where project_id = :project_a and tag = 'PIPE-CS'), 19.75::numeric,
    'the pipe aggregate holds the footage of both rows');
select pg_temp.upload(:project_a, 'takeoff', E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE\nISO-PIPE-0007,Pipe,30,PIPE-CS,2\nISO-PIPE-0007,Instrument,1,FT-700,1\n') as pipe_2 \gset
select is(pipetrak_api.import_validate(:pipe_2) -> 'would' -> 'components', '{"create": 0, "update": 1, "unchanged": 1}'::jsonb,
    'new footage for an existing aggregate is promised as an update');
select pipetrak_api.import_commit(import_id => :pipe_2) as pipe_result \gset
select is((:'pipe_result'::jsonb - 'import_id' - 'chunks_done' - 'chunks_total' - 'status' - 'welds_written' - 'welders_created'
           - 'references_created' - 'drawings_created')
          || jsonb_build_object('quantity', (select quantity from pipetrak.components where project_id = :project_a and tag = 'PIPE-CS')),
    '{"components_created": 0, "components_updated": 1, "quantity": 30}'::jsonb, 'and the commit updates it, creating nothing');

-- ---- rules across rows: repeated items number on, repeated ids are errors, repeated rows warn ----
select pipetrak_api.import_upload(project_id => :project_a, kind => 'takeoff', filename => 'instance-creation.csv',
                                  content => decode(:'instances', 'base64')) as instances \gset
select pipetrak_api.import_validate(:instances) as instances_summary \gset
select is((select array_agg(r.seq_from || '..' || r.seq_to order by r.line) from pipetrak.import_rows r
           where r.import_id = :instances and r.tag in ('VALVE001', 'GASKET001')),
    array['1..1', '2..2', '3..3', '1..1', '2..2'], 'rows of one valve or gasket number on: seqs 1, 2, 3');
select is((select array_agg(i.row || ':' || i.code order by i.row, i.code) from pipetrak_api.import_issues i
           where i.import_id = :instances and i.row > 1),
    array['3:identical_rows', '3:rows_merged', '4:identical_rows', '4:rows_merged', '6:identical_rows', '6:rows_merged',
          '8:duplicate_id', '8:identical_rows', '9:duplicate_id', '9:identical_rows', '10:duplicate_id', '10:identical_rows'],
    'a repeated spool id is an error on each repeat; repeated rows warn; merged rows are noted');
select is(jsonb_build_object('rows', :'instances_summary'::jsonb -> 'rows', 'issues', :'instances_summary'::jsonb -> 'issues',
                             'components', :'instances_summary'::jsonb -> 'would' -> 'components' -> 'create'),
    '{"rows": {"rows_read": 10, "valid": 7, "with_errors": 3, "skipped": 0, "errors": 3, "warnings": 7, "infos": 5},
      "issues": {"error": 3, "warning": 7, "info": 5}, "components": 7}'::jsonb,
    'the summary counts them (and the file''s notes): 3 valves, 2 gaskets, 1 spool, 1 fitting');
select is((pipetrak_api.import_commit(import_id => :instances, skip_invalid_rows => true) ->> 'components_created')::int, 7,
    'and the commit creates exactly those');
select pg_temp.upload(:project_a, 'takeoff', E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE,AREA\nP-400,Spool,1,SP-400,2,Area 400\nP-401,Spool,1,SP-400,2,Area 401\n') as dup_spool \gset
select is((pipetrak_api.import_validate(:dup_spool) -> 'would') - 'welders' - 'systems' - 'test_packages',
    '{"components": {"create": 1, "update": 0, "unchanged": 0}, "drawings": {"create": 1, "unchanged": 0},
      "areas": {"create": 1, "unchanged": 0}}'::jsonb,
    'a drawing or area only a repeated (invalid) row names is not promised');
-- A weld is its drawing and number (spec §4): W-1 again on ISO-9000-A is a repeat, W-1 on ISO-9000-B is
-- another weld. The project already holds a W-1 (on another drawing): each new W-1 gets a note.
select pg_temp.upload(:project_a, 'field_welds', E'WELD ID,DRAWING ID,WELD TYPE\nW-1,ISO-9000-A,BW\nW-2,ISO-9000-A,BW\nW-1,ISO-9000-A,SW\nW-1,ISO-9000-B,BW\n') as dup_weld \gset
select pipetrak_api.import_validate(:dup_weld) \gset
select is((select jsonb_agg(jsonb_build_object('row', i.row, 'code', i.code, 'column', i."column", 'value', i.value) order by i.row)
           from pipetrak_api.import_issues i where i.import_id = :dup_weld),
    '[{"row": 2, "code": "weld_number_elsewhere", "column": "WELD ID", "value": "W-1"},
      {"row": 4, "code": "duplicate_id", "column": "WELD ID", "value": "W-1"},
      {"row": 5, "code": "weld_number_elsewhere", "column": "WELD ID", "value": "W-1"}]'::jsonb,
    'a weld number repeated on one drawing is an error naming its column and value; on another drawing a note');
select is((select status from pipetrak.import_rows where import_id = :dup_weld and line = 4), 'invalid', 'and its row is invalid');
select is((pipetrak_api.import_commit(import_id => :dup_weld, skip_invalid_rows => true) ->> 'components_created')::int, 3,
    'the commit makes W-1 and W-2 on ISO-9000-A and another W-1 on ISO-9000-B');
select is((select array_agg(d.drawing_no order by d.drawing_no) from pipetrak.components c
           join pipetrak.drawings d on d.id = c.drawing_id
           where c.project_id = :project_a and c.component_type = 'field_weld' and c.tag = 'W-1' and d.drawing_no like 'ISO-9000-_'),
    array['ISO-9000-A', 'ISO-9000-B'], 'two welds numbered W-1, one per drawing');
-- The same rule through the API: a weld number is free on another drawing, taken on its own.
select is(jsonb_array_length(pipetrak_api.create_component(project_id => :project_a,
              drawing_id => (select min(d.id) from pipetrak.drawings d where d.project_id = :project_a and d.retired_at is null
                             and not exists (select from pipetrak.components c where c.drawing_id = d.id and c.tag = 'W-1')),
              component_type => 'field_weld', tag => 'W-1') -> 'created'), 1,
    'create_component makes weld W-1 on a drawing without one');
select throws_ok(format('select pipetrak_api.create_component(project_id => %s, drawing_id => %s, component_type => %L, tag => %L)',
                        :project_a, (select id from pipetrak.drawings where project_id = :project_a and drawing_no = 'ISO-9000-A'),
                        'field_weld', 'w-1'),
    'PT409', null, 'and refuses a second W-1 on a drawing that has one (duplicate_component)');
select throws_ok(format('select pipetrak.import_resolve_repeats(%s, ''field_welds'')', :dup_weld), '42501', null,
    'an importer can''t run the rules across rows by hand: only import_validate does');

-- ---- errors block the commit; the remediation CSV round-trips ----
select pg_temp.upload(:project_a, 'takeoff',
    E'DRAWING,TYPE,QTY,CMDTY CODE,SIZE,COMMENTS\nP-300,Valve,1,V-300,2,ok\nP-300,Widget,2,W-300,2,"needs, a type"\nP-300,Gasket,1,G-300,2,\n') as bad \gset
select pipetrak_api.import_validate(:bad) \gset
select is((select array_agg(row || ':' || code) from pipetrak_api.import_issues where import_id = :bad and severity = 'error'),
    array['3:unknown_component_type'], 'each issue names its row as Excel shows it and a stable code');
select throws_ok(format('select pipetrak_api.import_commit(import_id => %s)', :bad), 'PT422', null,
    'rows with errors block the commit');
select is((pipetrak_api.import_commit(import_id => :bad, skip_invalid_rows => true) ->> 'components_created')::int, 2,
    'skip_invalid_rows commits the valid rows');
select pipetrak_api.import_report_csv(:bad) as report \gset
select ok(:'report' like '%Widget%unknown_component_type%' and :'report' not like '%V-300%',
    'the remediation CSV holds the rows with issues and their codes');
select pg_temp.upload(:project_a, 'takeoff', replace(:'report', 'Widget', 'Valve')) as fixed \gset
select is((pipetrak_api.import_validate(:fixed) -> 'rows' ->> 'with_errors')::int, 0, 'the fixed remediation file validates clean');
select is((pipetrak_api.import_commit(import_id => :fixed) ->> 'components_created')::int, 2, 'and imports the rows that were missing');

-- ---- the real weld log; re-importing a weld updates it ----
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'field-weld-log-664.xlsx',
                                  content => decode(:'weld_log', 'base64')) as welds \gset
select pipetrak_api.import_validate(:welds) as weld_summary \gset
select is((:'weld_summary'::jsonb -> 'rows' ->> 'valid')::int, 664, 'the weld log validates 664 welds with no errors');
select is((pipetrak_api.import_commit(import_id => :welds) ->> 'welds_written')::int, 664, 'and commits 664 welds with their facts');
select pg_temp.upload(:project_a, 'field_welds', E'WELD ID,DRAWING ID,WELD TYPE,WELDER STENCIL,DATE WELDED\n1,P-26B07,BW,K-12,2025-01-15\n') as weld_fix \gset
select is(pipetrak_api.import_validate(:weld_fix) -> 'would' -> 'components' ->> 'update', '1', 'a changed weld is promised as an update');
select pipetrak_api.import_commit(import_id => :weld_fix) \gset
select is((select w.weld_type || ' ' || wd.stencil || ' ' || wd.verified from pipetrak.field_welds w
           join pipetrak.components c on c.id = w.component_id join pipetrak.welders wd on wd.id = w.welder_id
           where c.project_id = :project_a and c.tag = '1'), 'BW K-12 false',
    're-importing a weld updates it; an unknown stencil creates an unverified welder');

-- ---- chunks: one call per chunk resumes where the last stopped ----
select pg_temp.upload(:project_a, 'takeoff', 'DRAWING,TYPE,QTY,CMDTY CODE,SIZE' || E'\n' ||
    (select string_agg(format('BIG-%s,Support,1,S-%s,2', i % 50, i), E'\n') from generate_series(1, 12000) i)) as big \gset
select pipetrak_api.import_validate(:big) \gset
select is(pipetrak_api.import_commit(import_id => :big, max_chunks => 1) - 'import_id' - 'welds_written' - 'welders_created'
    - 'references_created' - 'components_updated',
    '{"status": "committing", "chunks_done": 1, "chunks_total": 3, "components_created": 5000, "drawings_created": 50}'::jsonb,
    'max_chunks => 1 commits one chunk of 5,000 rows');
select is((pipetrak_api.import_commit(import_id => :big) ->> 'components_created')::int, 12000, 'the next call finishes the job');

-- ---- who may import, and who sees a job ----
select is(pg_temp.matrix(format('select pg_temp.upload(%s, ''takeoff'', ''DRAWING,TYPE,CMDTY CODE%sP-1,Valve,V-1'') is not null', :project_a, E'\n')),
    array['true', 'true', 'true', '42501', '42501', '42501', '42501', 'PT404', '42501'],
    'only owner, admin and project manager upload; an outsider does not even find the project; anon is refused');
select is(pg_temp.matrix(format('select count(*) from pipetrak_api.imports where id = %s', :takeoff_1)),
    array['1', '1', '1', '0', '0', '0', '0', '0', '42501'], 'jobs are visible to importers of the project only');
select is(pg_temp.matrix(format('select pipetrak_api.import_report_csv(%s) is not null', :bad)),
    array['true', 'true', 'true', 'PT404', 'PT404', 'PT404', 'PT404', 'PT404', '42501'],
    'nobody else reads a job''s report (not found, like any row they can''t see)');

-- ---- housekeeping a DBA relies on ----
reset role;
delete from pipetrak.import_jobs where id = :big;
select is((select count(*) from pipetrak.import_rows where import_id = :big), 0::bigint,
    'deleting a job deletes its staged rows');

-- ---- a weld log marks its welds welded and records their NDE ----
-- The legacy log (tests/fixtures): welds 1, 2, 3 and 4A have a welder and a date (in weeks long
-- locked), 1 and 2 an RT result at 5 % (ACC, REJ), 4A a PASS at 100 %. Imported by a project
-- manager, whom a locked week would refuse for a milestone update by hand.
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'legacy.xls',
                                  content => decode(:'legacy_log', 'base64')) as legacy \gset
select pipetrak_api.import_validate(:legacy) is not null as validated;
reset role;
select count(*) filter (where stencil is not null and date_welded is not null) as log_welded,
       count(distinct stencil) as log_welders,
       count(*) filter (where nde_result is not null) as log_nde
from pipetrak.import_rows where import_id = :legacy and status = 'valid' \gset
select pg_temp.act_as(pg_temp.uid('project_manager'));
select pipetrak_api.import_commit(import_id => :legacy, skip_invalid_rows => true) as legacy_result \gset
select is(jsonb_build_array(:'legacy_result'::jsonb -> 'welds_welded', :'legacy_result'::jsonb -> 'nde_recorded'),
    jsonb_build_array(:log_welded, :log_nde), 'every welded row of the log is welded and every result recorded (counted over the file)');
select is((select count(*)::int from pipetrak.review_items r join pipetrak.components c on c.id = r.component_id
           join pipetrak.drawings d on d.id = c.drawing_id
           where r.project_id = :project_a and r.kind = 'weld_completed' and d.drawing_no in ('P-26B07 01of02', 'P-26B07 02of02', 'P-26B08')),
    :log_welded, 'one "weld completed" review item per welded weld');
select is((select count(distinct f.welder_id)::int from pipetrak.field_welds f join pipetrak.components c on c.id = f.component_id
           join pipetrak.drawings d on d.id = c.drawing_id
           where d.project_id = :project_a and d.drawing_no in ('P-26B07 01of02', 'P-26B07 02of02', 'P-26B08') and f.date_welded is not null),
    :log_welders, 'the welders are the log''s');
select is((select jsonb_object_agg(c.tag, f.status order by c.tag) from pipetrak.field_welds f join pipetrak.components c on c.id = f.component_id
           join pipetrak.drawings d on d.id = c.drawing_id
           where d.project_id = :project_a and d.drawing_no in ('P-26B07 01of02', 'P-26B07 02of02', 'P-26B08') and c.retired_at is null),
    '{"1": "accepted", "2": "rejected", "3": "active", "4A": "accepted", "6": "active"}'::jsonb,
    'the NDE results give the welds their status');
select is((select min(e.work_date) from pipetrak.milestone_events e join pipetrak.components c on c.id = e.component_id
           join pipetrak.drawings d on d.id = c.drawing_id
           where d.project_id = :project_a and d.drawing_no = 'P-26B07 01of02' and c.tag = '1' and e.milestone = 'Weld Complete'),
    '2025-03-04'::date, 'Weld Complete is dated the day welded, in a locked week');
select pg_temp.holdings(:project_a) as after_log \gset
select pipetrak_api.import_upload(project_id => :project_a, kind => 'field_welds', filename => 'legacy.xls',
                                  content => decode(:'legacy_log', 'base64')) as legacy_again \gset
select pipetrak_api.import_validate(:legacy_again) is not null as validated;
select is((pipetrak_api.import_commit(import_id => :legacy_again, skip_invalid_rows => true) - 'import_id' - 'chunks_done' - 'chunks_total' - 'status')
          -> 'welds_welded', '0'::jsonb, 'importing the log again welds nothing more');
select is(pg_temp.holdings(:project_a), :'after_log'::jsonb, 'and changes nothing in the project');

select * from finish();
rollback;
