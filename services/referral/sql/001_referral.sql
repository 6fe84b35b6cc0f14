-- Referral's tickets with their steps (吹哨报到). A ticket row holds every
-- step (jsonb array, in issue order) so that one statement loads or saves a
-- ticket whole; next_due_us is the earliest instant a clock of the ticket
-- (warning, overdue, closing) will need attention, NULL when none.

CREATE TABLE tickets (
  ticket_no        text    PRIMARY KEY,
  ticket_id        bigint  NOT NULL,            -- intake's id
  state            text    NOT NULL,            -- TRIAGE RECORDED REPEAT OPEN RETURNED RESOLVED CLOSED
  request_type     text    NOT NULL,
  category         text    NOT NULL,
  compound         text    NOT NULL,
  street           text    NOT NULL,
  district         text    NOT NULL,
  management       text    NOT NULL,
  company          text    NOT NULL,
  repeat_of        text    NOT NULL,
  pseudonym        text    NOT NULL,            -- never the phone (R-I6)
  masked_phone     text    NOT NULL,
  address          text    NOT NULL,
  content          text    NOT NULL,
  received_us      bigint  NOT NULL,
  urgent           boolean NOT NULL,
  returns          int     NOT NULL,            -- R-R3
  consult          boolean NOT NULL,            -- 会商
  violation_done   boolean NOT NULL,            -- R-P2: at most one per ticket
  resolved_us      bigint  NOT NULL,
  close_by_us      bigint  NOT NULL,
  closed_us        bigint  NOT NULL,
  next_due_us      bigint,
  steps            jsonb   NOT NULL
);
CREATE INDEX tickets_due ON tickets (next_due_us) WHERE next_due_us IS NOT NULL;

-- The watermarks: the intake watermark applied, the referral one published.
CREATE TABLE clock (
  one            boolean PRIMARY KEY DEFAULT true CHECK (one),
  in_watermark   bigint  NOT NULL,
  out_watermark  bigint  NOT NULL
);
INSERT INTO clock VALUES (true, 0, 0);
