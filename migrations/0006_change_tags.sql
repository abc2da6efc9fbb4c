-- Change notifications name what changed, so that each instance evicts only the cached answers
-- that depend on it (see crates/store/src/feed.rs for the tags and what depends on each):
--   c:<card id>          any change to a card (deactivation, update, creation)
--   s:<slug>             the card with that slug (users, orgs, roles are looked up by slug)
--   r:<repository>       an image card, by data.repository
--   p:<user id>          a password card, by its user (data.actor)
--   l:<card id>          a link from the card (membership, grant; each link is two rows, so
--                        both ends are named)
--   *                    everything (TRUNCATE, a statement changing more than 100 rows)
-- Events and the links attaching them change no answer and are not announced. The tags of a
-- transaction are also gathered in the transaction-local setting `cardgate.changed`, which
-- the writing instance reads just before it commits, to evict its own entries before the call
-- that made the change returns. Statement triggers with transition tables: a bulk write costs
-- one notification, not one per row. PostgreSQL folds identical notifications of one
-- transaction and delivers them on commit, never for a rollback.
DROP TRIGGER cards_changed ON cards;
DROP TRIGGER links_changed ON links;
DROP FUNCTION cardgate_notify_change();

-- The tags of one version of a card row (none for an event).
CREATE FUNCTION cardgate_card_tags(id uuid, slug text, type text, data jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN split_part(type, '@', 1) IN ('create', 'update', 'link', 'unlink', 'deactivate')
            THEN ARRAY[]::text[]
        WHEN split_part(type, '@', 1) = 'image'
            THEN ARRAY['c:' || id, 's:' || slug, 'r:' || coalesce(data ->> 'repository', '')]
        WHEN split_part(type, '@', 1) = 'authentication-password'
            THEN ARRAY['c:' || id, 'p:' || coalesce(data ->> 'actor', '')]
        ELSE ARRAY['c:' || id, 's:' || slug]
    END
$$;

-- Announces `tags` on `cardgate_changes` (everything, `*`, for a payload near PostgreSQL's
-- 8000-byte limit) and adds them to the transaction's `cardgate.changed` (`*` past 64 KiB: a
-- transaction that big flushes all caches).
CREATE FUNCTION cardgate_announce(tags text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    announced text := array_to_string(tags, ' ');
    gathered text := coalesce(current_setting('cardgate.changed', true), '');
BEGIN
    IF length(announced) > 7000 THEN
        announced := '*';
    END IF;
    IF announced IS NULL OR announced = '' THEN
        RETURN;
    END IF;
    PERFORM pg_notify('cardgate_changes', announced);
    IF gathered <> '*' THEN
        gathered := concat_ws(' ', nullif(gathered, ''), announced);
        IF length(gathered) > 65536 OR announced = '*' THEN
            gathered := '*';
        END IF;
        PERFORM set_config('cardgate.changed', gathered, true);
    END IF;
END
$$;

-- A statement that changes more than 100 rows (a bulk load) is announced as everything,
-- without reading its rows.
CREATE FUNCTION cardgate_cards_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tags text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF (SELECT count(*) FROM new_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT t) INTO tags
            FROM new_rows n, unnest(cardgate_card_tags(n.id, n.slug, n.type, n.data)) AS t;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF (SELECT count(*) FROM old_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT t) INTO tags
            FROM old_rows o, unnest(cardgate_card_tags(o.id, o.slug, o.type, o.data)) AS t;
        END IF;
    ELSE
        IF (SELECT count(*) FROM new_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT t) INTO tags
            FROM (SELECT id, slug, type, data FROM old_rows
                  UNION ALL SELECT id, slug, type, data FROM new_rows) AS r,
                 unnest(cardgate_card_tags(r.id, r.slug, r.type, r.data)) AS t;
        END IF;
    END IF;
    PERFORM cardgate_announce(tags);
    RETURN NULL;
END
$$;

CREATE FUNCTION cardgate_links_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tags text[];
BEGIN
    -- Each branch names only the transition tables its trigger has.
    IF TG_OP = 'INSERT' THEN
        IF (SELECT count(*) FROM new_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT 'l:' || from_id) INTO tags FROM new_rows
            WHERE name NOT IN ('is attached to', 'has attached element');
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF (SELECT count(*) FROM old_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT 'l:' || from_id) INTO tags FROM old_rows
            WHERE name NOT IN ('is attached to', 'has attached element');
        END IF;
    ELSE
        IF (SELECT count(*) FROM new_rows) > 100 THEN
            tags := ARRAY['*'];
        ELSE
            SELECT array_agg(DISTINCT 'l:' || r.from_id) INTO tags
            FROM (SELECT from_id, name FROM old_rows
                  UNION ALL SELECT from_id, name FROM new_rows) AS r
            WHERE r.name NOT IN ('is attached to', 'has attached element');
        END IF;
    END IF;
    PERFORM cardgate_announce(tags);
    RETURN NULL;
END
$$;

CREATE FUNCTION cardgate_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cardgate_announce(ARRAY['*']);
    RETURN NULL;
END
$$;

CREATE TRIGGER cards_inserted AFTER INSERT ON cards REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_cards_changed();
CREATE TRIGGER cards_updated AFTER UPDATE ON cards
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_cards_changed();
CREATE TRIGGER cards_deleted AFTER DELETE ON cards REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_cards_changed();
CREATE TRIGGER cards_truncated AFTER TRUNCATE ON cards
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_truncated();
CREATE TRIGGER links_inserted AFTER INSERT ON links REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_links_changed();
CREATE TRIGGER links_updated AFTER UPDATE ON links
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_links_changed();
CREATE TRIGGER links_deleted AFTER DELETE ON links REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_links_changed();
CREATE TRIGGER links_truncated AFTER TRUNCATE ON links
    FOR EACH STATEMENT EXECUTE FUNCTION cardgate_truncated();
