-- Privileges and pg_dump registration, run last.

-- Nothing is public: revoke, then grant explicitly.
revoke all on schema pipetrak, pipetrak_api from public;
revoke all on all tables in schema pipetrak from public;
revoke all on all tables in schema pipetrak_api from public;
revoke all on all sequences in schema pipetrak from public;
revoke all on all functions in schema pipetrak from public;
revoke all on all functions in schema pipetrak_api from public;
revoke all on all procedures in schema pipetrak_api from public;

-- The PostgREST/Supabase roles come from the environment; grant to those that exist. `anon` gets
-- nothing at all. `authenticated` reads through RLS and writes only through functions.
-- `service_role` (BYPASSRLS) is the back office: it reads everything.
do $$
begin
    if exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
        grant usage on schema pipetrak, pipetrak_api to authenticated;
        grant select on all tables in schema pipetrak to authenticated;
        grant select on all tables in schema pipetrak_api to authenticated;
        grant execute on all functions in schema pipetrak to authenticated;
        grant execute on all functions in schema pipetrak_api to authenticated;
        -- Trigger functions are never called directly.
        revoke execute on function pipetrak.progress_parts_apply(), pipetrak.milestone_events_immutable(),
            pipetrak.memberships_keep_an_owner(), pipetrak.import_jobs_delete_rows() from authenticated;
        -- Staging and the rules across rows write import rows as their caller; only import_validate calls them.
        revoke execute on function pipetrak.import_stage(bigint, text, date),
            pipetrak.import_resolve_repeats(bigint, text) from authenticated;
        grant execute on procedure pipetrak_api.import_commit_chunked(bigint, boolean) to authenticated;
    end if;
    if exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
        grant usage on schema pipetrak, pipetrak_api to service_role;
        grant select on all tables in schema pipetrak to service_role;
        grant select on all tables in schema pipetrak_api to service_role;
        grant execute on all functions in schema pipetrak to service_role;
        grant execute on all functions in schema pipetrak_api to service_role;
        grant execute on procedure pipetrak_api.import_commit_chunked(bigint, boolean) to service_role;
    end if;
end
$$;

-- pg_dump skips extension tables unless they are registered: every data table and its sequence.
-- One call per command: each call rewrites the extension's catalog row.
do $$
declare
    v_relation text;
begin
    foreach v_relation in array array[
        'user_profiles', 'organizations', 'organizations_id_seq', 'memberships', 'projects', 'projects_id_seq',
        'areas', 'areas_id_seq', 'systems', 'systems_id_seq', 'test_packages', 'test_packages_id_seq',
        'drawings', 'drawings_id_seq', 'milestone_templates', 'welders', 'welders_id_seq', 'components',
        'components_id_seq', 'field_welds', 'milestone_events', 'milestone_events_id_seq', 'review_items',
        'review_items_id_seq', 'client_requests', 'progress_parts', 'import_jobs', 'import_jobs_id_seq', 'import_rows']
    loop
        perform pg_catalog.pg_extension_config_dump('pipetrak.' || v_relation, '');
    end loop;
end
$$;
