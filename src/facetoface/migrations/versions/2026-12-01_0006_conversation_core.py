"""Conversation core: merge digests, lost-callback checks, raw bodies, the installation id.

- `mentor_conversations.transcript_digest` / `recording_digest`: the tie-break of the
  transcript and recording merges, stored so PostgreSQL's one-statement merge compares
  exactly what Python's does; filled here for existing rows.
- `mentor_conversations.post_call_actions` becomes a set keyed by each action's digest (an
  object; merging is a union), converted here from the list it was.
- `mentor_conversations.callbacks_verified_at`: the reconciler compared Tavus's record of an
  ended session with ours once; `reconcile_error`: its last error on the row.
- `idempotency_keys` loses `response_status`/`response_body`: a replay answers with the
  key's session as it stands now.
- `tavus_callback_events.raw_body_b64`: the bytes of a callback whose text had to be
  normalised to be stored (U+0000, lone surrogates).
- `facetoface_installation`: one row with this installation's identity, generated here once
  per database; conversation names carry it so the reconciler only ever ends its own.
- PostgreSQL: schema `facetoface` (not exposed by Supabase's REST API) with
  `facetoface.apply_delta(...)`, the conversation merge as one PL/pgSQL function. The service
  calls it in one round trip; being a function, its statements' plans are cached per server
  connection — through any pooler — where a long ad-hoc statement would be planned on every
  call. Only `facetoface_service` may execute it; it runs with the caller's rights (RLS).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000
"""

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICE = "facetoface_service"
#: The functions in schema `facetoface`; only the service may execute them.
FUNCTIONS = ("apply_delta", "session_json", "start_session")

#: What `facetoface.apply_delta` returns: what it found and the session as written.
APPLIED_TYPE = r"""
CREATE TYPE facetoface.applied AS (
  found boolean,
  token_ok boolean,
  authorized boolean,
  stored_outcome text,
  before_status text,
  id uuid,
  user_id uuid,
  session_status text,
  started_at timestamptz,
  completed_at timestamptz,
  duration_seconds integer,
  created_at timestamptz,
  mentor_conversation_id uuid,
  conversation_status text,
  tavus_conversation_id text,
  conversation_url text,
  conversation_name text,
  start_time timestamptz,
  end_time timestamptz,
  shutdown_at timestamptz,
  shutdown_reason text,
  failure_code text,
  mentor_name text,
  mentor_avatar_url text
)
"""

#: A session as JSON (answers that carry another session than the one being written).
SESSION_JSON = r"""
-- A session (`SessionRow` in conversations/repository.py) as JSON, for answers that carry
-- another session than the one being written (a replayed key's, the live one of a 409).
CREATE FUNCTION facetoface.session_json(p_daily_id uuid) RETURNS jsonb
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
"""

#: What `facetoface.start_session` returns.
START_RESULT_TYPE = r"""
CREATE TYPE facetoface.start_result AS (
  outcome text,            -- inserted | refused | conflict | key | preview
  refusal text,            -- why nothing was inserted (see sessions/service.py)
  key_state text,          -- mismatch | done | in_flight | unresolved (with outcome = key)
  key_session jsonb,       -- the key's session (done / unresolved)
  live_session jsonb,      -- the live session (conflict)
  profile jsonb,
  onboarding jsonb,
  ritual jsonb,
  categories jsonb,
  goals jsonb,
  persona jsonb,
  persona_id text,         -- the mentor chosen for the insert
  replica_id text,
  mentor_name text,
  mentor_avatar_url text,
  recent_starts integer,
  oldest_recent_start timestamptz,
  created_at timestamptz
);
"""

#: The first round trip of a start: load the context, decide, write the rows.
START_SESSION = r"""
-- The first round trip of a start (sessions/service.py): load what the mentor should know
-- and decide, in one call, whether this start may write its rows — and write them.
-- Replays come first: a key whose start completed is answered before any other check.
CREATE FUNCTION facetoface.start_session(
  p_user_id uuid,
  p_mentor_id uuid,
  p_now timestamptz,
  p_insert boolean,          -- false: load only (a preview, or the circuit is open)
  p_recent_since timestamptz,
  p_start_limit integer,
  p_goal_rows integer,       -- caps, so no user's data can make this call slow
  p_category_rows integer,
  p_text_chars integer,
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
BEGIN
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
"""

#: The conversation merge (conversations/state.py's `merge` and `derive`) in PL/pgSQL.
APPLY_DELTA = r"""
-- One change to one conversation: conversations/state.py's `merge` and `derive`, in SQL.
-- Read it beside that module: every rule here mirrors one there, and a property test holds
-- the two to the same results.
CREATE FUNCTION facetoface.apply_delta(
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

  -- What derives from the facts (state.derive).
  v_started := coalesce(m.start_time, m.replica_joined_at);
  v_ended := coalesce(m.shutdown_at, m.closed_at);
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
"""


def _digest(value: Any) -> str:
    # conversations.state.canonical_digest at this revision (migrations never import the app).
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    bind = op.get_bind()
    json_type = postgresql.JSONB()
    with op.batch_alter_table("mentor_conversations") as batch:
        batch.add_column(sa.Column("transcript_digest", sa.Text(), nullable=True))
        batch.add_column(sa.Column("recording_digest", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("callbacks_verified_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("reconcile_error", sa.Text(), nullable=True))
    with op.batch_alter_table("tavus_callback_events") as batch:
        batch.add_column(sa.Column("raw_body_b64", sa.Text(), nullable=True))
    # A replay now answers with the session as it stands (the key names it), not a copy.
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("response_status")
        batch.drop_column("response_body")

    conversations = sa.table(
        "mentor_conversations",
        sa.column("id", sa.Uuid()),
        sa.column("transcript", json_type),
        sa.column("recording", json_type),
        sa.column("post_call_actions", json_type),
        sa.column("transcript_digest", sa.Text()),
        sa.column("recording_digest", sa.Text()),
    )
    rows = bind.execute(
        sa.select(
            conversations.c.id,
            conversations.c.transcript,
            conversations.c.recording,
            conversations.c.post_call_actions,
        ).where(
            sa.or_(
                conversations.c.transcript.is_not(None),
                conversations.c.recording.is_not(None),
                conversations.c.post_call_actions.is_not(None),
            )
        )
    ).all()
    for row in rows:
        transcript, recording = _json(row.transcript), _json(row.recording)
        actions = _json(row.post_call_actions)
        if isinstance(actions, list):
            actions = {_digest(action): action for action in actions}
        bind.execute(
            conversations.update()
            .where(conversations.c.id == row.id)
            .values(
                transcript_digest=_digest(transcript) if transcript is not None else None,
                recording_digest=_digest(recording) if recording is not None else None,
                post_call_actions=actions,
            )
        )

    installation = op.create_table(
        "facetoface_installation",
        sa.Column("singleton", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("singleton = 1", name="ck_facetoface_installation_single_row"),
        sa.PrimaryKeyConstraint("singleton", name="pk_facetoface_installation"),
        sa.UniqueConstraint("id", name="uq_facetoface_installation_id"),
    )
    created = datetime.now(UTC)
    op.bulk_insert(
        installation,
        [
            {
                "singleton": 1,
                "id": uuid.uuid4(),
                "created_at": created,
            }
        ],
    )

    op.execute("ALTER TABLE public.facetoface_installation ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"REVOKE ALL ON public.facetoface_installation FROM PUBLIC, anon, authenticated, {SERVICE}"
    )
    op.execute(f"GRANT SELECT ON public.facetoface_installation TO {SERVICE}")
    op.execute(
        "CREATE POLICY facetoface_installation_service_select "
        f"ON public.facetoface_installation AS PERMISSIVE FOR SELECT TO {SERVICE} "
        "USING (true)"
    )
    # Retention also clears the raw bytes of the callbacks it redacts.
    op.execute(f"GRANT UPDATE (raw_body_b64) ON public.tavus_callback_events TO {SERVICE}")
    op.execute("CREATE SCHEMA facetoface")
    op.execute("REVOKE ALL ON SCHEMA facetoface FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA facetoface TO {SERVICE}")
    op.execute(APPLIED_TYPE)
    op.execute(APPLY_DELTA)
    op.execute(SESSION_JSON)
    op.execute(START_RESULT_TYPE)
    op.execute(START_SESSION)
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION facetoface.{function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION facetoface.{function} TO {SERVICE}")


def downgrade() -> None:
    bind = op.get_bind()
    json_type = postgresql.JSONB()
    op.execute("DROP SCHEMA facetoface CASCADE")
    op.drop_table("facetoface_installation")
    conversations = sa.table(
        "mentor_conversations",
        sa.column("id", sa.Uuid()),
        sa.column("post_call_actions", json_type),
    )
    for row in bind.execute(
        sa.select(conversations.c.id, conversations.c.post_call_actions).where(
            conversations.c.post_call_actions.is_not(None)
        )
    ).all():
        actions = _json(row.post_call_actions)
        if isinstance(actions, dict):
            bind.execute(
                conversations.update()
                .where(conversations.c.id == row.id)
                .values(post_call_actions=[actions[key] for key in sorted(actions)])
            )
    with op.batch_alter_table("tavus_callback_events") as batch:
        batch.drop_column("raw_body_b64")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("response_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("response_body", json_type, nullable=True))
    with op.batch_alter_table("mentor_conversations") as batch:
        batch.drop_column("reconcile_error")
        batch.drop_column("callbacks_verified_at")
        batch.drop_column("recording_digest")
        batch.drop_column("transcript_digest")
