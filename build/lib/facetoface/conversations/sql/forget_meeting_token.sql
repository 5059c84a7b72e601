-- A private room's meeting token is kept only while its session is live: the statement that
-- ends or fails a conversation drops it (trigger `mentor_conversations_forget_meeting_token`).
CREATE OR REPLACE FUNCTION facetoface.forget_meeting_token() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
BEGIN
  NEW.meeting_token := NULL;
  RETURN NEW;
END
$fn$
