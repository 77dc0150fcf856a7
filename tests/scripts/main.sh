#!/usr/bin/env bash
# The main job: installs what is missing, builds and installs the extension into the project's own
# PostgreSQL 15 cluster, creates the database `pipetrak` with the PostgREST roles and
# `create extension pipetrak`, and leaves the server running with its connection string printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
source "$here/cluster.sh"
cluster_start
extension_install
if ! psql -qXAt -d postgres -c "select 1 from pg_database where datname = 'pipetrak'" | grep -q 1; then
  database_create pipetrak
else
  psql -qX -d pipetrak -c "alter extension pipetrak update" >/dev/null 2>&1 || true
fi
psql -X -d pipetrak -c "select extname, extversion from pg_extension where extname = 'pipetrak'"
psql -X -d pipetrak -c "select * from pipetrak_api.project_progress"
echo "PostgreSQL is running: $(database_url pipetrak)"
echo "PostgREST: db-uri = postgres://authenticator@localhost:$PIPETRAK_PORT/pipetrak, db-schemas = pipetrak_api, db-anon-role = anon"
