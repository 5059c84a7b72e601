-- Rows as the origin app wrote them over a week: three users signed up (the signup trigger made
-- their profiles and streaks), onboarding, mentors, and sessions with the origin's defects —
-- sessions never ended (its end page always failed), a double-click that started two, a start
-- whose second insert failed, a negative duration, and rows that belong to nobody.

INSERT INTO auth.users (id, email, raw_user_meta_data) VALUES
  ('11111111-1111-4111-8111-111111111111', 'maria@example.com', '{"full_name": "Maria Silva"}'),
  ('22222222-2222-4222-8222-222222222222', 'joao@example.com', '{"full_name": "João Souza"}'),
  ('33333333-3333-4333-8333-333333333333', 'ana@example.com', '{}');

UPDATE public.profiles SET language = 'pt', timezone = 'America/Sao_Paulo',
  onboarding_completed = true
WHERE id IN ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222');
UPDATE public.profiles SET language = 'es' WHERE id = '33333333-3333-4333-8333-333333333333';

INSERT INTO public.onboarding_profiles (user_id, disc_type, enneagram_type, confidence_score,
  personality_insights) VALUES
  ('11111111-1111-4111-8111-111111111111', 'I', 7, 0.85, '{"strengths": ["enthusiasm"]}'),
  ('22222222-2222-4222-8222-222222222222', 'C', 5, 0.78, NULL);

INSERT INTO public.ritual_preferences (user_id, timing, duration, style, voice_id, focus_area,
  preferred_session_time) VALUES
  ('11111111-1111-4111-8111-111111111111', 'morning_person', 'quick_focused',
   'guided_structure', 'warm_friend', 'Managing work stress', '07:30'),
  ('22222222-2222-4222-8222-222222222222', 'evening_person', 'deeper_dive',
   'open_conversation', 'wise_mentor', 'Sleeping better', NULL),
  -- written by a client that lost its session: nobody's
  (NULL, 'flexible', 'variable', 'mixed', 'gentle_guide', 'orphaned preferences', NULL);

INSERT INTO public.user_emotional_categories (user_id, category, priority_level) VALUES
  ('11111111-1111-4111-8111-111111111111', 'stress_management', 1),
  ('11111111-1111-4111-8111-111111111111', 'work_life_balance', 2),
  ('22222222-2222-4222-8222-222222222222', 'mindfulness', 1);

INSERT INTO public.user_goals (id, user_id, goal_text, goal_type, progress_percentage,
  target_date, status) VALUES
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'Meditate 10 minutes every morning', 'mindfulness', 40, '2026-12-31', 'active'),
  ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'Set boundaries with my manager', 'career', 0, NULL, 'active'),
  ('a0000000-0000-4000-8000-000000000003', '22222222-2222-4222-8222-222222222222',
   'Read before bed', 'health', 10, NULL, 'active'),
  ('a0000000-0000-4000-8000-000000000004', '33333333-3333-4333-8333-333333333333',
   'Call my sister weekly', 'relationships', 0, NULL, 'paused'),
  ('a0000000-0000-4000-8000-000000000005', NULL, 'An orphaned goal', 'health', 0, NULL,
   'active');

INSERT INTO public.mentor_avatars (id, name, description, thumbnail_url, is_premium) VALUES
  ('b0000000-0000-4000-8000-000000000001', 'Sage', 'Calm and wise',
   'https://example.com/avatars/sage.png', false),
  ('b0000000-0000-4000-8000-000000000002', 'Nova', 'Energetic coach',
   'https://example.com/avatars/nova.png', true);

INSERT INTO public.user_personas (id, user_id, name, specialization, replica_id,
  tavus_persona_id, avatar_id) VALUES
  ('c0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'Sage',
   'stress', 'r6ca16dbe104', 'p1c81be642e7', 'b0000000-0000-4000-8000-000000000001'),
  ('c0000000-0000-4000-8000-000000000002', '33333333-3333-4333-8333-333333333333', NULL,
   NULL, 'r6ca16dbe104', NULL, 'b0000000-0000-4000-8000-000000000002');

-- Sessions. The start function stamped `start_time` and `started_at` from one clock reading.
CREATE TEMP TABLE t AS SELECT
  date_trunc('second', now()) - interval '3 days' AS s1,
  date_trunc('second', now()) - interval '2 days' AS s2,
  date_trunc('second', now()) - interval '7 days' AS s4,
  date_trunc('second', now()) - interval '5 minutes' AS s5,
  date_trunc('second', now()) - interval '4 days' AS s6;

INSERT INTO public.mentor_conversations (id, user_id, tavus_conversation_id, replica_id,
  persona_id, session_type, status, start_time, end_time, duration_seconds, created_at)
SELECT *, v.start_time FROM (VALUES
  -- Maria, three days ago, with the early app whose end call still worked.
  ('d0000000-0000-4000-8000-000000000001'::uuid, '11111111-1111-4111-8111-111111111111'::uuid,
   'c5f2a9e31b7d4', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'completed',
   (SELECT s1 FROM t), (SELECT s1 + interval '7 minutes' FROM t), 420),
  -- Maria double-clicked two days ago: two starts 300 ms apart, neither ever ended.
  ('d0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'c8a1d0f4e2b96', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s2 FROM t), NULL, NULL),
  ('d0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
   'c0b7e6a5d4c31', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s2 + interval '300 milliseconds' FROM t), NULL, NULL),
  -- João a week ago (this row and its daily session were stamped 0.8 s apart).
  ('d0000000-0000-4000-8000-000000000004', '22222222-2222-4222-8222-222222222222',
   'c3e9f1a7b5d20', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s4 FROM t), NULL, NULL),
  -- João, five minutes ago: possibly still in the call.
  ('d0000000-0000-4000-8000-000000000005', '22222222-2222-4222-8222-222222222222',
   'c7d4b2e8f6a19', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s5 FROM t), NULL, NULL),
  -- João, four days ago: the daily_sessions insert failed after this one.
  ('d0000000-0000-4000-8000-000000000006', '22222222-2222-4222-8222-222222222222',
   'c2a6c8e0f4b37', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s6 FROM t), NULL, NULL),
  -- Nobody's.
  ('d0000000-0000-4000-8000-000000000007', NULL,
   'c9f8e7d6c5b4a', 'r6ca16dbe104', 'p1c81be642e7', 'extended', 'active',
   (SELECT s6 FROM t), NULL, NULL)
) AS v (id, user_id, tavus_conversation_id, replica_id, persona_id, session_type, status,
  start_time, end_time, duration_seconds);

INSERT INTO public.daily_sessions (id, user_id, session_type, session_status, started_at,
  completed_at, duration_seconds, session_date, created_at)
SELECT * FROM (VALUES
  ('e0000000-0000-4000-8000-000000000001'::uuid, '11111111-1111-4111-8111-111111111111'::uuid,
   'face_to_face', 'completed', (SELECT s1 FROM t), (SELECT s1 + interval '7 minutes' FROM t),
   420, (SELECT s1::date FROM t), (SELECT s1 FROM t)),
  ('e0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'face_to_face', 'started', (SELECT s2 FROM t), NULL, NULL, (SELECT s2::date FROM t),
   (SELECT s2 FROM t)),
  ('e0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
   'face_to_face', 'started', (SELECT s2 + interval '300 milliseconds' FROM t), NULL, NULL,
   (SELECT s2::date FROM t), (SELECT s2 + interval '300 milliseconds' FROM t)),
  ('e0000000-0000-4000-8000-000000000004', '22222222-2222-4222-8222-222222222222',
   'face_to_face', 'started', (SELECT s4 + interval '800 milliseconds' FROM t), NULL, NULL,
   (SELECT s4::date FROM t), (SELECT s4 FROM t)),
  ('e0000000-0000-4000-8000-000000000005', '22222222-2222-4222-8222-222222222222',
   'face_to_face', 'started', (SELECT s5 FROM t), NULL, NULL, (SELECT s5::date FROM t),
   (SELECT s5 FROM t)),
  -- A written reflection: not a video session, left alone.
  ('e0000000-0000-4000-8000-000000000008', '11111111-1111-4111-8111-111111111111',
   'written_clarity', 'completed', (SELECT s1 - interval '1 day' FROM t), NULL, 300,
   (SELECT (s1 - interval '1 day')::date FROM t), (SELECT s1 - interval '1 day' FROM t)),
  -- A session whose clock ran backwards.
  ('e0000000-0000-4000-8000-000000000009', '22222222-2222-4222-8222-222222222222',
   'spoken_presence', 'completed', (SELECT s4 - interval '1 day' FROM t), NULL, -3,
   (SELECT (s4 - interval '1 day')::date FROM t), (SELECT s4 - interval '1 day' FROM t)),
  -- Nobody's.
  ('e0000000-0000-4000-8000-000000000010', NULL,
   'face_to_face', 'completed', (SELECT s6 FROM t), NULL, 60, (SELECT s6::date FROM t),
   (SELECT s6 FROM t))
) AS v;

INSERT INTO public.virtue_collection (user_id, virtue_name, earned_from_session_id) VALUES
  ('11111111-1111-4111-8111-111111111111', 'Patience', 'e0000000-0000-4000-8000-000000000001');

INSERT INTO public.app_settings (user_id, setting_key, setting_value) VALUES
  ('11111111-1111-4111-8111-111111111111', 'theme', '"dark"');

DROP TABLE t;
