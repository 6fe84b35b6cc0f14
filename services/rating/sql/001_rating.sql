-- Rating's state (rules R-C1..R-U5). Facts about tickets and steps as the intake and
-- referral streams tell them, the per-period sums kept up to date as the
-- facts change (so a month close reads one row per project and per unit,
-- never the tickets), the published results of closed periods, and the
-- decisions. Months are indexes: local year * 12 + month - 1 (R-T1). Codes
-- and keys sort bytewise (COLLATE "C"), as the exports require, whatever the
-- database's collation.

-- R-C1: a ticket and whether it counts in its project's month (as of close).
CREATE TABLE tickets (
  ticket_no          text COLLATE "C"    PRIMARY KEY,
  known              boolean NOT NULL,           -- intake's ticket.accepted applied
  request_type       text COLLATE "C"    NOT NULL,
  category           text COLLATE "C"    NOT NULL,
  compound           text COLLATE "C"    NOT NULL,
  company            text COLLATE "C"    NOT NULL,
  street             text COLLATE "C"    NOT NULL,
  district           text COLLATE "C"    NOT NULL,
  management         text COLLATE "C"    NOT NULL,
  received_us        bigint  NOT NULL,
  month              int     NOT NULL,
  counting_category  boolean NOT NULL,
  triage             boolean NOT NULL,
  repeat             boolean NOT NULL,
  referred           boolean NOT NULL,
  exempt             boolean NOT NULL,
  counted            boolean NOT NULL
);
CREATE INDEX tickets_counted ON tickets (compound, month) WHERE counted;

-- R-U1/R-U2: a referral step and its contribution to its unit's month (the
-- month of its resolve deadline).
CREATE TABLE steps (
  ticket_no      text COLLATE "C"    NOT NULL,
  step           int     NOT NULL,
  unit           text COLLATE "C"    NOT NULL,
  street_unit    boolean NOT NULL,
  district       text COLLATE "C"    NOT NULL,
  issued_us      bigint  NOT NULL,
  accept_by_us   bigint  NOT NULL,
  resolve_by_us  bigint  NOT NULL,
  accepted_us    bigint  NOT NULL,
  resolved_us    bigint  NOT NULL,
  returned_us    bigint  NOT NULL,
  reopened_us    bigint  NOT NULL,
  month          int     NOT NULL,
  in_pop         boolean NOT NULL,
  acc_ok         boolean NOT NULL,
  res_ok         boolean NOT NULL,
  PRIMARY KEY (ticket_no, step)
);
CREATE INDEX steps_unit_month ON steps (unit, month) WHERE in_pop;
-- The evidence of a unit's or district's decision (R-E5): its steps that
-- missed a clock, read without touching the steps that did not.
CREATE INDEX steps_missed ON steps (unit, month) INCLUDE (ticket_no, step)
  WHERE in_pop AND NOT (acc_ok AND res_ok);
CREATE INDEX steps_missed_district ON steps (district, month) INCLUDE (ticket_no, step)
  WHERE street_unit AND in_pop AND NOT (acc_ok AND res_ok);

-- C(p, m): counted tickets per project and month.
CREATE TABLE project_month (
  month     int    NOT NULL,
  compound  text COLLATE "C"   NOT NULL,
  company   text COLLATE "C"   NOT NULL,
  count     int    NOT NULL,
  PRIMARY KEY (month, compound)
);

-- P(u, m) and its on-time parts; callbacks received in m for u (R-U2).
CREATE TABLE unit_month (
  month        int     NOT NULL,
  unit         text COLLATE "C"    NOT NULL,
  street_unit  boolean NOT NULL,
  district     text COLLATE "C"    NOT NULL,
  population   int     NOT NULL DEFAULT 0,
  accepted     int     NOT NULL DEFAULT 0,
  resolved     int     NOT NULL DEFAULT 0,
  callbacks    int     NOT NULL DEFAULT 0,
  satisfied    int     NOT NULL DEFAULT 0,
  PRIMARY KEY (month, unit)
);

-- R-P2/R-P3: confirmed violations (at most one per ticket), the distinct
-- prohibitions per project and year (bit p for Pp), and the company-wide
-- D = 4 threshold per year.
CREATE TABLE violations (
  ticket_no    text COLLATE "C"   PRIMARY KEY,
  step         int    NOT NULL,
  compound     text COLLATE "C"   NOT NULL,
  company      text COLLATE "C"   NOT NULL,
  prohibition  int    NOT NULL,
  at_us        bigint NOT NULL,
  year         int    NOT NULL
);
CREATE INDEX violations_project ON violations (compound, year);
CREATE TABLE project_year (
  compound  text COLLATE "C" NOT NULL,
  year      int  NOT NULL,
  mask      int  NOT NULL,
  PRIMARY KEY (compound, year)
);
CREATE TABLE company_year (
  company   text COLLATE "C"    NOT NULL,
  year      int     NOT NULL,
  d4_fired  boolean NOT NULL,
  PRIMARY KEY (company, year)
);

-- R-K1: every deduction, keyed by what caused it; half = year * 2 + (0|1).
CREATE TABLE deductions (
  key      text COLLATE "C"   PRIMARY KEY,
  company  text COLLATE "C"   NOT NULL,
  half     int    NOT NULL,
  points   int    NOT NULL,
  at_us    bigint NOT NULL
);
CREATE INDEX deductions_half ON deductions (half, company);

-- R-S1: inspections and their sums per project and quarter (year * 4 + q - 1).
CREATE TABLE inspections (
  inspection_id  text COLLATE "C"    PRIMARY KEY,
  compound       text COLLATE "C"    NOT NULL,
  at_us          bigint  NOT NULL,
  quarter        int     NOT NULL,
  dims           int[]   NOT NULL,
  raw            bigint  NOT NULL,
  rated          boolean NOT NULL          -- the compound is PROFESSIONAL
);
CREATE TABLE project_quarter (
  quarter   int    NOT NULL,
  compound  text COLLATE "C"   NOT NULL,
  raw_sum   bigint NOT NULL,
  n         int    NOT NULL,
  PRIMARY KEY (quarter, compound)
);

-- Published results of closed periods.
CREATE TABLE rankings (
  month     int     NOT NULL,
  compound  text COLLATE "C"    NOT NULL,
  company   text COLLATE "C"    NOT NULL,
  count     int     NOT NULL,
  rank      int     NOT NULL,
  in_top    boolean NOT NULL,
  streak    int     NOT NULL,
  PRIMARY KEY (month, compound)
);
CREATE TABLE unit_scores (
  month            int     NOT NULL,
  unit             text COLLATE "C"    NOT NULL,
  street_unit      boolean NOT NULL,
  district         text COLLATE "C"    NOT NULL,
  population       int     NOT NULL,
  response_e4      int     NOT NULL,
  resolution_e4    int     NOT NULL,
  satisfaction_e4  int,                     -- NULL without callbacks
  score_e2         int     NOT NULL,
  rank             int     NOT NULL,
  PRIMARY KEY (month, unit)
);
-- R-U4: a street's run of consecutive bottom checkpoints at a quarter.
CREATE TABLE street_runs (
  quarter  int  NOT NULL,
  street   text COLLATE "C" NOT NULL,
  run      int  NOT NULL,
  PRIMARY KEY (quarter, street)
);
CREATE TABLE stars (
  quarter   int  NOT NULL,
  compound  text COLLATE "C" NOT NULL,
  score_e1  int  NOT NULL,
  stars     int  NOT NULL,               -- 0 = NONCOMPLIANT
  PRIMARY KEY (quarter, compound)
);
CREATE INDEX stars_compound ON stars (compound, quarter);

-- Every decision, once, by its key (R-E3a, R-E4). A decision taken while
-- applying an input (R-P3, at the violation) is held (emitted = false) until
-- the inputs' watermark passes its event time, then published with the
-- others in (event time, key) order, so rating's stream is the same on
-- every replay (R-T2).
CREATE TABLE decisions (
  key           text COLLATE "C"    PRIMARY KEY,
  rule          text COLLATE "C"    NOT NULL,
  rule_id       text COLLATE "C"    NOT NULL,
  measures      text[]  NOT NULL,
  subject       text COLLATE "C"    NOT NULL,
  subject_kind  text COLLATE "C"    NOT NULL,
  period        text COLLATE "C"    NOT NULL,
  event_us      bigint  NOT NULL,
  evidence      text[]  NOT NULL,
  figures       text[]  NOT NULL,
  recipient     text COLLATE "C"    NOT NULL,
  cc            text[]  NOT NULL,
  rule_set      text COLLATE "C"    NOT NULL,
  company       text COLLATE "C"    NOT NULL,
  street        text COLLATE "C"    NOT NULL,
  district      text COLLATE "C"    NOT NULL,
  emitted       boolean NOT NULL
);
CREATE INDEX decisions_held ON decisions (event_us, key) WHERE NOT emitted;

-- The input watermarks applied, the last month closed (index; 0 = none
-- yet), the first month with an input (0 = none yet) and rating's own
-- watermark published; `late` counts inputs for periods already closed.
CREATE TABLE clock (
  one            boolean PRIMARY KEY DEFAULT true CHECK (one),
  intake_wm      bigint  NOT NULL,
  referral_wm    bigint  NOT NULL,
  closed_month   int     NOT NULL,
  first_month    int     NOT NULL,
  out_wm         bigint  NOT NULL,
  late           bigint  NOT NULL
);
INSERT INTO clock VALUES (true, 0, 0, 0, 0, 0, 0);
