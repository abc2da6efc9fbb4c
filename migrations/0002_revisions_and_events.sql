-- Optimistic concurrency: every update bumps the card's revision (the ETag of the admin API).
ALTER TABLE cards ADD COLUMN revision bigint NOT NULL DEFAULT 1 CHECK (revision >= 1);

-- Events (the audit trail) are cards too; they are looked up by target, by actor and by time.
CREATE INDEX cards_event_target ON cards ((data ->> 'target'), created_at)
    WHERE split_part(type, '@', 1) IN ('create', 'update', 'link', 'unlink', 'deactivate');
CREATE INDEX cards_event_actor ON cards ((data ->> 'actor'), created_at)
    WHERE split_part(type, '@', 1) IN ('create', 'update', 'link', 'unlink', 'deactivate');
