#!/usr/bin/env bash
# The main job: installs what is missing, builds and installs the extension into the project's own
# PostgreSQL 15 cluster, creates the database `pipetrak` with the PostgREST roles and
# `create extension pipetrak`, imports real takeoff and weld-log files end to end (upload → validate →
# commit) and prints the progress they produced; leaves the server running with its connection string printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
source "$here/cluster.sh"
cluster_start
extension_install
# A fresh `pipetrak` database each run, so the import below always starts from an empty project.
as_postgres dropdb --if-exists -h "$PIPETRAK_SOCKET" -p "$PIPETRAK_PORT" pipetrak
database_create pipetrak
psql -X -d pipetrak -c "select extname, extversion from pg_extension where extname in ('pipetrak', 'pg_trgm')"
# The end-to-end run: real files from tests/data imported through the API, then the progress.
(cd "$PIPETRAK_ROOT" && psql -X -d pipetrak -f tests/scripts/main_import.sql)
echo "PostgreSQL is running: $(database_url pipetrak)"
echo "PostgREST: db-uri = postgres://authenticator@localhost:$PIPETRAK_PORT/pipetrak, db-schemas = pipetrak_api, db-anon-role = anon, db-pre-request = pipetrak.pre_request"
