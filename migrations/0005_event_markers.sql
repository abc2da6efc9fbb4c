-- Events about unmarked cards (orgs, users, roles) were visible to everyone; mark them with
-- their target's slug, as new events are: an org's history is for its members, a user's for
-- the user, a role's for platform admins.
UPDATE cards AS e
SET markers = ARRAY[t.slug]
FROM cards AS t
WHERE split_part(e.type, '@', 1) IN ('create', 'update', 'link', 'unlink', 'deactivate')
  AND e.markers = '{}'
  AND t.id::text = e.data ->> 'target';
