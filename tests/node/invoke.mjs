// The origin app's calls, made with the real supabase-js against facetoface's /functions/v1.
// Usage: node invoke.mjs '<json config>'  → prints one JSON object: each case's { data } or
// { error: { name, message, status, body } } exactly as `functions.invoke` returned them.
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const cfg = JSON.parse(process.argv[2])

// As the app builds it: project URL (here: facetoface's) and anon key. `accessToken` stands in
// for a signed-in user (third-party auth style); Node 20 needs a WebSocket for realtime.
function client(userToken) {
  const options = {
    realtime: { transport: WebSocket },
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  }
  if (userToken) options.accessToken = async () => userToken
  return createClient(cfg.url, cfg.anonKey, options)
}

async function invoke(supabase, name, body) {
  const { data, error } = await supabase.functions.invoke(name, { body })
  if (!error) return { data }
  const out = { error: { name: error.name, message: error.message } }
  const response = error.context
  if (response && typeof response.json === 'function') {
    out.error.status = response.status
    out.error.body = await response.json()
  }
  return out
}

const alice = client(cfg.aliceToken)
const bob = client(cfg.bobToken)
const anonymous = client(null)
const results = {}

// SessionService.startFaceToFaceSession(user.id)
results.start = await invoke(alice, 'start-tavus-session', { user_id: cfg.aliceId })
const first = results.start.data
// A second tab: the live session's ids come back with the 409, to rejoin.
results.rejoin = await invoke(alice, 'start-tavus-session', { user_id: cfg.aliceId })
// FaceToFaceSessionPage: SessionService.endSession(sessionState.conversationId) — one argument.
results.end_tavus_id_only = await invoke(alice, 'end-tavus-session', {
  tavus_conversation_id: first?.conversation_id,
  mentor_conversation_id: undefined,
  daily_session_id: undefined,
  user_id: undefined,
})
results.start_again = await invoke(alice, 'start-tavus-session', { user_id: cfg.aliceId })
const second = results.start_again.data
// Someone else naming Alice's live session.
results.end_someone_elses = await invoke(bob, 'end-tavus-session', {
  tavus_conversation_id: second?.conversation_id,
})
// The four-argument endSession of the earlier client.
results.end_all_four_ids = await invoke(alice, 'end-tavus-session', {
  tavus_conversation_id: second?.conversation_id,
  mentor_conversation_id: second?.mentor_conversation_id,
  daily_session_id: second?.daily_session_id,
  user_id: cfg.aliceId,
})
// The origin took the user from the body: Alice asking for Bob.
results.foreign_user_id = await invoke(alice, 'start-tavus-session', { user_id: cfg.bobId })
// Nobody signed in: supabase-js sends the anon key as the bearer.
results.no_user_token = await invoke(anonymous, 'start-tavus-session', { user_id: cfg.aliceId })

process.stdout.write(JSON.stringify(results))
