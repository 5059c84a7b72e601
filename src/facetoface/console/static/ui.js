// DOM helpers. Every piece of text goes in with textContent (or a text node): names, goals,
// transcripts and error messages are data, never markup.

import { claims, isOperator, offeredToken, rememberReturn, signOut, token } from "./api.js";

/**
 * Create an element: h("p", { class: "muted" }, "text", child, …). Props: `class`, `text`,
 * `on` ({event: handler}), and anything else as an attribute (false/null/undefined skip it).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (key === "class") {
      node.className = value;
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) {
        node.addEventListener(event, handler);
      }
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function $(id) {
  return document.getElementById(id);
}

/** A problem document as people read it: its title and detail (and the ids support needs). */
export function problemBox(problem) {
  const meta = [];
  if (problem.code) {
    meta.push(`code ${problem.code}`);
  }
  if (problem.status) {
    meta.push(`HTTP ${problem.status}`);
  }
  if (problem.requestId) {
    meta.push(`request ${problem.requestId}`);
  }
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", { text: problem.title || "Something went wrong" }),
    problem.detail ? h("span", { text: problem.detail }) : null,
    meta.length ? h("div", { class: "meta", text: meta.join(" · ") }) : null,
  );
}

/** Replace `container`'s content with the problem (or clear it with null). */
export function showProblem(container, problem, ...extra) {
  container.replaceChildren();
  if (problem) {
    const box = problemBox(problem);
    append(box, extra);
    container.append(box);
  }
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) {
    return "—";
  }
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s} s`;
  }
  const minutes = Math.floor(s / 60);
  const rest = s % 60;
  if (minutes < 60) {
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatTime(iso) {
  if (!iso) {
    return "—";
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? String(iso)
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatClock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? String(iso)
    : date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

const ENDINGS = {
  end_conversation_endpoint_hit: "Ended from the console or the app",
  participant_left_timeout: "Everyone left; the room closed",
  participant_absent_timeout: "Nobody joined in time",
  max_call_duration: "Reached the maximum call length",
  daily_room_has_been_deleted: "The conversation was deleted",
};

/** How a session ended, in words (with Tavus's reason kept for the curious). */
export function describeEnding(session) {
  if (session.status === "failed") {
    return "Could not start";
  }
  if (!session.ended_at && !session.shutdown_reason) {
    return session.status === "started" || session.status === "in_progress" ? "Still live" : "—";
  }
  if (!session.shutdown_reason) {
    return ENDINGS.end_conversation_endpoint_hit; // closed by an end call; Tavus's reason follows
  }
  return ENDINGS[session.shutdown_reason] || session.shutdown_reason.replace(/_/g, " ");
}

const STATUS_TONES = {
  completed: "ok",
  in_progress: "",
  started: "",
  interrupted: "warn",
  failed: "bad",
};
const STATUS_WORDS = {
  started: "starting",
  in_progress: "live",
  completed: "completed",
  interrupted: "interrupted",
  failed: "failed",
};

/**
 * The mentor's name as every screen shows it: the name the service gave (the user's chosen
 * mentor), else one wording for the configured default, capitalised where a sentence starts.
 */
export function mentorName(name, { capital = false } = {}) {
  if (name) {
    return name;
  }
  return capital ? "Your mentor" : "your mentor";
}

/** A status in words (the same words in the history, the session card and the details). */
export function statusWord(status) {
  return STATUS_WORDS[status] || status;
}

export function statusBadge(status) {
  const tone = STATUS_TONES[status] ?? "warn";
  return h("span", { class: `badge ${tone}`.trim(), text: statusWord(status) });
}

export function isLive(session) {
  return session.status === "started" || session.status === "in_progress";
}

/** Redirect to the sign-in page when there is no token; returns false then. */
export function requireSignIn() {
  // A link offered another user's token: the sign-in page asks which user to be.
  if (!token() || offeredToken()) {
    rememberReturn(location.pathname + location.hash); // a link to a session's details
    location.replace("/console/sign-in");
    return false;
  }
  return true;
}

/** Fill the top bar: who is signed in, the operator link, sign-out. */
export function setUpTopBar(current) {
  const data = claims() || {};
  const who = $("who");
  if (who) {
    who.textContent = data.email
      ? `Signed in as ${data.email}`
      : `Signed in${isOperator(data) ? " as an operator" : ""}`;
  }
  const opsLink = $("ops-link");
  if (opsLink) {
    opsLink.hidden = !isOperator(data) && current !== "ops";
  }
  for (const link of document.querySelectorAll("[data-page]")) {
    if (link.dataset.page === current) {
      link.setAttribute("aria-current", "page");
    }
  }
  const button = $("sign-out");
  if (button) {
    button.addEventListener("click", () => {
      signOut();
      location.assign("/console/sign-in");
    });
  }
}
