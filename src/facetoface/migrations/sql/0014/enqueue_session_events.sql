-- The session events of the app's webhooks (outbox/, webhooks/): a trigger on
-- `daily_sessions` (migration 0014), so every way a session starts or ends — the start's
-- answer from Tavus, a callback, the reconciler's adoption or close, an end call — records its
-- event in the same transaction as the change, with nothing for the code paths to remember.
-- A session starts when it has a start time (its Tavus conversation exists) and ends when it
-- also has an end time; a start that never reached Tavus (`failed`) emits nothing. The unique
-- (event_type, event_key) makes each event once per session, however often the row changes.
-- The event's time is the row's `updated_at`: the writer's clock, not the database's.
CREATE OR REPLACE FUNCTION facetoface.enqueue_session_events() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  v_data jsonb;
BEGIN
  IF NEW.started_at IS NULL OR NEW.session_status = 'failed' THEN
    RETURN NULL;
  END IF;
  -- Only a writer that may write the outbox records events: the service (or the tables'
  -- owner). Another writer of session rows (the origin's Edge Functions after a rollback, as
  -- `service_role`; someone in psql) changes the session without an event, never fails.
  IF NOT has_table_privilege('public.webhook_events', 'INSERT') THEN
    RETURN NULL;
  END IF;
  v_data := jsonb_build_object(
    'session_id', NEW.id,
    'user_id', NEW.user_id,
    'status', NEW.session_status,
    'started_at', NEW.started_at,
    'conversation_id', NEW.session_metadata ->> 'tavus_conversation_id');
  INSERT INTO public.webhook_events AS w (
    id, event_type, event_key, user_id, data, status, attempts, occurred_at, next_attempt_at,
    created_at)
  VALUES (
    gen_random_uuid(), 'session.started', NEW.id::text, NEW.user_id, v_data, 'pending', 0,
    NEW.updated_at, NEW.updated_at, NEW.updated_at)
  ON CONFLICT (event_type, event_key) DO NOTHING;
  IF NEW.completed_at IS NOT NULL THEN
    INSERT INTO public.webhook_events AS w (
      id, event_type, event_key, user_id, data, status, attempts, occurred_at,
      next_attempt_at, created_at)
    VALUES (
      gen_random_uuid(), 'session.ended', NEW.id::text, NEW.user_id,
      v_data || jsonb_build_object(
        'ended_at', NEW.completed_at,
        'duration_seconds', NEW.duration_seconds,
        'shutdown_reason', NEW.session_metadata ->> 'shutdown_reason'),
      'pending', 0, NEW.updated_at, NEW.updated_at, NEW.updated_at)
    ON CONFLICT (event_type, event_key) DO NOTHING;
  END IF;
  RETURN NULL;
END
$fn$;
