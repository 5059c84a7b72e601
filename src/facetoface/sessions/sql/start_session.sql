-- The first round trip of a start (sessions/service.py): load what the mentor should know
-- and decide, in one call, whether this start may write its rows — and write them.
-- Replays come first: a key whose start completed is answered before any other check.
CREATE OR REPLACE FUNCTION facetoface.start_session(
  p_user_id uuid,
  p_mentor_id uuid,
  p_now timestamptz,
  p_insert boolean,          -- false: load only (a preview, or the circuit is open)
  p_recent_since timestamptz,
  p_start_limit integer,
  p_goal_rows integer,       -- caps, so no user's data can make this call slow
  p_category_rows integer,
  p_text_chars integer,
  p_previous_rows integer,   -- "since last time": sessions, the user's last lines, goals
  p_recap_rows integer,
  p_changed_goal_rows integer,
  p_key text,                -- the Idempotency-Key (NULL: none)
  p_request_hash bytea,
  p_key_locked_until timestamptz,
  p_key_expires_at timestamptz,
  p_daily_id uuid,           -- the rows to write
  p_row_id uuid,
  p_conversation_name text,
  p_token_hash bytea,
  p_default_persona text,
  p_default_replica text
) RETURNS facetoface.start_result
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  r facetoface.start_result;
  k public.idempotency_keys%ROWTYPE;
  v_key_status text;
  v_tz text;
  v_date date;
  v_premium boolean := false;
  v_tier text;
  v_persona_uuid uuid;
  v_constraint text;
  v_last_id uuid;
  v_last_end timestamptz;
  v_erasing boolean := false;
  v_previous integer := 0;
  v_row record;
  -- "Since last time": the user's sessions that ran and ended, newest first. A cursor, read
  -- only as far as needed: a cursor's plan is chosen for its first rows, so it walks the
  -- (user_id, created_at, id) index backward and stops. As one `ORDER BY … LIMIT` statement
  -- run as facetoface_service (the previous release's role for a start) the planner read and
  -- sorted every session the user ever had: its row-level-security policy (`caller IS NULL
  -- OR user_id = caller`) hides how selective the filter is (bench growth phase).
  -- Each session's daily row by its key (a lateral, `OFFSET 0`): as a join, the daily rows'
  -- own policy (`user_id = caller`, facetoface_delegate's) made the planner expect the join
  -- to yield almost nothing and hash all of the user's daily sessions instead.
  previous CURSOR FOR
    SELECT m.id, m.created_at, coalesce(d.started_at, m.created_at) AS started_at,
           d.completed_at, d.duration_seconds, d.session_status,
           left(m.shutdown_reason, 64) AS shutdown_reason
      FROM public.mentor_conversations m
     CROSS JOIN LATERAL (
           SELECT x.started_at, x.completed_at, x.duration_seconds, x.session_status
             FROM public.daily_sessions x
            WHERE x.id = m.daily_session_id
           OFFSET 0) d
     WHERE m.user_id = p_user_id AND m.status = 'ended'
     ORDER BY m.created_at DESC, m.id DESC;
BEGIN
  -- 0. An erasure of this user (`purge-user`, migration 0011) first marks them, holding this
  -- lock exclusively: a start that may write waits for the mark to commit (or the mark waits
  -- for this start's rows to commit, so the erasure sees them), and then sees it — its own
  -- statement, so its own snapshot.
  IF p_insert THEN
    PERFORM pg_advisory_xact_lock_shared(hashtext('facetoface.erasure'),
                                         hashtext(p_user_id::text));
  END IF;
  v_erasing := EXISTS (SELECT 1 FROM facetoface.erasures x WHERE x.user_id = p_user_id);

  -- 1. The key: a completed start is replayed; a key in use answers for itself.
  IF p_key IS NOT NULL THEN
    SELECT * INTO k FROM public.idempotency_keys
     WHERE user_id = p_user_id AND key = p_key AND expires_at > p_now;
    IF FOUND THEN
      SELECT m.status INTO v_key_status FROM public.mentor_conversations m
       WHERE m.daily_session_id = k.daily_session_id;
      IF k.request_hash <> p_request_hash THEN
        r.outcome := 'key'; r.key_state := 'mismatch';
        RETURN r;
      END IF;
      IF k.state = 'done' OR v_key_status IN ('active', 'ending', 'ended') THEN
        UPDATE public.idempotency_keys SET state = 'done', locked_until = p_now
         WHERE user_id = p_user_id AND key = p_key AND state <> 'done';
        r.outcome := 'key'; r.key_state := 'done';
        r.key_session := facetoface.session_json(k.daily_session_id);
        RETURN r;
      END IF;
      IF v_key_status IS NULL AND k.locked_until > p_now THEN
        r.outcome := 'key'; r.key_state := 'in_flight';
        RETURN r;
      END IF;
      IF v_key_status IN ('starting', 'indeterminate') THEN
        r.outcome := 'key';
        r.key_state := CASE WHEN k.locked_until > p_now THEN 'in_flight' ELSE 'unresolved' END;
        r.key_session := facetoface.session_json(k.daily_session_id);
        RETURN r;
      END IF;
      -- Its start created nothing (failed) or its session is gone: this one starts afresh.
    END IF;
  END IF;

  -- 2. What the mentor should know, capped in rows and characters.
  SELECT jsonb_build_object(
           'full_name', left(p.full_name, p_text_chars),
           'language', left(p.language, 16),
           'timezone', left(p.timezone, 64),
           'subscription_tier', p.subscription_tier)
    INTO r.profile FROM public.profiles p WHERE p.id = p_user_id;
  SELECT jsonb_build_object(
           'disc_type', o.disc_type,
           'enneagram_type', o.enneagram_type,
           'confidence_score', o.confidence_score)
    INTO r.onboarding FROM public.onboarding_profiles o WHERE o.user_id = p_user_id;
  SELECT jsonb_build_object(
           'timing', left(x.timing, p_text_chars),
           'duration', left(x.duration, p_text_chars),
           'style', left(x.style, p_text_chars),
           'voice_id', left(x.voice_id, p_text_chars),
           'focus_area', left(x.focus_area, p_text_chars),
           'session_frequency', left(x.session_frequency, p_text_chars),
           'preferred_session_time', x.preferred_session_time)
    INTO r.ritual FROM public.ritual_preferences x WHERE x.user_id = p_user_id;
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'category', left(c.category, p_text_chars),
           'priority_level', c.priority_level)), '[]'::jsonb)
    INTO r.categories
    FROM (SELECT * FROM public.user_emotional_categories
           WHERE user_id = p_user_id
           ORDER BY priority_level NULLS LAST, category LIMIT p_category_rows) c;
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           'goal_id', g.id,
           'goal_text', left(g.goal_text, p_text_chars),
           'goal_type', left(g.goal_type, p_text_chars),
           'smart_goal', left(g.smart_goal, p_text_chars),
           'target_date', g.target_date,
           'progress_percentage', g.progress_percentage)), '[]'::jsonb)
    INTO r.goals
    FROM (SELECT * FROM public.user_goals
           WHERE user_id = p_user_id AND status = 'active'
           ORDER BY target_date NULLS LAST, progress_percentage DESC NULLS LAST, goal_text
           LIMIT p_goal_rows) g;
  -- The mentor: the one asked for if it is the caller's, else their active one.
  SELECT up.id, jsonb_build_object(
           'id', up.id,
           'name', left(up.name, p_text_chars),
           'tavus_persona_id', up.tavus_persona_id,
           'replica_id', up.replica_id,
           'avatar_name', left(ma.name, p_text_chars),
           'avatar_thumbnail_url', ma.thumbnail_url,
           'avatar_persona_id', ma.tavus_persona_id,
           'avatar_replica_id', ma.tavus_replica_id,
           'avatar_is_premium', coalesce(ma.is_premium, false)),
         coalesce(ma.is_premium, false)
    INTO v_persona_uuid, r.persona, v_premium
    FROM public.user_personas up
    LEFT JOIN public.mentor_avatars ma ON ma.id = up.mentor_avatar_id
   WHERE up.user_id = p_user_id
     AND (CASE WHEN p_mentor_id IS NULL THEN up.is_active ELSE up.id = p_mentor_id END)
   ORDER BY up.updated_at DESC, up.id
   LIMIT 1;

  -- Since last time (only if the user lets the mentor remember): the sessions that ran and
  -- ended, newest first; the user's own last lines of the latest one; the active goals
  -- updated after it ended. All through the (user_id, created_at) and primary-key indexes.
  r.mentor_memory := coalesce(
    (SELECT pr.mentor_memory FROM public.user_preferences pr WHERE pr.user_id = p_user_id),
    true);
  r.previous_sessions := '[]'::jsonb;
  r.recap := '[]'::jsonb;
  r.changed_goals := '[]'::jsonb;
  r.mentor_changes := '[]'::jsonb;
  IF r.mentor_memory AND p_previous_rows > 0 THEN
    -- FETCH, one row at a time: a FOR loop over the cursor would read ahead in batches.
    OPEN previous;
    LOOP
      FETCH previous INTO v_row;
      EXIT WHEN NOT FOUND;
      IF v_previous = 0 THEN
        v_last_id := v_row.id;
        v_last_end := v_row.completed_at;
      END IF;
      r.previous_sessions := r.previous_sessions || jsonb_build_array(jsonb_build_object(
        'started_at', v_row.started_at,
        'duration_seconds', v_row.duration_seconds,
        'status', v_row.session_status,
        'shutdown_reason', v_row.shutdown_reason));
      v_previous := v_previous + 1;
      EXIT WHEN v_previous >= p_previous_rows;
    END LOOP;
    CLOSE previous;
  END IF;
  IF v_last_id IS NOT NULL AND p_recap_rows > 0 THEN
    SELECT coalesce(jsonb_agg(t.content ORDER BY t.i), '[]'::jsonb) INTO r.recap
      FROM (SELECT left(x.e ->> 'content', p_text_chars) AS content, x.i
              FROM public.mentor_conversations m
             CROSS JOIN LATERAL jsonb_array_elements(
                     CASE WHEN jsonb_typeof(m.transcript) = 'array' THEN m.transcript
                          ELSE '[]'::jsonb END) WITH ORDINALITY AS x(e, i)
             WHERE m.id = v_last_id
               AND lower(btrim(x.e ->> 'role')) = 'user'
               AND jsonb_typeof(x.e -> 'content') = 'string'
               AND btrim(x.e ->> 'content', E' \t\r\n') <> ''
             ORDER BY x.i DESC
             LIMIT p_recap_rows) t;
  END IF;
  IF v_last_end IS NOT NULL AND p_changed_goal_rows > 0 THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
             'goal_text', left(g.goal_text, p_text_chars),
             'smart_goal', left(g.smart_goal, p_text_chars),
             'progress_percentage', g.progress_percentage,
             'updated_at', g.updated_at) ORDER BY g.updated_at DESC, g.id), '[]'::jsonb)
      INTO r.changed_goals
      FROM (SELECT * FROM public.user_goals
             WHERE user_id = p_user_id AND status = 'active' AND updated_at > v_last_end
             ORDER BY updated_at DESC, id
             LIMIT p_changed_goal_rows) g;
  END IF;
  -- What the mentor changed in the latest session (tools, its report), and whether the user
  -- undid it since (migration 0013's goal-change log, through its session_id index).
  IF v_last_id IS NOT NULL AND p_changed_goal_rows > 0 THEN
    SELECT coalesce(jsonb_agg(jsonb_build_object(
             'goal_text', left(g.goal_text, p_text_chars),
             'kind', c.kind,
             'before', c.before_value -> 'progress_percentage',
             'after', c.after_value -> 'progress_percentage',
             'undone', c.undone_at IS NOT NULL,
             'created_at', c.created_at) ORDER BY c.created_at DESC, c.id), '[]'::jsonb)
      INTO r.mentor_changes
      FROM (SELECT * FROM public.goal_changes
             WHERE user_id = p_user_id
               AND session_id = (SELECT m.daily_session_id FROM public.mentor_conversations m
                                  WHERE m.id = v_last_id)
             ORDER BY created_at DESC, id
             LIMIT p_changed_goal_rows) c
      JOIN public.user_goals g ON g.id = c.goal_id;
  END IF;

  -- Starts that count against the quota: every one that may have billed.
  SELECT count(*), min(m.created_at) INTO r.recent_starts, r.oldest_recent_start
    FROM public.mentor_conversations m
   WHERE m.user_id = p_user_id AND m.created_at >= p_recent_since AND m.status <> 'failed';

  -- 3. The decision.
  v_tier := r.profile ->> 'subscription_tier';
  r.persona_id := nullif(coalesce(nullif(r.persona ->> 'tavus_persona_id', ''),
                                  nullif(r.persona ->> 'avatar_persona_id', '')), '');
  r.replica_id := nullif(coalesce(nullif(r.persona ->> 'replica_id', ''),
                                  nullif(r.persona ->> 'avatar_replica_id', '')), '');
  IF r.persona_id IS NULL AND r.replica_id IS NULL THEN
    r.persona_id := nullif(p_default_persona, '');
    r.replica_id := nullif(p_default_replica, '');
  END IF;
  r.mentor_name := coalesce(nullif(r.persona ->> 'name', ''), r.persona ->> 'avatar_name');
  r.mentor_avatar_url := r.persona ->> 'avatar_thumbnail_url';
  r.refusal := CASE
    WHEN v_erasing THEN 'erasure_in_progress'
    WHEN r.profile IS NULL THEN 'profile_not_found'
    WHEN p_mentor_id IS NOT NULL AND r.persona IS NULL THEN 'mentor_not_found'
    WHEN v_premium AND coalesce(v_tier, 'free') <> 'paid' THEN 'premium_mentor_required'
    WHEN r.recent_starts >= p_start_limit THEN 'rate_limited'
    WHEN r.persona_id IS NULL AND r.replica_id IS NULL THEN 'mentor_not_configured'
    WHEN NOT p_insert THEN 'not_inserting'
  END;
  IF r.refusal IS NOT NULL THEN
    r.outcome := CASE WHEN p_insert THEN 'refused' ELSE 'preview' END;
    RETURN r;
  END IF;

  -- 4. Write both rows as `starting` (and claim the key); the one-live-session index decides
  -- between concurrent starts of one user.
  v_tz := nullif(r.profile ->> 'timezone', '');
  BEGIN
    v_date := (p_now AT TIME ZONE coalesce(v_tz, 'UTC'))::date;
  EXCEPTION WHEN invalid_parameter_value THEN
    v_date := (p_now AT TIME ZONE 'UTC')::date;  -- an unknown zone name: UTC's date
  END;
  BEGIN
    IF p_key IS NOT NULL THEN
      INSERT INTO public.idempotency_keys AS ik (
        user_id, key, request_hash, state, daily_session_id, created_at, locked_until,
        expires_at)
      VALUES (p_user_id, p_key, p_request_hash, 'in_flight', NULL, p_now, p_key_locked_until,
              p_key_expires_at)
      ON CONFLICT (user_id, key) DO UPDATE SET
        request_hash = EXCLUDED.request_hash, state = 'in_flight',
        daily_session_id = NULL, created_at = EXCLUDED.created_at,
        locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at;
    END IF;
    INSERT INTO public.daily_sessions (
      id, user_id, session_type, session_status, session_date, created_at, updated_at)
    VALUES (p_daily_id, p_user_id, 'face_to_face', 'started', v_date, p_now, p_now);
    INSERT INTO public.mentor_conversations (
      id, user_id, daily_session_id, user_persona_id, conversation_name, persona_id,
      replica_id, mentor_name, mentor_avatar_url, session_type, status, callback_token_hash,
      version, reconcile_attempts, created_at, updated_at)
    VALUES (p_row_id, p_user_id, p_daily_id, v_persona_uuid, p_conversation_name,
            r.persona_id, r.replica_id, r.mentor_name, r.mentor_avatar_url, 'face_to_face',
            'starting', p_token_hash, 0, 0, p_now, p_now);
    IF p_key IS NOT NULL THEN
      UPDATE public.idempotency_keys SET daily_session_id = p_daily_id
       WHERE user_id = p_user_id AND key = p_key;
    END IF;
    r.outcome := 'inserted';
    r.created_at := p_now;
  EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
    IF v_constraint <> 'uq_mentor_conversations_live_user_id' THEN
      RAISE;
    END IF;
    -- Everything in this block was undone; answer with the live session.
    r.outcome := 'conflict';
    r.live_session := (
      SELECT facetoface.session_json(m.daily_session_id) FROM public.mentor_conversations m
       WHERE m.user_id = p_user_id
         AND m.status IN ('starting', 'active', 'ending', 'indeterminate'));
  END;
  RETURN r;
END
$fn$;
