// The user's console: what the mentor knows, a live session in the page, history, details.

import { adoptTokenFromFragment, api, idempotencyKey, signOut } from "./api.js";
import { changesSection, reportSection } from "./changes.js";
import { loadMemory, setUpMemory } from "./memory.js";
import {
  $,
  describeEnding,
  formatClock,
  formatDuration,
  formatTime,
  h,
  isLive,
  mentorName,
  requireSignIn,
  setUpTopBar,
  showProblem,
  statusBadge,
  statusWord,
} from "./ui.js";

const POLL_MS = 3000;
const PAGE_SIZE = 10;
const FOLLOW_UP_READS = 20; // an ended session's transcript is awaited for about a minute

let current = null; // the live session shown in the panel
let pollTimer = null;
let tickTimer = null;
let nextCursor = null;
let detailId = null;
let knownMentor = null; // the mentor's name as the context names it (null: the default)
let followUp = 0; // bumps to stop an ended session's follow-up reads
let retryTimer = null;

/** A session's mentor, named the same way on every screen. */
function mentorOf(session, options) {
  return mentorName(session?.mentor?.name || knownMentor, options);
}

/** Show a problem; a 401 also offers a fresh sign-in (the token expired or is not valid). */
function report(container, problem) {
  if (problem.status === 401) {
    const again = h(
      "button",
      {
        type: "button",
        class: "secondary",
        on: {
          click: () => {
            signOut();
            location.assign("/console/sign-in");
          },
        },
      },
      "Sign in again",
    );
    showProblem(container, problem, h("div", { class: "row" }, again));
    return;
  }
  if (problem.code === "session_outcome_unknown") {
    // Nothing to join yet, and no reason to end anything: say so plainly.
    const wait = problem.retryAfter ? `about ${formatDuration(problem.retryAfter)}` : "a moment";
    showProblem(
      container,
      problem,
      h("p", {
        class: "outcome-unknown",
        text:
          "The video service has not confirmed your session yet, so there is no room to " +
          `join. We are checking with it: try again in ${wait}. Trying again never starts a ` +
          "second call: it brings you into that session if it exists, or starts a new one.",
      }),
    );
    return;
  }
  showProblem(container, problem);
}

function fact(list, term, ...value) {
  list.append(h("dt", { text: term }), h("dd", {}, ...value));
}

// --- what the mentor knows -----------------------------------------------------------------
/**
 * A context line as the user reads it: the lines written to the mentor ("Last session you
 * moved …; the user undid this") name the mentor and the user the other way round, and the
 * goal ids the mentor needs to call its tools are left out (the exact text is one click away,
 * under "Exactly what the mentor is told").
 */
function forTheUser(line, mentor) {
  return line
    .replace(/, goal_id [0-9a-f-]{36}/gi, "")
    .replace(/^(- )?Last session you (added|moved) /, (_, dash, verb) => `${dash || ""}Last session ${mentor} ${verb} `)
    .replace(/; the user undid this$/, "; you undid this")
    .replace(/; the user kept it$/, "; you kept it");
}

function sectionBody(section, mentor) {
  const lines = section.text.split("\n");
  if (lines.length > 1 && lines[0].toLowerCase().startsWith(section.title.toLowerCase())) {
    lines.shift(); // the heading line repeats the title
  }
  const nodes = [];
  let list = null;
  for (const raw of lines) {
    const line = forTheUser(raw, mentor);
    if (line.startsWith("- ")) {
      list = list || h("ul");
      list.append(h("li", { text: line.slice(2) }));
      continue;
    }
    if (list) {
      nodes.push(list);
      list = null;
    }
    if (line.trim()) {
      nodes.push(h("p", { class: "pre", text: line }));
    }
  }
  if (list) {
    nodes.push(list);
  }
  return nodes;
}

/**
 * The opening is written to the mentor ("You are …"): shown to the user as what the mentor
 * is told, quoted, never as if it were said to them.
 */
function openingBody(section, mentor) {
  return [
    h("p", {
      class: "muted",
      text: `${mentor} is told this first (these words are addressed to the mentor, not to you):`,
    }),
    h("blockquote", { class: "told" }, h("p", { class: "pre", text: section.text })),
  ];
}

async function loadContext() {
  const body = $("context-body");
  try {
    const context = await api("/v1/me/context");
    showProblem($("context-error"), null);
    knownMentor = context.mentor.name || null;
    const mentor = mentorName(knownMentor, { capital: true });
    const facts = h("dl", { class: "facts" });
    fact(facts, "Mentor", mentor);
    const language = context.language || "";
    fact(facts, "Language", language.charAt(0).toUpperCase() + language.slice(1));
    const parts = [facts];
    if (context.truncated) {
      parts.push(
        h("p", { class: "notice", text: "Shortened to fit the context limit: some items are left out." }),
      );
    }
    for (const section of context.sections) {
      parts.push(
        h(
          "div",
          { class: "context-section", "data-section": section.name },
          h("h3", { text: section.name === "opening" ? "Who meets whom" : section.title }),
          ...(section.name === "opening" ? openingBody(section, mentor) : sectionBody(section, mentorName(knownMentor))),
        ),
      );
    }
    parts.push(
      h(
        "details",
        {},
        h("summary", { text: "Exactly what the mentor is told" }),
        h("pre", { class: "context", text: context.text }),
      ),
    );
    body.replaceChildren(...parts);
  } catch (problem) {
    body.replaceChildren();
    report($("context-error"), problem);
  } finally {
    body.removeAttribute("aria-busy");
  }
}

// --- the live session ------------------------------------------------------------------------
function stopPolling() {
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  pollTimer = null;
  tickTimer = null;
}

function renderLiveFacts(session) {
  const facts = $("live-facts");
  facts.replaceChildren();
  fact(facts, "Mentor", mentorOf(session, { capital: true }));
  fact(facts, "Started", formatTime(session.started_at || session.created_at));
  fact(facts, "Elapsed", h("span", { id: "elapsed" }));
  updateElapsed();
  $("session-status").replaceChildren(statusBadge(session.status));
  updateHistoryRow(session);
}

function updateElapsed() {
  const node = $("elapsed");
  if (node && current) {
    const since = new Date(current.started_at || current.created_at).getTime();
    node.textContent = formatDuration((Date.now() - since) / 1000);
  }
}

/**
 * Where to join: a private room's address carries its meeting token (`?t=`, as the room
 * takes it). The API hands the token to the session's owner only, while the session is live.
 */
function joinUrl(session) {
  if (!session.conversation_url || !session.meeting_token) {
    return session.conversation_url;
  }
  const url = new URL(session.conversation_url);
  url.searchParams.set("t", session.meeting_token);
  return url.toString();
}

function showLive(session, { focus = false } = {}) {
  current = session;
  $("idle").hidden = true;
  $("ended").hidden = true;
  $("live").hidden = false;
  renderLiveFacts(session);
  const room = $("room");
  const url = joinUrl(session);
  if (url) {
    if (room.getAttribute("src") !== url) {
      room.setAttribute("src", url);
    }
    $("room-link").setAttribute("href", url);
    $("room-link").hidden = false;
  } else {
    $("room-link").hidden = true;
  }
  if (!pollTimer) {
    pollTimer = setInterval(poll, POLL_MS);
    tickTimer = setInterval(updateElapsed, 1000);
  }
  if (focus) {
    $("session-title").focus();
  }
}

function showEnded(session) {
  stopPolling();
  current = null;
  $("room").setAttribute("src", "about:blank");
  $("live").hidden = true;
  $("idle").hidden = true;
  $("ended").hidden = false;
  $("session-status").replaceChildren(statusBadge(session.status));
  const mentor = mentorOf(session);
  const summary = [
    `Your session with ${mentor} has ended: ${statusWord(session.status)}`,
    session.duration_seconds !== null ? `, ${formatDuration(session.duration_seconds)}` : "",
    `. ${describeEnding(session)}.`,
  ].join("");
  $("ended-summary").textContent = summary;
  $("ended-details").onclick = () => openDetail(session.id);
  loadHistory(true);
  // What the mentor knows changed with this session ("since last time"); what the user said
  // last arrives with the transcript, a moment after the end: read again once it is there.
  loadContext();
  loadMemory();
  followEnded(session);
}

/** After a session ends: wait (a bounded number of reads) for its transcript, then refresh
 * what the mentor knows and the history row once more. */
async function followEnded(session) {
  const mine = ++followUp;
  for (let attempt = 0; attempt < FOLLOW_UP_READS && session.transcript == null; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (mine !== followUp) {
      return;
    }
    try {
      session = await api(`/v1/sessions/${encodeURIComponent(session.id)}`);
    } catch {
      return; // deleted, or signed out: nothing more to follow
    }
  }
  if (mine === followUp && session.transcript != null) {
    updateHistoryRow(session);
    loadContext();
    loadMemory(); // learned from this session
  }
}

function showIdle() {
  stopPolling();
  current = null;
  $("room").setAttribute("src", "about:blank");
  $("live").hidden = true;
  $("ended").hidden = true;
  $("idle").hidden = false;
  $("session-status").replaceChildren();
}

async function poll() {
  if (!current) {
    return;
  }
  try {
    const session = await api(`/v1/sessions/${encodeURIComponent(current.id)}`);
    showProblem($("session-error"), null);
    if (isLive(session)) {
      showLive(session);
    } else {
      showEnded(session);
    }
  } catch (problem) {
    report($("session-error"), problem);
    if (problem.status === 404 || problem.status === 401) {
      stopPolling();
    }
  }
}

/** While a start runs: a progress bar and the seconds it has taken so far. */
function showStarting() {
  const box = $("start-progress");
  const text = $("start-progress-text");
  const since = Date.now();
  const mentor = mentorOf(null);
  const render = () => {
    text.textContent = `Starting your session with ${mentor}… ${formatDuration((Date.now() - since) / 1000)}`;
  };
  render();
  box.hidden = false;
  const timer = setInterval(render, 1000);
  return () => {
    clearInterval(timer);
    box.hidden = true;
  };
}

/** Only one primary button at a time: while another action is offered, Start steps back. */
function startIsPrimary(primary) {
  for (const id of ["start", "start-again"]) {
    $(id).classList.toggle("secondary", !primary);
  }
}

/** A 429/503 with Retry-After: Start stays disabled, with a countdown, until then. */
function waitBeforeRetry(seconds) {
  clearInterval(retryTimer);
  const note = $("retry-wait");
  const buttons = [$("start"), $("start-again")];
  const until = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(retryTimer);
      retryTimer = null;
      note.hidden = true;
      for (const button of buttons) {
        button.disabled = false;
      }
      return;
    }
    note.textContent = `You can try again in ${left} s.`;
  };
  for (const button of buttons) {
    button.disabled = true;
  }
  note.hidden = false;
  retryTimer = setInterval(tick, 250);
  tick();
}

async function start() {
  const button = $("start");
  const again = $("start-again");
  button.disabled = true;
  again.disabled = true;
  followUp += 1; // a new session: the previous one's follow-up stops
  startIsPrimary(true);
  showProblem($("session-error"), null);
  const done = showStarting();
  let waiting = false;
  try {
    // One key per click: a retried request (a flaky network) is answered, not started twice.
    const session = await api("/v1/sessions", {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey() },
    });
    showLive(session, { focus: true });
    loadHistory(true);
  } catch (problem) {
    const live = problem.code === "session_already_active" ? problem.body.session : null;
    if (live) {
      const rejoin = h(
        "button",
        {
          type: "button",
          on: {
            click: () => {
              showProblem($("session-error"), null);
              startIsPrimary(true);
              showLive(live, { focus: true });
            },
          },
        },
        "Rejoin your live session",
      );
      startIsPrimary(false); // Rejoin is this state's one primary action
      showProblem($("session-error"), problem, h("div", { class: "row" }, rejoin));
      rejoin.focus();
      loadHistory(true); // the live session started elsewhere belongs in the history too
    } else {
      report($("session-error"), problem);
      if ((problem.status === 429 || problem.status === 503) && problem.retryAfter) {
        waiting = true;
        waitBeforeRetry(problem.retryAfter);
      }
    }
  } finally {
    done();
    if (!waiting) {
      button.disabled = false;
      again.disabled = false;
    }
  }
}

async function end() {
  if (!current) {
    return;
  }
  const button = $("end");
  button.disabled = true;
  showProblem($("session-error"), null);
  try {
    const session = await api(`/v1/sessions/${encodeURIComponent(current.id)}/end`, {
      method: "POST",
    });
    showEnded(session);
  } catch (problem) {
    report($("session-error"), problem);
  } finally {
    button.disabled = false;
  }
}

// --- history -------------------------------------------------------------------------------
function historyRow(session) {
  const when = formatTime(session.started_at || session.created_at);
  const details = h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-label": `Details of the session of ${when}`,
      on: { click: () => openDetail(session.id) },
    },
    "Details",
  );
  return h(
    "tr",
    { "data-session-id": session.id },
    h("td", {}, h("div", { text: when }), h("div", { class: "muted small", text: mentorOf(session, { capital: true }) })),
    h("td", {}, statusBadge(session.status)),
    h("td", { text: formatDuration(session.duration_seconds) }),
    h("td", { text: describeEnding(session) }),
    h("td", {}, details),
  );
}

/** Show a session's newest state in its history row (the card and the row agree). */
function updateHistoryRow(session) {
  const row = document.querySelector(`#history-rows tr[data-session-id="${CSS.escape(session.id)}"]`);
  if (row) {
    row.replaceWith(historyRow(session));
  }
}

async function loadHistory(reset) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (!reset && nextCursor) {
    params.set("cursor", nextCursor);
  }
  let page;
  try {
    page = await api(`/v1/sessions?${params}`);
  } catch (problem) {
    report($("history-error"), problem);
    return null;
  }
  showProblem($("history-error"), null);
  const rows = $("history-rows");
  if (reset) {
    rows.replaceChildren();
  }
  for (const session of page.items) {
    rows.append(historyRow(session));
  }
  nextCursor = page.next_cursor;
  $("history-more").hidden = !nextCursor;
  $("history-table").hidden = rows.children.length === 0;
  $("history-empty").hidden = rows.children.length > 0;
  return page;
}

// --- one session's details -----------------------------------------------------------------
const EVENTS = {
  "system.replica_joined": "The mentor joined the room",
  "system.pal_joined": "The mentor joined the room",
  "system.shutdown": "The room shut down",
  "application.transcription_ready": "Transcript received",
  "application.perception_analysis": "Perception analysis received",
  "application.recording_ready": "Recording ready",
  "application.recording_copy_failed": "Recording copy failed",
  "application.post_call_action_executed": "Post-call action ran",
};

function offset(seconds) {
  if (typeof seconds !== "number") {
    return null;
  }
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function renderDetail(detail) {
  const mentor = mentorOf(detail, { capital: true });
  $("detail-title").textContent =
    `Session with ${mentorOf(detail)} · ${formatTime(detail.started_at || detail.created_at)}`;
  const facts = h("dl", { class: "facts" });
  fact(facts, "Status", statusBadge(detail.status));
  fact(facts, "Started", formatTime(detail.started_at));
  fact(facts, "Ended", formatTime(detail.ended_at));
  fact(facts, "Duration", formatDuration(detail.duration_seconds));
  fact(
    facts,
    "How it ended",
    describeEnding(detail),
    detail.shutdown_reason ? h("span", { class: "muted small", text: ` (${detail.shutdown_reason})` }) : null,
  );
  fact(facts, "Conversation", h("code", { text: detail.conversation_id || "—" }));
  const changes = h("div", { class: "changes-slot" });
  changesSection(detail.id, { onChange: loadContext, report }).then((section) => {
    if (detailId === detail.id) {
      changes.replaceChildren(section);
    }
  });
  const parts = [facts, reportSection(detail, mentorOf(detail, { capital: true }), () => showDetail(detail.id)), changes, h("h3", { text: "Transcript" })];
  if (detail.transcript === null) {
    parts.push(
      h("p", {
        class: "muted",
        text: isLive(detail)
          ? "The transcript arrives after the call."
          : "The transcript arrives from Tavus shortly after the call ends.",
      }),
      h("button", { type: "button", class: "secondary", on: { click: () => showDetail(detail.id) } }, "Check again"),
    );
  } else if (detail.transcript.length === 0) {
    parts.push(h("p", { class: "muted", text: "Nothing was said in this call." }));
  } else {
    const list = h("ol", { class: "transcript", "aria-label": "Transcript" });
    for (const entry of detail.transcript) {
      const role = entry.role === "user" ? "user" : "assistant";
      const at = offset(entry.seconds_from_start);
      list.append(
        h(
          "li",
          { class: role },
          h("span", { class: "speaker", text: entry.role === "user" ? "You" : mentor }),
          h("span", { class: "said", text: entry.content }),
          at ? h("span", { class: "at", text: at }) : null,
        ),
      );
    }
    parts.push(list);
  }
  if (detail.perception_analysis) {
    parts.push(
      h("h3", { text: "What the mentor noticed" }),
      h("p", { class: "pre", text: detail.perception_analysis }),
    );
  }
  if (detail.recording) {
    const where = detail.recording.storage_uri || JSON.stringify(detail.recording);
    parts.push(h("h3", { text: "Recording" }), h("p", {}, h("code", { text: where })));
  }
  parts.push(h("h3", { text: "Timeline" }));
  if (detail.events.length === 0) {
    parts.push(h("p", { class: "muted", text: "No events from Tavus yet." }));
  } else {
    const timeline = h("ul", { class: "timeline", "aria-label": "Event timeline" });
    for (const event of detail.events) {
      timeline.append(
        h(
          "li",
          {},
          h("strong", { text: formatClock(event.occurred_at || event.received_at) }),
          ` · ${EVENTS[event.event_type] || event.event_type} `,
          h("span", { class: "muted small", text: `(${event.event_type}, ${event.outcome})` }),
        ),
      );
    }
    parts.push(timeline);
  }
  $("detail-body").replaceChildren(...parts);
}

// A session's details have an address, `#session/<id>`: opening them pushes it, closing
// them leaves it, and loading it (a link, a reload, back or forward) opens them.
const DETAIL_HASH = /^#session\/([0-9a-f-]{36})$/i;

function detailInUrl() {
  const match = location.hash.match(DETAIL_HASH);
  return match ? match[1].toLowerCase() : null;
}

function openDetail(id) {
  if (detailInUrl() !== id) {
    history.pushState(null, "", `${location.pathname}${location.search}#session/${id}`);
  }
  showDetail(id);
}

/** The dialog closed (Close, Escape, a delete): the address stops naming the session. */
function detailClosed() {
  if (detailInUrl()) {
    history.pushState(null, "", `${location.pathname}${location.search}`);
  }
}

/** Back or forward: show what the address names. */
function followAddress() {
  const id = detailInUrl();
  if (id) {
    if (!(id === detailId && $("detail").open)) {
      showDetail(id);
    }
  } else if ($("detail").open) {
    $("detail").close();
  }
}

async function showDetail(id) {
  detailId = id;
  const dialog = $("detail");
  showProblem($("detail-error"), null);
  $("detail-body").replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  if (!dialog.open) {
    dialog.showModal();
  }
  try {
    const detail = await api(`/v1/sessions/${encodeURIComponent(id)}`);
    if (detailId === id) {
      renderDetail(detail);
    }
  } catch (problem) {
    $("detail-body").replaceChildren();
    report($("detail-error"), problem);
  }
}

async function confirmDelete() {
  const button = $("confirm-yes");
  button.disabled = true;
  showProblem($("confirm-error"), null);
  try {
    await api(`/v1/sessions/${encodeURIComponent(detailId)}`, { method: "DELETE" });
    $("confirm-delete").close();
    $("detail").close();
    if (current && current.id === detailId) {
      showIdle();
    }
    await loadHistory(true);
    $("history-title").setAttribute("tabindex", "-1");
    $("history-title").focus();
  } catch (problem) {
    report($("confirm-error"), problem);
  } finally {
    button.disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------
async function main() {
  adoptTokenFromFragment();
  if (!requireSignIn()) {
    return;
  }
  setUpTopBar("user");
  $("start").addEventListener("click", start);
  $("start-again").addEventListener("click", start);
  $("end").addEventListener("click", end);
  $("history-more").addEventListener("click", () => loadHistory(false));
  $("history-refresh").addEventListener("click", () => loadHistory(true));
  $("detail-close").addEventListener("click", () => $("detail").close());
  $("detail").addEventListener("close", detailClosed);
  window.addEventListener("popstate", followAddress);
  $("detail-delete").addEventListener("click", () => {
    showProblem($("confirm-error"), null);
    $("confirm-delete").showModal();
    $("confirm-cancel").focus();
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-delete").close());
  $("confirm-yes").addEventListener("click", confirmDelete);
  setUpMemory(report);
  loadContext();
  loadMemory();
  followAddress(); // a session's address opens its details
  const page = await loadHistory(true);
  const newest = page?.items?.[0];
  if (newest && isLive(newest)) {
    // A session still live (a reload, another tab): carry on with it. Its own read, because
    // only that (not the list) carries a private room's meeting token.
    let live = newest;
    try {
      live = await api(`/v1/sessions/${encodeURIComponent(newest.id)}`);
    } catch (problem) {
      report($("session-error"), problem);
    }
    if (isLive(live)) {
      showLive(live);
    }
  }
}

main();
