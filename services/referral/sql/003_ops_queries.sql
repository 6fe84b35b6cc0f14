-- What the ops queries (proto/unit.proto Query) answer beside the steps:
-- whether an operator exempted the ticket (核减, intake's ticket.exempted,
-- applied in stream order), and why and since when it waits for an
-- operator's re-dispatch (R-R3: a returned step, or no routing or unit at
-- all). Tickets exempted before this migration read false until replayed.
ALTER TABLE tickets ADD COLUMN exempt boolean NOT NULL DEFAULT false;
ALTER TABLE tickets ADD COLUMN wait_reason text NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN wait_us bigint NOT NULL DEFAULT 0;
