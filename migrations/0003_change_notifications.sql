-- Every committed change to cards or links is announced on the `cardgate_changes` channel, so
-- that each server instance sharing the database empties its caches. NOTIFY inside the writing
-- transaction is delivered when it commits (and never when it rolls back); PostgreSQL folds the
-- notifications of one transaction into one.
CREATE FUNCTION cardgate_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cardgate_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER cards_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cards
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_notify_change();
CREATE TRIGGER links_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON links
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_notify_change();
