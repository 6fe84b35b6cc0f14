-- R-I6a: tickets.content and tickets.address hold the text with typed numbers
-- masked (what may leave intake's schema); the original text is personal data
-- like the caller's phone, kept apart in callers (only when masking changed
-- it) and erased with the phone and name by the retention purge (R-I6).
ALTER TABLE callers ADD COLUMN content_original text;
ALTER TABLE callers ADD COLUMN address_original text;
