-- Every conversation row deleted here (a user's DELETE, an erasure, a profile deleted through
-- the origin's API, whatever the path: the foreign keys' cascades included) leaves its id in
-- `facetoface.deleted_conversations` (trigger `mentor_conversations_remember_deleted`). The
-- reconciler ends a running conversation named with this installation's identity whose row
-- is gone only when its id is there: deleted here, so provably ours. A database copied from
-- another installation shares its identity but never deleted the other's rows.
-- It runs with the deleter's rights: `facetoface_delegate` or `facetoface_service` (which may
-- insert the id) for the service's deletions, the tables' owner for a foreign key's cascade
-- (PostgreSQL runs those as the owner), so a user deleting their profile through the origin's
-- API is covered too.
CREATE OR REPLACE FUNCTION facetoface.remember_deleted_conversation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
BEGIN
  INSERT INTO facetoface.deleted_conversations (id, deleted_at)
  VALUES (OLD.id, now())
  ON CONFLICT (id) DO NOTHING;
  RETURN OLD;
END
$fn$;
