-- pipetrak 0.1.0 → 0.2.0. Collects the schema changes made after the 0.1.0 release, in order,
-- until 0.2.0 is released; then this file is frozen like every released script.
\echo Use "ALTER EXTENSION pipetrak UPDATE TO '0.2.0'" to load this file. \quit

-- (No schema change yet.)

-- Every upgrade ends here: new tables and sequences registered for pg_dump, privileges from the
-- allow-list granted again (a new internal function stays private unless listed).
select pipetrak.register_dump_tables();
select pipetrak.grant_privileges();
