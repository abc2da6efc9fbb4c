-- Bulk seed of a benchmark store, written straight into PostgreSQL (the admin API would take
-- hours). Rows have the shape the store's own writers give them (crates/store/src/changes.rs):
-- every card has its `create` event card attached to it, every link is stored with its inverse
-- and has its `link` event, all acting as user-admin.
--
-- psql variables:
--   people = 1: orgs o0001.. (:orgs), users u00001.. (:users, each a member of two orgs),
--               robots r0001.. (:robots, each granted pull+push on one image), user grants;
--   images from :first_image to :last_image, 100 per org in turn, every tenth public.
-- Images are `o<org>/app-<n>` (n zero-padded to 6), marked with their org.

\set ON_ERROR_STOP on
SET synchronous_commit = off;

BEGIN;

CREATE TEMP TABLE new_cards (id uuid PRIMARY KEY, slug text UNIQUE, type text, name text,
                             markers text[], data jsonb) ON COMMIT DROP;
CREATE TEMP TABLE new_links (name text, inverse text, from_id uuid, to_id uuid, data jsonb,
                             target uuid, target_markers text[]) ON COMMIT DROP;

\if :people
INSERT INTO new_cards
SELECT gen_random_uuid(), 'org-o' || lpad(i::text, 4, '0'), 'org@1.0.0', 'Org ' || i, '{}', '{}'
FROM generate_series(1, :orgs) AS i;

INSERT INTO new_cards
SELECT gen_random_uuid(), 'user-u' || lpad(i::text, 5, '0'), 'user@1.0.0', NULL, '{}',
       jsonb_build_object('roles', jsonb_build_array('user-default'),
                          'email', 'u' || i || '@bench.example')
FROM generate_series(1, :users) AS i;

INSERT INTO new_cards
SELECT gen_random_uuid(), 'user-r' || lpad(i::text, 4, '0'), 'user@1.0.0', NULL, '{}',
       jsonb_build_object('roles', jsonb_build_array('user-default'), 'robot', true)
FROM generate_series(1, :robots) AS i;
\endif

INSERT INTO new_cards
SELECT gen_random_uuid(), 'image-b' || i, 'image@1.0.0', repository, ARRAY['org-' || org],
       jsonb_build_object('repository', repository, 'public', i % 10 = 0)
FROM (SELECT i, 'o' || lpad((((i - 1) % :orgs) + 1)::text, 4, '0') AS org,
             'o' || lpad((((i - 1) % :orgs) + 1)::text, 4, '0') || '/app-' || lpad(i::text, 6, '0')
                 AS repository
      FROM generate_series(:first_image, :last_image) AS i) AS images;

INSERT INTO cards (id, slug, type, name, markers, data)
SELECT id, slug, type, name, markers, data FROM new_cards;

\if :people
-- Memberships: user i in org (i mod orgs) with a role in turn, and as a viewer in a second org.
INSERT INTO new_links
SELECT 'has member', 'is member of', o.id, u.id, jsonb_build_object('role', m.role), o.id, o.markers
FROM (SELECT i, (((i - 1) % :orgs) + 1) AS org,
             (ARRAY['viewer', 'developer', 'maintainer', 'owner'])[(i % 4) + 1] AS role
      FROM generate_series(1, :users) AS i
      UNION ALL
      SELECT i, (((i * 7) % :orgs) + 1), 'viewer'
      FROM generate_series(1, :users) AS i
      WHERE (((i * 7) % :orgs) + 1) <> (((i - 1) % :orgs) + 1)) AS m
JOIN new_cards o ON o.slug = 'org-o' || lpad(m.org::text, 4, '0')
JOIN new_cards u ON u.slug = 'user-u' || lpad(m.i::text, 5, '0');

-- Grants: robot j pulls and pushes image 10 j - 9 (private); user i pulls image 13 i.
INSERT INTO new_links
SELECT 'has access to', 'is accessible by', r.id, img.id,
       '{"actions": ["pull", "push"]}'::jsonb, img.id, img.markers
FROM generate_series(1, :robots) AS j
JOIN new_cards r ON r.slug = 'user-r' || lpad(j::text, 4, '0')
JOIN new_cards img ON img.slug = 'image-b' || (10 * j - 9);

INSERT INTO new_links
SELECT 'has access to', 'is accessible by', u.id, img.id, '{"actions": ["pull"]}'::jsonb, img.id,
       img.markers
FROM generate_series(1, :users) AS i
JOIN new_cards u ON u.slug = 'user-u' || lpad(i::text, 5, '0')
JOIN new_cards img ON img.slug = 'image-b' || (((13 * i - 1) % (:last_image)) + 1);

INSERT INTO links (id, name, from_id, to_id, data)
SELECT gen_random_uuid(), name, from_id, to_id, data FROM new_links
UNION ALL
SELECT gen_random_uuid(), inverse, to_id, from_id, data FROM new_links;
\endif

-- The events: a `create` for every card, a `link` for every link, attached to their target.
CREATE TEMP TABLE new_events ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, c.id AS target, 'create@1.0.0' AS type, c.markers,
       jsonb_build_object('slug', c.slug, 'type', c.type, 'name', c.name,
                          'markers', to_jsonb(c.markers), 'data', c.data) AS payload
FROM new_cards c;
\if :people
INSERT INTO new_events
SELECT gen_random_uuid(), l.target, 'link@1.0.0', l.target_markers,
       jsonb_build_object('verb', l.name, 'from', l.from_id, 'to', l.to_id, 'data', l.data)
FROM new_links l;
\endif

INSERT INTO cards (id, slug, type, markers, data)
SELECT e.id, split_part(e.type, '@', 1) || '-' || replace(e.id::text, '-', ''), e.type, e.markers,
       jsonb_build_object('timestamp', to_char(now() AT TIME ZONE 'UTC',
                                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'actor', (SELECT id FROM cards WHERE slug = 'user-admin'),
                          'target', e.target, 'payload', e.payload)
FROM new_events e;

INSERT INTO links (id, name, from_id, to_id, data)
SELECT gen_random_uuid(), 'is attached to', id, target, '{}'::jsonb FROM new_events
UNION ALL
SELECT gen_random_uuid(), 'has attached element', target, id, '{}'::jsonb FROM new_events;

COMMIT;
ANALYZE cards;
ANALYZE links;
