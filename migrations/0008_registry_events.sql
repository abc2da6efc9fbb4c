-- What the registry tells cardgate through its notifications (docs/registry-events.md). None of
-- these tables is a card or a link: recording a push or a pull is not a policy change and
-- announces nothing on the change feed, except `org_quotas` when an org crosses its quota.

-- Notifications already applied, by the registry's event id: a retried, duplicated or replayed
-- envelope changes nothing twice. Pruned after the audit retention.
CREATE TABLE registry_events_seen (
    id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_events_seen_received ON registry_events_seen (received_at);

-- The tags of each repository as pushed: the manifest each names, who pushed it and when.
CREATE TABLE registry_tags (
    repository text NOT NULL,
    tag text NOT NULL,
    digest text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    media_type text NOT NULL,
    pushed_by text NOT NULL,
    pushed_at timestamptz NOT NULL,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX registry_tags_digest ON registry_tags (repository, digest);

-- Manifests present in each repository (tagged or not), for the org's usage.
CREATE TABLE registry_manifests (
    org text NOT NULL,
    repository text NOT NULL,
    digest text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    PRIMARY KEY (repository, digest)
);
CREATE INDEX registry_manifests_org ON registry_manifests (org);

-- Blobs (layers, configs) pushed or mounted into an org's repositories, once per digest: the
-- registry announces no garbage collection, so a recorded blob keeps counting.
CREATE TABLE registry_blobs (
    org text NOT NULL,
    digest text NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    PRIMARY KEY (org, digest)
);

-- The audit trail of manifest pulls, pushes and deletes: append-only, pruned after the
-- retention. `known` is false for a repository without an image card (shown to platform
-- admins only).
CREATE TABLE registry_activity (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    action text NOT NULL CHECK (action IN ('pull', 'push', 'delete')),
    repository text NOT NULL,
    org text NOT NULL,
    reference text NOT NULL,
    actor text NOT NULL,
    address text NOT NULL,
    known boolean NOT NULL
);
CREATE INDEX registry_activity_repository ON registry_activity (repository, at);
CREATE INDEX registry_activity_actor ON registry_activity (actor, at);
CREATE INDEX registry_activity_org ON registry_activity (org, at);
CREATE INDEX registry_activity_at ON registry_activity (at);

-- Images made by a push token's first-push rule: reserved until the registry reports a push
-- of a manifest into them. A reservation that expires is deactivated and `released`: its name
-- is free again (not retired, unlike an image an owner deactivated).
CREATE TABLE image_reservations (
    card_id uuid PRIMARY KEY REFERENCES cards (id),
    repository text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    pushed_at timestamptz,
    released_at timestamptz
);
CREATE INDEX image_reservations_repository ON image_reservations (repository);
CREATE INDEX image_reservations_pending ON image_reservations (created_at)
    WHERE pushed_at IS NULL AND released_at IS NULL;

-- Storage quotas per org (slug `org-<name>`), in bytes, and whether the org's usage is over
-- it: the fact token decisions rest on. Announced as `q:<org slug>` when it changes.
CREATE TABLE org_quotas (
    org text PRIMARY KEY,
    quota_bytes bigint NOT NULL CHECK (quota_bytes >= 0),
    over boolean NOT NULL DEFAULT false
);

CREATE FUNCTION cardgate_quota_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.over THEN
            PERFORM cardgate_announce(ARRAY['q:' || OLD.org]);
        END IF;
    ELSIF TG_OP = 'INSERT' THEN
        IF NEW.over THEN
            PERFORM cardgate_announce(ARRAY['q:' || NEW.org]);
        END IF;
    ELSIF NEW.over IS DISTINCT FROM OLD.over THEN
        PERFORM cardgate_announce(ARRAY['q:' || NEW.org]);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER org_quotas_changed AFTER INSERT OR UPDATE OR DELETE ON org_quotas
    FOR EACH ROW EXECUTE FUNCTION cardgate_quota_changed();
