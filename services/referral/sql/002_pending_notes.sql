-- Repeat calls (R-I5) made while a ticket waits for re-dispatch: their ticket
-- numbers, noted on the next step issued (a JSON array of strings).
ALTER TABLE tickets ADD COLUMN pending jsonb NOT NULL DEFAULT '[]';
