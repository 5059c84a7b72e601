// The operators' console: what runs now, what happened, and three actions (end a stuck
// session, run a reconciler pass, send an app webhook again). Everything comes from /v1/ops, which refuses non-operators.

import { adoptTokenFromFragment, api, signOut } from "./api.js";
import { barChart, legend } from "./charts.js";
import {
  $,
  formatClock,
  formatDuration,
  formatTime,
  h,
  requireSignIn,
  setUpTopBar,
  showProblem,
  statusBadge,
} from "./ui.js";

const REFRESH_MS = 15000;
const STATS_DAYS = 14;
const CALLBACK_HOURS = 24;
const STATUS_SERIES = [
  { key: "completed", name: "completed", color: "#2e7d32" },
  { key: "interrupted", name: "interrupted", color: "#b45309" },
  { key: "failed", name: "failed", color: "#c62828" },
  { key: "live", name: "live", color: "#1d4ed8" },
];

let refreshing = false;
let refusal = null; // a 401/403: shown once, nothing else is drawn
let endTarget = null;

function refuse(problem) {
  refusal = problem;
  $("ops").hidden = true;
  const extra = [];
  if (problem.status === 401 || problem.status === 403) {
    extra.push(
      h(
        "div",
        { class: "row" },
        problem.status === 403 ? h("a", { class: "button secondary", href: "/console" }, "Go to your sessions") : null,
        h(
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
          "Sign in as someone else",
        ),
      ),
    );
  }
  showProblem($("page-error"), problem, ...extra);
}

/** Run one section's load; a refusal stops the page, other problems stay in the section. */
async function section(errorId, load) {
  try {
    await load();
    showProblem($(errorId), null);
  } catch (problem) {
    if (problem.status === 401 || problem.status === 403) {
      refuse(problem);
    } else {
      showProblem($(errorId), problem);
    }
  }
}

function card(label, value, note) {
  return h(
    "div",
    { class: "card" },
    h("div", { class: "label", text: label }),
    h("div", { class: "value" }, value),
    note ? h("div", { class: "muted small", text: note }) : null,
  );
}

async function loadTavus() {
  const state = await api("/v1/ops/tavus");
  const breaker = state.breaker;
  const tone = { closed: "ok", open: "bad", half_open: "warn" }[breaker.state] || "warn";
  const last = state.last_seen;
  $("tavus").replaceChildren(
    card(
      "Circuit breaker",
      h("span", { class: `badge ${tone}`, text: breaker.state.replace("_", "-") }),
      breaker.state === "open"
        ? `refusing calls for ${Math.ceil(breaker.retry_after_seconds)} s more`
        : `${breaker.consecutive_failures} of ${breaker.threshold} failures in a row`,
    ),
    card("Bulkhead", `${state.bulkhead.in_flight} / ${state.bulkhead.limit}`, "Tavus calls in flight"),
    card("Retry budget", state.retry_budget_tokens.toFixed(1), "retries available now"),
    card(
      "Last call",
      h("span", {
        class: `badge ${last.status === "ok" ? "ok" : last.status === "degraded" ? "bad" : ""}`.trim(),
        text: last.status,
      }),
      last.last_endpoint
        ? `${last.last_endpoint}: ${last.last_outcome}, ${formatDuration(last.seconds_since_last_call)} ago`
        : "no call yet",
    ),
    card("Replica", h("code", { text: state.replica }), "each replica has its own breaker"),
  );
}

function ageCell(item, cap) {
  const share = Math.min(1, item.age_seconds / cap);
  const bar = h("div", {
    class: `agebar${item.overdue ? " over" : ""}`,
    role: "img",
    "aria-label": `${Math.round(share * 100)}% of the maximum duration`,
  });
  const fill = h("span");
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  bar.append(fill);
  return h(
    "td",
    {},
    h("div", { text: `${formatDuration(item.age_seconds)} of ${formatDuration(cap)}` }),
    bar,
    item.overdue ? h("span", { class: "badge bad", text: "past the maximum" }) : null,
  );
}

/** The user as operators recognise them: name and email (the ids follow, for support). */
function who(item) {
  const name = item.user_name || item.user_email || "A user without a profile";
  return h(
    "div",
    { class: "who-user" },
    h("strong", { text: name }),
    item.user_name && item.user_email ? h("span", { class: "muted", text: ` · ${item.user_email}` }) : null,
  );
}

async function loadLive() {
  const live = await api("/v1/ops/sessions/live");
  const cap = live.max_call_duration_seconds;
  $("live-cap").textContent =
    `Maximum call ${formatDuration(cap)}; the reconciler closes sessions older than ` +
    `${formatDuration(live.reconciler_closes_after_seconds)}.`;
  const rows = live.items.map((item) => {
    const end = h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `End session ${item.id}`,
        on: { click: () => askEnd(item) },
      },
      "End",
    );
    return h(
      "tr",
      { "data-session-id": item.id },
      h(
        "td",
        {},
        who(item),
        h("div", { class: "muted small" }, "session ", h("code", { text: item.id })),
        h("div", { class: "muted small" }, "user ", h("code", { text: item.user_id })),
      ),
      h(
        "td",
        {},
        statusBadge(item.status),
        h("div", { class: "muted small", text: item.conversation_status }),
        item.failure_code ? h("div", { class: "muted small", text: item.failure_code }) : null,
      ),
      ageCell(item, cap),
      h("td", { text: item.mentor_name || "default mentor" }),
      h("td", {}, end),
    );
  });
  $("live-rows").replaceChildren(...rows);
  $("live-table").hidden = rows.length === 0;
  $("live-empty").hidden = rows.length > 0;
}

async function loadStats() {
  const stats = await api(`/v1/ops/stats?days=${STATS_DAYS}`);
  $("stats-window").textContent = `last ${stats.days} days, since ${stats.since}`;
  const perDay = stats.sessions_per_day.map((day) => {
    const by = day.by_status;
    return {
      label: day.date.slice(5),
      parts: [
        by.completed || 0,
        by.interrupted || 0,
        by.failed || 0,
        (by.started || 0) + (by.in_progress || 0),
      ],
    };
  });
  const total = stats.sessions_per_day.reduce((sum, day) => sum + day.total, 0);
  $("per-day").replaceChildren(
    h("figcaption", {}, h("h3", { text: "Sessions per day" })),
    legend(STATUS_SERIES),
    barChart({
      title: "Sessions per day",
      bars: perDay,
      series: STATUS_SERIES,
      summary: `${total} sessions in ${stats.days} days.`,
    }),
  );
  const durations = stats.durations.map((bucket) => ({ label: bucket.label, parts: [bucket.count] }));
  const ended = stats.durations.reduce((sum, bucket) => sum + bucket.count, 0);
  $("durations").replaceChildren(
    h("figcaption", {}, h("h3", { text: "How long sessions lasted" })),
    legend([{ name: "sessions", color: "#1d4ed8" }]),
    barChart({
      title: "Duration distribution",
      bars: durations,
      series: [{ name: "sessions", color: "#1d4ed8" }],
      summary: stats.durations.map((b) => `${b.label}: ${b.count}`).join(", ") + ` (${ended} ended sessions).`,
    }),
  );
  const standing = {
    failed: "failed: never created at Tavus",
    indeterminate: "unknown: the reconciler is checking",
  };
  const rows = stats.start_failures.map((failure) =>
    h(
      "tr",
      {},
      h("td", {}, h("code", { text: failure.failure_code })),
      h("td", { text: standing[failure.conversation_status] || `adopted later (now ${failure.conversation_status})` }),
      h("td", { class: "num", text: failure.count }),
    ),
  );
  $("failures-rows").replaceChildren(...rows);
  $("failures-table").hidden = rows.length === 0;
  $("failures-empty").hidden = rows.length > 0;
}

function describeActions(actions) {
  const entries = Object.entries(actions);
  if (entries.length === 0) {
    return "nothing to do";
  }
  return entries.map(([action, count]) => `${action.replace(/_/g, " ")} × ${count}`).join(", ");
}

async function loadPasses() {
  const passes = await api("/v1/ops/reconciler/passes?limit=15");
  const rows = passes.items.map((run) =>
    h(
      "tr",
      {},
      h("td", { text: formatTime(run.finished_at) }),
      h("td", {}, h("code", { text: run.replica })),
      h("td", { class: "num", text: `${run.duration_ms} ms` }),
      h("td", { text: describeActions(run.actions) }),
      h("td", { class: "num", text: run.errors }),
    ),
  );
  $("passes-rows").replaceChildren(...rows);
  $("passes-table").hidden = rows.length === 0;
  $("passes-empty").hidden = rows.length > 0;
}

async function loadCallbacks() {
  const callbacks = await api(`/v1/ops/callbacks?hours=${CALLBACK_HOURS}`);
  $("callbacks-window").textContent = `last ${callbacks.hours} hours`;
  const totals = Object.entries(callbacks.totals);
  $("callbacks-totals").replaceChildren(
    ...totals.map(([outcome, count]) =>
      h("span", { class: `badge ${outcome === "applied" ? "ok" : outcome === "ignored" ? "warn" : ""}`.trim(), text: `${outcome}: ${count}` }),
    ).flatMap((badge) => [badge, " "]),
  );
  const rows = callbacks.items.map((item) =>
    h(
      "tr",
      {},
      h("td", {}, h("code", { text: item.event_type })),
      h("td", { text: item.outcome.replace("_", " ") }),
      h("td", { class: "num", text: item.count }),
    ),
  );
  $("callbacks-rows").replaceChildren(...rows);
  $("callbacks-table").hidden = rows.length === 0;
  $("callbacks-empty").hidden = rows.length > 0;
}

const WEBHOOK_TONES = { delivered: "ok", pending: "warn", failed: "bad" };

async function loadWebhooks() {
  const outbox = await api("/v1/ops/webhooks?limit=50");
  $("webhooks-target").textContent = outbox.configured
    ? `delivering to ${outbox.url_host}`
    : "not configured (APP_WEBHOOK_URL): events are recorded, not sent";
  const late = outbox.oldest_due_seconds;
  $("webhooks-totals").replaceChildren(
    ...Object.entries(outbox.counts)
      .map(([status, count]) =>
        h("span", { class: `badge ${WEBHOOK_TONES[status] || ""}`.trim(), text: `${status}: ${count}` }),
      )
      .flatMap((badge) => [badge, " "]),
    late ? h("span", { class: "muted small", text: `oldest due for ${formatDuration(late)}` }) : "",
  );
  const rows = outbox.items.map((item) =>
    h(
      "tr",
      { "data-event": item.id },
      h("td", { "data-label": "Event" }, h("code", { text: item.event_type }), " ", h("span", { class: "muted small", text: item.id })),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${WEBHOOK_TONES[item.status] || ""}`.trim(), text: item.status })),
      h("td", { class: "num", "data-label": "Attempts", text: item.attempts }),
      h("td", { "data-label": "Last error", text: item.last_error || "" }),
      h("td", { "data-label": "Recorded", text: formatTime(item.created_at) }),
      h(
        "td",
        {},
        outbox.configured && item.status !== "pending"
          ? h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-label": `Send ${item.event_type} ${item.id} again`,
                on: { click: () => sendAgain(item) },
              },
              "Send again",
            )
          : null,
      ),
    ),
  );
  $("webhooks-rows").replaceChildren(...rows);
  $("webhooks-table").hidden = rows.length === 0;
  $("webhooks-empty").hidden = rows.length > 0;
}

async function sendAgain(item) {
  try {
    const event = await api(`/v1/ops/webhooks/${encodeURIComponent(item.id)}/send-again`, { method: "POST" });
    $("webhooks-result").replaceChildren(
      h("p", { class: "notice" }, `${event.event_type} ${event.id} is due again: the next delivery pass sends it.`),
    );
    await refresh();
  } catch (problem) {
    if (problem.status === 401 || problem.status === 403) {
      refuse(problem);
    } else {
      showProblem($("webhooks-error"), problem);
    }
  }
}

async function refresh() {
  if (refreshing || refusal) {
    return;
  }
  refreshing = true;
  $("refresh").disabled = true;
  try {
    await section("tavus-error", loadTavus);
    if (refusal) {
      return;
    }
    $("ops").hidden = false;
    await Promise.all([
      section("live-error", loadLive),
      section("stats-error", loadStats),
      section("reconciler-error", loadPasses),
      section("callbacks-error", loadCallbacks),
      section("webhooks-error", loadWebhooks),
    ]);
    if (!refusal) {
      $("updated").textContent = `Updated ${formatClock(new Date().toISOString())}`;
    }
  } finally {
    refreshing = false;
    $("refresh").disabled = false;
  }
}

function askEnd(item) {
  endTarget = item;
  $("end-text").textContent =
    `Session ${item.id} of ${item.user_name || item.user_email || "user"} (${item.user_id}) has been live for ${formatDuration(item.age_seconds)}. ` +
    "Ending it ends the conversation at Tavus and closes its records, as if its user had ended it.";
  showProblem($("end-error"), null);
  $("confirm-end").showModal();
  $("end-cancel").focus();
}

async function confirmEnd() {
  const button = $("end-yes");
  button.disabled = true;
  try {
    await api(`/v1/ops/sessions/${encodeURIComponent(endTarget.id)}/end`, { method: "POST" });
    $("confirm-end").close();
    await refresh();
  } catch (problem) {
    showProblem($("end-error"), problem);
  } finally {
    button.disabled = false;
  }
}

async function runPass() {
  const button = $("reconcile");
  button.disabled = true;
  $("reconcile-result").textContent = "Running a pass…";
  try {
    const result = await api("/v1/ops/reconciler/passes", { method: "POST" });
    $("reconcile-result").replaceChildren(
      h(
        "p",
        { class: "notice" },
        `Pass finished in ${result.duration_ms} ms: ${describeActions(result.actions)}` +
          (result.errors ? `, ${result.errors} error(s) (retried next pass).` : "."),
      ),
    );
    await refresh();
  } catch (problem) {
    $("reconcile-result").replaceChildren();
    if (problem.status === 401 || problem.status === 403) {
      refuse(problem);
    } else {
      showProblem($("reconciler-error"), problem);
    }
  } finally {
    button.disabled = false;
  }
}

function main() {
  adoptTokenFromFragment();
  if (!requireSignIn()) {
    return;
  }
  setUpTopBar("ops");
  $("refresh").addEventListener("click", refresh);
  $("reconcile").addEventListener("click", runPass);
  $("end-cancel").addEventListener("click", () => $("confirm-end").close());
  $("end-yes").addEventListener("click", confirmEnd);
  refresh();
  setInterval(refresh, REFRESH_MS);
}

main();
