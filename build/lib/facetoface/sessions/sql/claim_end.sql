-- The first round trip of an end (sessions/repository.py `claim_end`): mark the caller's
-- selected live session `ending` (claimed), and answer with the session as it stands.
-- `session` is NULL when the selector names none of the caller's sessions.
CREATE OR REPLACE FUNCTION facetoface.claim_end(
  p_user_id uuid,
  p_now timestamptz,
  p_sel_daily uuid,          -- the selector: any of the session's ids (NULL: any)
  p_sel_row uuid,
  p_sel_tavus text,
  OUT claimed boolean,
  OUT session jsonb
)
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  v_daily uuid;
BEGIN
  -- At most one live session per user (a unique index): at most one row.
  UPDATE public.mentor_conversations m
     SET status = 'ending', updated_at = p_now, version = m.version + 1
    FROM public.daily_sessions d
   WHERE d.id = m.daily_session_id
     AND d.user_id = p_user_id AND m.user_id = p_user_id
     AND (p_sel_daily IS NULL OR d.id = p_sel_daily)
     AND (p_sel_row IS NULL OR m.id = p_sel_row)
     AND (p_sel_tavus IS NULL OR m.tavus_conversation_id = p_sel_tavus)
     AND m.status IN ('starting', 'active', 'ending', 'indeterminate')
  RETURNING d.id INTO v_daily;
  claimed := FOUND;
  IF NOT claimed THEN
    -- A statement of its own: it sees what an end that won the row just committed.
    SELECT d.id INTO v_daily
      FROM public.daily_sessions d
      JOIN public.mentor_conversations m ON m.daily_session_id = d.id
     WHERE d.user_id = p_user_id AND m.user_id = p_user_id
       AND (p_sel_daily IS NULL OR d.id = p_sel_daily)
       AND (p_sel_row IS NULL OR m.id = p_sel_row)
       AND (p_sel_tavus IS NULL OR m.tavus_conversation_id = p_sel_tavus)
     ORDER BY d.created_at DESC, d.id DESC
     LIMIT 1;
  END IF;
  session := CASE WHEN v_daily IS NULL THEN NULL ELSE facetoface.session_json(v_daily) END;
END
$fn$;
