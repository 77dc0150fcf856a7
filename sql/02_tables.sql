-- Tables for tenancy (§2), reference data (§3), components (§4) and milestones (§5).
-- Ids are bigserial so that pg_dump can carry the sequences (see 99_finalize.sql).

-- Who a user is, filled from the JWT claims on first use.
create table pipetrak.user_profiles (
    user_id      uuid primary key,
    email        text,
    display_name text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now()
);
create index user_profiles_email_idx on pipetrak.user_profiles (lower(email));

-- A contractor: owns projects, has members.
create table pipetrak.organizations (
    id         bigserial primary key,
    name       text not null check (btrim(name) <> '' and length(name) <= 200),
    created_by uuid not null,
    created_at timestamptz not null default now()
);

-- One role per user per organization.
create table pipetrak.memberships (
    organization_id bigint not null references pipetrak.organizations on delete cascade,
    user_id         uuid not null,
    role            text not null check (role in ('owner', 'admin', 'project_manager', 'foreman', 'qc_inspector', 'welder', 'viewer')),
    created_by      uuid,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (organization_id, user_id)
);
create index memberships_user_id_idx on pipetrak.memberships (user_id, organization_id);

-- A job: time zone for work dates and locks, sequence mode, week lock.
create table pipetrak.projects (
    id              bigserial primary key,
    organization_id bigint not null references pipetrak.organizations,
    name            text not null check (btrim(name) <> '' and length(name) <= 200),
    job_number      text not null check (btrim(job_number) <> '' and length(job_number) <= 100),
    time_zone       text not null default 'UTC',
    sequence_mode   text not null default 'flag' check (sequence_mode in ('flag', 'enforce', 'off')),
    week_lock       boolean not null default true,
    archived_at     timestamptz,
    created_by      uuid not null,
    created_at      timestamptz not null default now(),
    unique (organization_id, job_number)
);
create index projects_organization_id_idx on pipetrak.projects (organization_id);

-- A project's event keys (spec: realtime). LISTEN ignores privileges and row-level security, so
-- the channel's name is the secret: derived from `channel_key`, handed out only to members, and
-- rotated when someone leaves the organization. `signing_key` signs every payload, so a listener
-- can tell the extension's events from ones anybody who knows the channel sends. No role reads
-- this table.
create table pipetrak.project_secrets (
    project_id  bigint primary key references pipetrak.projects on delete cascade,
    channel_key bytea not null check (length(channel_key) = 32),
    signing_key bytea not null check (length(signing_key) = 32),
    rotated_at  timestamptz not null default now()
);

-- Areas of a plant; names unique (case-insensitive) among live areas of a project.
create table pipetrak.areas (
    id          bigserial,
    project_id  bigint not null references pipetrak.projects,
    name        text not null check (btrim(name) <> '' and length(name) <= 200),
    description text,
    retired_at  timestamptz,
    created_at  timestamptz not null default now(),
    unique (project_id, id),
    primary key (id, project_id)
);
create unique index areas_name_idx on pipetrak.areas (project_id, lower(name)) where retired_at is null;

-- Process systems; same shape as areas.
create table pipetrak.systems (
    id          bigserial,
    project_id  bigint not null references pipetrak.projects,
    name        text not null check (btrim(name) <> '' and length(name) <= 200),
    description text,
    retired_at  timestamptz,
    created_at  timestamptz not null default now(),
    unique (project_id, id),
    primary key (id, project_id)
);
create unique index systems_name_idx on pipetrak.systems (project_id, lower(name)) where retired_at is null;

-- Test packages: what is pressure-tested together, and how.
create table pipetrak.test_packages (
    id                  bigserial,
    project_id          bigint not null references pipetrak.projects,
    name                text not null check (btrim(name) <> '' and length(name) <= 200),
    description         text,
    test_type           text check (test_type in ('Hydrostatic', 'Pneumatic', 'Sensitive Leak', 'Alternative Leak', 'In-service', 'Other')),
    test_pressure       numeric(12, 2) check (test_pressure > 0),
    test_pressure_unit  text check (test_pressure_unit in ('PSIG', 'PSI', 'BAR', 'KPA')),
    target_date         date,
    requires_coating    boolean not null default false,
    requires_insulation boolean not null default false,
    retired_at          timestamptz,
    created_at          timestamptz not null default now(),
    unique (project_id, id),
    check ((test_pressure is null) = (test_pressure_unit is null)),
    primary key (id, project_id)
);
create unique index test_packages_name_idx on pipetrak.test_packages (project_id, lower(name)) where retired_at is null;

-- Isometric drawings. `drawing_key` is the normalized number two spellings of a drawing share.
create table pipetrak.drawings (
    id              bigserial,
    project_id      bigint not null references pipetrak.projects,
    drawing_no      text not null check (btrim(drawing_no) <> '' and length(drawing_no) <= 200),
    drawing_key     text not null generated always as (pipetrak.normalize_drawing_key(drawing_no)) stored,
    sheet           text,
    revision        text,
    title           text,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    retired_at      timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    unique (project_id, id),
    foreign key (project_id, area_id) references pipetrak.areas (project_id, id),
    foreign key (project_id, system_id) references pipetrak.systems (project_id, id),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id),
    primary key (id, project_id)
);
create unique index drawings_key_idx on pipetrak.drawings (project_id, drawing_key) where retired_at is null;
-- Pages of a project's drawings in number order (drawing_progress).
create index drawings_number_idx on pipetrak.drawings (project_id, drawing_no);
create index drawings_area_id_idx on pipetrak.drawings (area_id) where area_id is not null;
create index drawings_system_id_idx on pipetrak.drawings (system_id) where system_id is not null;
create index drawings_test_package_id_idx on pipetrak.drawings (test_package_id) where test_package_id is not null;

-- Sum of a template's weights in one category (the credit available there).
create function pipetrak.category_weight(p_categories text[], p_weights integer[], p_category text)
returns integer
language sql immutable parallel safe
as $$
    select coalesce(sum(w), 0)::integer from unnest(p_categories, p_weights) as u(c, w) where c = p_category
$$;

-- A project's milestone template per component type: parallel arrays in milestone order.
-- Copied from pipetrak.default_milestones() when the project is created.
create table pipetrak.milestone_templates (
    project_id     bigint not null references pipetrak.projects,
    component_type text not null,
    names          text[] not null,
    weights        integer[] not null,
    is_partial     boolean[] not null,
    categories     text[] not null,
    receive_weight integer not null generated always as (pipetrak.category_weight(categories, weights, 'receive')) stored,
    install_weight integer not null generated always as (pipetrak.category_weight(categories, weights, 'install')) stored,
    punch_weight   integer not null generated always as (pipetrak.category_weight(categories, weights, 'punch')) stored,
    test_weight    integer not null generated always as (pipetrak.category_weight(categories, weights, 'test')) stored,
    restore_weight integer not null generated always as (pipetrak.category_weight(categories, weights, 'restore')) stored,
    updated_at     timestamptz not null default now(),
    primary key (project_id, component_type),
    check (pipetrak.parse_component_type(component_type) = component_type),
    -- Weights sum to 100, names are unique, the arrays line up.
    check (pipetrak.template_problem(names, weights, is_partial, categories) is null)
);

-- Welders of a project, by normalized stencil. Imports create unknown stencils unverified.
create table pipetrak.welders (
    id         bigserial,
    project_id bigint not null references pipetrak.projects,
    stencil    text not null check (stencil ~ '^[A-Z0-9-]{2,12}$'),
    name       text,
    verified   boolean not null default false,
    created_at timestamptz not null default now(),
    unique (project_id, id),
    unique (project_id, stencil),
    primary key (id, project_id)
);

-- What makes a component unique among the live components of its project (spec §4); imports
-- compute the same key for rows they compare with the project. Numbers are cast to text
-- explicitly: `text || bigint` is only stable, and an immutable SQL function whose body isn't
-- immutable is never inlined — it would run as a function call per row (~10 µs each).
create function pipetrak.identity_key(p_type text, p_drawing_id bigint, p_tag text, p_size text, p_seq integer)
returns text
language sql immutable parallel safe
as $$
    select case
        when p_type = any (pipetrak.component_types('by_id')) then p_type || '|' || p_tag
        when p_type = any (pipetrak.component_types('per_drawing')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag
        when p_type = any (pipetrak.component_types('linear_aggregate')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_size || '|' || p_tag
        when p_type = any (pipetrak.component_types('single')) then p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag || '|' || p_size
        else p_type || '|' || p_drawing_id::pg_catalog.text || '|' || p_tag || '|' || p_size || '|' || p_seq::pg_catalog.text
    end
$$;

-- The tracked things. Milestone values (0–100, two decimals) line up with the project template of
-- the component's type; earned credit is kept in ten-thousandths of a percent (1_000_000 = 100 %).
-- The project is the drawing's (the (project_id, drawing_id) key below, and drawings reference
-- their project): no key of its own, whose check would cost every insert an index probe and a lock.
create table pipetrak.components (
    id                   bigserial,
    project_id           bigint not null,
    drawing_id           bigint not null,
    component_type       text not null,
    -- The identifying code: commodity code, spool id, weld number or instrument tag (normalized).
    tag                  text not null check (btrim(tag) <> '' and length(tag) <= 200),
    size                 text not null default 'NOSIZE' check (size <> ''),
    seq                  integer not null default 1 check (seq >= 1),
    -- Linear feet for pipe and threaded pipe, 1 otherwise.
    quantity             numeric(14, 2) not null default 1 check (quantity > 0),
    description          text,
    spec                 text,
    attributes           jsonb not null default '{}' check (jsonb_typeof(attributes) = 'object'),
    area_id              bigint,
    system_id            bigint,
    test_package_id      bigint,
    -- Set when assigned on the component itself; otherwise it follows its drawing.
    area_pinned          boolean not null default false,
    system_pinned        boolean not null default false,
    test_package_pinned  boolean not null default false,
    milestone_values     numeric(5, 2)[] not null check (0 <= all (milestone_values) and 100 >= all (milestone_values)),
    earned_total         integer not null default 0 check (earned_total between 0 and 1000000),
    earned_receive       integer not null default 0,
    earned_install       integer not null default 0,
    earned_punch         integer not null default 0,
    earned_test          integer not null default 0,
    earned_restore       integer not null default 0,
    percent_complete     numeric(7, 4) not null generated always as (earned_total / 10000.0) stored,
    version              integer not null default 1,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    retired_at           timestamptz,
    -- What makes the component unique among the live components of its project (spec §4).
    identity_key         text not null generated always as (
        pipetrak.identity_key(component_type, drawing_id, tag, size, seq)) stored,
    -- Installed after its package's pressure test: a member, not testable (spec §10).
    post_hydro           boolean not null default false,
    unique (project_id, id),
    check (earned_total = earned_receive + earned_install + earned_punch + earned_test + earned_restore),
    foreign key (project_id, drawing_id) references pipetrak.drawings (project_id, id),
    foreign key (project_id, component_type) references pipetrak.milestone_templates (project_id, component_type),
    foreign key (project_id, area_id) references pipetrak.areas (project_id, id),
    foreign key (project_id, system_id) references pipetrak.systems (project_id, id),
    foreign key (project_id, test_package_id) references pipetrak.test_packages (project_id, id),
    primary key (id, project_id)
);
create unique index components_identity_idx on pipetrak.components (project_id, identity_key) where retired_at is null;
create index components_drawing_id_idx on pipetrak.components (drawing_id);
create index components_area_id_idx on pipetrak.components (area_id) where area_id is not null;
create index components_system_id_idx on pipetrak.components (system_id) where system_id is not null;
create index components_test_package_id_idx on pipetrak.components (test_package_id) where test_package_id is not null;

-- Weld facts of a field_weld component (spec §7).
create table pipetrak.field_welds (
    component_id  bigint not null,
    project_id    bigint not null references pipetrak.projects,
    weld_type     text check (weld_type in ('BW', 'SW', 'FW', 'TW', 'CW')),
    weld_size     text,
    schedule      text,
    base_metal    text,
    spec          text,
    xray_percent  integer check (xray_percent in (0, 5, 10, 100)),
    pwht_required boolean,
    nde_types     text[] not null default '{}' check (nde_types <@ array['RT', 'UT', 'PT', 'MT', 'VT']),
    welder_id     bigint,
    date_welded   date,
    nde_result    text check (nde_result in ('PASS', 'FAIL', 'PENDING')),
    nde_date      date,
    updated_at    timestamptz not null default now(),
    -- QC status from the current NDE results (pipetrak.weld_status; see 12_welds.sql).
    status        text not null default 'active' check (status in ('active', 'accepted', 'rejected')),
    -- The rejected weld this one repairs (see create_repair in 12_welds.sql).
    repair_of     bigint,
    -- Added in the field, not in the weld log (a note says why).
    unplanned     boolean not null default false,
    unplanned_note text,
    -- The current NDE result per method ({"RT": "PASS", …}) and the first and last examination
    -- dates, kept by write_nde so that reports read them from the weld row.
    current_nde   jsonb not null default '{}',
    first_examined_on date,
    last_examined_on date,
    -- The repair of this weld, once it has one (see create_repair in 12_welds.sql).
    repaired_by   bigint,
    primary key (component_id, project_id),
    foreign key (project_id, welder_id) references pipetrak.welders (project_id, id),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id)
);
-- By project, then component: a project's welds in one range, and a weld by (project, component)
-- whichever of this and the primary key a plan picks (a generic plan made while the table was
-- empty picked this one, scanning the project's welds for each row of an import).
create index field_welds_project_id_idx on pipetrak.field_welds (project_id, component_id);
create index field_welds_welder_id_idx on pipetrak.field_welds (welder_id) where welder_id is not null;

-- The append-only audit log: one row per milestone change (see 04_integrity.sql for the guard).
-- One foreign key to (project, component) rather than one to each: the component row is already
-- locked by the update, while a key-share lock on the project row would be taken by every writer
-- of the project at once (multixacts on one hot row).
create table pipetrak.milestone_events (
    id                bigserial,
    project_id        bigint not null,
    component_id      bigint not null,
    milestone         text not null,
    old_value         numeric(5, 2) not null,
    new_value         numeric(5, 2) not null,
    work_date         date not null,
    user_id           uuid not null,
    created_at        timestamptz not null default now(),
    note              text check (length(note) <= 2000),
    out_of_sequence   boolean not null default false,
    violations        text[] not null default '{}',
    client_request_id text,
    -- The category of the milestone, the credit the change earned (ten-thousandths of a percent of
    -- the component; negative when lowered) and its man-hours at the component's budget then.
    category          text,
    credit            integer not null default 0,
    mh                numeric,
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    primary key (id, project_id)
);
create index milestone_events_component_idx on pipetrak.milestone_events (component_id, id);
create index milestone_events_project_idx on pipetrak.milestone_events (project_id, id);

-- Things QC must look at: out-of-sequence updates, completed welds.
create table pipetrak.review_items (
    id              bigserial,
    project_id      bigint not null,
    component_id    bigint not null,
    event_id        bigint,
    kind            text not null check (kind in ('out_of_sequence', 'weld_completed', 'examination_called')),
    details         jsonb not null default '{}',
    created_at      timestamptz not null default now(),
    resolved_at     timestamptz,
    resolved_by     uuid,
    resolution_note text,
    -- open, resolved (what it asked for happened, or QC says so) or dismissed (QC, with a note).
    status          text not null default 'open' check (status in ('open', 'resolved', 'dismissed')),
    -- The test package of the item's component while the component is live, kept by triggers
    -- (sql/13_packages.sql), so package readiness counts open items without a lookup each.
    test_package_id bigint,
    check ((resolved_at is null) = (resolved_by is null)),
    check ((status = 'open') = (resolved_at is null)),
    foreign key (project_id, component_id) references pipetrak.components (project_id, id),
    foreign key (event_id, project_id) references pipetrak.milestone_events (id, project_id),
    primary key (id, project_id)
);
create index review_items_open_idx on pipetrak.review_items (project_id, id) where resolved_at is null;
create index review_items_component_idx on pipetrak.review_items (component_id);
create index review_items_open_package_idx on pipetrak.review_items (project_id, test_package_id) where resolved_at is null;

-- Replays of offline updates: the first result of each client request id, returned again on replay.
create table pipetrak.client_requests (
    user_id           uuid not null,
    client_request_id text not null check (length(client_request_id) between 1 and 200),
    project_id        bigint not null references pipetrak.projects,
    result            jsonb not null,
    created_at        timestamptz not null default now(),
    primary key (user_id, client_request_id, project_id)
);
create index client_requests_project_idx on pipetrak.client_requests (project_id);

-- Man-hour budgets (spec §11): versions per project, one active; the active version's budget per
-- component.
create table pipetrak.budget_versions (
    id             bigserial,
    project_id     bigint not null references pipetrak.projects,
    version        integer not null,
    method         text not null check (method in ('spread', 'import')),
    total_mh       numeric(14, 2) not null check (total_mh >= 0),
    reason         text not null check (btrim(reason) <> '' and length(reason) <= 2000),
    effective_date date not null,
    active         boolean not null default true,
    components     integer not null default 0,
    guessed_sizes  integer not null default 0,
    created_by     uuid not null,
    created_at     timestamptz not null default now(),
    unique (project_id, version),
    unique (project_id, id),
    primary key (id, project_id)
);
create unique index budget_versions_active_idx on pipetrak.budget_versions (project_id) where active;

-- No foreign keys: only the extension writes these rows, from components and versions it has just
-- read (components are retired, never deleted), and checking two keys per row tripled the time
-- of spreading a budget over a large project.
create table pipetrak.component_budgets (
    component_id bigint not null,
    project_id   bigint not null,
    version_id   bigint not null,
    budget_mh    numeric(14, 4) not null check (budget_mh >= 0),
    primary key (component_id, project_id)
);
create index component_budgets_project_idx on pipetrak.component_budgets (project_id);

-- Pre-aggregated progress: one row per (drawing, area, system, test package, type) that holds live
-- components, kept current by statement triggers on components. Rollups sum these rows instead of
-- scanning components, and a milestone update touches one of them (no row shared by a project).
create table pipetrak.progress_parts (
    project_id      bigint not null,
    drawing_id      bigint not null,
    area_id         bigint,
    system_id       bigint,
    test_package_id bigint,
    component_type  text not null,
    component_count integer not null default 0,
    completed_count integer not null default 0,
    earned_total    bigint not null default 0,
    earned_receive  bigint not null default 0,
    earned_install  bigint not null default 0,
    earned_punch    bigint not null default 0,
    earned_test     bigint not null default 0,
    earned_restore  bigint not null default 0,
    -- For test-package readiness (spec §10): post-hydro members, and testable members ready.
    post_hydro_count integer not null default 0,
    ready_count     integer not null default 0,
    -- Man-hours (spec §11): the members' budget, and Σ budget × earned credit (ppm) per category;
    -- earned man-hours are these ÷ 1,000,000.
    budget_mh       numeric not null default 0,
    mh_receive      numeric not null default 0,
    mh_install      numeric not null default 0,
    mh_punch        numeric not null default 0,
    mh_test         numeric not null default 0,
    mh_restore      numeric not null default 0,
    constraint progress_parts_key unique nulls not distinct (project_id, drawing_id, area_id, system_id, test_package_id, component_type),
    -- One key checks both the drawing and, through it, the project (as for components).
    foreign key (project_id, drawing_id) references pipetrak.drawings (project_id, id)
);
create index progress_parts_area_idx on pipetrak.progress_parts (project_id, area_id);
-- Transactions that maintain progress_parts themselves for a while (a bulk milestone update): the
-- progress trigger skips their statements. Only the extension's own functions write it, so a
-- user who sets pipetrak.progress_deferred can't make the trigger skip anything.
create table pipetrak.progress_deferrals (
    backend_pid integer not null,
    xact        xid8 not null,
    primary key (backend_pid, xact)
);
create index progress_parts_system_idx on pipetrak.progress_parts (project_id, system_id);
create index progress_parts_test_package_idx on pipetrak.progress_parts (project_id, test_package_id);

-- The parts summed per test package, with the package's open review items: one row per package,
-- kept by triggers on progress_parts (04_integrity.sql) and on review_items (13_packages.sql),
-- whoever writes them. The screens opened most read these rows: the project dashboard (totals,
-- packages ready, open items) and package readiness, instead of every part and open item of a
-- large project (18,000 parts and 20,000 items for 1,000,000 components: 25 ms a dashboard).
-- Components and items in no package have no row here (readers take them from the parts and the
-- items): a row every unpackaged write of a project shared would make its writers wait for each
-- other's commits. Within one statement, writers lock package rows in key order (the parts are
-- written in (project, package, …) order). A package's row is held to commit like a part's, so a
-- transaction of many statements (an import's commit, a move of components with open items) can
-- still meet a concurrent writer of the same package in a deadlock, which PostgreSQL breaks by
-- failing one of them (40P01; the request can be sent again). Derived like the parts: not
-- dumped, no foreign keys (purge_projects removes a project's rows).
create table pipetrak.progress_packages (
    project_id        bigint not null,
    test_package_id   bigint not null,
    component_count   integer not null default 0,
    completed_count   integer not null default 0,
    earned_total      bigint not null default 0,
    post_hydro_count  integer not null default 0,
    ready_count       integer not null default 0,
    budget_mh         numeric not null default 0,
    -- Σ budget × earned credit (ppm) over the categories: earned man-hours × 1,000,000.
    mh_earned         numeric not null default 0,
    open_review_items integer not null default 0,
    primary key (project_id, test_package_id)
);
