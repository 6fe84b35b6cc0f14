-- Whistle's database layout for the postgres:15 container (run once, by the
-- image's entrypoint, when the data volume is empty): database `whistle` and one
-- login role per service, each owning only its own schema (docs/architecture.md).
-- Passwords come from the container's Docker secrets (see below); nothing
-- secret is written here. The same layout as tools/pgdev.sh's private cluster.

SELECT 'CREATE DATABASE whistle ENCODING ''UTF8'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'whistle') \gexec

\connect whistle

-- Nobody but the superuser gets anything by default: no connecting, no
-- temporary tables, nothing in schema public. The service roles get back only
-- what they need below.
REVOKE ALL ON DATABASE whistle FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- The passwords are the Docker secrets made by tools/deploy-init.sh, readable
-- by this container's postgres group; each daemon reads its own file too
-- (WHISTLE_PG_PASSWORD_FILE). psql reads them: they never pass through the
-- environment or a log.
\set intake_pw `cat /run/secrets/intake_db_password`
\set referral_pw `cat /run/secrets/referral_db_password`
\set rating_pw `cat /run/secrets/rating_db_password`
\set escalation_pw `cat /run/secrets/escalation_db_password`
SELECT :'intake_pw' = '' OR :'referral_pw' = '' OR :'rating_pw' = '' OR :'escalation_pw' = ''
    AS missing_pw \gset
\if :missing_pw
  DO $$ BEGIN RAISE EXCEPTION 'a database password secret is missing or empty (run tools/deploy-init.sh)'; END $$;
\endif

-- One role per service: it may connect, it owns its schema (where its
-- migrations create everything, including the stream tables), and its
-- search_path points there. It has no rights on any other schema.
CREATE ROLE intake LOGIN PASSWORD :'intake_pw';
CREATE ROLE referral LOGIN PASSWORD :'referral_pw';
CREATE ROLE rating LOGIN PASSWORD :'rating_pw';
CREATE ROLE escalation LOGIN PASSWORD :'escalation_pw';

-- Temporary tables are session-private; allowed as in the private cluster.
GRANT CONNECT, TEMPORARY ON DATABASE whistle TO intake, referral, rating, escalation;

CREATE SCHEMA intake AUTHORIZATION intake;
CREATE SCHEMA referral AUTHORIZATION referral;
CREATE SCHEMA rating AUTHORIZATION rating;
CREATE SCHEMA escalation AUTHORIZATION escalation;

ALTER ROLE intake IN DATABASE whistle SET search_path = intake;
ALTER ROLE referral IN DATABASE whistle SET search_path = referral;
ALTER ROLE rating IN DATABASE whistle SET search_path = rating;
ALTER ROLE escalation IN DATABASE whistle SET search_path = escalation;
