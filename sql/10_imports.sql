-- Imports (spec §6): a job owns the uploaded file; validation (Rust, pipetrak.stage_import) stages
-- every row with its issues in import_rows, then SQL compares them with the project; commit
-- writes them in chunks of 5,000 rows, each chunk recorded on the job so a crash resumes.
--
-- Design notes (decisions where the spec was silent):
-- - Imports — the job. `import_upload` keeps the file in `import_jobs` (50 MB limit, type sniffed:
--   a zip holding `xl/workbook.xml` = .xlsx, a compound file holding a `Workbook` stream = .xls,
--   text = CSV, anything else — .ods, .docx, .xlsb, .doc, binary — `PT415`; an empty file
--   `empty_file`). A file that can't be read, or holds a header and no rows (`no_data_rows`),
--   leaves the job `failed` with its reason in the summary and no staged rows; committing it is
--   `import_failed` with that reason. `import_validate` (re-runnable until commit)
--   reads the file in Rust and streams every non-blank row, normalized and with its issues, into
--   `import_rows` in batches of 5,000 (that table *is* the per-row report), then compares with the
--   project in SQL. It writes nothing else. `import_issues` is a view over file- and row-level
--   issues; `import_report_csv` renders the remediation CSV in Rust, reading the original cells of
--   the few rows it reports again from the stored file (staging every row's cells cost more than
--   all the rest of staging).
-- - Imports — rules across rows are SQL. Repeated spool ids and weld numbers (an error on each
--   repeat), rows of one item adding up (per-seq quantities number on into one seq range; a pipe's
--   footage or an instrument's rows are one component) and rows repeated cell for cell (a warning)
--   are decided by `import_resolve_repeats`, window functions over the staged rows (which also give
--   every row of a pipe spread over several rows the pipe's total footage). The reader only flags
--   rows that *may* repeat an earlier one's cells, id or item, with a Bloom filter of fixed size (2
--   MB, 8 bits within one 64-byte block per key): it never misses a repeat, flags no new key among
--   the 200,000 keys of a 100,000-row file and about 1 in 10,000 of a million; a wrong flag costs a
--   little SQL time and changes no result. A file with no flag costs nothing more; otherwise only
--   rows sharing a key with a flagged row are read (a key no flagged row has is unique in the
--   file). The reader numbers every row as the first of its item and counts components that way;
--   the summary's counts and promised components are corrected by what SQL changed, and a drawing,
--   area, system or stencil that only a now-invalid row named is no longer promised. Row cells are
--   compared by a 64-bit hash of the cells as shown (a false "identical rows" warning needs a hash
--   collision within one file: ~3·10⁻¹⁰ at 100,000 rows).
-- - Imports — compared with the project. New drawings that look like existing ones (pg_trgm, GIN
--   index) get a `similar_drawing_exists` warning listing up to three; a per-seq item whose file
--   total is below what the project holds gets `quantity_below_existing` listing the surplus
--   component ids (nothing is deleted). The summary's `would` counts create/update/unchanged for
--   components (pipe footage changes and changed weld facts are updates), drawings, areas, systems,
--   test packages, welders. The reader reports what the valid rows name (the components they stand
--   for, area/system/package names, stencils) and SQL finds the distinct drawing keys of the staged
--   rows, so drawings, names and welders are looked up once per distinct value, and a file going
--   into a project without live components (the first import) needs no row-by-row comparison at
--   all: every component it names is new. Otherwise each planned component probes the identity
--   index.
-- - Imports — commit. Chunks of 5,000 rows in file order. Each chunk, in one transaction: areas /
--   systems / test packages by name (case-insensitive), drawings on first sight (taking their first
--   row's area/system/package), welders (unverified), components in one `insert … on conflict` on
--   the identity index (so redoing a chunk creates nothing twice; an existing pipe aggregate takes
--   the file's footage in the same statement — the sum of its rows; rows merged into an earlier
--   pipe or instrument row write nothing), weld facts upserted; then the job records the chunk and
--   a signed `NOTIFY` on the project's channel sends ids and counts (see Security). A row's own
--   area/system/package pins the component when it differs from its drawing's; existing drawings
--   are never re-assigned by an import (use `assign_drawing`). From SQL, `CALL
--   pipetrak_api.import_commit_chunked(id)` commits chunk by chunk; over HTTP `import_commit(id)`
--   does all chunks in one request or `max_chunks => 1` per request. A killed backend loses only
--   its chunk; the next call resumes. Committing a committed job returns its result (a retried
--   request is harmless).
-- - Imports — the remediation round trip. The CSV holds the rows with errors or warnings plus the
--   other rows of the same counted item or pipe, each with PIPETRAK ROW (its row in the original
--   file) and PIPETRAK REF (`<import id>:<row>`). The commit records, in `component_sources`, what
--   each reported row made (and a pipe's feet per row). A fixed row read back corrects what its
--   original row made (a warning row fixed from `2 SCH` to `2` changes that component's size; a
--   pipe's feet move with the row) instead of adding beside it; a row whose original made nothing
--   makes it, counted items on the next free seqs; and committing the original after its fixed
--   rows skips the rows they already brought in. Either order ends where importing the corrected
--   original would have, component by component. A PIPETRAK REF that names no import of the
--   project is ignored with `unknown_reference`. Similar drawings within one file (the same
--   letters and digits, `P-26B07` / `P26B07`) get `similar_drawing_in_file`.
-- - Imports — milestones. A takeoff marks none. A weld log is the field's record: a row with a
--   welder and a date welded makes its weld welded (Fit-up and Weld Complete at that work date,
--   audited, one review item — even in a locked week, never in the future), and an NDE result is
--   recorded through the NDE records (`import_mark_welds`); what is already so is left alone.
--   Existing components' descriptions/attributes are not overwritten by a re-import.
-- - Imports — who: owner, admin and project manager upload, validate, commit and see jobs, issues
--   and reports; everyone else gets `42501`, and a member of another organization `PT404` (jobs are
--   invisible to them).

-- An import job: uploaded → validated → committing → committed (or failed: the file can't be read).
create table pipetrak.import_jobs (
    id                bigserial,
    project_id        bigint not null references pipetrak.projects,
    kind              text not null check (kind in ('takeoff', 'field_welds', 'schedule', 'timesheet')),
    filename          text not null check (btrim(filename) <> '' and length(filename) <= 255),
    format            text not null check (format in ('csv', 'xlsx', 'xls')),
    content           bytea not null check (length(content) <= 50 * 1024 * 1024),
    status            text not null default 'uploaded'
                      check (status in ('uploaded', 'validated', 'committing', 'committed', 'failed')),
    -- What validation found: file facts, file-level issues, row counts, what a commit would do.
    summary           jsonb,
    skip_invalid_rows boolean,
    chunks_total      integer,
    chunks_done       integer not null default 0,
    -- What the commit wrote so far (summed over chunks).
    result            jsonb not null default '{}',
    created_by        uuid not null,
    created_at        timestamptz not null default now(),
    validated_at      timestamptz,
    committed_at      timestamptz,
    updated_at        timestamptz not null default now(),
    -- Staged rows are kept until then (see purge_staged_rows); null once removed or never staged.
    staged_until      timestamptz,
    check (chunks_total is null or chunks_done between 0 and chunks_total),
    primary key (id, project_id)
);
create index import_jobs_project_id_idx on pipetrak.import_jobs (project_id, id);
create index import_jobs_staged_until_idx on pipetrak.import_jobs (staged_until) where staged_until is not null;
-- Files are kept uncompressed, so validation can read one slice at a time without
-- decompressing from the start (xlsx is a zip already; a CSV costs its size).
alter table pipetrak.import_jobs alter column content set storage external;

-- Each row of a validated file, normalized, with its issues. `chunk` numbers rows in commit order,
-- 5,000 to a chunk. Only import_validate writes them, for a job it holds locked: no foreign key,
-- whose per-row check would cost more than staging the row.
create table pipetrak.import_rows (
    import_id      bigint not null,
    line           integer not null,
    chunk          integer not null,
    status         text not null check (status in ('valid', 'invalid', 'skipped')),
    drawing_no     text not null,
    drawing_key    text not null,
    component_type text,
    tag            text not null,
    size           text not null,
    quantity       numeric not null,
    seq_from       integer not null,
    seq_to         integer not null,
    area           text,
    system         text,
    test_package   text,
    description    text,
    spec           text,
    attributes     jsonb not null,
    weld_type      text,
    weld_size      text,
    schedule       text,
    base_metal     text,
    xray_percent   integer,
    pwht_required  boolean,
    nde_types      text[],
    stencil        text,
    date_welded    date,
    nde_result     text,
    -- Pipe footage of every valid row of the same aggregate (pipe aggregates take the file's sum).
    group_quantity numeric,
    issues         jsonb not null,
    -- Set by the reader on a valid row that may repeat an earlier one (see import_resolve_repeats).
    maybe_repeated boolean not null default false,
    -- A hash of the row's cells as shown (valid rows), for finding rows repeated cell for cell.
    cells_hash     bigint,
    -- A row of a remediation CSV: the original row it stands for (PIPETRAK REF).
    origin_import_id bigint,
    origin_line    integer,
    -- In the remediation CSV (it has errors or warnings, or shares a counted item or a pipe with
    -- such a row): the commit records what it creates, for the fixed row to correct.
    reported       boolean not null default false,
    -- The row's man-hour budget (BUDGET MH / MAN HOURS / MH column; spec §11).
    budget_mh      numeric,
    -- The job's project: the rows shard with it (see 19_distribution.sql).
    project_id     bigint not null,
    primary key (import_id, line, project_id)
);
create index import_rows_chunk_idx on pipetrak.import_rows (import_id, chunk);
-- The few rows the reader flagged (partial: the other rows cost nothing to index).
create index import_rows_maybe_repeated_idx on pipetrak.import_rows (import_id) where maybe_repeated;
-- Validation analyzes the staged rows: a sample of 3,000 rows (not 30,000) plans the statements
-- over these few-valued or unique columns as well, and keeps analyze's memory the same for any file.
alter table pipetrak.import_rows
    alter column import_id set statistics 10, alter column chunk set statistics 10, alter column line set statistics 10,
    alter column status set statistics 10, alter column component_type set statistics 10,
    alter column drawing_key set statistics 10, alter column maybe_repeated set statistics 10;

-- What an imported row made: the components a reported row (see import_rows.reported) or a
-- remediation row created or corrected, with the feet it gave a pipe. A fixed row of the
-- remediation CSV finds here what its original row made (by PIPETRAK REF) and corrects it, and an
-- original whose row a remediation import already brought in skips that row: either order ends
-- in the same project. A pipe whose footage came from several such rows is the sum of them.
create table pipetrak.component_sources (
    component_id bigint not null,
    -- The original row: its import and its row in that file.
    import_id    bigint not null,
    line         integer not null,
    footage      numeric(14, 2),
    project_id   bigint not null,
    primary key (import_id, line, component_id, project_id),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
create index component_sources_component_idx on pipetrak.component_sources (component_id);
alter table pipetrak.component_sources enable row level security;

-- What the missing foreign key would do on delete: a deleted job takes its staged rows along
-- (a row trigger: jobs are deleted a project's few at a time, and Citus refuses statement
-- triggers reading transition tables).
create function pipetrak.import_jobs_delete_rows()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    delete from pipetrak.import_rows r where r.import_id = old.id and r.project_id = old.project_id;
    return null;
end
$$;
create trigger import_jobs_delete_rows after delete on pipetrak.import_jobs
    for each row execute function pipetrak.import_jobs_delete_rows();

-- With pipetrak.log_imports on, one JSON line in the server log when a job is validated, fails or
-- is committed: its ids, outcome, rows and issues (validation) or what it wrote (commit), and how
-- long the transaction that got it there had run.
create function pipetrak.import_jobs_log()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    raise log 'pipetrak: %', jsonb_build_object(
        'event', 'import_' || new.status, 'import_id', new.id, 'project_id', new.project_id, 'kind', new.kind,
        'format', new.format,
        'rows', new.summary -> 'rows', 'issues', new.summary -> 'issues',
        'written', case when new.status = 'committed' then new.result end,
        'transaction_ms', round(extract(epoch from clock_timestamp() - now()) * 1000));
    return null;
end
$$;
create trigger import_jobs_log after update of status on pipetrak.import_jobs
    for each row when (old.status is distinct from new.status and new.status in ('validated', 'failed', 'committed')
                       and pipetrak.logging('imports'))
    execute function pipetrak.import_jobs_log();

alter table pipetrak.import_jobs enable row level security;
alter table pipetrak.import_rows enable row level security;
-- Jobs, files and reports are seen by those who may import into the project (owner, admin, PM).
create policy import_jobs_select_importer on pipetrak.import_jobs for select to authenticated
    using (pipetrak.project_visible_for(project_id, 'manage_project_data'));
create policy import_rows_select_importer on pipetrak.import_rows for select to authenticated
    using (pipetrak.project_visible_for(project_id, 'manage_project_data'));

-- The project of an import job (null for no such id), found by its id as component_project
-- finds a component's.
create function pipetrak.import_project(p_import_id bigint)
returns bigint
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_project bigint;
    v_hint bigint;
begin
    v_hint := pipetrak.request_project();
    if v_hint is null then
        select j.project_id into v_project from pipetrak.import_jobs j where j.id = p_import_id;
    else
        select j.project_id into v_project from pipetrak.import_jobs j where j.id = p_import_id and j.project_id = v_hint;
    end if;
    return v_project;
end
$$;

-- The job, locked, after checking the caller may import into its project. Without its file:
-- returning the row would copy the whole file into the caller's memory.
create function pipetrak.lock_import(p_import_id bigint)
returns pipetrak.import_jobs
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job pipetrak.import_jobs;
    v_project bigint;
begin
    -- The job's project first (on Citus a read of every shard), then the locked row on its
    -- project's shard.
    v_project := pipetrak.import_project(p_import_id);
    if v_project in (select pipetrak.my_project_ids()) then
        select * into v_job from pipetrak.import_jobs
        where id = p_import_id and project_id = v_project
        for update;
    end if;
    if v_job.id is null then
        perform pipetrak.raise_error('import_not_found', jsonb_build_object('import_id', p_import_id));
    end if;
    perform pipetrak.require_project_role(v_job.project_id, 'manage_project_data');
    -- On Citus the job's change is announced and the weeks due are frozen from here (the shard's
    -- triggers can't).
    perform pipetrak.queue_change(v_job.project_id, 'imports', array[p_import_id]);
    perform pipetrak.freeze_due_weeks_here(v_job.project_id);
    v_job.content := null;
    return v_job;
end
$$;

-- Checks an upload (the caller's role, the arguments, the size and sniffed `p_format`) and
-- returns the format; a file of no format is refused with `p_refusal` ({code, message}: what the
-- file is, named by its signature, or that it is damaged). It is given the file's size, never the
-- file: see import_upload.
create function pipetrak.check_import_upload(p_project_id bigint, p_kind text, p_filename text, p_size integer,
                                             p_format text, p_refusal jsonb)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pipetrak.require_project_role(p_project_id, 'manage_project_data');
    if p_kind is null or p_kind <> all (pipetrak.vocabulary('import_kind')) then
        perform pipetrak.raise_error('invalid_argument', jsonb_build_object('argument', 'kind',
            'expected', array_to_string(pipetrak.vocabulary('import_kind'), ', ')));
    end if;
    if p_filename is null or btrim(p_filename) = '' or length(p_filename) > 255 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "filename", "expected": "the file''s name, 1 to 255 characters"}');
    end if;
    if p_size is null then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "content", "expected": "the file''s bytes"}');
    end if;
    if p_size = 0 then
        perform pipetrak.raise_error('empty_file', jsonb_build_object('filename', p_filename));
    end if;
    if p_size > pipetrak.max_upload_bytes() then
        perform pipetrak.raise_error('file_too_large', jsonb_build_object('bytes', p_size, 'limit', pipetrak.max_upload_bytes()));
    end if;
    if p_format is null and p_refusal ->> 'code' = 'damaged_file' then
        perform pipetrak.raise_error('damaged_file', jsonb_build_object('filename', p_filename), p_refusal ->> 'message');
    elsif p_format is null then
        perform pipetrak.raise_error('unsupported_file', jsonb_build_object('filename', p_filename), p_refusal ->> 'message');
    end if;
    return p_format;
end
$$;

-- import_refusal as one value ({code, message} or null), for a call in a VALUES list.
create function pipetrak.import_refusal_json(p_content bytea)
returns jsonb
language sql immutable parallel safe
as $$ select to_jsonb(r) from pipetrak.import_refusal(p_content) r $$;

-- Stores an uploaded file as a new job (spec §9). The type is sniffed from the content. A SQL
-- function, so the file reaches the table without the extra copy a PL/pgSQL variable costs: a
-- 50 MB upload already takes about 150 MB of the backend's memory in PostgreSQL's own protocol
-- buffers, and every import function stays below 256 MB. One row of VALUES, so Citus routes it to
-- the project's shard (it plans no INSERT … SELECT of a SQL function's parameters).
create function pipetrak.import_upload(p_project_id bigint, p_kind text, p_filename text, p_content bytea)
returns bigint
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
    insert into pipetrak.import_jobs (project_id, kind, filename, format, content, created_by)
    values (p_project_id, p_kind, btrim(p_filename),
            pipetrak.check_import_upload(p_project_id, p_kind, p_filename, octet_length(p_content),
                                         pipetrak.import_sniff(coalesce(p_content, ''::bytea)),
                                         pipetrak.import_refusal_json(coalesce(p_content, ''::bytea))),
            p_content, pipetrak.require_user())
    returning id
$$;

-- The components the staged rows stand for (per-seq rows counted out), for a job's and project's
-- filter. A view, not a function: PostgreSQL inlines it before Citus plans the statement (Citus
-- can't plan an INSERT … SELECT through an inlined SQL function of distributed tables). Joins
-- only, no correlated subquery: the caller's project filter then reaches every table, and on
-- Citus the statement runs on the project's shard alone.
create view pipetrak.import_plan_rows with (security_invoker = true) as
    select r.import_id, r.project_id, r.line, r.chunk, r.component_type, r.drawing_key, r.tag, r.size, s.seq,
           coalesce(r.group_quantity, 1) as quantity, r.description, r.spec, r.attributes, r.area, r.system,
           r.test_package,
           r.component_type = any (pipetrak.component_types('linear_aggregate') || pipetrak.component_types('single'))
               and r.issues @> '[{"code": "rows_merged"}]' as merged
    from pipetrak.import_rows r
    cross join lateral generate_series(r.seq_from, r.seq_to) as s(seq)
    left join pipetrak.drawings x on x.project_id = r.project_id and x.drawing_key = r.drawing_key and x.retired_at is null
    -- An instance the project retired is not made again (a re-import never brings one back;
    -- a row every instance of which is retired is skipped with its reason before this): the
    -- file's other instances are. The project's retired identities without a live component
    -- (the small index of retired identities, and the identity index).
    left join (
        select distinct k.project_id, k.identity_key
        from pipetrak.components k
        left join pipetrak.components l on l.project_id = k.project_id and l.retired_at is null and l.identity_key = k.identity_key
        where k.retired_at is not null and l.id is null) gone
      on x.id is not null and gone.project_id = r.project_id
     and gone.identity_key = pipetrak.identity_key(r.component_type, x.id, r.tag, r.size, s.seq)
    where r.status = 'valid' and gone.identity_key is null;
comment on view pipetrak.import_plan_rows is
    'The components staged import rows stand for (per-seq rows counted out), with whether a row merged into an earlier one; filter by import_id and project_id.';

-- The projects' live field welds by drawing and number (a weld is its drawing and number, spec
-- §4). Read by key — project_id, drawing_key and tag — as a lateral probe of the drawing and
-- weld-number indexes (a join could scan every component of the project). A view, so
-- PostgreSQL inlines it before Citus plans the statement (a shard's statement can't name an
-- inlined SQL function of distributed tables).
create view pipetrak.live_welds with (security_invoker = true) as
    select d.project_id, d.drawing_key, c.tag, c.id
    from pipetrak.drawings d
    join pipetrak.components c on c.project_id = d.project_id and c.drawing_id = d.id
    where d.retired_at is null and c.retired_at is null and c.component_type = 'field_weld'
      and c.identity_key = pipetrak.identity_key('field_weld', d.id, c.tag, null, 1);
comment on view pipetrak.live_welds is
    'Live field welds by project, drawing key and weld number (a weld is its drawing and number); read by all three.';

-- Live field welds by number: the dry run's note that a number also exists on another drawing,
-- and the weld log's pages in weld number order (weld_log_page; the id breaks ties).
create index components_weld_number_idx on pipetrak.components (project_id, tag, id)
    where component_type = 'field_weld' and retired_at is null;

-- Existing drawings whose keys look like `p_key` (pg_trgm similarity, best first), for hints on
-- drawings an import would create. pg_trgm may live in any schema: the function and its index are
-- written against the schema it was installed in. The index is of lower(drawing_key) (trigrams
-- ignore case, so the similarities are the same): an index of the column itself also answers
-- `drawing_key = …`, and the planner took it over the (project_id, drawing_key) key for an import's
-- lookups, half a millisecond a row.
do $$
begin
    execute format('create index drawings_key_trgm_idx on pipetrak.drawings using gin ((lower(drawing_key)) %I.gin_trgm_ops) where retired_at is null',
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
        create or replace function pipetrak.similar_drawings(p_project_id bigint, p_key text)
        returns table (drawing_no text, score real)
        language sql stable
        set search_path = pg_catalog, pg_temp
        as 'select d.drawing_no, %1$I.similarity(lower(d.drawing_key), lower(p_key))
            from pipetrak.drawings d
            where d.project_id = p_project_id and d.retired_at is null and lower(d.drawing_key) operator(%1$I.%%) lower(p_key)
            order by 2 desc limit 3'$f$, v_schema);
end
$$;
comment on function pipetrak.similar_drawings(bigint, text) is
    'Existing live drawings whose keys look like a key (pg_trgm similarity, best three first), for the hints on drawings an import would create.';

-- Removes the staged rows of jobs kept past their time: a committed job's a day after its commit,
-- an uncommitted one's a week after its validation (it must be validated again to be committed).
-- Of one project (a validation clears its own project's: on Citus, one shard), of one
-- organization's projects, or of all when both are null (for a DBA's scheduled job). Files stay
-- with their jobs. Returns how many jobs it cleared.
create function pipetrak.purge_staged_rows(p_organization_id bigint default null, p_project_id bigint default null)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_jobs bigint[];
begin
    select array_agg(j.id) into v_jobs
    from pipetrak.import_jobs j
    join pipetrak.projects p on p.id = j.project_id
    where j.staged_until < now() and j.status <> 'committing'
      and (p_organization_id is null or p.organization_id = p_organization_id)
      and (p_project_id is null or j.project_id = p_project_id);
    if v_jobs is null then
        return 0;
    end if;
    delete from pipetrak.import_rows
    where import_id = any (v_jobs) and (p_project_id is null or project_id = p_project_id);
    update pipetrak.import_jobs
    set staged_until = null, status = case when status = 'committed' then status else 'uploaded' end, updated_at = now()
    where id = any (v_jobs) and (p_project_id is null or project_id = p_project_id);
    return cardinality(v_jobs);
end
$$;

-- A weld's facts after importing row `r` onto it (`p_welder_id`: the welder of the row's stencil;
-- -1 for one the commit will create). Imports merge, never erase: a blank cell leaves the stored
-- fact alone; the weld's engineering facts (type, size, schedule, base metal, spec, x-ray tier,
-- PWHT, NDE methods) take the file's value; what the field records — welder, date welded, NDE
-- result — is only filled in where it is blank, never replaced (corrections are edit_welder and
-- record_nde, with a reason). The dry run and the commit both compare a weld with this.
create function pipetrak.import_weld_merge(w pipetrak.field_welds, r pipetrak.import_rows, p_welder_id bigint)
returns pipetrak.field_welds
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    m pipetrak.field_welds := w;
begin
    m.weld_type := coalesce(r.weld_type, w.weld_type);
    m.weld_size := coalesce(r.weld_size, w.weld_size);
    m.schedule := coalesce(r.schedule, w.schedule);
    m.base_metal := coalesce(r.base_metal, w.base_metal);
    m.spec := coalesce(r.spec, w.spec);
    m.xray_percent := coalesce(r.xray_percent, w.xray_percent);
    m.pwht_required := coalesce(r.pwht_required, w.pwht_required);
    m.nde_types := case when cardinality(r.nde_types) = 0 then w.nde_types
                        -- A repair keeps the examination duty it carries (see 12_welds' notes).
                        when w.repair_of is not null then w.nde_types || array(select t from unnest(r.nde_types) t where t <> all (w.nde_types))
                        else r.nde_types end;
    m.welder_id := coalesce(w.welder_id, p_welder_id);
    m.date_welded := coalesce(w.date_welded, r.date_welded);
    m.nde_result := coalesce(w.nde_result, r.nde_result);
    return m;
end
$$;

-- Why a staged row names nothing to import, when the project retired what it names: a weld on
-- this drawing repaired ("was repaired as W-1.1") or retired, or moved away ("was moved to
-- drawing P-2"), with no live weld of that number here; a component every seq of the row names
-- retired, none live. Null otherwise.
create function pipetrak.import_row_gone(p_project_id bigint, p_component_type text, p_drawing_key text, p_tag text,
                                         p_size text, p_seq_from integer, p_seq_to integer)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        with d as (
            select x.id from pipetrak.drawings x
            where x.project_id = p_project_id and x.drawing_key = p_drawing_key and x.retired_at is null
            limit 1)
        select case
            when p_component_type = 'field_weld' then (
                select coalesce(
                    (select case when f.repaired_by is not null then format('was repaired as %s', rc.tag) else 'was retired' end
                     from d
                     join pipetrak.components c on c.project_id = p_project_id and c.retired_at is not null
                          and c.identity_key = pipetrak.identity_key('field_weld', d.id, p_tag, null, 1)
                     join pipetrak.field_welds f on f.component_id = c.id and f.project_id = c.project_id
                     left join pipetrak.components rc on rc.id = f.repaired_by and rc.project_id = f.project_id
                     order by c.id desc limit 1),
                    (select format('was moved to drawing %s', nd.drawing_no)
                     from d
                     join pipetrak.weld_events e on e.project_id = p_project_id and e.action = 'moved'
                          and e.before ->> 'drawing_id' = d.id::text
                     join pipetrak.components c on c.id = e.component_id and c.project_id = e.project_id and c.tag = p_tag and c.retired_at is null
                          and c.drawing_id <> d.id
                     join pipetrak.drawings nd on nd.id = c.drawing_id and nd.project_id = c.project_id
                     order by e.id desc limit 1))
                where not exists (select from pipetrak.live_welds lw where lw.project_id = p_project_id and lw.drawing_key = p_drawing_key and lw.tag = p_tag))
            else (
                select 'was retired'
                from d
                where not exists (
                    select from generate_series(p_seq_from, p_seq_to) s(seq)
                    where exists (select from pipetrak.components c
                                  where c.project_id = p_project_id and c.retired_at is null
                                    and c.identity_key = pipetrak.identity_key(p_component_type, d.id, p_tag, p_size, s.seq))
                       or not exists (select from pipetrak.components c
                                      where c.project_id = p_project_id and c.retired_at is not null
                                        and c.identity_key = pipetrak.identity_key(p_component_type, d.id, p_tag, p_size, s.seq))))
        end);
end
$$;

-- Retired components by identity, for a re-import to find what the project retired.
create index components_retired_identity_idx on pipetrak.components (project_id, identity_key)
    where retired_at is not null;

-- Dry run (spec §6.2): reads the file, stages its rows with their issues, compares them with the
-- project and stores the summary. Writes nothing else.
create function pipetrak.import_validate(p_import_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs := pipetrak.lock_import(p_import_id);
    v_project pipetrak.projects;
    v_file jsonb;
    v_repeats jsonb;
    v_duplicates integer;
    v_components jsonb;
    v_would jsonb;
    v_summary jsonb;
    v_has_drawings boolean;
    v_flagged integer;
    v_warnings_added integer := 0;
    v_infos_added integer := 0;
    v_failed boolean;
    v_similar jsonb;
    -- Rows of a remediation CSV name the original rows they stand for.
    v_refers boolean := false;
    -- The distinct drawings of the valid rows and the first row of each (import_drawing_keys).
    v_keys text[];
    v_key_lines integer[];
begin
    if v_job.status in ('committing', 'committed') then
        perform pipetrak.raise_error('import_already_committed', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    select * into v_project from pipetrak.projects where id = v_job.project_id;
    -- The project's own expired staged rows go first: each tenant pays for its own.
    perform pipetrak.purge_staged_rows(p_project_id => v_job.project_id);
    delete from pipetrak.import_rows where import_id = p_import_id and project_id = v_job.project_id;
    v_file := pipetrak.stage_import(p_import_id, v_job.project_id, v_job.kind, (now() at time zone v_project.time_zone)::date);
    -- A file that can't be read, or holds nothing to import, fails with its reason and keeps no
    -- rows: none of them may look valid.
    v_failed := not (v_file ? 'header')
        or exists (select from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i where i ->> 'severity' = 'error');
    if v_failed then
        delete from pipetrak.import_rows where import_id = p_import_id and project_id = v_job.project_id;
        v_summary := jsonb_build_object(
            'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
            'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
            'header', v_file -> 'header',
            'rows', jsonb_build_object('rows_read', 0, 'valid', 0, 'with_errors', 0, 'skipped', 0),
            'issues', (select jsonb_build_object(
                           'error', count(*) filter (where i ->> 'severity' = 'error'),
                           'warning', count(*) filter (where i ->> 'severity' = 'warning'),
                           'info', count(*) filter (where i ->> 'severity' = 'info'))
                       from jsonb_array_elements(coalesce(v_file -> 'file_issues', '[]')) i),
            'file_issues', coalesce(v_file -> 'file_issues', '[]'));
        update pipetrak.import_jobs set status = 'failed', summary = v_summary, validated_at = now(), updated_at = now(),
            staged_until = null, chunks_total = null, chunks_done = 0, result = '{}'
        where id = p_import_id and project_id = v_job.project_id;
        return v_summary || jsonb_build_object('status', 'failed');
    end if;
    -- Fresh statistics, so the statements below and the commit plan for the real number of rows.
    -- (Not on Citus: the shards' autovacuum counts them; an ANALYZE there reaches every node. Nor
    -- for a schedule or timesheet: its statements read the job's rows by the job alone.)
    if not pipetrak.distributed() and v_job.kind in ('takeoff', 'field_welds') then
        analyze pipetrak.import_rows (import_id, chunk, line, status, component_type, drawing_key, maybe_repeated);
    end if;

    -- A remediation CSV read back: each row's PIPETRAK REF (staged in its attributes) names the
    -- original row it stands for, which must be a row of an import of this project.
    if exists (select from jsonb_array_elements_text(v_file -> 'header') h where upper(btrim(h)) = 'PIPETRAK REF') then
        with refs as (
            select r.line, split_part(r.attributes ->> 'pipetrak_ref', ':', 1)::bigint as import_id,
                   split_part(r.attributes ->> 'pipetrak_ref', ':', 2)::integer as origin_line
            from pipetrak.import_rows r
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.attributes ? 'pipetrak_ref'),
        judged as (
            select x.*, exists (select from pipetrak.import_jobs o where o.id = x.import_id and o.project_id = v_job.project_id
                                and o.id <> p_import_id) as known
            from refs x)
        update pipetrak.import_rows r set
            attributes = r.attributes - 'pipetrak_ref',
            origin_import_id = case when j.known then j.import_id end,
            origin_line = case when j.known then j.origin_line end,
            issues = case when j.known then r.issues else pipetrak.import_issue_added(r.issues, r.line,
                'unknown_reference', '%s:%s is not a row of an import of this project', array[j.import_id::text, j.origin_line::text],
                'PIPETRAK REF', j.import_id::text || ':' || j.origin_line::text) end
        from judged j
        where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = j.line;
        v_warnings_added := v_warnings_added + (select count(*) from pipetrak.import_rows r
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.issues @> '[{"code": "unknown_reference"}]');
        v_refers := exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.project_id = v_job.project_id and r.origin_import_id is not null);
    end if;

    -- A row's man-hour budget, staged in its attributes (the staging statement serves every
    -- installed version), goes to its own column: only a file with a budget column has any.
    if coalesce((v_file ->> 'budget_column')::boolean, true) then
        update pipetrak.import_rows r set budget_mh = (r.attributes ->> 'pipetrak_budget_mh')::numeric,
            attributes = r.attributes - 'pipetrak_budget_mh'
        where r.import_id = p_import_id and r.project_id = v_job.project_id and r.attributes ? 'pipetrak_budget_mh';
    end if;

    -- A schedule or timesheet: its own rules across rows, and what the commit would record.
    if v_job.kind in ('schedule', 'timesheet') then
        v_repeats := pipetrak.import_controls_validate(p_import_id, v_job.project_id, v_job.kind, v_file -> 'found' -> 'charged');
        v_would := v_repeats -> 'would';
        v_file := jsonb_set(v_file, '{rows}', v_file -> 'rows' || jsonb_build_object(
            'valid', (v_file -> 'rows' ->> 'valid')::integer - (v_repeats ->> 'invalidated')::integer,
            'with_errors', (v_file -> 'rows' ->> 'with_errors')::integer + (v_repeats ->> 'invalidated')::integer,
            'errors', (v_file -> 'rows' ->> 'errors')::integer + (v_repeats ->> 'errors_added')::integer));
        if v_repeats ? 'file_issue' then
            v_file := jsonb_set(v_file, '{file_issues}', coalesce(v_file -> 'file_issues', '[]') || jsonb_build_array(v_repeats -> 'file_issue'));
            v_warnings_added := v_warnings_added + 1;
        end if;
    end if;

    -- Rules across rows, when the reader flagged rows that may repeat earlier ones; the reader's
    -- counts and what it found are corrected by what they changed. (Not of a schedule or timesheet:
    -- the rest of the dry run compares components.)
    if v_job.kind in ('schedule', 'timesheet') then
        null;
    elsif coalesce((v_file ->> 'maybe_repeated')::integer, 0) > 0 then
        v_repeats := pipetrak.import_resolve_repeats(p_import_id, v_job.kind);
        v_duplicates := (v_repeats ->> 'duplicates')::integer;
        v_file := jsonb_set(v_file, '{rows}', v_file -> 'rows' || jsonb_build_object(
            'valid', (v_file -> 'rows' ->> 'valid')::integer - v_duplicates,
            'with_errors', (v_file -> 'rows' ->> 'with_errors')::integer + v_duplicates,
            'errors', (v_file -> 'rows' ->> 'errors')::integer + v_duplicates,
            'warnings', (v_file -> 'rows' ->> 'warnings')::integer + (v_repeats ->> 'identical')::integer,
            'infos', (v_file -> 'rows' ->> 'infos')::integer + (v_repeats ->> 'merged')::integer));
        v_file := jsonb_set(v_file, '{found,components}',
            to_jsonb((v_file -> 'found' ->> 'components')::bigint - (v_repeats ->> 'not_components')::bigint));
        -- What only the rows now invalid named is no longer found.
        if v_duplicates > 0 then
            v_file := jsonb_set(v_file, '{found}', v_file -> 'found' || jsonb_build_object(
                'areas', pipetrak.import_still_named(p_import_id, v_job.project_id, 'area', v_file -> 'found' -> 'areas'),
                'systems', pipetrak.import_still_named(p_import_id, v_job.project_id, 'system', v_file -> 'found' -> 'systems'),
                'test_packages', pipetrak.import_still_named(p_import_id, v_job.project_id, 'test_package', v_file -> 'found' -> 'test_packages'),
                'stencils', pipetrak.import_still_named(p_import_id, v_job.project_id, 'stencil', v_file -> 'found' -> 'stencils')));
        end if;
    end if;

    if v_job.kind in ('takeoff', 'field_welds') then
        select k.keys, k.lines into v_keys, v_key_lines from pipetrak.import_drawing_keys(p_import_id) k;

        -- Two spellings of a drawing number in this file that stay different but look alike (the same
        -- letters and digits): a warning on the first row of each spelling after the first. The pairs
        -- are found over the distinct keys; only their few rows are then read and written.
        select coalesce(jsonb_agg(jsonb_build_array(s.line, s.first_line)), '[]') into v_similar
        from (select k.line, first_value(k.line) over (partition by k.lookalike order by k.line) as first_line
              from (select x.line, pipetrak.drawing_lookalike(x.drawing_key) as lookalike
                    from unnest(v_keys, v_key_lines) x(drawing_key, line)) k) s
        where s.line <> s.first_line;
        if jsonb_array_length(v_similar) > 0 then
            update pipetrak.import_rows r
            set issues = pipetrak.import_issue_added(r.issues, r.line, 'similar_drawing_in_file',
                'Drawing %s looks like %s on row %s of this file', array[r.drawing_no, f.drawing_no, f.line::text], 'DRAWING', r.drawing_no)
            from jsonb_array_elements(v_similar) p(pair)
            join pipetrak.import_rows f on f.import_id = p_import_id and f.project_id = v_job.project_id and f.line = (p.pair ->> 1)::integer
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = (p.pair ->> 0)::integer;
            v_warnings_added := v_warnings_added + jsonb_array_length(v_similar);
        end if;

        -- Comparisons with what the project holds; a project without drawings holds nothing to compare.
        v_has_drawings := exists (select from pipetrak.drawings d where d.project_id = v_job.project_id and d.retired_at is null);

        -- New drawings that look like existing ones (trigram similarity) get a hint on their first row.
        if v_has_drawings then
            update pipetrak.import_rows r
            set issues = pipetrak.import_issue_added(r.issues, r.line, 'similar_drawing_exists',
                'Drawing %s is not in the project; similar: %s', array[r.drawing_no, s.similar], 'DRAWING', r.drawing_no)
            from (
                select n.drawing_key, min(n.line) as line, string_agg(m.drawing_no, ', ' order by m.score desc) as similar
                from (select x.drawing_key, x.line from unnest(v_keys, v_key_lines) x(drawing_key, line)
                      where not exists (select from pipetrak.drawings d where d.project_id = v_job.project_id
                                        and d.drawing_key = x.drawing_key and d.retired_at is null)) n
                cross join lateral pipetrak.similar_drawings(v_job.project_id, n.drawing_key) m
                group by n.drawing_key
            ) s
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = s.line;
            get diagnostics v_flagged = row_count;
            v_warnings_added := v_warnings_added + v_flagged;

            -- A lower quantity than the project holds deletes nothing: warn with the surplus components.
            update pipetrak.import_rows r
            set issues = pipetrak.import_issue_added(r.issues, r.line, 'quantity_below_existing',
                'The project holds %s of this item, the file %s; surplus component ids: %s',
                array[(s.planned + s.surplus_count)::text, s.planned::text, s.surplus_ids], 'QTY', s.planned::text)
            from (
                select g.last_line, g.planned, count(*) as surplus_count, string_agg(c.id::text, ', ' order by c.seq) as surplus_ids
                from (select x.component_type, x.drawing_key, x.tag, x.size, max(x.seq_to) as planned, max(x.line) as last_line
                      from pipetrak.import_rows x
                      where x.import_id = p_import_id and x.project_id = v_job.project_id and x.status = 'valid'
                        and x.component_type = any (pipetrak.component_types('per_seq'))
                      group by 1, 2, 3, 4) g
                join pipetrak.drawings d on d.project_id = v_job.project_id and d.drawing_key = g.drawing_key and d.retired_at is null
                join pipetrak.components c on c.project_id = v_job.project_id and c.drawing_id = d.id and c.retired_at is null
                    and c.component_type = g.component_type and c.tag = g.tag and c.size = g.size and c.seq > g.planned
                group by g.last_line, g.planned
            ) s
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = s.last_line;
            get diagnostics v_flagged = row_count;
            v_warnings_added := v_warnings_added + v_flagged;
        end if;

        -- A row naming what the project retired — a weld repaired or retired, a component retired
        -- (every seq of the row) — or a weld moved to another drawing is skipped: a re-import never
        -- brings one back (restore it first if it is back). Said on the row.
        if exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.retired_at is not null)
           or exists (select from pipetrak.weld_events e where e.project_id = v_job.project_id and e.action = 'moved') then
            update pipetrak.import_rows r
            set status = 'skipped',
                issues = pipetrak.import_issue_added(r.issues, r.line, 'retired_not_restored',
                    '%s %s on drawing %s %s: the row is not imported',
                    array[initcap(replace(r.component_type, '_', ' ')), r.tag, r.drawing_no, g.why])
            from (select v.line, pipetrak.import_row_gone(v_job.project_id, v.component_type, v.drawing_key, v.tag, v.size,
                                                          v.seq_from, v.seq_to) as why
                  from pipetrak.import_rows v
                  where v.import_id = p_import_id and v.project_id = v_job.project_id and v.status = 'valid') g
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = g.line and g.why is not null;
            get diagnostics v_flagged = row_count;
            if v_flagged > 0 then
                v_warnings_added := v_warnings_added + v_flagged;
                v_file := jsonb_set(jsonb_set(v_file, '{rows,valid}', to_jsonb((v_file -> 'rows' ->> 'valid')::integer - v_flagged)),
                                    '{rows,skipped}', to_jsonb((v_file -> 'rows' ->> 'skipped')::integer + v_flagged));
                -- A drawing only skipped rows named is not the file's any more.
                select k.keys, k.lines into v_keys, v_key_lines from pipetrak.import_drawing_keys(p_import_id) k;
            end if;
        end if;

        -- A welder, date welded or NDE result the project holds that the file gives otherwise is kept
        -- (import_weld_merge): said on the row.
        if v_job.kind = 'field_welds' then
            update pipetrak.import_rows r
            set issues = pipetrak.import_issue_added(r.issues, r.line, 'field_value_kept',
                'Weld %s keeps what the field recorded: %s', array[r.tag, k.kept], 'WELD ID', r.tag)
            from (select v.line, string_agg(format('%s %s (the file says %s)', f.label, f.stored, f.given), '; ') as kept
                  from pipetrak.import_rows v
                  cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = v.drawing_key and lw.tag = v.tag limit 1) c
                  join pipetrak.field_welds w on w.component_id = c.id and w.project_id = v_job.project_id
                  left join pipetrak.welders wd on wd.id = w.welder_id and wd.project_id = w.project_id
                  cross join lateral (values ('welder', wd.stencil, v.stencil),
                                             ('date welded', w.date_welded::text, v.date_welded::text),
                                             ('NDE result', w.nde_result, v.nde_result)) f(label, stored, given)
                  where v.import_id = p_import_id and v.project_id = v_job.project_id and v.status = 'valid' and v.component_type = 'field_weld'
                    and f.stored <> f.given
                  group by v.line) k
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = k.line;
            get diagnostics v_flagged = row_count;
            v_warnings_added := v_warnings_added + v_flagged;
        end if;

        -- A weld number the project holds on another drawing but not on this one makes a new weld
        -- (a weld is its drawing and number, spec §4): noted, with the other drawing.
        if exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.component_type = 'field_weld'
                   and c.retired_at is null) then
            update pipetrak.import_rows r
            set issues = pipetrak.import_issue_added(r.issues, r.line, 'weld_number_elsewhere',
                'Weld %s is also on drawing %s; this row makes a new weld on %s', array[r.tag, o.other, r.drawing_no],
                'WELD ID', r.tag)
            from (select v.line,
                         (select d.drawing_no from pipetrak.components c join pipetrak.drawings d on d.id = c.drawing_id
                          where c.project_id = v_job.project_id and d.project_id = v_job.project_id
                            and c.component_type = 'field_weld' and c.retired_at is null
                            and c.tag = v.tag and d.drawing_key <> v.drawing_key
                          order by d.drawing_no limit 1) as other
                  from pipetrak.import_rows v
                  where v.import_id = p_import_id and v.project_id = v_job.project_id and v.status = 'valid' and v.component_type = 'field_weld'
                    and not exists (select from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = v.drawing_key and lw.tag = v.tag)) o
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.line = o.line and o.other is not null;
            get diagnostics v_flagged = row_count;
            v_infos_added := v_infos_added + v_flagged;
        end if;

        -- What a commit would create, update and leave alone. Into a project without components, all
        -- the file's components are new: the reader counted them; otherwise each is compared.
        if not exists (select from pipetrak.components c where c.project_id = v_job.project_id and c.retired_at is null) then
            v_components := jsonb_build_object('create', coalesce((v_file -> 'found' ->> 'components')::bigint, 0),
                                               'update', 0, 'unchanged', 0);
        else
            -- One pass over the planned components. Only a row merged into an earlier pipe or
            -- instrument row repeats an identity (per-seq rows get disjoint seq ranges, repeated ids are
            -- errors), so leaving those out counts each component once.
            with planned as (
                select count(*) filter (where p.existing_id is null) as created,
                       count(*) filter (where p.existing_id is not null) as existing,
                       count(*) filter (where p.existing_id is not null and p.component_type = any (pipetrak.component_types('linear_aggregate'))
                                          and p.quantity is distinct from p.existing_quantity) as footage_changed
                -- Each planned component beside the live one of the project with the same identity
                -- (lateral probes per row; only spools are identified without their drawing, so a
                -- new drawing's rows probe nothing). A commit leaves this to ON CONFLICT.
                from (select p.*, c.id as existing_id, c.quantity as existing_quantity
                      from pipetrak.import_plan_rows p
                      left join lateral (
                          select x.id from pipetrak.drawings x
                          where x.project_id = v_job.project_id and x.drawing_key = p.drawing_key and x.retired_at is null
                          limit 1) d on true
                      left join lateral (
                          select x.id, x.quantity from pipetrak.components x
                          where (d.id is not null or p.component_type = any (pipetrak.component_types('by_id')))
                            and x.project_id = v_job.project_id and x.retired_at is null
                            and x.identity_key = pipetrak.identity_key(p.component_type, d.id, p.tag, p.size, p.seq)
                          limit 1) c on true
                      where p.import_id = p_import_id and p.project_id = v_job.project_id) p
                where not p.merged),
            changed_welds as (
                select count(*) as changed
                from pipetrak.import_rows v
                cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = v.drawing_key and lw.tag = v.tag limit 1) c
                join pipetrak.field_welds w on w.component_id = c.id and w.project_id = v_job.project_id
                left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = v.stencil
                where v.import_id = p_import_id and v.project_id = v_job.project_id and v.status = 'valid' and v.component_type = 'field_weld' and v_job.kind = 'field_welds'
                  and pipetrak.import_weld_merge(row(w.*)::pipetrak.field_welds, row(v.*)::pipetrak.import_rows,
                                                 coalesce(wd.id, case when v.stencil is not null then -1 end)) is distinct from row(w.*)::pipetrak.field_welds)
            select jsonb_build_object(
                'create', p.created,
                'update', p.footage_changed + w.changed,
                'unchanged', p.existing - p.footage_changed - w.changed)
            from planned p, changed_welds w
            into v_components;
        end if;
        -- Drawings: the distinct keys of the staged rows; reference names and stencils: the distinct
        -- values the reader found. Each looked up.
        select jsonb_build_object(
            'components', v_components,
            'drawings', pipetrak.import_drawing_counts(v_job.project_id, v_keys),
            'areas', pipetrak.import_name_counts(v_job.project_id, 'areas',
                         array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'areas') n)),
            'systems', pipetrak.import_name_counts(v_job.project_id, 'systems',
                         array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'systems') n)),
            'test_packages', pipetrak.import_name_counts(v_job.project_id, 'test_packages',
                         array(select distinct lower(n) from jsonb_array_elements_text(v_file -> 'found' -> 'test_packages') n)),
            'welders', (select jsonb_build_object('create', count(*) filter (where not e.found), 'unchanged', count(*) filter (where e.found))
                        from jsonb_array_elements_text(v_file -> 'found' -> 'stencils') s(stencil)
                        cross join lateral (select exists (select from pipetrak.welders w where w.project_id = v_job.project_id
                                                           and w.stencil = s.stencil) as found) e))
        into v_would;
    end if;

    v_summary := jsonb_build_object(
        'import_id', p_import_id, 'kind', v_job.kind, 'filename', v_job.filename,
        'format', v_file -> 'format', 'sheet', v_file -> 'sheet', 'header_line', v_file -> 'header_line',
        'header', v_file -> 'header', 'rows', v_file -> 'rows',
        -- Counted while reading, plus the warnings added above by comparing with the project.
        'issues', jsonb_build_object(
            'error', coalesce((v_file -> 'rows' ->> 'errors')::integer, 0),
            'warning', coalesce((v_file -> 'rows' ->> 'warnings')::integer, 0) + v_warnings_added,
            'info', coalesce((v_file -> 'rows' ->> 'infos')::integer, 0) + v_infos_added),
        'file_issues', coalesce(v_file -> 'file_issues', '[]'),
        'would', v_would);
    if (v_summary -> 'issues' ->> 'error')::integer + (v_summary -> 'issues' ->> 'warning')::integer > 0 then
        perform pipetrak.import_mark_reported(p_import_id);
    end if;
    update pipetrak.import_jobs set
        status = 'validated', summary = v_summary, validated_at = now(), updated_at = now(),
        staged_until = now() + interval '7 days', chunks_total = null, chunks_done = 0, result = '{}'
    where id = p_import_id and project_id = v_job.project_id;
    -- A file that corrects earlier imports (a remediation CSV, or an original some of whose rows
    -- a remediation import already brought in) is rehearsed: its `would` is what the commit does.
    if v_job.kind in ('takeoff', 'field_welds')
       and (v_refers or exists (select from pipetrak.component_sources s where s.import_id = p_import_id and s.project_id = v_job.project_id)) then
        v_summary := jsonb_set(v_summary, '{would,components}',
                               coalesce(pipetrak.import_rehearse(p_import_id, v_job.project_id), v_summary -> 'would' -> 'components'));
        update pipetrak.import_jobs set summary = v_summary where id = p_import_id and project_id = v_job.project_id;
    end if;
    return v_summary || jsonb_build_object('status', 'validated');
end
$$;

-- What committing a validated job would create and update, found by committing it (its valid
-- rows) in a subtransaction that is then rolled back. Remediation rows correct what their
-- original rows made one by one, each seeing the corrections before it, so a second, read-only
-- model of them would drift from the commit; the rehearsal is the commit itself. Everything it
-- wrote is undone (notifications too); only sequences keep the ids it drew. Null when the commit
-- would fail (the dry run then keeps its estimate).
create function pipetrak.import_rehearse(p_import_id bigint, p_project_id bigint)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_state jsonb;
    v_planned bigint;
begin
    select count(*) into v_planned
    from pipetrak.import_plan_rows p
    where p.import_id = p_import_id and p.project_id = p_project_id and not p.merged;
    begin
        loop
            v_state := pipetrak.import_commit_chunk(p_import_id, true);
            exit when v_state ->> 'status' = 'committed';
        end loop;
        raise exception using errcode = 'PTRBK', message = 'import rehearsal rolled back';
    exception
        when sqlstate 'PTRBK' then
            null;
        -- A commit that would fail says so when it is run; the dry run keeps its estimate.
        when others then
            return null;
    end;
    return jsonb_build_object(
        'create', coalesce((v_state ->> 'components_created')::bigint, 0),
        'update', coalesce((v_state ->> 'components_updated')::bigint, 0),
        'unchanged', greatest(v_planned - coalesce((v_state ->> 'components_created')::bigint, 0)
                                        - coalesce((v_state ->> 'components_updated')::bigint, 0), 0));
end
$$;

-- Marks the rows the remediation CSV holds: rows with errors or warnings, and the other rows of
-- the same counted item or pipe (so that re-imported quantities and footage add up).
create function pipetrak.import_mark_reported(p_import_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The job's project: its staged rows are on its shard (19_distribution.sql).
    v_project bigint := pipetrak.import_project(p_import_id);
begin
    with flagged as (
        select r.line, r.component_type, r.drawing_key, r.tag, r.size
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = v_project
          and exists (select from jsonb_array_elements(r.issues) i where i ->> 'severity' <> 'info')),
    mates as (
        select r.line from pipetrak.import_rows r
        join (select distinct f.component_type, f.drawing_key, f.tag, f.size from flagged f
              where f.component_type = any (pipetrak.component_types('per_seq') || pipetrak.component_types('linear_aggregate'))) f
          on (f.component_type, f.drawing_key, f.tag, f.size) = (r.component_type, r.drawing_key, r.tag, r.size)
        where r.import_id = p_import_id and r.project_id = v_project and r.status = 'valid')
    update pipetrak.import_rows r set reported = true
    where r.import_id = p_import_id and r.project_id = v_project and r.line in (select line from flagged union select line from mates);
end
$$;

-- {create, unchanged} for the distinct lowercased names of areas, systems or test packages.
create function pipetrak.import_name_counts(p_project_id bigint, p_table text, p_names text[])
returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_existing integer;
begin
    execute format('select count(*) from pipetrak.%I t where t.project_id = $1 and t.retired_at is null and lower(t.name) = any ($2)', p_table)
    into v_existing using p_project_id, p_names;
    return jsonb_build_object('create', cardinality(p_names) - v_existing, 'unchanged', v_existing);
end
$$;

-- An issue as the reader writes them, with its severity and hint from the one catalog of codes.
-- No SET clause, so it is inlined, and with a constant code its catalog lookups are folded when
-- the statement is planned.
create function pipetrak.import_issue(p_line integer, p_code text, p_message text, p_column text default null,
                                      p_value text default null)
returns jsonb
language sql stable parallel safe
as $$
    select pg_catalog.jsonb_build_object('line', p_line, 'column', p_column, 'value', p_value,
        'severity', pipetrak.import_issue_severity(p_code), 'code', p_code, 'message', p_message,
        'hint', pipetrak.import_issue_hint(p_code))
$$;

-- `p_issues` with one more issue, its message `p_template` filled in with `p_args` (format's %s).
-- Declared immutable, which it is for text: format and jsonb_build_object are stable only for
-- other types' output functions. So Citus accepts it in an UPDATE's SET beside the row's columns
-- (it refuses stable functions there). Not inlined: one call per flagged row.
create function pipetrak.import_issue_added(p_issues jsonb, p_line integer, p_code text, p_template text, p_args text[],
                                            p_column text default null, p_value text default null)
returns jsonb
language sql immutable parallel safe
as $$
    select p_issues || pg_catalog.jsonb_build_array(pipetrak.import_issue(p_line, p_code,
        pg_catalog.format(p_template, variadic p_args), p_column, p_value))
$$;

-- Where an id must be unique in a file: '' (the whole file) for spool ids, the drawing for weld
-- numbers (spec §4), null for types identified otherwise. No SET clause, so it is inlined.
create function pipetrak.import_id_scope(p_type text, p_drawing_key text)
returns text
language sql immutable parallel safe
as $$
    select case when p_type = any (pipetrak.component_types('by_id')) then ''
                when p_type = any (pipetrak.component_types('per_drawing')) then p_drawing_key end
$$;

-- Rules across rows (spec §6), over the staged rows valid on their own: spool ids (in the file) and
-- weld numbers (on a drawing) are unique (a repeat is an error), rows of one item merge (per-seq quantities number
-- on into one range; a pipe's footage or an instrument is one component), rows repeated cell for
-- cell get a warning. Every row of a pipe spread over several rows takes the pipe's total footage
-- (staging gave each its own). The reader flags every row that may repeat an earlier one; only rows
-- sharing a key with a flagged row are looked at, since any other key is unique in the file.
-- Returns what changed, to correct the reader's counts.
-- The staged rows are read through their (import_id, …) indexes only (the caller turns seq scans
-- off): other jobs' rows, of any tenant, are never scanned, and each way a row can relate to a
-- flagged one is a join of its own (an OR of IN lists can't be one, and became a comparison of
-- every row with every flagged row once the flags outgrew work_mem).
create function pipetrak.import_resolve_repeats(p_import_id bigint, p_kind text)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The job's project: its staged rows are on its shard (19_distribution.sql).
    v_project bigint := pipetrak.import_project(p_import_id);
    v_counts jsonb;
begin
    with staged as not materialized (
        select r.line, r.cells_hash, r.component_type, r.drawing_key, r.tag, r.size, r.seq_to - r.seq_from + 1 as count,
               r.quantity, pipetrak.import_id_scope(r.component_type, r.drawing_key) as id_scope
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = v_project and r.status = 'valid'),
    flagged as materialized (
        select r.cells_hash, r.component_type, r.drawing_key, r.tag, r.size,
               pipetrak.import_id_scope(r.component_type, r.drawing_key) as id_scope
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = v_project and r.status = 'valid' and r.maybe_repeated),
    related_lines as (
        select s.line from staged s join (select distinct f.cells_hash from flagged f) f on f.cells_hash = s.cells_hash
        union
        select s.line from staged s
        join (select distinct f.id_scope, f.tag from flagged f where f.id_scope is not null) f on (f.id_scope, f.tag) = (s.id_scope, s.tag)
        union
        select s.line from staged s
        join (select distinct f.component_type, f.drawing_key, f.tag, f.size from flagged f) f
          on (f.component_type, f.drawing_key, f.tag, f.size) = (s.component_type, s.drawing_key, s.tag, s.size)),
    related as (
        select s.* from staged s join related_lines l on l.line = s.line),
    judged as (
        select x.line, x.tag, x.count, x.component_type,
               nullif(min(x.line) over (partition by x.cells_hash), x.line) as same_cells_as,
               case when x.id_scope is not null then nullif(min(x.line) over (partition by x.id_scope, x.tag), x.line) end as same_id_as,
               case when x.id_scope is null
                    then nullif(min(x.line) over item, x.line)
               end as same_item_as,
               case when x.component_type = any (pipetrak.component_types('per_seq'))
                    then 1 + coalesce(sum(x.count) over (item order by x.line rows between unbounded preceding and 1 preceding), 0)
                    else 1
               end as seq_from,
               case when x.component_type = any (pipetrak.component_types('linear_aggregate')) and count(*) over item > 1
                    then sum(x.quantity) over item
               end as pipe_footage
        from related x
        window item as (partition by x.id_scope, x.component_type, x.drawing_key, x.tag, x.size)),
    verdicts as (
        select j.line, j.seq_from, j.seq_from + j.count - 1 as seq_to, j.pipe_footage, j.same_cells_as is not null as identical,
               j.same_id_as is not null as duplicate, j.same_item_as is not null as merged,
               j.component_type = any (pipetrak.component_types('linear_aggregate') || pipetrak.component_types('single')) as merged_into_one,
               jsonb_path_query_array(jsonb_build_array(
                   case when j.same_cells_as is not null then pipetrak.import_issue(j.line, 'identical_rows',
                       format('Row %s has exactly the same cells', j.same_cells_as)) end,
                   case when j.same_id_as is not null then pipetrak.import_issue(j.line, 'duplicate_id',
                       format('%s is already on row %s%s', j.tag, j.same_id_as,
                              case when j.component_type = 'field_weld' then ' (same drawing)' else '' end),
                       case p_kind when 'takeoff' then 'CMDTY CODE' else 'WELD ID' end, j.tag) end,
                   case when j.same_item_as is not null then pipetrak.import_issue(j.line, 'rows_merged',
                       format('This row %s', case
                           when j.component_type = any (pipetrak.component_types('linear_aggregate')) then format('adds its footage to the same pipe as row %s', j.same_item_as)
                           when j.component_type = any (pipetrak.component_types('single')) then format('is the same instrument as row %s', j.same_item_as)
                           else format('adds seqs %s..%s to the same item as row %s', j.seq_from, j.seq_from + j.count - 1, j.same_item_as)
                       end)) end), '$[*] ? (@ != null)') as issues
        from judged j
        where j.same_cells_as is not null or j.same_id_as is not null or j.same_item_as is not null
           or j.pipe_footage is not null),
    changed as (
        update pipetrak.import_rows r set
            status = case when v.duplicate then 'invalid' else r.status end,
            seq_from = v.seq_from, seq_to = v.seq_to,
            group_quantity = coalesce(v.pipe_footage, r.group_quantity),
            issues = r.issues || v.issues
        from verdicts v
        where r.import_id = p_import_id and r.project_id = v_project and r.line = v.line
        returning v.identical, v.duplicate, v.merged, v.merged_into_one)
    select jsonb_build_object(
        'identical', count(*) filter (where c.identical),
        'duplicates', count(*) filter (where c.duplicate),
        'merged', count(*) filter (where c.merged),
        -- Rows the reader counted as components of their own.
        'not_components', count(*) filter (where c.duplicate or (c.merged and c.merged_into_one)))
    into v_counts
    from changed c;
    return v_counts;
end
$$;

-- The distinct drawings the valid staged rows name, each with its first row: read once by
-- import_validate for its checks and its summary (a pass over every staged row).
create function pipetrak.import_drawing_keys(p_import_id bigint, out keys text[], out lines integer[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The job's project: its staged rows are on its shard (19_distribution.sql).
    v_project bigint := pipetrak.import_project(p_import_id);
begin
    select coalesce(array_agg(k.drawing_key), '{}'), coalesce(array_agg(k.line), '{}') into keys, lines
    from (select r.drawing_key, min(r.line) as line from pipetrak.import_rows r
          where r.import_id = p_import_id and r.project_id = v_project and r.status = 'valid' group by r.drawing_key) k;
end
$$;

-- {create, unchanged} for drawings `p_keys` of project `p_project_id`.
create function pipetrak.import_drawing_counts(p_project_id bigint, p_keys text[])
returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select jsonb_build_object('create', count(*) filter (where not e.found), 'unchanged', count(*) filter (where e.found))
        from unnest(p_keys) k(drawing_key)
        cross join lateral (select exists (select from pipetrak.drawings d where d.project_id = p_project_id
                                           and d.drawing_key = k.drawing_key and d.retired_at is null) as found) e);
end
$$;

-- The values of `p_values` (a JSON array) that a valid staged row still names in `p_column`.
create function pipetrak.import_still_named(p_import_id bigint, p_project_id bigint, p_column text, p_values jsonb)
returns jsonb
language plpgsql stable
set search_path = pg_catalog, pg_temp
set enable_seqscan = on
as $$
declare
    v_named jsonb;
begin
    execute format('select coalesce(jsonb_agg(v.value), ''[]'') from jsonb_array_elements_text($2) v
                    where v.value in (select r.%I from pipetrak.import_rows r
                                      where r.import_id = $1 and r.project_id = $3 and r.status = ''valid'')',
                   p_column)
    into v_named using p_import_id, p_values, p_project_id;
    return v_named;
end
$$;

-- Creates the areas, systems and test packages one chunk's rows name and the project lacks.
create function pipetrak.import_references(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns integer
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table text;
    v_column text;
    v_count integer;
    v_total integer := 0;
begin
    foreach v_table in array array['areas', 'systems', 'test_packages'] loop
        v_column := case v_table when 'areas' then 'area' when 'systems' then 'system' else 'test_package' end;
        -- Counted by what the statement returns (Citus counts the rows ON CONFLICT skipped too).
        execute format($q$
            with made as (
                insert into pipetrak.%I (project_id, name)
                select distinct on (lower(r.%I)) $1, r.%I
                from pipetrak.import_rows r
                where r.import_id = $2 and r.project_id = $1 and r.chunk = $3 and r.status = 'valid' and r.%I is not null
                order by lower(r.%I), r.line
                on conflict (project_id, lower(name)) where retired_at is null do nothing
                returning 1)
            select count(*) from made$q$,
            v_table, v_column, v_column, v_column, v_column)
        into v_count
        using p_project_id, p_import_id, p_chunk;
        v_total := v_total + v_count;
    end loop;
    return v_total;
end
$$;

-- Commits the next chunk of a validated job (spec §6.4) and returns the job's state. Each chunk
-- is recorded on the job in the same transaction as its rows, so a crash loses at most the chunk
-- in flight, and redoing it creates nothing twice (identities are unique; welds are upserts).
create function pipetrak.import_commit_chunk(p_import_id bigint, p_skip_invalid_rows boolean)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs := pipetrak.lock_import(p_import_id);
    v_chunk integer;
    v_references integer;
    v_drawings integer;
    v_welders integer;
    v_created integer;
    v_updated integer;
    v_welds integer;
    v_result jsonb;
    -- Rows the set-based statements leave alone: remediation rows (corrected one by one below) and
    -- rows a remediation import already brought in.
    v_apart integer[];
    v_marked jsonb := '{}';
    v_corrected jsonb;
    v_changed integer;
    v_last boolean;
    v_totals jsonb;
    v_committed_at timestamptz;
    v_staged_until timestamptz;
begin
    if v_job.status = 'failed' then
        perform pipetrak.raise_error('import_failed', jsonb_build_object('import_id', p_import_id,
            'reasons', (select coalesce(jsonb_agg(i ->> 'message'), '[]') from jsonb_array_elements(coalesce(v_job.summary -> 'file_issues', '[]')) i
                        where i ->> 'severity' = 'error')));
    end if;
    if v_job.status = 'uploaded' then
        perform pipetrak.raise_error('import_not_validated', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    if v_job.status = 'validated' then
        if (v_job.summary -> 'rows' ->> 'with_errors')::integer > 0 and not coalesce(p_skip_invalid_rows, false) then
            perform pipetrak.raise_error('import_has_errors', jsonb_build_object('import_id', p_import_id,
                'rows_with_errors', (v_job.summary -> 'rows' ->> 'with_errors')::integer));
        end if;
        -- An RT FAIL of a sampled weld calls for more examinations, which a cluster refuses
        -- (call_examinations): refused before the first chunk, never halfway through the file.
        -- Broadly: a row without an x-ray tier may be a 5 % weld (the default).
        if pipetrak.distributed_coordinator()
           and exists (select from pipetrak.import_rows r
                       where r.import_id = p_import_id and r.project_id = v_job.project_id and r.status = 'valid'
                         and r.nde_result = 'FAIL' and coalesce(r.xray_percent, 5) in (5, 10) and coalesce(r.nde_types[1], 'RT') = 'RT'
                         and cardinality(r.nde_types) <= 1) then
            perform pipetrak.refuse_distributed('a weld log recording an RT FAIL of a sampled weld');
        end if;
        update pipetrak.import_jobs set status = 'committing', skip_invalid_rows = coalesce(p_skip_invalid_rows, false),
            chunks_total = (select coalesce(max(chunk) + 1, 0) from pipetrak.import_rows where import_id = p_import_id and project_id = v_job.project_id),
            chunks_done = 0, result = '{}', updated_at = now()
        where id = p_import_id and project_id = v_job.project_id
        returning * into v_job;
        -- Fixed rows of this file were committed first: its other rows count their items after them.
        if exists (select from pipetrak.component_sources s where s.import_id = p_import_id and s.project_id = v_job.project_id) then
            perform pipetrak.import_renumber_after_fixes(p_import_id);
        end if;
    end if;

    if v_job.status = 'committing' and v_job.chunks_done < v_job.chunks_total and v_job.kind in ('schedule', 'timesheet') then
        -- A schedule is one baseline version and a timesheet one set of hours: all at once.
        v_totals := pipetrak.import_controls_commit(p_import_id, v_job.project_id, v_job.kind, v_job.filename);
        update pipetrak.import_jobs set chunks_done = v_job.chunks_total, status = 'committed', committed_at = now(),
            staged_until = now() + interval '1 day', result = v_totals, updated_at = now()
        where id = p_import_id and project_id = v_job.project_id
        returning * into v_job;
        perform pipetrak.notify_project(v_job.project_id, jsonb_build_object(
            'kind', 'import_progress', 'import_id', p_import_id, 'chunk', v_job.chunks_total, 'chunks_total', v_job.chunks_total,
            'status', v_job.status, 'components_created', 0));
    elsif v_job.status = 'committing' and v_job.chunks_done < v_job.chunks_total then
        v_chunk := v_job.chunks_done;
        v_references := pipetrak.import_references(p_import_id, v_job.project_id, v_chunk);

        -- Drawings on first sight take the area, system and test package of their first row.
        -- Counted by what the statement returns: Citus reports the rows it sent to an INSERT …
        -- SELECT as its row count, the ones ON CONFLICT skipped included (here and below).
        with made as (
            insert into pipetrak.drawings (project_id, drawing_no, area_id, system_id, test_package_id)
            select v_job.project_id, r.drawing_no, a.id, s.id, t.id
            from (select distinct on (x.drawing_key collate "C") x.drawing_no, x.area, x.system, x.test_package
                  from pipetrak.import_rows x
                  where x.import_id = p_import_id and x.project_id = v_job.project_id and x.chunk = v_chunk and x.status = 'valid'
                  order by x.drawing_key collate "C", x.line) r
            left join pipetrak.areas a on a.project_id = v_job.project_id and a.retired_at is null and lower(a.name) = lower(r.area)
            left join pipetrak.systems s on s.project_id = v_job.project_id and s.retired_at is null and lower(s.name) = lower(r.system)
            left join pipetrak.test_packages t on t.project_id = v_job.project_id and t.retired_at is null and lower(t.name) = lower(r.test_package)
            on conflict (project_id, drawing_key) where retired_at is null do nothing
            returning 1)
        select count(*) into v_drawings from made;
        -- Statistics that still count the project's drawings as none would have the components'
        -- statement below read them all for every row (the plan's lookup of a drawing by key):
        -- counted again when this chunk made many of them (not on Citus, as below).
        if v_drawings > 100 and not pipetrak.distributed() and (select c.reltuples from pg_catalog.pg_class c
                                 where c.oid = 'pipetrak.drawings'::regclass) < v_drawings then
            analyze pipetrak.drawings;
        end if;

        with made as (
            insert into pipetrak.welders (project_id, stencil)
            select distinct v_job.project_id, r.stencil
            from pipetrak.import_rows r
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.chunk = v_chunk and r.status = 'valid' and r.stencil is not null
            on conflict (project_id, stencil) do nothing
            returning 1)
        select count(*) into v_welders from made;

        v_apart := array(
            select r.line from pipetrak.import_rows r
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.chunk = v_chunk and r.status = 'valid'
              and (r.origin_import_id is not null
                   or (r.reported and exists (select from pipetrak.component_sources s
                                              where s.import_id = p_import_id and s.project_id = v_job.project_id and s.line = r.line))));

        -- Components: a row's own area/system/package pins it when it differs from its drawing's.
        -- An existing pipe aggregate takes the file's footage. Rows merged into an earlier row of
        -- a pipe or instrument stand for that row's component: they write nothing themselves.
        -- The rows to write are read first (materialized), every table by the job's project: on
        -- Citus that is one statement on the project's shard, whose rows then go to it (Citus
        -- plans no INSERT … SELECT reading distributed tables beside a sequence's default).
        with planned as materialized (
            select v_job.project_id as project_id, d.id as drawing_id, p.component_type, p.tag, p.size, p.seq, p.quantity,
                   p.description, p.spec, p.attributes, coalesce(a.id, d.area_id) as area_id,
                   coalesce(s.id, d.system_id) as system_id, coalesce(t.id, d.test_package_id) as test_package_id,
                   a.id is distinct from null and a.id is distinct from d.area_id as area_pinned,
                   s.id is distinct from null and s.id is distinct from d.system_id as system_pinned,
                   t.id is distinct from null and t.id is distinct from d.test_package_id as test_package_pinned,
                   array_fill(0::numeric, array[cardinality(m.names)]) as milestone_values
            from pipetrak.import_plan_rows p
            -- Lateral, so each staged row probes the drawing index (drawings' statistics may be stale).
            cross join lateral (
                select x.id, x.area_id, x.system_id, x.test_package_id from pipetrak.drawings x
                where x.project_id = v_job.project_id and x.drawing_key = p.drawing_key and x.retired_at is null
                limit 1) d
            join pipetrak.milestone_templates m on m.project_id = v_job.project_id and m.component_type = p.component_type
            -- The same for names, through their (project_id, lower(name)) indexes: a join compared
            -- each row with every area and system of the project, lower() each time.
            left join lateral (
                select x.id from pipetrak.areas x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.area)
                limit 1) a on true
            left join lateral (
                select x.id from pipetrak.systems x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.system)
                limit 1) s on true
            left join lateral (
                select x.id from pipetrak.test_packages x
                where x.project_id = v_job.project_id and x.retired_at is null and lower(x.name) = lower(p.test_package)
                limit 1) t on true
            where p.import_id = p_import_id and p.project_id = v_job.project_id and p.chunk = v_chunk
              and not p.merged and p.line <> all (v_apart)),
        written as (
            insert into pipetrak.components as c (project_id, drawing_id, component_type, tag, size, seq, quantity,
                                                  description, spec, attributes, area_id, system_id, test_package_id,
                                                  area_pinned, system_pinned, test_package_pinned, milestone_values)
            select x.project_id, x.drawing_id, x.component_type, x.tag, x.size, x.seq, x.quantity, x.description, x.spec,
                   x.attributes, x.area_id, x.system_id, x.test_package_id, x.area_pinned, x.system_pinned,
                   x.test_package_pinned, x.milestone_values
            from planned x
            on conflict (project_id, identity_key) where retired_at is null do update
                -- The proposed row's updated_at is its default, now(): Citus takes no stable
                -- function in DO UPDATE SET.
                set quantity = excluded.quantity, updated_at = excluded.updated_at
                where c.component_type = any (pipetrak.component_types('linear_aggregate')) and c.quantity is distinct from excluded.quantity
            -- xmax is 0 on a row this statement inserted, set on one it updated.
            returning c.xmax = 0 as inserted)
        select count(*) filter (where inserted), count(*) filter (where not inserted)
        into v_created, v_updated
        from written;
        -- A big import into a table whose statistics still say it is (nearly) empty: every index led
        -- by project_id then looks as good as the identity index to the probes below, and each
        -- probe would scan the whole project. Counted again (ANALYZE sees this transaction's rows),
        -- once: statistics that have seen one chunk's rows already rank the indexes right for the
        -- chunks that follow (each ANALYZE of a big table costs most of a second: one per chunk was
        -- a fifth of a 100,000-row commit); the last chunk counts again (below).
        -- (Not on Citus: the coordinator's tables hold no rows, the workers' autovacuum counts the
        -- shards', and an ANALYZE there after reading a reference table is refused.)
        if v_created > 1000 and not pipetrak.distributed() and (select c.reltuples from pg_catalog.pg_class c
                                 where c.oid = 'pipetrak.components'::regclass) < v_created then
            analyze pipetrak.components;
        end if;

        -- What the reported rows made, for their fixed rows to find; a pipe they add up to is the
        -- sum of its rows' feet.
        perform pipetrak.import_record_sources(p_import_id, v_job.project_id, v_chunk, v_apart);
        -- Remediation rows, in file order: each corrects what its original row made, or makes it.
        v_corrected := pipetrak.import_apply_remediation(p_import_id, v_job.project_id, v_chunk);
        v_created := v_created + (v_corrected ->> 'created')::integer;
        v_updated := v_updated + (v_corrected ->> 'updated')::integer;

        -- Weld facts: created with the weld; on re-import merged (import_weld_merge), each change a
        -- weld event naming the import, counted as an update.
        -- (Counted by what it returns, as the drawings.)
        with made as (
            insert into pipetrak.field_welds as w (component_id, project_id, weld_type, weld_size, schedule, base_metal, spec,
                                                   xray_percent, pwht_required, nde_types, welder_id, date_welded, nde_result)
            select c.id, v_job.project_id, r.weld_type, r.weld_size, r.schedule, r.base_metal, r.spec, r.xray_percent,
                   r.pwht_required, coalesce(r.nde_types, '{}'), wd.id, r.date_welded, r.nde_result
            from pipetrak.import_rows r
            cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = r.drawing_key and lw.tag = r.tag limit 1) c
            left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = r.stencil
            where r.import_id = p_import_id and r.project_id = v_job.project_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld'
            on conflict (component_id, project_id) do nothing
            returning 1)
        select count(*) into v_welds from made;
        if v_job.kind = 'field_welds' then
            with merged as (
                -- row(….*): on Citus the rows are the shard's own types.
                select row(w.*)::pipetrak.field_welds as before,
                       pipetrak.import_weld_merge(row(w.*)::pipetrak.field_welds, row(r.*)::pipetrak.import_rows, wd.id) as after
                from pipetrak.import_rows r
                cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = r.drawing_key and lw.tag = r.tag limit 1) c
                join pipetrak.field_welds w on w.component_id = c.id and w.project_id = v_job.project_id
                left join pipetrak.welders wd on wd.project_id = v_job.project_id and wd.stencil = r.stencil
                where r.import_id = p_import_id and r.project_id = v_job.project_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld'
                  and pipetrak.import_weld_merge(row(w.*)::pipetrak.field_welds, row(r.*)::pipetrak.import_rows, wd.id)
                      is distinct from row(w.*)::pipetrak.field_welds),
            changed as (
                update pipetrak.field_welds f set
                    weld_type = (m.after).weld_type, weld_size = (m.after).weld_size, schedule = (m.after).schedule,
                    base_metal = (m.after).base_metal, spec = (m.after).spec, xray_percent = (m.after).xray_percent,
                    pwht_required = (m.after).pwht_required, nde_types = (m.after).nde_types, welder_id = (m.after).welder_id,
                    date_welded = (m.after).date_welded, nde_result = (m.after).nde_result, updated_at = now()
                from merged m
                where f.component_id = (m.before).component_id and f.project_id = v_job.project_id
                returning f.component_id)
            insert into pipetrak.weld_events (project_id, component_id, action, before, after, reason, actor)
            select v_job.project_id, (m.before).component_id, 'imported', d.before, d.after, format('import %s', p_import_id),
                   coalesce(pipetrak.current_user_id(), v_job.created_by)
            from merged m
            join changed x on x.component_id = (m.before).component_id
            cross join lateral (
                select jsonb_object_agg(b.key, b.value) as before, jsonb_object_agg(b.key, to_jsonb(m.after) -> b.key) as after
                from jsonb_each(to_jsonb(m.before)) b
                where b.key <> 'updated_at' and to_jsonb(m.after) -> b.key is distinct from b.value) d;
            get diagnostics v_changed = row_count;
            v_updated := v_updated + v_changed;
            -- A weld's status follows its methods and tier (spec §7.4): where the log changed
            -- them, it is decided again from the results the weld holds (only a weld with a
            -- result can have another status).
            update pipetrak.field_welds f set status = (select n.status from pipetrak.weld_nde_state(f.component_id, f.project_id) n)
            where f.project_id = v_job.project_id and f.component_id in (
                    select c.id from pipetrak.import_rows r
                    cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = v_job.project_id and lw.drawing_key = r.drawing_key and lw.tag = r.tag limit 1) c
                    where r.import_id = p_import_id and r.project_id = v_job.project_id and r.chunk = v_chunk and r.status = 'valid' and r.component_type = 'field_weld')
              and f.current_nde <> '{}'
              and f.status is distinct from (select n.status from pipetrak.weld_nde_state(f.component_id, f.project_id) n);
        end if;
        -- A weld log marks its welds welded and records their NDE (spec §7).
        if v_job.kind = 'field_welds' then
            v_marked := pipetrak.import_mark_welds(p_import_id, v_job.project_id, v_chunk);
        end if;

        -- The job's counts are worked out here and written as values: Citus takes no CASE of
        -- a stable function, nor a stable function of the row's columns, in an UPDATE's SET.
        v_last := v_job.chunks_done + 1 >= v_job.chunks_total;
        v_totals := jsonb_build_object(
                'components_created', coalesce((v_job.result ->> 'components_created')::integer, 0) + v_created,
                'components_updated', coalesce((v_job.result ->> 'components_updated')::integer, 0) + v_updated,
                'welds_written', coalesce((v_job.result ->> 'welds_written')::integer, 0) + v_welds,
                'drawings_created', coalesce((v_job.result ->> 'drawings_created')::integer, 0) + v_drawings,
                'references_created', coalesce((v_job.result ->> 'references_created')::integer, 0) + v_references,
                'welders_created', coalesce((v_job.result ->> 'welders_created')::integer, 0) + v_welders)
            -- A weld log also tells how many welds it welded and results it recorded.
            || case when v_job.kind = 'field_welds' then jsonb_build_object(
                   'welds_welded', coalesce((v_job.result ->> 'welds_welded')::integer, 0) + coalesce((v_marked ->> 'welded')::integer, 0),
                   'nde_recorded', coalesce((v_job.result ->> 'nde_recorded')::integer, 0) + coalesce((v_marked ->> 'nde')::integer, 0))
               else '{}' end;
        v_committed_at := case when v_last then now() end;
        v_staged_until := case when v_last then now() + interval '1 day' else v_job.staged_until end;
        update pipetrak.import_jobs set
            chunks_done = v_job.chunks_done + 1,
            status = case when v_last then 'committed' else v_job.status end,
            committed_at = v_committed_at,
            staged_until = v_staged_until,
            result = v_totals,
            updated_at = now()
        where id = p_import_id and project_id = v_job.project_id
        returning * into v_job;
        if v_job.status = 'committed' then
            perform pipetrak.import_apply_budgets(p_import_id);
            -- A job that made a tenth of the table or more leaves statistics that have seen only
            -- its first chunk: the set-based statements of the next validation (the file again,
            -- compared with every component) would plan their joins for a table ten times smaller.
            -- (Not on Citus, as above.)
            if (v_job.result ->> 'components_created')::integer > 1000 and not pipetrak.distributed()
               and (v_job.result ->> 'components_created')::integer * 10 > (
                       select c.reltuples from pg_catalog.pg_class c where c.oid = 'pipetrak.components'::regclass) then
                analyze pipetrak.components;
            end if;
            -- The same for the drawings it made: a validation joining the file's rows to drawings
            -- that statistics still count as none probed every component by its tag (the trigram
            -- index), minutes instead of seconds.
            if (v_job.result ->> 'drawings_created')::integer > 100 and not pipetrak.distributed()
               and (v_job.result ->> 'drawings_created')::integer * 10 > (
                       select c.reltuples from pg_catalog.pg_class c where c.oid = 'pipetrak.drawings'::regclass) then
                analyze pipetrak.drawings;
            end if;
        end if;
        -- Ids and counts only, signed, on the project's secret channel: LISTEN ignores row-level security.
        perform pipetrak.notify_project(v_job.project_id, jsonb_build_object(
            'kind', 'import_progress', 'import_id', p_import_id, 'chunk', v_chunk + 1, 'chunks_total', v_job.chunks_total,
            'status', v_job.status, 'components_created', v_created));
    elsif v_job.status = 'committing' then
        -- A job with no rows to write.
        update pipetrak.import_jobs set status = 'committed', committed_at = now(), updated_at = now(),
            staged_until = now() + interval '1 day'
        where id = p_import_id and project_id = v_job.project_id returning * into v_job;
    end if;
    v_result := jsonb_build_object('import_id', p_import_id, 'status', v_job.status, 'chunks_done', v_job.chunks_done,
                                   'chunks_total', v_job.chunks_total) || v_job.result;
    return v_result;
end
$$;

-- Records the components the reported fresh rows of one chunk made (not the rows in `p_apart`),
-- and, in a file with reported rows, every pipe row's feet: a fixed row may move its feet onto a
-- pipe other rows of the file make (a size fixed from `2 SCH` to `2`), which then sums them all.
-- Pipes are the file's truth: footage recorded from other imports' rows is dropped, and a pipe
-- whose rows are recorded is the sum of their feet.
create function pipetrak.import_record_sources(p_import_id bigint, p_project_id bigint, p_chunk integer, p_apart integer[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    v_pipes bigint[];
    v_reported boolean;
begin
    select coalesce((j.summary -> 'issues' ->> 'error')::integer, 0) + coalesce((j.summary -> 'issues' ->> 'warning')::integer, 0) > 0
    into v_reported
    from pipetrak.import_jobs j where j.id = p_import_id and j.project_id = p_project_id;
    if not v_reported then
        return;
    end if;
    with made as (
        insert into pipetrak.component_sources as s (component_id, project_id, import_id, line, footage)
        select c.id, p_project_id, p_import_id, r.line,
               case when r.component_type = any (pipetrak.component_types('linear_aggregate')) then r.quantity end
        from pipetrak.import_rows r
        cross join lateral generate_series(r.seq_from, r.seq_to) as q(seq)
        -- Lateral probes of the drawing and identity indexes, one per component: a join could
        -- hash the project's components (their statistics are stale while an import writes them).
        cross join lateral (
            select x.id from pipetrak.drawings x
            where x.project_id = p_project_id and x.drawing_key = r.drawing_key and x.retired_at is null
            limit 1) d
        cross join lateral (
            select x.id from pipetrak.components x
            where x.project_id = p_project_id and x.retired_at is null
              and x.identity_key = pipetrak.identity_key(r.component_type, d.id, r.tag, r.size, q.seq)
            limit 1) c
        where r.import_id = p_import_id and r.project_id = p_project_id and r.chunk = p_chunk and r.status = 'valid'
          and (r.reported or r.component_type = any (pipetrak.component_types('linear_aggregate')))
          and r.line <> all (p_apart)
        on conflict (import_id, line, component_id, project_id) do update set footage = excluded.footage
        returning s.component_id, s.footage)
    select array_agg(distinct m.component_id) filter (where m.footage is not null) into v_pipes from made m;
    if v_pipes is null then
        return;
    end if;
    delete from pipetrak.component_sources s
    where s.component_id = any (v_pipes) and s.project_id = p_project_id and s.import_id <> p_import_id
      and not exists (select from pipetrak.import_rows r where r.import_id = p_import_id and r.project_id = p_project_id and r.origin_import_id = s.import_id);
    perform pipetrak.import_sum_footage(p_project_id, v_pipes);
end
$$;

-- Each pipe of `p_pipes` (of project `p_project_id`) takes the sum of the feet its recorded rows
-- gave it; a pipe left with no recorded rows and no progress is retired (a fixed row moved its
-- footage to another pipe). The new values are worked out before the UPDATE's SET, which then
-- only copies them (Citus takes no CASE of a stable function there).
create function pipetrak.import_sum_footage(p_project_id bigint, p_pipes bigint[])
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
begin
    with sums as (
        select c.id, x.footage, x.recorded, c.earned_total,
               case when not x.recorded and c.earned_total = 0 then now() end as retired_at
        from pipetrak.components c
        cross join lateral (
            select sum(s.footage) as footage, count(*) > 0 as recorded
            from pipetrak.component_sources s
            where s.component_id = c.id and s.project_id = p_project_id) x
        where c.id = any (p_pipes) and c.project_id = p_project_id and c.retired_at is null)
    update pipetrak.components c set
        quantity = case when x.footage > 0 then x.footage else c.quantity end,
        retired_at = x.retired_at,
        updated_at = now(), version = c.version + 1
    from sums x
    where c.id = x.id and c.project_id = p_project_id
      and ((x.footage > 0 and c.quantity <> x.footage) or (not x.recorded and x.earned_total = 0));
end
$$;

-- A file whose fixed rows a remediation import committed before it: the seqs of its counted items'
-- rows still to commit are numbered again, in file order, counting the items each fixed row made
-- (what the corrected file would have numbered), so they come before or after those as the rows
-- do instead of colliding with them.
create function pipetrak.import_renumber_after_fixes(p_import_id bigint)
returns void
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The job's project: its staged rows are on its shard (19_distribution.sql).
    v_project bigint := pipetrak.import_project(p_import_id);
begin
    with fixed as (
        select s.line, c.component_type, d.drawing_key, c.tag, c.size, count(*)::integer as n
        from pipetrak.component_sources s
        join pipetrak.components c on c.id = s.component_id and c.project_id = s.project_id and c.retired_at is null
        join pipetrak.drawings d on d.id = c.drawing_id and d.project_id = c.project_id
        where s.import_id = p_import_id and s.project_id = v_project and c.component_type = any (pipetrak.component_types('per_seq'))
        group by 1, 2, 3, 4, 5),
    waiting as (
        select r.line, r.component_type, r.drawing_key, r.tag, r.size, r.seq_to - r.seq_from + 1 as n
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = v_project and r.status = 'valid' and r.component_type = any (pipetrak.component_types('per_seq'))
          and not exists (select from pipetrak.component_sources s where s.import_id = p_import_id and s.project_id = v_project and s.line = r.line)),
    numbered as (
        select x.line, x.n, x.waits,
               1 + coalesce(sum(x.n) over (partition by x.component_type, x.drawing_key, x.tag, x.size order by x.line
                                           rows between unbounded preceding and 1 preceding), 0)::integer as seq_from
        from (select f.*, false as waits from fixed f union all select w.*, true from waiting w) x)
    update pipetrak.import_rows r set seq_from = x.seq_from, seq_to = x.seq_from + x.n - 1
    from numbered x
    where r.import_id = p_import_id and r.project_id = v_project and r.line = x.line and x.waits
      and (r.seq_from, r.seq_to) is distinct from (x.seq_from, x.seq_from + x.n - 1);
end
$$;

-- The first seq a counted item's row takes in the corrected file: one after the items of the
-- rows before it in the original (each as a remediation import `p_import_id` fixed it, or as the
-- original read it when valid and not fixed).
create function pipetrak.import_seq_in_file(p_import_id bigint, p_origin_import_id bigint, p_origin_line integer,
                                            p_component_type text, p_drawing_key text, p_tag text, p_size text)
returns integer
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    -- The job's project: its staged rows are on its shard (19_distribution.sql).
    v_project bigint := pipetrak.import_project(p_import_id);
begin
    return (
        select 1 + coalesce(sum(x.seq_to - x.seq_from + 1), 0)::integer
        from (
            select o.component_type, o.drawing_key, o.tag, o.size, o.seq_from, o.seq_to
            from pipetrak.import_rows o
            where o.import_id = p_origin_import_id and o.project_id = v_project and o.status = 'valid' and o.line < p_origin_line
              and not exists (select from pipetrak.import_rows f
                              where f.import_id = p_import_id and f.project_id = v_project and f.origin_import_id = p_origin_import_id and f.origin_line = o.line)
            union all
            select f.component_type, f.drawing_key, f.tag, f.size, f.seq_from, f.seq_to
            from pipetrak.import_rows f
            where f.import_id = p_import_id and f.project_id = v_project and f.status = 'valid' and f.origin_import_id = p_origin_import_id
              and f.origin_line < p_origin_line) x
        where (x.component_type, x.drawing_key, x.tag, x.size) = (p_component_type, p_drawing_key, p_tag, p_size));
end
$$;

-- Remediation rows of one chunk, in file order. A row whose original row made components
-- corrects them: a pipe's feet move to the pipe the row names; counted items keep their seq while
-- their item stays the same, else take the next free seqs of their new item; an id or instrument
-- whose new identity another live component holds is left as it was; a type changed on a
-- component without progress retires it for a new one (with progress it is left alone). A row
-- whose original made nothing yet makes it (counted items on the next free seqs, so they add to
-- what the original's other rows made). Returns {created, updated, left}.
create function pipetrak.import_apply_remediation(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
    r pipetrak.import_rows;
    v_drawing pipetrak.drawings;
    v_linked bigint[];
    v_component pipetrak.components;
    v_target bigint;
    v_count integer;
    v_seq integer;
    v_per_seq boolean;
    v_created integer := 0;
    v_updated integer := 0;
    v_left integer := 0;
    v_names text[];
begin
    for r in
        select * from pipetrak.import_rows x
        where x.import_id = p_import_id and x.project_id = p_project_id and x.chunk = p_chunk and x.status = 'valid' and x.origin_import_id is not null
        order by x.line
    loop
        select * into v_drawing from pipetrak.drawings d
        where d.project_id = p_project_id and d.drawing_key = r.drawing_key and d.retired_at is null;
        select m.names into v_names from pipetrak.milestone_templates m
        where m.project_id = p_project_id and m.component_type = r.component_type;
        v_linked := array(
            select c.id from pipetrak.component_sources s join pipetrak.components c on c.id = s.component_id and c.project_id = s.project_id
            where s.import_id = r.origin_import_id and s.project_id = p_project_id and s.line = r.origin_line and c.retired_at is null
            order by c.seq, c.id);
        v_per_seq := r.component_type = any (pipetrak.component_types('per_seq'));

        if r.component_type = any (pipetrak.component_types('linear_aggregate')) then
            select c.id into v_target from pipetrak.components c
            where c.project_id = p_project_id and c.retired_at is null
              and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, 1);
            if v_target is null then
                insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                                 spec, attributes, area_id, system_id, test_package_id, milestone_values)
                values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, 1, r.quantity, r.description, r.spec,
                        r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                        array_fill(0::numeric, array[cardinality(v_names)]))
                returning id into v_target;
                v_created := v_created + 1;
            elsif v_linked is not null and v_target = any (v_linked) then
                v_updated := v_updated + 1;
            end if;
            delete from pipetrak.component_sources s
            where s.import_id = r.origin_import_id and s.project_id = p_project_id and s.line = r.origin_line and s.component_id <> v_target;
            insert into pipetrak.component_sources (component_id, project_id, import_id, line, footage)
            values (v_target, p_project_id, r.origin_import_id, r.origin_line, r.quantity)
            on conflict (import_id, line, component_id, project_id) do update set footage = excluded.footage;
            perform pipetrak.import_sum_footage(p_project_id, array_append(v_linked, v_target));
            continue;
        end if;

        v_count := r.seq_to - r.seq_from + 1;
        for i in 1 .. greatest(v_count, cardinality(v_linked)) loop
            exit when i > v_count;
            if i <= cardinality(v_linked) then
                select * into v_component from pipetrak.components where id = v_linked[i] and project_id = p_project_id;
                if v_component.component_type <> r.component_type then
                    if v_component.earned_total > 0 then
                        v_left := v_left + 1;
                        continue;
                    end if;
                    update pipetrak.components set retired_at = now(), updated_at = now(), version = version + 1
                    where id = v_component.id and project_id = p_project_id;
                    delete from pipetrak.component_sources s
                    where s.import_id = r.origin_import_id and s.project_id = p_project_id and s.line = r.origin_line and s.component_id = v_component.id;
                elsif (v_component.drawing_id, v_component.tag, v_component.size) = (v_drawing.id, r.tag, r.size) then
                    update pipetrak.components set description = r.description, spec = r.spec,
                        attributes = attributes || r.attributes, updated_at = now(), version = version + 1
                    where id = v_component.id and project_id = p_project_id
                      and (description, spec, attributes) is distinct from (r.description, r.spec, attributes || r.attributes);
                    if found then
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                else
                    v_seq := case when v_per_seq then pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size) else 1 end;
                    if exists (select from pipetrak.components c where c.project_id = p_project_id and c.retired_at is null
                               and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq)) then
                        v_left := v_left + 1;
                    else
                        update pipetrak.components set drawing_id = v_drawing.id, tag = r.tag, size = r.size, seq = v_seq,
                            description = r.description, spec = r.spec, attributes = attributes || r.attributes,
                            updated_at = now(), version = version + 1
                        where id = v_component.id and project_id = p_project_id;
                        v_updated := v_updated + 1;
                    end if;
                    continue;
                end if;
            end if;
            -- Nothing made yet for this seq of the row: make it, on the seq the corrected file gives it
            -- when that is free (its original, committed later, then makes the seqs before it), else
            -- on the next free one.
            v_seq := 1;
            if v_per_seq then
                v_seq := pipetrak.import_seq_in_file(p_import_id, r.origin_import_id, r.origin_line, r.component_type,
                                                     r.drawing_key, r.tag, r.size) + i - 1;
                if exists (select from pipetrak.components c where c.project_id = p_project_id and c.retired_at is null
                           and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq)) then
                    v_seq := pipetrak.import_next_seq(p_project_id, v_drawing.id, r.component_type, r.tag, r.size);
                end if;
            end if;
            insert into pipetrak.components (project_id, drawing_id, component_type, tag, size, seq, quantity, description,
                                             spec, attributes, area_id, system_id, test_package_id, milestone_values)
            values (p_project_id, v_drawing.id, r.component_type, r.tag, r.size, v_seq, 1, r.description, r.spec,
                    r.attributes, v_drawing.area_id, v_drawing.system_id, v_drawing.test_package_id,
                    array_fill(0::numeric, array[cardinality(v_names)]))
            on conflict (project_id, identity_key) where retired_at is null do nothing
            returning id into v_target;
            if v_target is null then
                select c.id into v_target from pipetrak.components c
                where c.project_id = p_project_id and c.retired_at is null
                  and c.identity_key = pipetrak.identity_key(r.component_type, v_drawing.id, r.tag, r.size, v_seq);
            else
                v_created := v_created + 1;
            end if;
            insert into pipetrak.component_sources (component_id, project_id, import_id, line)
            values (v_target, p_project_id, r.origin_import_id, r.origin_line)
            on conflict do nothing;
        end loop;
    end loop;
    return jsonb_build_object('created', v_created, 'updated', v_updated, 'left', v_left);
end
$$;

-- The next seq of a counted item: one past the highest its live components hold.
create function pipetrak.import_next_seq(p_project_id bigint, p_drawing_id bigint, p_type text, p_tag text, p_size text)
returns integer
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select coalesce(max(c.seq), 0) + 1 from pipetrak.components c
        where c.project_id = p_project_id and c.drawing_id = p_drawing_id and c.component_type = p_type
          and c.tag = p_tag and c.size = p_size and c.retired_at is null);
end
$$;

-- A weld log's welds of one chunk with a welder and a date welded are made welded the way a
-- foreman would (Fit-up and Weld Complete at 100 with the date welded as work date, audited, one
-- "weld completed" review item), and an NDE result is recorded through the NDE records (the method
-- is the weld's one listed NDE type, or RT for an x-ray tier; otherwise the result stays a weld
-- fact). A log is the historical record: its dates may lie in a locked week (never in the future:
-- the reader refuses those). What is already so is left alone, so importing a log again changes
-- nothing. Returns {welded, nde}.
create function pipetrak.import_mark_welds(p_import_id bigint, p_project_id bigint, p_chunk integer)
returns jsonb
language plpgsql volatile
set search_path = pg_catalog, pg_temp
as $$
declare
    r record;
    v_welded integer := 0;
    v_nde integer := 0;
    v_result jsonb;
begin
    insert into pipetrak.historical_writes (txid) values (txid_current()) on conflict do nothing;
    for r in
        -- The weld's welder and date as merged (a date the field recorded wins over the file's).
        select w.id, f.date_welded, wd.stencil, x.nde_result, f.nde_types, f.xray_percent, f.current_nde,
               c.milestone_values[array_position(t.names, 'Fit-up')] as fit_up,
               c.milestone_values[array_position(t.names, 'Weld Complete')] as weld_complete
        from pipetrak.import_rows x
        cross join lateral (select lw.id from pipetrak.live_welds lw where lw.project_id = p_project_id and lw.drawing_key = x.drawing_key and lw.tag = x.tag limit 1) w
        join pipetrak.components c on c.id = w.id and c.project_id = p_project_id
        join pipetrak.field_welds f on f.component_id = w.id and f.project_id = p_project_id
        left join pipetrak.welders wd on wd.id = f.welder_id and wd.project_id = f.project_id
        join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
        where x.import_id = p_import_id and x.project_id = p_project_id and x.chunk = p_chunk and x.status = 'valid' and x.component_type = 'field_weld'
          and ((x.stencil is not null and x.date_welded is not null) or x.nde_result is not null)
        order by x.line
    loop
        if r.stencil is not null and r.date_welded is not null and r.weld_complete < 100 then
            if r.fit_up < 100 then
                perform pipetrak.update_milestone(r.id, 'Fit-up', 100, r.date_welded, 'weld log import', null, null);
            end if;
            v_result := pipetrak.update_milestone(r.id, 'Weld Complete', 100, r.date_welded, 'weld log import', null, null);
            insert into pipetrak.review_items (project_id, component_id, event_id, kind, details)
            values (p_project_id, r.id, (v_result ->> 'event_id')::bigint, 'weld_completed',
                    jsonb_build_object('welder', r.stencil, 'date_welded', r.date_welded, 'import_id', p_import_id));
            v_welded := v_welded + 1;
        end if;
        if r.nde_result is not null and (cardinality(r.nde_types) = 1 or (cardinality(r.nde_types) = 0 and r.xray_percent > 0))
           and exists (select from pipetrak.field_welds f where f.component_id = r.id and f.project_id = p_project_id
                       and f.welder_id is not null and f.date_welded is not null)
           -- A result recorded for the method (in the field or by an earlier import) is never
           -- superseded by a file: only a method without one takes the file's.
           and r.current_nde ->> coalesce(r.nde_types[1], 'RT') is null then
            perform pipetrak.write_nde(r.id, coalesce(r.nde_types[1], 'RT'), r.nde_result, null, null, null, 'weld log import');
            v_nde := v_nde + 1;
        end if;
    end loop;
    delete from pipetrak.historical_writes where txid = txid_current();
    return jsonb_build_object('welded', v_welded, 'nde', v_nde);
end
$$;

-- Commits in one call: every remaining chunk, or at most `p_max_chunks` of them (one request per
-- chunk through PostgREST). Calling it again resumes where the last call stopped.
create function pipetrak.import_commit(p_import_id bigint, p_skip_invalid_rows boolean, p_max_chunks integer)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_state jsonb;
    v_done integer := 0;
begin
    if p_max_chunks is not null and p_max_chunks < 1 then
        perform pipetrak.raise_error('invalid_argument', '{"argument": "max_chunks", "expected": "a positive number of chunks, or null for all"}');
    end if;
    loop
        v_state := pipetrak.import_commit_chunk(p_import_id, p_skip_invalid_rows);
        v_done := v_done + 1;
        exit when v_state ->> 'status' = 'committed' or v_done >= coalesce(p_max_chunks, 2147483647);
    end loop;
    return v_state;
end
$$;

-- The remediation CSV (spec §6.3): the reported rows (see import_mark_reported) in their original
-- columns, then the row in the original file, the reference to it (`<import id>:<row>`) and the
-- issues. A row of a remediation import points at its original row still.
create function pipetrak.import_report_csv(p_import_id bigint)
returns text
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
-- Set-based statements over staged rows: JIT compilation costs more than it saves here, and
-- index probes stay right even while a big import leaves the statistics of components stale.
set jit = off
set enable_seqscan = off
as $$
declare
    v_job pipetrak.import_jobs;
    v_header text[];
    v_csv text;
    v_project bigint := pipetrak.import_project(p_import_id);
begin
    select * into v_job from pipetrak.import_jobs
    where id = p_import_id and project_id = v_project and project_id in (select pipetrak.my_project_ids('manage_project_data'));
    if v_job.id is null then
        perform pipetrak.raise_error('import_not_found', jsonb_build_object('import_id', p_import_id));
    end if;
    if v_job.summary is null or v_job.summary -> 'header' is null or jsonb_typeof(v_job.summary -> 'header') <> 'array' then
        perform pipetrak.raise_error('import_not_validated', jsonb_build_object('import_id', p_import_id, 'status', v_job.status));
    end if;
    v_header := array(select jsonb_array_elements_text(v_job.summary -> 'header'));
    with report as (
        select r.line, coalesce(r.origin_line, r.line) as original_line,
               format('%s:%s', coalesce(r.origin_import_id, p_import_id), coalesce(r.origin_line, r.line)) as reference,
               coalesce((select string_agg(format('%s: %s', i ->> 'code', i ->> 'message'), '; ')
                         from jsonb_array_elements(r.issues) i where i ->> 'severity' <> 'info'),
                        case when r.component_type = any (pipetrak.component_types('linear_aggregate'))
                             then 'included so the footage of this pipe adds up; already valid'
                             else 'included so the quantities of this item add up; already valid' end) as notes
        from pipetrak.import_rows r
        where r.import_id = p_import_id and r.project_id = v_job.project_id and r.reported)
    select pipetrak.render_report_csv(v_header, array_agg(to_jsonb(c.cells) order by r.line),
               array_agg(r.original_line order by r.line), array_agg(r.reference order by r.line), array_agg(r.notes order by r.line))
    into v_csv
    from report r
    join pipetrak.import_file_cells(v_job.content, v_job.kind, array(select line from report)) c on c.line = r.line;
    return coalesce(v_csv, pipetrak.render_report_csv(v_header, '{}', '{}', '{}', '{}'));
end
$$;

-- ---- API ----

-- Jobs of your projects (without the file's bytes).
create view pipetrak_api.imports with (security_invoker = true) as
select id, project_id, kind, filename, format, length(content) as size_bytes, status, summary, skip_invalid_rows,
       chunks_total, chunks_done, result, created_by, created_at, validated_at, committed_at, updated_at
from pipetrak.import_jobs;
comment on view pipetrak_api.imports is 'Import jobs of the projects you may import into: status, validation summary, commit progress and result.';

-- Every issue of every validated job: file-level ones (row 0 or the header row) and per row.
create view pipetrak_api.import_issues with (security_invoker = true) as
select j.id as import_id, j.project_id, (i ->> 'line')::integer as row, i ->> 'column' as column, i ->> 'value' as value,
       i ->> 'severity' as severity, i ->> 'code' as code, i ->> 'message' as message, i ->> 'hint' as hint
from pipetrak.import_jobs j
cross join lateral jsonb_array_elements(coalesce(j.summary -> 'file_issues', '[]')) as i
union all
select r.import_id, j.project_id, (i ->> 'line')::integer, i ->> 'column', i ->> 'value', i ->> 'severity', i ->> 'code',
       i ->> 'message', i ->> 'hint'
from pipetrak.import_rows r
join pipetrak.import_jobs j on j.id = r.import_id and j.project_id = r.project_id
cross join lateral jsonb_array_elements(r.issues) as i;
comment on view pipetrak_api.import_issues is 'Validation issues of import jobs: row (as Excel shows it), column, value, severity, stable code, message and hint.';

-- The SET clause keeps it a function call, which hands the file on by reference: inlined into
-- the caller's query, the file would be copied once more (50 MB for a 50 MB upload).
create function pipetrak_api.import_upload(project_id bigint, kind text, filename text, content bytea)
returns bigint
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$ select pipetrak.import_upload(project_id, pipetrak.limited('kind', kind), pipetrak.limited('filename', filename), content) $$;
comment on function pipetrak_api.import_upload(bigint, text, text, bytea) is
    'Uploads a takeoff (kind => takeoff), field-weld log (field_welds), schedule export (schedule: a new baseline version) or timesheet (timesheet: actual hours) as CSV, .xlsx or .xls (at most 50 MB); returns the import id. Owner, admin or project manager.';

create function pipetrak_api.import_validate(import_id bigint)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.import_validate(import_id) $$;
comment on function pipetrak_api.import_validate(bigint) is
    'Dry run: reads and checks every row, compares with the project; returns the summary (rows, issues, what a commit would create/update/leave alone). Writes only the report.';

create function pipetrak_api.import_report_csv(import_id bigint)
returns text
language sql stable security invoker
as $$ select pipetrak.import_report_csv(import_id) $$;
comment on function pipetrak_api.import_report_csv(bigint) is
    'The remediation CSV: rows with errors or warnings (and the other rows of their item or pipe) in their original columns, plus PIPETRAK ROW, PIPETRAK REF and PIPETRAK ISSUES. Fix it and import it again: fixed rows correct what their original rows made.';

create function pipetrak_api.import_commit(import_id bigint, skip_invalid_rows boolean default false, max_chunks integer default null)
returns jsonb
language sql volatile security invoker
as $$ select pipetrak.import_commit(import_id, skip_invalid_rows, max_chunks) $$;
comment on function pipetrak_api.import_commit(bigint, boolean, integer) is
    'Commits a validated import in chunks of 5,000 rows: all of them, or max_chunks per call (call again to resume). Rows with errors block it unless skip_invalid_rows.';

-- From SQL: each chunk commits on its own (no SET clause, invoker: both are required for COMMIT).
create procedure pipetrak_api.import_commit_chunked(import_id bigint, skip_invalid_rows boolean default false)
language plpgsql
as $$
declare
    v_state jsonb;
begin
    loop
        v_state := pipetrak.import_commit_chunk(import_id, skip_invalid_rows);
        commit;
        exit when v_state ->> 'status' = 'committed';
    end loop;
end
$$;
comment on procedure pipetrak_api.import_commit_chunked(bigint, boolean) is
    'CALL it outside a transaction: commits an import chunk by chunk, each in its own transaction with a signed NOTIFY on the project''s channel (project_channel); resumes after a crash.';
