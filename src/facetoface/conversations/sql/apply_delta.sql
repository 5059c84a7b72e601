-- One change to one conversation: conversations/state.py's `merge` and `derive`, in SQL.
-- Read it beside that module: every rule here mirrors one there, and a property test holds
-- the two to the same results.
CREATE OR REPLACE FUNCTION facetoface.apply_delta(
  p_row_id uuid,
  p_now timestamptz,
  p_token_hash bytea,        -- a callback's token (NULL: no token to check)
  p_owner uuid,              -- the caller (NULL: the service acting for nobody)
  p_cid text,                -- the Tavus id the change names (bound if none is)
  p_event_type text,         -- the inbox row (NULL: no inbox row)
  p_event_id uuid,
  p_dedupe_key text,
  p_event_ts timestamptz,
  p_payload jsonb,
  p_raw_b64 text,
  p_known boolean,
  p_received_at timestamptz,
  p_fail boolean,            -- transitions
  p_unresolved boolean,
  p_adopt boolean,
  p_failure_code text,
  p_start_time timestamptz,
  p_url text,
  p_joined_at timestamptz,   -- facts
  p_shutdown_at timestamptz,
  p_shutdown_reason text,
  p_closed_at timestamptz,
  p_transcript jsonb,
  p_transcript_digest text,
  p_transcript_blocks jsonb,
  p_recording jsonb,
  p_recording_digest text,
  p_perception text,
  p_pca jsonb,
  p_pca_digest text
) RETURNS facetoface.applied
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $fn$
DECLARE
  m public.mentor_conversations%ROWTYPE;
  before public.mentor_conversations%ROWTYPE;
  d public.daily_sessions%ROWTYPE;
  r facetoface.applied;
  v_unresolved boolean;
  v_status text;
  v_code_applies boolean;
  v_old_len integer;
  v_old_ready boolean;
  v_new_ready boolean;
  v_transcript_won boolean := false;
  v_started timestamptz;
  v_ended timestamptz;
BEGIN
  SELECT * INTO m FROM public.mentor_conversations WHERE id = p_row_id FOR UPDATE;
  r.found := FOUND;
  IF NOT r.found THEN
    r.token_ok := false;
    r.authorized := false;
    RETURN r;
  END IF;
  r.before_status := m.status;
  r.token_ok := p_token_hash IS NULL OR m.callback_token_hash = p_token_hash;
  r.authorized := r.token_ok
    AND (p_owner IS NULL OR m.user_id = p_owner)
    AND (p_cid IS NULL OR m.tavus_conversation_id IS NULL OR m.tavus_conversation_id = p_cid);
  IF NOT r.authorized THEN
    RETURN r;
  END IF;

  -- The inbox row, stored once; a duplicate changes nothing.
  IF p_event_type IS NOT NULL THEN
    INSERT INTO public.tavus_callback_events AS e (
      id, mentor_conversation_id, conversation_id, event_type, dedupe_key, event_timestamp,
      payload, raw_body_b64, received_at, outcome)
    VALUES (
      p_event_id, p_row_id, p_cid, p_event_type, p_dedupe_key, p_event_ts, p_payload,
      p_raw_b64, p_received_at,
      CASE WHEN m.status = 'failed' THEN 'no_effect'
           WHEN p_known THEN 'applied' ELSE 'ignored' END)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING e.outcome INTO r.stored_outcome;
    IF r.stored_outcome IS NULL THEN
      RETURN r;
    END IF;
  END IF;

  before := m;
  -- The Tavus id an event names is bound, even on a failed conversation.
  m.tavus_conversation_id := coalesce(m.tavus_conversation_id, p_cid);

  IF m.status <> 'failed' THEN
    -- The transition (state._transition): the new status, and whether the failure code applies.
    v_unresolved := m.status IN ('starting', 'indeterminate');
    v_status := m.status;
    v_code_applies := false;
    IF p_fail THEN
      IF v_unresolved THEN
        v_status := 'failed';
        v_code_applies := true;
      END IF;
    ELSIF p_shutdown_at IS NOT NULL OR p_closed_at IS NOT NULL THEN
      v_status := 'ended';
      v_code_applies := true;
    ELSIF (p_joined_at IS NOT NULL OR p_adopt) AND v_unresolved THEN
      v_status := 'active';
      v_code_applies := true;
    ELSIF p_unresolved AND m.status = 'starting' THEN
      v_status := 'indeterminate';
      v_code_applies := true;
    END IF;
    IF v_code_applies AND p_failure_code IS NOT NULL THEN
      m.failure_code := p_failure_code;
    END IF;
    m.status := v_status;

    IF v_status <> 'failed' THEN
      -- Adopted: Tavus's creation time starts it, unless it already ended.
      IF p_adopt AND p_start_time IS NOT NULL AND m.shutdown_at IS NULL
         AND m.closed_at IS NULL THEN
        m.start_time := coalesce(m.start_time, p_start_time);
      END IF;
      IF p_url IS NOT NULL THEN
        m.conversation_url := p_url;
      END IF;
      m.replica_joined_at := LEAST(m.replica_joined_at, p_joined_at);
      -- The earliest shutdown wins; ties break on the reason (code point order).
      IF p_shutdown_at IS NOT NULL AND (
           m.shutdown_at IS NULL OR p_shutdown_at < m.shutdown_at
           OR (p_shutdown_at = m.shutdown_at AND coalesce(p_shutdown_reason, '') COLLATE "C"
               < coalesce(m.shutdown_reason, '') COLLATE "C")) THEN
        m.shutdown_at := p_shutdown_at;
        m.shutdown_reason := p_shutdown_reason;
      END IF;
      m.closed_at := coalesce(m.closed_at, p_closed_at);
      -- The longer transcript wins, then the smaller digest.
      IF p_transcript IS NOT NULL THEN
        v_old_len := jsonb_array_length(m.transcript);
        IF m.transcript IS NULL OR jsonb_array_length(p_transcript) > v_old_len
           OR (jsonb_array_length(p_transcript) = v_old_len
               AND p_transcript_digest COLLATE "C"
                   < coalesce(m.transcript_digest, '') COLLATE "C") THEN
          m.transcript := p_transcript;
          m.transcript_digest := p_transcript_digest;
          v_transcript_won := true;
        END IF;
      END IF;
      -- A ready recording beats a failed copy, then the smaller digest.
      IF p_recording IS NOT NULL THEN
        v_old_ready := coalesce(m.recording ->> 'status', '') = 'ready';
        v_new_ready := coalesce(p_recording ->> 'status', '') = 'ready';
        IF m.recording IS NULL OR (v_new_ready AND NOT v_old_ready)
           OR (v_new_ready = v_old_ready AND p_recording_digest COLLATE "C"
               < coalesce(m.recording_digest, '') COLLATE "C") THEN
          m.recording := p_recording;
          m.recording_digest := p_recording_digest;
        END IF;
      END IF;
      IF p_perception IS NOT NULL AND (m.perception_analysis IS NULL
         OR p_perception COLLATE "C" < m.perception_analysis COLLATE "C") THEN
        m.perception_analysis := p_perception;
      END IF;
      -- Post-call actions: a set keyed by digest.
      IF p_pca IS NOT NULL THEN
        m.post_call_actions := coalesce(m.post_call_actions, '{}'::jsonb)
          || jsonb_build_object(p_pca_digest, p_pca);
      END IF;
    END IF;
  END IF;

  -- What derives from the facts (state.derive). Closed by our side before Tavus's create was
  -- recorded (no start time): the user never had the room, so the session never started,
  -- whatever Tavus reports afterwards (its replica may join before our end reaches it).
  v_started := CASE WHEN m.start_time IS NOT NULL THEN m.start_time
                    WHEN m.closed_at IS NULL THEN m.replica_joined_at END;
  v_ended := coalesce(m.shutdown_at, m.closed_at);
  -- Tavus's clock and ours differ: a session never ends before it started.
  IF v_ended < v_started THEN
    v_ended := v_started;
  END IF;
  m.end_time := v_ended;
  m.duration_seconds := CASE WHEN v_started IS NOT NULL AND v_ended IS NOT NULL
    THEN greatest(0, floor(extract(epoch FROM v_ended - v_started)))::integer END;

  IF m IS NOT DISTINCT FROM before THEN
    -- Nothing changed (an unknown event, a losing copy): the rows stay as they are.
    SELECT * INTO d FROM public.daily_sessions WHERE id = m.daily_session_id;
  ELSE
    UPDATE public.mentor_conversations SET
      status = m.status,
      tavus_conversation_id = m.tavus_conversation_id,
      failure_code = m.failure_code,
      start_time = m.start_time,
      conversation_url = m.conversation_url,
      replica_joined_at = m.replica_joined_at,
      shutdown_at = m.shutdown_at,
      shutdown_reason = m.shutdown_reason,
      closed_at = m.closed_at,
      end_time = m.end_time,
      duration_seconds = m.duration_seconds,
      transcript = m.transcript,
      transcript_digest = m.transcript_digest,
      recording = m.recording,
      recording_digest = m.recording_digest,
      perception_analysis = m.perception_analysis,
      post_call_actions = m.post_call_actions,
      updated_at = p_now,
      version = version + 1
    WHERE id = p_row_id
    RETURNING * INTO m;

    UPDATE public.daily_sessions SET
      session_status = CASE
        WHEN m.status = 'failed' THEN 'failed'
        WHEN v_ended IS NOT NULL THEN
          CASE WHEN v_started IS NOT NULL AND (m.shutdown_reason IS NULL
                 OR starts_with(m.shutdown_reason, 'end_conversation_endpoint_hit')
                 OR starts_with(m.shutdown_reason, 'max_call_duration')
                 OR starts_with(m.shutdown_reason, 'participant_left_timeout')
                 OR starts_with(m.shutdown_reason, 'conversation_ended'))
               THEN 'completed' ELSE 'interrupted' END
        WHEN m.replica_joined_at IS NOT NULL THEN 'in_progress'
        ELSE 'started'
      END,
      started_at = v_started,
      completed_at = v_ended,
      duration_seconds = m.duration_seconds,
      conversation_transcript = CASE WHEN v_transcript_won THEN (
          SELECT string_agg(
                   coalesce(b ->> 0, nullif(m.mentor_name, ''), 'Mentor') || ': ' || (b ->> 1),
                   E'\n\n' ORDER BY i)
          FROM jsonb_array_elements(p_transcript_blocks) WITH ORDINALITY AS x(b, i))
        ELSE conversation_transcript END,
      session_metadata = jsonb_build_object('tavus_conversation_id', m.tavus_conversation_id)
        || CASE WHEN coalesce(m.replica_id, '') <> ''
                THEN jsonb_build_object('replica_id', m.replica_id) ELSE '{}'::jsonb END
        || CASE WHEN coalesce(m.shutdown_reason, '') <> ''
                THEN jsonb_build_object('shutdown_reason', m.shutdown_reason)
                ELSE '{}'::jsonb END
        || CASE WHEN coalesce(m.perception_analysis, '') <> ''
                THEN jsonb_build_object('perception_analysis', m.perception_analysis)
                ELSE '{}'::jsonb END
        || CASE WHEN m.recording IS NOT NULL AND m.recording <> '{}'::jsonb
                THEN jsonb_build_object('recording', m.recording) ELSE '{}'::jsonb END,
      updated_at = p_now
    WHERE id = m.daily_session_id
    RETURNING * INTO d;
  END IF;

  r.id := d.id;
  r.user_id := d.user_id;
  r.session_status := d.session_status;
  r.started_at := d.started_at;
  r.completed_at := d.completed_at;
  r.duration_seconds := d.duration_seconds;
  r.created_at := d.created_at;
  r.mentor_conversation_id := m.id;
  r.conversation_status := m.status;
  r.tavus_conversation_id := m.tavus_conversation_id;
  r.conversation_url := m.conversation_url;
  r.conversation_name := m.conversation_name;
  r.start_time := m.start_time;
  r.end_time := m.end_time;
  r.shutdown_at := m.shutdown_at;
  r.shutdown_reason := m.shutdown_reason;
  r.failure_code := m.failure_code;
  r.mentor_name := m.mentor_name;
  r.mentor_avatar_url := m.mentor_avatar_url;
  RETURN r;
END
$fn$;
