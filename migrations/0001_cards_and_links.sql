-- Cards and links, after Jellyfish's model.

CREATE TABLE cards (
    id                 uuid PRIMARY KEY,
    slug               text NOT NULL CHECK (slug ~ '^[a-z0-9-]+$' AND length(slug) <= 255),
    version_major      integer NOT NULL DEFAULT 1 CHECK (version_major >= 0),
    version_minor      integer NOT NULL DEFAULT 0 CHECK (version_minor >= 0),
    version_patch      integer NOT NULL DEFAULT 0 CHECK (version_patch >= 0),
    version_prerelease text NOT NULL DEFAULT '',
    version_build      text NOT NULL DEFAULT '',
    type               text NOT NULL CHECK (type ~ '^[a-z0-9-]+@\d+(\.\d+)?(\.\d+)?$'),
    name               text,
    tags               text[] NOT NULL DEFAULT '{}',
    markers            text[] NOT NULL DEFAULT '{}',
    data               jsonb NOT NULL DEFAULT '{}',
    active             boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (slug, version_major, version_minor, version_patch, version_prerelease, version_build)
);

-- Marker containment (`markers && ...`, `markers @> ...`).
CREATE INDEX cards_markers ON cards USING gin (markers);
-- Cards by type (without the version).
CREATE INDEX cards_type ON cards (split_part(type, '@', 1));
-- Repository lookup: one active image per registry name.
CREATE UNIQUE INDEX cards_image_repository ON cards ((data ->> 'repository'))
    WHERE split_part(type, '@', 1) = 'image' AND active;
-- Sessions and password cards by their actor.
CREATE INDEX cards_actor ON cards ((data ->> 'actor'))
    WHERE split_part(type, '@', 1) IN ('session', 'authentication-password');

-- Typed edges. Every link is stored twice: the verb from `from_id`, its inverse from `to_id`.
CREATE TABLE links (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    from_id    uuid NOT NULL REFERENCES cards (id),
    to_id      uuid NOT NULL REFERENCES cards (id),
    data       jsonb NOT NULL DEFAULT '{}',
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX links_from ON links (from_id, name, to_id) WHERE active;
CREATE INDEX links_to ON links (to_id, name, from_id) WHERE active;
CREATE UNIQUE INDEX links_unique ON links (from_id, name, to_id) WHERE active;
