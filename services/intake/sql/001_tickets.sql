-- Intake's tickets. Personal data (phone, name) lives apart in `callers`, so
-- that the retention purge (R-I6) erases it without touching the ticket.

CREATE TABLE tickets (
  id               bigserial PRIMARY KEY,
  ticket_no        text   NOT NULL UNIQUE,     -- the hotline's number (R-I1)
  fingerprint      text   NOT NULL,            -- of the submission, for DUPLICATE vs conflict
  received_us      bigint NOT NULL,            -- event time
  request_type     text   NOT NULL,            -- R-I2
  hotline_category text   NOT NULL,
  category         text   NOT NULL,            -- 'OTHER' while unclassified (R-I3)
  category_source  text   NOT NULL,            -- hotline, keyword, none, operator
  compound         text   NOT NULL DEFAULT '', -- '' while unmatched (R-I4)
  street           text   NOT NULL DEFAULT '',
  district         text   NOT NULL DEFAULT '',
  address          text   NOT NULL,
  content          text   NOT NULL,
  urgency          int    NOT NULL,
  pseudonym        text   NOT NULL DEFAULT '', -- keyed hash of the phone (R-I6)
  masked_phone     text   NOT NULL DEFAULT '',
  disposition      text   NOT NULL,            -- TRIAGE, RECORDED, REPEAT, DISPATCHED
  repeat_of        text,                       -- R-I5
  triage_reason    text,
  triaged_us       bigint,
  triaged_by       text,
  exempt_reason    text,
  exempt_us        bigint,
  exempt_by        text,
  closed_us        bigint                      -- when its referral closed, once known
);
CREATE INDEX tickets_repeats ON tickets (pseudonym, compound, category, received_us)
  WHERE pseudonym <> '';
CREATE INDEX tickets_triage ON tickets (received_us) WHERE disposition = 'TRIAGE';

CREATE TABLE callers (
  ticket_id  bigint PRIMARY KEY REFERENCES tickets (id),
  phone      text,
  name       text,
  erased_us  bigint                            -- set by the retention purge
);

CREATE TABLE feedback (
  ticket_no    text   NOT NULL,
  at_us        bigint NOT NULL,
  satisfaction text   NOT NULL,
  PRIMARY KEY (ticket_no, at_us, satisfaction)
);
