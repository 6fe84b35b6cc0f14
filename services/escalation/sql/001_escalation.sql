-- Escalation's state (R-E1..R-E6): the triggers taken from the referral
-- stream (overdue events) and the rating stream (decisions), each once by
-- key; the overdue ladder per unit and quarter; the number counters per type
-- and year; the notices issued, their delivery and signature. Codes and keys
-- sort bytewise (COLLATE "C").

CREATE TABLE triggers (
  key          text COLLATE "C" PRIMARY KEY,
  source       text COLLATE "C" NOT NULL,      -- overdue | decision
  event_us     bigint  NOT NULL,
  rule         text COLLATE "C" NOT NULL,
  rule_id      text COLLATE "C" NOT NULL,
  rule_set     text COLLATE "C" NOT NULL,
  period       text COLLATE "C" NOT NULL,      -- decisions; overdue: set at issuance
  type         text COLLATE "C" NOT NULL,      -- decisions; overdue: set at issuance ('')
  recipient    text COLLATE "C" NOT NULL,
  cc           text[]  NOT NULL,
  measures     text[]  NOT NULL,
  evidence     text[]  NOT NULL,
  facts        text[]  NOT NULL,               -- name=value for the letter
  ticket_no    text COLLATE "C" NOT NULL,      -- overdue
  step         int     NOT NULL,
  resolve      boolean NOT NULL,
  unit         text COLLATE "C" NOT NULL,
  quarter      int     NOT NULL,               -- overdue: R-E1's quarter of the deadline
  issued       boolean NOT NULL
);
CREATE INDEX triggers_pending ON triggers (event_us, key) WHERE NOT issued;

-- R-E1: overdue events counted so far per unit and quarter.
CREATE TABLE ladder (
  unit     text COLLATE "C" NOT NULL,
  quarter  int  NOT NULL,
  k        int  NOT NULL,
  PRIMARY KEY (unit, quarter)
);

-- R-E3: the last number given per type and year.
CREATE TABLE counters (
  type  text COLLATE "C" NOT NULL,
  year  int  NOT NULL,
  n     bigint NOT NULL,
  PRIMARY KEY (type, year)
);

CREATE TABLE notices (
  number         text COLLATE "C" PRIMARY KEY,
  type           text COLLATE "C" NOT NULL,
  year           int     NOT NULL,
  n              bigint  NOT NULL,
  key            text COLLATE "C" NOT NULL UNIQUE,
  source         text COLLATE "C" NOT NULL,
  recipient      text COLLATE "C" NOT NULL,
  cc             text[]  NOT NULL,
  rule           text COLLATE "C" NOT NULL,
  rule_id        text COLLATE "C" NOT NULL,
  rule_set       text COLLATE "C" NOT NULL,
  period         text COLLATE "C" NOT NULL,
  event_us       bigint  NOT NULL,
  evidence       text[]  NOT NULL,
  measures       text[]  NOT NULL,
  k              int     NOT NULL,
  text           text    NOT NULL,
  respond_by_us  bigint  NOT NULL,
  redeliver_us   bigint  NOT NULL,     -- R-E6: due for a second delivery
  redelivered    boolean NOT NULL,
  signed_us      bigint,
  payload        bytea   NOT NULL,     -- the packed Notice, for a second delivery
  UNIQUE (type, year, n)
);
CREATE INDEX notices_redeliver ON notices (redeliver_us) WHERE signed_us IS NULL AND NOT redelivered;

-- The input watermarks applied and escalation's own published.
CREATE TABLE clock (
  one          boolean PRIMARY KEY DEFAULT true CHECK (one),
  referral_wm  bigint NOT NULL,
  rating_wm    bigint NOT NULL,
  out_wm       bigint NOT NULL
);
INSERT INTO clock VALUES (true, 0, 0, 0);
