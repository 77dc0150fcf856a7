-- How many package rows (progress_packages) differ from a recount of their packages' live members,
-- ready members and open review items (0 when every row is right). Used by the release test and
-- the job model; the pgTAP suite keeps its own recount.
with recount as (
    select k.project_id, k.test_package_id, coalesce(m.n, 0) as component_count, coalesce(m.done, 0) as completed_count,
           coalesce(m.earned, 0) as earned_total, coalesce(m.post_hydro, 0) as post_hydro_count,
           coalesce(m.ready, 0) as ready_count, coalesce(r.n, 0) as open_review_items
    from (select project_id, test_package_id from pipetrak.components where retired_at is null and test_package_id is not null
          union
          select project_id, test_package_id from pipetrak.review_items where resolved_at is null and test_package_id is not null) k
    left join (select c.project_id, c.test_package_id, count(*)::integer as n,
                      count(*) filter (where c.earned_total = 1000000)::integer as done, sum(c.earned_total)::bigint as earned,
                      count(*) filter (where c.post_hydro)::integer as post_hydro,
                      count(*) filter (where not c.post_hydro and pipetrak.ready_for_test(c.milestone_values, t.names,
                                             pipetrak.weld_clears_nde(f.status, f.nde_types, f.xray_percent, f.current_nde)))::integer as ready
               from pipetrak.components c
               join pipetrak.milestone_templates t on t.project_id = c.project_id and t.component_type = c.component_type
               left join pipetrak.field_welds f on f.component_id = c.id
               where c.retired_at is null and c.test_package_id is not null
               group by 1, 2) m on m.project_id = k.project_id and m.test_package_id = k.test_package_id
    left join (select project_id, test_package_id, count(*)::integer as n from pipetrak.review_items
               where resolved_at is null and test_package_id is not null group by 1, 2) r
           on r.project_id = k.project_id and r.test_package_id = k.test_package_id),
kept as (
    select project_id, test_package_id, component_count, completed_count, earned_total, post_hydro_count, ready_count,
           open_review_items
    from pipetrak.progress_packages
    where (component_count, completed_count, earned_total, post_hydro_count, ready_count, open_review_items) <> (0, 0, 0, 0, 0, 0))
select count(*) from ((select * from recount except select * from kept) union all (select * from kept except select * from recount)) d;
