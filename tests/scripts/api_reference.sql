-- The API reference (sql/API.md), generated from the catalog: every pipetrak_api function and view,
-- grouped by workflow, with its arguments and its `comment on`. test.sh checks that sql/API.md's
-- copy (between the api-reference markers) is what this prints.
with objects as (
    select p.proname::text as name, format('`%s(%s)`', p.proname, pg_get_function_arguments(p.oid)) as signature,
           obj_description(p.oid, 'pg_proc') as comment, false as is_view
    from pg_proc p where p.pronamespace = 'pipetrak_api'::regnamespace
    union all
    select c.relname::text, format('`%s` (view)', c.relname), obj_description(c.oid, 'pg_class'), true
    from pg_class c where c.relnamespace = 'pipetrak_api'::regnamespace and c.relkind = 'v'),
grouped as (
    select o.*, case
        when o.name in ('sync_profile', 'my_profile', 'update_profile', 'create_organization', 'organizations',
                        'rename_organization', 'delete_organization', 'add_member', 'change_member_role',
                        'remove_member', 'memberships', 'invitations', 'invite_member', 'resend_invitation',
                        'revoke_invitation', 'accept_invitation') then '1 Organizations, members and invitations'
        when o.name in ('create_project', 'update_project_settings', 'rename_project', 'archive_project',
                        'unarchive_project', 'delete_project', 'projects', 'milestone_templates',
                        'reweight_template') then '2 Projects and templates'
        when o.name ~ '(area|system|test_package)s?$' and o.name !~ 'progress|readiness' then '3 Areas, systems, test packages'
        when o.name ~ 'drawing|component' and o.name !~ 'progress' then '4 Drawings and components'
        when o.name ~ 'stage|certificate|post_hydro|turnover|package_events|blockers|readiness' then '6 Test packages and turnover'
        when o.name ~ 'progress|readiness|activity|budget|dashboard|weekly|manhour|delta|as_of' then '8 Progress, history and man-hours'
        when o.name ~ 'milestone|weld|review|nde|repair|qc_queue|sampling|repick' then '5 Field progress and QC'
        when o.name ~ 'import' then '7 Imports'
        when o.name in ('search', 'attachments', 'project_channel', 'event_is_genuine') then '9 Search, files and realtime events'
        else 'X Other'
    end as workflow
    from objects o)
select string_agg(line, E'\n' order by workflow, ord, name)
from (
    select workflow, 0 as ord, '' as name, E'\n**' || substr(workflow, 3) || '**' || E'\n' as line from grouped group by workflow
    union all
    select workflow, 1, name, format('- %s — %s', signature, coalesce(comment, '(no comment)')) from grouped) lines
-- Then the limits of the arguments, from their one registry.
union all
select E'\n**Argument limits** (`pipetrak.argument_limits()`; texts in characters, JSON in bytes as sent, lists in '
       'items). A larger value is refused with `text_too_long`, `value_too_large` or `batch_too_large` before '
       'anything else is done; a file has its own limit (`file_too_large`, 50 MB).\n\n'
       || string_agg(format('`%s` %s', l.argument, l.max), ', ' order by l.argument)
from pipetrak.argument_limits() l;
