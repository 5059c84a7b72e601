// "What your mentor remembers": the pinned facts (each can be forgotten), what Tavus learned
// (a profile and a timeline), forgetting everything, and the opt-out. Read through the
// service (/v1/me/memory), never from the browser to Tavus.

import { api } from "./api.js";
import { $, formatTime, h, showProblem } from "./ui.js";

let onProblem = (container, problem) => showProblem(container, problem);

/** A learned profile's key as words ("dog_name" → "Dog name"). */
function words(key) {
  const text = String(key).replace(/_/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function valueText(value) {
  if (Array.isArray(value)) {
    return value.map(valueText).join(", ");
  }
  if (value !== null && typeof value === "object") {
    return JSON.stringify(value);
  }
  return String(value);
}

function timelineEntries(timeline) {
  if (Array.isArray(timeline)) {
    return timeline;
  }
  return timeline && Array.isArray(timeline.recent_conversations) ? timeline.recent_conversations : [];
}

async function forgetOne(item, button) {
  button.disabled = true;
  showProblem($("memory-error"), null);
  try {
    await api(`/v1/me/memory/pinned/${encodeURIComponent(item.id)}`, { method: "DELETE" });
    await loadMemory();
  } catch (problem) {
    button.disabled = false;
    onProblem($("memory-error"), problem);
  }
}

function pinnedList(pinned) {
  if (pinned.length === 0) {
    return h("p", { class: "muted", text: "Nothing pinned. Say “remember that …” in a session to pin a fact." });
  }
  const list = h("ul", { class: "pinned", "aria-label": "Pinned facts" });
  for (const item of pinned) {
    const forget = h("button", { type: "button", class: "secondary small-button", "aria-label": `Forget “${item.text}”` }, "Forget");
    forget.addEventListener("click", () => forgetOne(item, forget));
    list.append(
      h(
        "li",
        { "data-memory-id": item.id },
        h("span", { class: "fact", text: item.text }),
        item.created_at ? h("span", { class: "muted small", text: ` · ${formatTime(item.created_at)}` }) : null,
        forget,
      ),
    );
  }
  return list;
}

function learned(memory) {
  const parts = [];
  const profile = memory.profile && typeof memory.profile === "object" ? Object.entries(memory.profile) : [];
  parts.push(h("h3", { text: "What it learned about you" }));
  if (profile.length === 0) {
    parts.push(h("p", { class: "muted", text: "Nothing yet: it learns from what you say in sessions." }));
  } else {
    const facts = h("dl", { class: "facts", "aria-label": "Learned profile" });
    for (const [key, value] of profile) {
      facts.append(h("dt", { text: words(key) }), h("dd", { text: valueText(value) }));
    }
    parts.push(facts);
  }
  const entries = timelineEntries(memory.timeline);
  parts.push(h("h3", { text: "Your recent sessions, as it remembers them" }));
  if (entries.length === 0) {
    parts.push(h("p", { class: "muted", text: "No session remembered yet." }));
  } else {
    const list = h("ol", { class: "timeline", "aria-label": "Learned timeline" });
    for (const entry of entries) {
      const when = entry && entry.ended_at ? formatTime(entry.ended_at) : null;
      const summary = entry && typeof entry === "object" ? entry.summary || valueText(entry) : valueText(entry);
      list.append(h("li", {}, when ? h("strong", { text: `${when} · ` }) : null, summary));
    }
    parts.push(list);
  }
  return parts;
}

async function setRemembering(checkbox) {
  checkbox.disabled = true;
  showProblem($("memory-error"), null);
  try {
    await api("/v1/me/preferences", { method: "PUT", body: { mentor_memory: checkbox.checked } });
    await loadMemory();
  } catch (problem) {
    checkbox.checked = !checkbox.checked;
    onProblem($("memory-error"), problem);
  } finally {
    checkbox.disabled = false;
  }
}

/** Read what the mentor remembers and the opt-out, and draw the panel. */
export async function loadMemory() {
  const body = $("memory-body");
  try {
    const [memory, preferences] = await Promise.all([
      api("/v1/me/memory"),
      api("/v1/me/preferences"),
    ]);
    showProblem($("memory-error"), null);
    const toggle = h("input", { type: "checkbox", id: "memory-toggle" });
    toggle.checked = Boolean(preferences.mentor_memory);
    toggle.addEventListener("change", () => setRemembering(toggle));
    const parts = [
      h(
        "label",
        { class: "toggle", for: "memory-toggle" },
        toggle,
        " Let my mentor remember me from one session to the next",
      ),
    ];
    if (!memory.enabled) {
      parts.push(
        h("p", {
          class: "notice",
          text: preferences.mentor_memory
            ? "This service does not keep a memory at the video service: your mentor knows only what is listed under “What your mentor knows”."
            : "Your mentor remembers nothing new: nothing carries over between sessions, and “remember that …” is politely refused.",
        }),
      );
    }
    if (!memory.enabled && preferences.mentor_memory) {
      // The deployment keeps no memory at Tavus: nothing to list or forget there.
      body.replaceChildren(...parts);
      return;
    }
    parts.push(h("h3", { text: "Pinned facts" }), pinnedList(memory.pinned), ...learned(memory));
    const everything = h("button", { type: "button", class: "danger", id: "memory-forget-all" }, "Forget everything…");
    everything.addEventListener("click", () => {
      showProblem($("forget-all-error"), null);
      $("confirm-forget-all").showModal();
      $("forget-all-cancel").focus();
    });
    parts.push(h("div", { class: "row" }, everything));
    body.replaceChildren(...parts);
  } catch (problem) {
    body.replaceChildren();
    onProblem($("memory-error"), problem);
  } finally {
    body.removeAttribute("aria-busy");
  }
}

async function forgetEverything() {
  const button = $("forget-all-yes");
  button.disabled = true;
  showProblem($("forget-all-error"), null);
  try {
    await api("/v1/me/memory", { method: "DELETE" });
    $("confirm-forget-all").close();
    await loadMemory();
    $("memory-title").focus();
  } catch (problem) {
    onProblem($("forget-all-error"), problem);
  } finally {
    button.disabled = false;
  }
}

/** Wire the panel's dialog; `report` shows a problem (a 401 offers a new sign-in). */
export function setUpMemory(report) {
  onProblem = report;
  $("forget-all-cancel").addEventListener("click", () => $("confirm-forget-all").close());
  $("forget-all-yes").addEventListener("click", forgetEverything);
}
