// In a session's details: the mentor's report after the call (summary, next steps, mood,
// duration, cost) and "What changed in this session" — each goal change the mentor made,
// with Undo.

import { api } from "./api.js";
import { formatDuration, formatTime, h, showProblem } from "./ui.js";

const SOURCES = { tool: "during the call", report: "from the report after the call" };

/** The report's part of the details (or where it stands when there is none yet). */
export function reportSection(detail, mentor, recheck) {
  const parts = [h("h3", { text: `${mentor}'s report` })];
  const report = detail.report;
  if (!report) {
    const live = detail.status === "started" || detail.status === "in_progress";
    parts.push(
      h("p", {
        class: "muted",
        text: live
          ? "The report comes after the call."
          : "No report yet: it comes from the video service a moment after the call (only for a call with something said).",
      }),
      live ? null : h("button", { type: "button", class: "secondary", on: { click: recheck } }, "Check for the report"),
    );
    return h("section", { class: "report", "aria-label": "Session report" }, ...parts);
  }
  parts.push(h("p", { class: "pre summary", text: report.summary }));
  if (report.next_steps.length) {
    parts.push(h("h4", { text: "Next steps" }));
    const steps = h("ul", { class: "next-steps" });
    for (const step of report.next_steps) {
      steps.append(h("li", { text: step }));
    }
    parts.push(steps);
  }
  const facts = h("dl", { class: "facts" });
  if (report.mood) {
    facts.append(h("dt", { text: "Mood" }), h("dd", { text: report.mood }));
  }
  facts.append(
    h("dt", { text: "Billed duration" }),
    h("dd", { text: formatDuration(report.billed_duration_seconds) }),
  );
  if (report.estimated_cost !== undefined && report.estimated_cost !== null) {
    facts.append(
      h("dt", { text: "Estimated cost" }),
      h("dd", { text: `${report.estimated_cost.toFixed(2)} (billed minutes × the configured price)` }),
    );
  }
  facts.append(h("dt", { text: "Received" }), h("dd", { text: formatTime(report.received_at) }));
  parts.push(facts);
  return h("section", { class: "report", "aria-label": "Session report" }, ...parts);
}

function describeChange(change) {
  if (change.kind === "added") {
    return `Added the goal «${change.goal_text}»`;
  }
  return `«${change.goal_text}»: ${change.before ?? 0}% → ${change.after}%`;
}

/**
 * "What changed in this session": the session's goal changes, newest first, each with Undo
 * (or marked undone). `onChange` runs after an undo (the goals the context shows moved).
 */
export async function changesSection(sessionId, { onChange, report }) {
  const section = h("section", { class: "changes", "aria-labelledby": "changes-title" });
  const error = h("div");
  const title = h("h3", { id: "changes-title", text: "What changed in this session" });
  section.append(title, error);
  const list = h("ul", { class: "changes-list", "aria-label": "Goal changes" });

  async function load() {
    const page = await api(
      `/v1/me/goal-changes?${new URLSearchParams({ session_id: sessionId, limit: "100" })}`,
    );
    list.replaceChildren();
    for (const change of page.items) {
      list.append(row(change));
    }
    empty.hidden = page.items.length > 0;
  }

  function row(change) {
    const item = h(
      "li",
      { "data-change-id": change.id },
      h("span", { class: "what", text: describeChange(change) }),
      h("span", { class: "muted small", text: ` · ${SOURCES[change.source] || change.source}, ${formatTime(change.created_at)}` }),
      change.note ? h("div", { class: "muted small", text: `Note: ${change.note}` }) : null,
    );
    if (change.undone_at) {
      item.append(h("span", { class: "badge", text: `undone ${formatTime(change.undone_at)}` }));
    } else {
      const undo = h(
        "button",
        { type: "button", class: "secondary small-button", "aria-label": `Undo: ${describeChange(change)}` },
        "Undo",
      );
      undo.addEventListener("click", async () => {
        undo.disabled = true;
        showProblem(error, null);
        try {
          await api(`/v1/me/goal-changes/${encodeURIComponent(change.id)}/undo`, { method: "POST" });
          await load();
          onChange();
        } catch (problem) {
          undo.disabled = false;
          report(error, problem);
        }
      });
      item.append(undo);
    }
    return item;
  }

  const empty = h("p", { class: "muted", text: "Your mentor changed none of your goals in this session." });
  section.append(empty, list);
  try {
    await load();
  } catch (problem) {
    report(error, problem);
  }
  return section;
}
