-- One-off data fixes a service runs at start-up, after its migrations and
-- before it serves (svc_pg_one_off), such as masking what was stored before
-- a rule existed: each is recorded here once it is done, so it runs once.
CREATE TABLE one_offs (
  name     text        PRIMARY KEY,
  done_at  timestamptz NOT NULL DEFAULT now(),
  changed  bigint      NOT NULL  -- rows it changed
);
