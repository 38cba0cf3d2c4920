// Safety: blocking the partner of a DIRECT conversation (header button) and reporting a
// message of someone else (a button under its bubble, then a one-line reason).

import { api, describeError } from "./api.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { me, state } from "./state.js";

const blocked = { owner: null, ids: new Set(), loading: null }; // whom the signed-in user blocks
const reported = new Set(); // ids of messages reported from this page

async function blockedIds() {
  const owner = me().id;
  if (blocked.owner !== owner) {
    blocked.owner = owner;
    blocked.ids = new Set();
    blocked.loading = api(Q.blockedUsers).then(({ blockedUsers }) => {
      if (blocked.owner === owner) blocked.ids = new Set(blockedUsers.map((u) => u.id));
    });
  }
  await blocked.loading;
  return blocked.ids;
}

/** The header's Block / Unblock button, for the open DIRECT conversation's partner. */
export async function renderBlockToggle() {
  const button = $("block-toggle");
  const open = state.open;
  const partner = open && open.kind === "DIRECT" && open.partner;
  button.hidden = !partner || partner.id === me().id;
  if (button.hidden) return;
  let ids;
  try {
    ids = await blockedIds();
  } catch (error) {
    console.warn("blocked users", error);
    return;
  }
  if (state.open !== open) return;
  const isBlocked = ids.has(partner.id);
  button.textContent = isBlocked ? "Unblock" : "Block";
  button.setAttribute("aria-pressed", String(isBlocked));
  button.title = isBlocked
    ? `Let ${partner.username} write to you and see when you are online again`
    : `Stop ${partner.username} writing to you and seeing when you are online`;
  button.onclick = () => toggleBlock(open, partner, isBlocked);
}

async function toggleBlock(open, partner, isBlocked) {
  const button = $("block-toggle");
  button.disabled = true;
  try {
    await api(isBlocked ? Q.unblockUser : Q.blockUser, { userId: partner.id });
    if (isBlocked) blocked.ids.delete(partner.id);
    else blocked.ids.add(partner.id);
    if (state.open === open) {
      $("composer-error").textContent = isBlocked ? "" : `You blocked ${partner.username}. Unblock them to write to them.`;
    }
  } catch (error) {
    if (state.open === open) $("composer-error").textContent = describeError(error);
  } finally {
    button.disabled = false;
    if (state.open === open) renderBlockToggle();
  }
}

/** What the meta line of someone else's message offers: Report, or that it was reported. */
export function reportControl(messageId) {
  if (reported.has(messageId)) return h("span", { class: "reported", "data-testid": "reported" }, " · Reported");
  return h("button", {
    type: "button", class: "ghost small", "data-testid": "report-message",
    onclick: (event) => openReportForm(event.currentTarget, messageId),
  }, "Report");
}

function openReportForm(button, messageId) {
  const li = button.closest("li");
  if (li.querySelector(".report-form")) return;
  const reason = h("input", {
    class: "small", "data-testid": "report-reason", maxlength: "1000", autocomplete: "off",
    "aria-label": "Why are you reporting this message?", placeholder: "Why? (spam, abuse, …)",
  });
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { class: "report-form inline-form", novalidate: true, "data-testid": "report-form" },
    reason,
    h("button", { type: "submit", class: "small", "data-testid": "report-submit" }, "Send report"),
    h("button", { type: "button", class: "ghost small", onclick: () => form.remove() }, "Cancel"),
    error);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      form.remove();
      button.focus();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector('[type="submit"]');
    submit.disabled = true;
    try {
      await api(Q.reportMessage, { messageId, reason: reason.value });
      reported.add(messageId);
      form.remove();
      const meta = li.querySelector(".meta");
      meta.querySelector('[data-testid="report-message"]')?.replaceWith(reportControl(messageId));
    } catch (failure) {
      error.textContent = describeError(failure);
      reason.setAttribute("aria-invalid", "true");
      submit.disabled = false;
    }
  });
  li.append(form);
  reason.focus();
}
