-- One batch of validated rows into import_rows (pipetrak.stage_import sends it through SPI):
-- $1 is the import, $2.. are the rows' columns as arrays, one element per row. The Rust library
-- serves every installed version: `{project}` becomes `, project_id` and `{project_value}` the
-- job's project where the table has that column (0.3.0 on), nothing before.
insert into pipetrak.import_rows (import_id, line, chunk, status, drawing_no, drawing_key, component_type, tag, size,
    quantity, seq_from, seq_to, area, system, test_package, description, spec, attributes, weld_type, weld_size,
    schedule, base_metal, xray_percent, pwht_required, nde_types, stencil, date_welded, nde_result, issues,
    group_quantity, maybe_repeated, cells_hash{project})
select $1, u.line, u.chunk, u.status, u.drawing_no, u.drawing_key, u.component_type, u.tag, u.size,
    u.quantity, u.seq_from, u.seq_to, u.area, u.system, u.test_package, u.description, u.spec, u.attributes::jsonb,
    u.weld_type, u.weld_size, u.schedule, u.base_metal, u.xray_percent, u.pwht_required,
    case when u.component_type = 'field_weld' then string_to_array(u.nde_types, ',') end, u.stencil, u.date_welded::date, u.nde_result,
    u.issues::jsonb,
    case when u.status = 'valid' and u.by_footage then u.quantity end,
    u.maybe_repeated, case when u.status = 'valid' then u.cells_hash end{project_value}
-- Unnested in the select list (one ProjectSet), not in FROM, where each array would be
-- materialized on its own first: half the cost per batch.
from (select
      unnest($2::int[]) as line, unnest($3::int[]) as chunk, unnest($4::text[]) as status,
      unnest($5::text[]) as drawing_no, unnest($6::text[]) as drawing_key, unnest($7::text[]) as component_type,
      unnest($8::text[]) as tag, unnest($9::text[]) as size, unnest($10::numeric[]) as quantity,
      unnest($11::int[]) as seq_from, unnest($12::int[]) as seq_to, unnest($13::text[]) as area,
      unnest($14::text[]) as system, unnest($15::text[]) as test_package, unnest($16::text[]) as description,
      unnest($17::text[]) as spec, unnest($18::text[]) as attributes, unnest($19::text[]) as weld_type,
      unnest($20::text[]) as weld_size, unnest($21::text[]) as schedule, unnest($22::text[]) as base_metal,
      unnest($23::int[]) as xray_percent, unnest($24::bool[]) as pwht_required, unnest($25::text[]) as nde_types,
      unnest($26::text[]) as stencil, unnest($27::text[]) as date_welded, unnest($28::text[]) as nde_result,
      unnest($29::text[]) as issues, unnest($30::bool[]) as maybe_repeated, unnest($31::bigint[]) as cells_hash, unnest($32::bool[]) as by_footage) u
