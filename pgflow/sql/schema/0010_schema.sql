-- The pgflow schema: every table and function of the engine lives here.
-- No extension is required (gen_random_uuid and sha256 are built in since PostgreSQL 13/11).
create schema if not exists pgflow;
