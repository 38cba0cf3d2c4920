// What one does to a sent message: reply, edit (↑ in an empty composer; Enter saves, Escape
// cancels), delete after a confirmation, and react from a small picker or a reaction chip.
// The bubbles' buttons carry data-action; one listener on the list dispatches them.

import { api, describeError } from "./api.js";
import { EMOJI } from "./bubble.js";
import { autoGrow } from "./composer.js";
import { renderModeBar } from "./composing.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { messageOf, upsertMessage } from "./messages.js";
import { state } from "./state.js";

const input = () => $("message-input");
// Live events seen per message id. Events come in order on one socket; an answer does not come
// in order with them, so an answer is shown only if no event about its message came meanwhile
// (the event of our own change is then on its way, and newer).
const liveEvents = new Map();

function showError(error) {
  $("composer-error").textContent = typeof error === "string" ? error : describeError(error);
}

/** Run a mutation on a message; show its answer (the message as it is now) unless events overtook it. */
async function change(id, query, variables, field) {
  const seen = liveEvents.get(id) || 0;
  const message = (await api(query, { id, ...variables }))[field];
  if ((liveEvents.get(id) || 0) !== seen) return;
  if (state.open && state.open.conversationId === message.conversationId) upsertMessage(message);
  afterChange(message);
}

/** A message changed (here, or live when `live`): a reply or an edit of it in the composer follows. */
export function afterChange(message, { live = false } = {}) {
  if (live) liveEvents.set(message.id, (liveEvents.get(message.id) || 0) + 1);
  if (!message.deletedAt) return;
  if (state.replyTo && state.replyTo.id === message.id) state.replyTo = null;
  if (state.editing && state.editing.id === message.id) {
    input().value = state.editing.draft;
    state.editing = null;
    autoGrow();
  }
  renderModeBar();
}

// ---- reply

function startReply(li) {
  if (state.editing) cancelEditing();
  state.replyTo = messageOf(li);
  renderModeBar();
  input().focus();
}

function showQuoted(button) {
  const original = state.open && state.open.elements.get(button.dataset.quotedId);
  if (!original) return; // in an older page not loaded yet
  original.scrollIntoView({ block: "center" });
  original.dataset.highlighted = "true";
  setTimeout(() => delete original.dataset.highlighted, 2000);
  original.focus();
}

// ---- edit

function lastOwnMessage() {
  const mine = $("messages").querySelectorAll('li[data-mine="true"][data-state="sent"][data-kind="TEXT"][data-deleted="false"]');
  return mine.length ? mine[mine.length - 1] : null;
}

function startEditing(li) {
  const message = messageOf(li);
  if (!message) return;
  state.replyTo = null;
  const draft = state.editing ? state.editing.draft : input().value;
  state.editing = { id: message.id, text: message.text, draft };
  input().value = message.text;
  autoGrow();
  renderModeBar();
  $("composer-error").textContent = "";
  input().focus();
  input().setSelectionRange(message.text.length, message.text.length);
}

export function cancelEditing() {
  if (!state.editing) return;
  input().value = state.editing.draft;
  state.editing = null;
  autoGrow();
  renderModeBar();
  $("composer-error").textContent = "";
}

async function saveEdit() {
  const editing = state.editing;
  const text = input().value.trim();
  if (!text) {
    showError("A message cannot be empty: delete it instead.");
    return;
  }
  if (text === editing.text) {
    cancelEditing();
    return;
  }
  try {
    await change(editing.id, Q.editMessage, { text }, "editMessage");
    if (state.editing === editing) {
      state.editing = null;
      input().value = editing.draft;
      autoGrow();
      renderModeBar();
      $("composer-error").textContent = "";
    }
  } catch (error) {
    showError(error); // still editing: fix the text, or Escape
  }
}

/** The composer's keys for these modes; true when the key was handled here. */
export function onComposerKey(event) {
  if (event.isComposing) return false;
  if (event.key === "ArrowUp" && !state.editing && !input().value && !event.shiftKey && !event.altKey
      && !event.ctrlKey && !event.metaKey) {
    const li = lastOwnMessage();
    if (!li) return false;
    event.preventDefault();
    startEditing(li);
    return true;
  }
  if (event.key === "Escape" && (state.editing || state.replyTo)) {
    event.preventDefault();
    if (state.editing) cancelEditing();
    else {
      state.replyTo = null;
      renderModeBar();
    }
    return true;
  }
  if (event.key === "Enter" && !event.shiftKey && state.editing) {
    event.preventDefault();
    saveEdit();
    return true;
  }
  return false;
}

// ---- delete, with a confirmation in the bubble

function closePopover(li, focusAction) {
  li.querySelector(".popover").replaceChildren();
  const trigger = li.querySelector('[data-action="react"]');
  if (trigger) trigger.setAttribute("aria-expanded", "false");
  const back = focusAction && li.querySelector(`[data-action="${focusAction}"]`);
  if (back) back.focus();
}

function confirmDelete(li) {
  const id = `confirm-${messageOf(li).id}`;
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "delete-error" });
  const remove = h("button", { type: "button", class: "small danger", "data-testid": "delete-confirm",
    onclick: () => deleteMessage(li, remove, error) }, "Delete");
  const keep = h("button", { type: "button", class: "ghost small", "data-testid": "delete-cancel",
    onclick: () => closePopover(li, "delete") }, "Cancel");
  li.querySelector(".popover").replaceChildren(h("div", {
    class: "confirm", role: "alertdialog", "aria-labelledby": id, "data-testid": "delete-confirmation", dataset: { kind: "delete" },
  }, h("p", { id }, "Delete this message for everyone?"), remove, keep, error));
  keep.focus();
}

async function deleteMessage(li, button, error) {
  button.disabled = true;
  try {
    await change(messageOf(li).id, Q.deleteMessage, {}, "deleteMessage"); // the tombstone: "Message deleted"
    li.querySelector(".popover").replaceChildren();
    li.focus();
  } catch (failure) {
    button.disabled = false;
    error.textContent = describeError(failure);
  }
}

// ---- reactions

function openPicker(li, trigger) {
  if (li.querySelector(".picker")) {
    closePopover(li, "react");
    return;
  }
  const buttons = EMOJI.map((emoji) => h("button", {
    type: "button", class: "ghost", "data-action": "pick-reaction", "data-testid": "pick-reaction",
    dataset: { emoji }, "aria-label": `React with ${emoji}`,
  }, emoji));
  li.querySelector(".popover").replaceChildren(h("div", {
    class: "picker", role: "group", "aria-label": "Pick a reaction", "data-testid": "reaction-picker", dataset: { kind: "picker" },
  }, buttons));
  trigger.setAttribute("aria-expanded", "true");
  buttons[0].focus();
}

async function toggleReaction(li, emoji) {
  const message = messageOf(li);
  if (!message) return;
  const mine = (message.reactions || []).some((r) => r.emoji === emoji && r.reactedByMe);
  try {
    await change(message.id, mine ? Q.unreact : Q.react, { emoji }, mine ? "unreact" : "react");
  } catch (error) {
    showError(error);
  }
}

// ---- wiring

function onClick(event) {
  const button = event.target.closest("[data-action]");
  const li = button && button.closest("li.message");
  if (!li || !messageOf(li)) return;
  switch (button.dataset.action) {
    case "reply": startReply(li); break;
    case "edit": startEditing(li); break;
    case "delete": confirmDelete(li); break;
    case "react": openPicker(li, button); break;
    case "pick-reaction":
      closePopover(li, "react");
      toggleReaction(li, button.dataset.emoji);
      break;
    case "toggle-reaction": toggleReaction(li, button.dataset.emoji); break;
    case "show-quoted": showQuoted(button); break;
    default: break;
  }
}

function onKey(event) {
  const popover = event.target.closest(".popover");
  if (!popover) return;
  const li = popover.closest("li.message");
  if (event.key === "Escape") {
    event.stopPropagation();
    closePopover(li, popover.firstElementChild.dataset.kind === "picker" ? "react" : "delete");
  } else if ((event.key === "ArrowRight" || event.key === "ArrowLeft") && event.target.dataset.action === "pick-reaction") {
    const buttons = [...popover.querySelectorAll("button")];
    const at = buttons.indexOf(event.target) + (event.key === "ArrowRight" ? 1 : -1);
    buttons[(at + buttons.length) % buttons.length].focus();
    event.preventDefault();
  }
}

export function wireLifecycle() {
  $("messages").addEventListener("click", onClick);
  $("messages").addEventListener("keydown", onKey);
  $("compose-mode-cancel").addEventListener("click", () => {
    if (state.editing) cancelEditing();
    state.replyTo = null;
    renderModeBar();
    input().focus();
  });
}
