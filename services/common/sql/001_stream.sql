-- The stream tables every service has in its own schema (docs/architecture.md):
-- the outbox of the events it produces, with a head row that hands out gapless
-- sequence numbers in commit order, and its positions in the streams it reads.

CREATE TABLE stream_outbox (
  seq          bigint PRIMARY KEY,
  event_us     bigint NOT NULL,   -- event time, microseconds since the epoch (UTC)
  kind         text   NOT NULL,
  addressee    text   NOT NULL,   -- identity, '*' (everyone) or '' (internal)
  payload      bytea  NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);
-- For subscribers that see only their own events: internal events ('') are
-- read by full-access subscribers through the primary key, so they stay out
-- of this index (most of a business stream is internal).
CREATE INDEX stream_outbox_addressee ON stream_outbox (addressee, seq) WHERE addressee <> '';

-- One row. Updating it takes a row lock held to commit, so concurrent writers
-- queue behind each other and sequence numbers follow commit order.
CREATE TABLE stream_head (
  id       int PRIMARY KEY CHECK (id = 1),
  last_seq bigint NOT NULL
);
INSERT INTO stream_head VALUES (1, 0);

CREATE TABLE stream_positions (
  producer   text PRIMARY KEY,
  last_seq   bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Moves a consumer's position from from_seq to to_seq, or raises WH001 when
-- the position is not from_seq (the events were applied already): called first
-- in every apply transaction, it makes redelivery a no-op.
CREATE FUNCTION stream_advance(p text, from_seq bigint, to_seq bigint) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  UPDATE stream_positions SET last_seq = to_seq, updated_at = now()
   WHERE producer = p AND last_seq = from_seq;
  IF NOT FOUND THEN
    IF from_seq = 0 THEN
      INSERT INTO stream_positions (producer, last_seq) VALUES (p, to_seq)
      ON CONFLICT (producer) DO NOTHING;
      IF FOUND THEN RETURN; END IF;
    END IF;
    RAISE EXCEPTION 'stream position of % is not %', p, from_seq USING ERRCODE = 'WH001';
  END IF;
END
$$;
