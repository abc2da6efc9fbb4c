-- Failed logins per account, shared by every server instance on the database, so that the
-- account throttle holds fleet-wide. A row is keyed by the SHA-256 of the account's throttle key
-- (fixed size, whatever name an attacker sends); its window ends `window_ends`, after which the
-- row counts for nothing and is pruned. Every insert or update is announced on
-- `cardgate_login_failures` with the key in hex, so that instances forget that the account had
-- no failures.
CREATE TABLE login_failures (
    account_hash bytea PRIMARY KEY CHECK (octet_length(account_hash) = 32),
    failures integer NOT NULL CHECK (failures > 0),
    window_ends timestamptz NOT NULL
);

CREATE INDEX login_failures_window_ends ON login_failures (window_ends);

CREATE FUNCTION cardgate_notify_login_failure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cardgate_login_failures', encode(NEW.account_hash, 'hex'));
    RETURN NULL;
END
$$;

CREATE TRIGGER login_failures_changed AFTER INSERT OR UPDATE ON login_failures
    FOR EACH ROW EXECUTE FUNCTION cardgate_notify_login_failure();
