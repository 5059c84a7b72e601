-- A session (`SessionRow` in conversations/repository.py) as JSON, for answers that carry
-- another session than the one being written (a replayed key's, the live one of a 409).
CREATE OR REPLACE FUNCTION facetoface.session_json(p_daily_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, public
AS $fn$
  SELECT jsonb_build_object(
    'id', d.id, 'user_id', d.user_id, 'session_status', d.session_status,
    'started_at', d.started_at, 'completed_at', d.completed_at,
    'duration_seconds', d.duration_seconds, 'created_at', d.created_at,
    'mentor_conversation_id', m.id, 'conversation_status', m.status,
    'tavus_conversation_id', m.tavus_conversation_id, 'conversation_url', m.conversation_url,
    'conversation_name', m.conversation_name, 'start_time', m.start_time,
    'end_time', m.end_time, 'shutdown_at', m.shutdown_at,
    'shutdown_reason', m.shutdown_reason, 'failure_code', m.failure_code,
    'mentor_name', m.mentor_name, 'mentor_avatar_url', m.mentor_avatar_url)
  FROM public.daily_sessions d
  JOIN public.mentor_conversations m ON m.daily_session_id = d.id
  WHERE d.id = p_daily_id
$fn$
