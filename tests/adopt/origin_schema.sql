-- A database as the origin app left it: the Supabase pieces it relies on, its one migration
-- (nine tables, a view, two trigger functions), and the three tables its functions used but
-- never migrated, as its code implies them. Written for these tests from the origin's
-- described schema; not the origin's own file.

-- Supabase's roles and `auth` schema (on a real project these exist already). --------------
DO $$
BEGIN
  IF to_regrole('anon') IS NULL THEN CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
  IF to_regrole('authenticated') IS NULL THEN CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
  IF to_regrole('service_role') IS NULL THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;  -- another test database created it concurrently (roles are cluster-wide)
END
$$;

CREATE SCHEMA auth;
CREATE TABLE auth.users (
  id uuid PRIMARY KEY,
  email text,
  raw_user_meta_data jsonb DEFAULT '{}'::jsonb,
  created_at timestamptz DEFAULT now()
);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid(), auth.jwt() TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

-- The origin's migration ---------------------------------------------------------------------
CREATE OR REPLACE FUNCTION public.update_updated_at_column() RETURNS trigger AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users(id) ON DELETE CASCADE,
  email text NOT NULL,
  full_name text NOT NULL,
  avatar_url text,
  created_at timestamptz DEFAULT NOW(),
  updated_at timestamptz DEFAULT NOW(),
  language text DEFAULT 'en' CHECK (language IN ('en', 'pt', 'es', 'fr')),
  subscription_tier text DEFAULT 'free' CHECK (subscription_tier IN ('free', 'paid')),
  onboarding_completed boolean DEFAULT false,
  timezone text DEFAULT 'UTC'
);
CREATE INDEX idx_profiles_email ON public.profiles(email);
CREATE INDEX idx_profiles_onboarding ON public.profiles(onboarding_completed);
CREATE TRIGGER update_profiles_updated_at BEFORE UPDATE ON public.profiles
  FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can insert their own profile" ON public.profiles
  FOR INSERT TO authenticated WITH CHECK (auth.uid() = id);
CREATE POLICY "Users can read all profiles" ON public.profiles
  FOR SELECT TO authenticated USING (true);
CREATE POLICY "Users can update own profile" ON public.profiles
  FOR UPDATE TO authenticated USING (auth.uid() = id);

CREATE TABLE public.onboarding_profiles (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  disc_type text NOT NULL CHECK (disc_type IN ('D', 'I', 'S', 'C')),
  enneagram_type integer CHECK (enneagram_type BETWEEN 1 AND 9),
  confidence_score decimal(3,2) CHECK (confidence_score BETWEEN 0.70 AND 1.00),
  personality_insights jsonb,
  assessment_transcript text,
  completed_at timestamptz DEFAULT NOW(),
  created_at timestamptz DEFAULT NOW(),
  UNIQUE (user_id)
);
CREATE INDEX idx_onboarding_profiles_user_id ON public.onboarding_profiles(user_id);
CREATE INDEX idx_onboarding_profiles_disc ON public.onboarding_profiles(disc_type);
ALTER TABLE public.onboarding_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own onboarding" ON public.onboarding_profiles
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.user_emotional_categories (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  category text NOT NULL CHECK (category IN ('stress_management', 'goal_achievement',
    'relationships', 'self_worth', 'emotional_regulation', 'work_life_balance',
    'personal_growth', 'mindfulness')),
  priority_level integer DEFAULT 1 CHECK (priority_level BETWEEN 1 AND 5),
  created_at timestamptz DEFAULT NOW()
);
CREATE INDEX idx_user_emotional_categories_user_id ON public.user_emotional_categories(user_id);
CREATE UNIQUE INDEX idx_user_category_unique ON public.user_emotional_categories(user_id, category);
ALTER TABLE public.user_emotional_categories ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own categories" ON public.user_emotional_categories
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.user_goals (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  goal_text text NOT NULL,
  goal_type text DEFAULT 'emotional_wellness' CHECK (goal_type IN ('emotional_wellness',
    'personal_growth', 'relationships', 'career', 'health', 'mindfulness')),
  smart_goal text,
  status text DEFAULT 'active' CHECK (status IN ('active', 'completed', 'paused', 'archived')),
  target_date date,
  progress_percentage integer DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
  source text DEFAULT 'onboarding' CHECK (source IN ('onboarding', 'session_suggestion',
    'user_created')),
  created_at timestamptz DEFAULT NOW(),
  updated_at timestamptz DEFAULT NOW()
);
CREATE INDEX idx_user_goals_user_id ON public.user_goals(user_id);
CREATE INDEX idx_user_goals_status ON public.user_goals(status);
CREATE INDEX idx_active_goals ON public.user_goals(user_id) WHERE status = 'active';
CREATE TRIGGER update_user_goals_updated_at BEFORE UPDATE ON public.user_goals
  FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
ALTER TABLE public.user_goals ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own goals" ON public.user_goals
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.ritual_preferences (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  timing text NOT NULL CHECK (timing IN ('morning_person', 'evening_person', 'flexible')),
  duration text NOT NULL CHECK (duration IN ('quick_focused', 'deeper_dive', 'variable')),
  style text NOT NULL CHECK (style IN ('guided_structure', 'open_conversation', 'mixed')),
  voice_id text NOT NULL CHECK (voice_id IN ('confident_coach', 'warm_friend', 'gentle_guide',
    'wise_mentor')),
  focus_area text NOT NULL,
  elevenlabs_voice_id text,
  session_frequency text DEFAULT 'daily' CHECK (session_frequency IN ('daily', 'weekdays',
    'custom')),
  preferred_session_time time,
  reminder_enabled boolean DEFAULT true,
  created_at timestamptz DEFAULT NOW(),
  updated_at timestamptz DEFAULT NOW(),
  UNIQUE (user_id)
);
CREATE INDEX idx_ritual_preferences_user_id ON public.ritual_preferences(user_id);
CREATE TRIGGER update_ritual_preferences_updated_at BEFORE UPDATE ON public.ritual_preferences
  FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
ALTER TABLE public.ritual_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own preferences" ON public.ritual_preferences
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.daily_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  session_type text NOT NULL CHECK (session_type IN ('face_to_face', 'spoken_presence',
    'silent_reflection', 'written_clarity')),
  session_status text DEFAULT 'completed' CHECK (session_status IN ('started', 'in_progress',
    'completed', 'interrupted', 'failed')),
  duration_seconds integer,
  virtue_earned text,
  emotional_snapshot jsonb,
  key_insights jsonb,
  suggested_goals jsonb,
  conversation_transcript text,
  session_metadata jsonb,
  session_date date DEFAULT CURRENT_DATE,
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz DEFAULT NOW()
);
CREATE INDEX idx_daily_sessions_user_id ON public.daily_sessions(user_id);
CREATE INDEX idx_daily_sessions_session_date ON public.daily_sessions(session_date);
CREATE INDEX idx_daily_sessions_created_at ON public.daily_sessions(created_at);
CREATE INDEX idx_daily_sessions_user_created ON public.daily_sessions(user_id, created_at);
ALTER TABLE public.daily_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own sessions" ON public.daily_sessions
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.user_streaks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  streak_type text NOT NULL CHECK (streak_type IN ('daily_session', 'weekly_goal',
    'monthly_virtue')),
  current_streak integer DEFAULT 0,
  longest_streak integer DEFAULT 0,
  last_activity_date date,
  created_at timestamptz DEFAULT NOW(),
  updated_at timestamptz DEFAULT NOW(),
  UNIQUE (user_id, streak_type)
);
ALTER TABLE public.user_streaks ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own streaks" ON public.user_streaks
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.virtue_collection (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  virtue_name text NOT NULL,
  virtue_description text,
  earned_from_session_id uuid REFERENCES public.daily_sessions(id),
  earned_at timestamptz DEFAULT NOW(),
  UNIQUE (user_id, virtue_name)
);
ALTER TABLE public.virtue_collection ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own virtues" ON public.virtue_collection
  FOR ALL TO authenticated USING (auth.uid() = user_id);

CREATE TABLE public.app_settings (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  setting_key text NOT NULL,
  setting_value jsonb,
  created_at timestamptz DEFAULT NOW(),
  updated_at timestamptz DEFAULT NOW(),
  UNIQUE (user_id, setting_key)
);
ALTER TABLE public.app_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Users can manage their own settings" ON public.app_settings
  FOR ALL TO authenticated USING (auth.uid() = user_id);

-- A plain view: it runs with its owner's rights, so it reads past everyone's RLS.
CREATE VIEW public.user_dashboard AS
SELECT
  p.id,
  p.full_name,
  p.email,
  p.language,
  p.onboarding_completed,
  op.disc_type,
  op.enneagram_type,
  rp.timing,
  rp.voice_id,
  coalesce(max(us.current_streak) FILTER (WHERE us.streak_type = 'daily_session'), 0)
    AS current_streak,
  count(DISTINCT vc.id) AS virtues_earned,
  count(DISTINCT ds.id) FILTER (WHERE ds.created_at > now() - interval '7 days')
    AS sessions_this_week,
  count(DISTINCT ug.id) FILTER (WHERE ug.status = 'active') AS active_goals
FROM public.profiles p
LEFT JOIN public.onboarding_profiles op ON op.user_id = p.id
LEFT JOIN public.ritual_preferences rp ON rp.user_id = p.id
LEFT JOIN public.user_streaks us ON us.user_id = p.id
LEFT JOIN public.virtue_collection vc ON vc.user_id = p.id
LEFT JOIN public.daily_sessions ds ON ds.user_id = p.id
LEFT JOIN public.user_goals ug ON ug.user_id = p.id
GROUP BY p.id, op.disc_type, op.enneagram_type, rp.timing, rp.voice_id;

-- Signup: SECURITY DEFINER and no search_path.
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger AS $$
BEGIN
  INSERT INTO public.profiles (id, email, full_name)
  VALUES (NEW.id, NEW.email, coalesce(NEW.raw_user_meta_data ->> 'full_name', NEW.email));
  INSERT INTO public.user_streaks (user_id, streak_type) VALUES (NEW.id, 'daily_session');
  RETURN NEW;
END;
$$ LANGUAGE plpgsql SECURITY DEFINER;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- The three tables made by hand in the hosted project (columns as the functions use them). ---
CREATE TABLE public.mentor_avatars (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL,
  description text,
  thumbnail_url text,
  is_premium boolean DEFAULT false,
  is_active boolean DEFAULT true,
  created_at timestamptz DEFAULT now()
);
CREATE TABLE public.user_personas (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id) ON DELETE CASCADE,
  name text,
  specialization text,
  is_active boolean DEFAULT true,
  replica_id text,
  tavus_persona_id text,
  avatar_id uuid REFERENCES public.mentor_avatars(id),
  created_at timestamptz DEFAULT now()
);
CREATE TABLE public.mentor_conversations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES public.profiles(id),
  tavus_conversation_id text,
  replica_id text,
  persona_id text,
  -- The start function switched 'face_to_face' → 'extended': a CHECK refused the former.
  session_type text CHECK (session_type IN ('extended', 'standard')),
  status text DEFAULT 'active',
  start_time timestamptz,
  end_time timestamptz,
  duration_seconds integer,
  created_at timestamptz DEFAULT now()
);

-- Supabase's default privileges: the API roles may use every table (RLS decides the rows).
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
