-- Whistle's database layout for the postgres:15 container (run once, by the
-- image's entrypoint, when the data volume is empty): database `whistle` and one
-- login role per service, each owning only its own schema (DESIGN §4).
-- Passwords come from the container's environment (see example.env); nothing
-- secret is written here. The same layout as tools/pgdev.sh's private cluster.

SELECT 'CREATE DATABASE whistle ENCODING ''UTF8'''
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'whistle') \gexec

\connect whistle

-- Nobody but the superuser gets anything by default: no connecting, no
-- temporary tables, nothing in schema public. The service roles get back only
-- what they need below.
REVOKE ALL ON DATABASE whistle FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

\getenv intake_pw WHISTLE_INTAKE_DB_PASSWORD
\getenv referral_pw WHISTLE_REFERRAL_DB_PASSWORD
\getenv rating_pw WHISTLE_RATING_DB_PASSWORD
\getenv escalation_pw WHISTLE_ESCALATION_DB_PASSWORD

\if :{?intake_pw}
\else
  DO $$ BEGIN RAISE EXCEPTION 'WHISTLE_INTAKE_DB_PASSWORD is not set in the postgres container'; END $$;
\endif
\if :{?referral_pw}
\else
  DO $$ BEGIN RAISE EXCEPTION 'WHISTLE_REFERRAL_DB_PASSWORD is not set in the postgres container'; END $$;
\endif
\if :{?rating_pw}
\else
  DO $$ BEGIN RAISE EXCEPTION 'WHISTLE_RATING_DB_PASSWORD is not set in the postgres container'; END $$;
\endif
\if :{?escalation_pw}
\else
  DO $$ BEGIN RAISE EXCEPTION 'WHISTLE_ESCALATION_DB_PASSWORD is not set in the postgres container'; END $$;
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
