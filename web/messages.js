// The open conversation's message list: insert in order, (re)draw text and voice bubbles, scroll.

import { api, describeError } from "./api.js";
import { asQuote, renderActions, renderQuote, renderReactions } from "./bubble.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { clock, dateTimeFormat, shortTime } from "./format.js";
import { reportControl } from "./safety.js";
import { me, state } from "./state.js";
import { mountVoicePlayer, showVoiceMap } from "./voice_player.js";
import { transcriptText } from "./word_hits.js";

// The message each element shows now (lifecycle.js acts on it: reply, edit, react, delete).
const shown = new WeakMap();
export const messageOf = (li) => shown.get(li);

// Resending is composer.js's job (it imports this module): app.js hands it in.
let resend = () => {};
export function onRetrySend(handler) {
  resend = handler;
}

export function updateHistoryTop() {
  const open = state.open;
  $("load-older").hidden = !open.hasPrevious;
  $("history-start").hidden = open.hasPrevious;
  $("history-start").textContent = open.elements.size || open.pending.size
    ? "This is the beginning of your conversation."
    : open.kind === "GROUP"
      ? `No messages yet in ${open.group.title}. Say hello!`
      : `No messages yet. Say hello to ${open.partner.username}!`;
}

export const scroller = () => $("messages-scroller");
export function isNearBottom() {
  const el = scroller();
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}
export function scrollToBottom() {
  const el = scroller();
  el.scrollTop = el.scrollHeight;
}

/** Insert or update a message of the open conversation (deduplicated by id and clientId). */
export function upsertMessage(message, { live = false } = {}) {
  const open = state.open;
  let li = open.elements.get(message.id);
  if (!li && message.clientId && message.senderId === me().id) {
    const pending = open.pending.get(message.clientId);
    if (pending) {
      li = pending.li;
      open.pending.delete(message.clientId);
      open.elements.set(message.id, li);
    }
  }
  if (li) {
    fillMessage(li, message);
    refreshQuotesOf(message);
    return li;
  }
  const stick = live && isNearBottom();
  li = renderMessage(message);
  open.elements.set(message.id, li);
  insertInOrder(li);
  updateHistoryTop();
  if (stick || (live && message.senderId === me().id)) scrollToBottom();
  return li;
}

/** Replies quoting `message` show it as it is now (edited, or deleted). */
export function refreshQuotesOf(message) {
  for (const li of state.open.elements.values()) {
    const shownNow = messageOf(li);
    if (shownNow && shownNow.replyTo && shownNow.replyTo.id === message.id) {
      fillMessage(li, { ...shownNow, replyTo: asQuote(message) });
    }
  }
}

function insertInOrder(li) {
  // Messages arrive in order almost always; a late one goes before any newer one. Local
  // messages still sending (or failed) stay last.
  const list = $("messages");
  const at = new Date(li.dataset.sentAt).getTime();
  let before = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.state === "sent" && new Date(node.dataset.sentAt).getTime() <= at) break;
    before = node;
  }
  list.insertBefore(li, before);
}

export function renderMessage(message) {
  const mine = message.senderId === me().id;
  const li = h("li", {
    class: `message ${mine ? "mine" : "theirs"}`,
    "data-testid": "message",
    tabindex: "-1",
    dataset: { mine: String(mine), kind: message.kind },
  });
  // In a group, every bubble of someone else's names them.
  if (!mine && state.open && state.open.kind === "GROUP") {
    li.append(h("p", { class: "sender", "data-testid": "message-sender" }));
  }
  // The popover slot (reaction picker, delete confirmation) survives redraws of the rest.
  li.append(h("div", { class: "bubble" }), h("div", { class: "reactions", role: "group", "aria-label": "Reactions" }),
    h("div", { class: "footer" }, h("p", { class: "meta" }),
      h("div", { class: "actions", role: "group", "aria-label": "Message actions" })),
    h("div", { class: "popover" }));
  fillMessage(li, message);
  return li;
}

/** (Re)draw a message element from the message; keeps a playing <audio> untouched. */
export function fillMessage(li, message, local = null) {
  // A late answer never takes a finished transcript back to "transcribing…".
  if (!message.deletedAt && li.dataset.status === "DONE" && message.transcriptionStatus === "PENDING"
      && li.dataset.id === message.id) return;
  const focused = li.contains(document.activeElement) && document.activeElement.closest("[data-action]");
  const refocus = focused && { action: focused.dataset.action, emoji: focused.dataset.emoji };
  const mine = message.senderId === me().id;
  if (message.id) li.dataset.id = message.id;
  if (message.clientId) li.dataset.clientId = message.clientId;
  li.dataset.kind = message.kind;
  li.dataset.sentAt = message.sentAt;
  li.dataset.state = local ? local.state : "sent";
  const senderName = message.sender ? message.sender.username : state.open && state.open.partner ? state.open.partner.username : "";
  const sender = li.querySelector(".sender");
  if (sender) sender.textContent = senderName;
  const bubble = li.querySelector(".bubble");
  const meta = li.querySelector(".meta");

  li.dataset.deleted = String(Boolean(message.deletedAt));
  if (message.id && !local) shown.set(li, message);
  if (message.deletedAt) {
    delete li.dataset.status;
    li.querySelector(".popover").replaceChildren();
    bubble.replaceChildren(h("p", { class: "text deleted", "data-testid": "message-text" }, "Message deleted"));
  } else if (message.kind === "TEXT") {
    bubble.replaceChildren(h("p", { class: "text", "data-testid": "message-text" }, message.text));
  } else {
    const status = message.transcriptionStatus || "PENDING";
    li.dataset.status = status;
    let audio = bubble.querySelector("audio");
    const src = message.audio ? message.audio.url : local && local.blobUrl;
    if (!audio) {
      audio = h("audio", { controls: true, preload: "metadata", "data-testid": "message-audio" });
      audio.addEventListener("error", () => refreshAudioUrl(li, audio));
      bubble.replaceChildren(h("div", { class: "player" }, audio, h("span", { class: "duration small" })),
        h("div", { class: "transcript" }));
      mountVoicePlayer(bubble.querySelector(".player"), audio);
    }
    // Recordings made by MediaRecorder carry no duration: show the one the server measured.
    const seconds = message.audio ? message.audio.durationSeconds : local && local.seconds;
    bubble.querySelector(".duration").textContent = seconds ? clock(Math.round(seconds)) : "";
    const audioId = message.audio ? message.audio.id : "local";
    if (src && (audio.dataset.audioId !== audioId) && (audio.paused || !audio.currentSrc)) {
      audio.dataset.audioId = audioId;
      audio.src = src;
    }
    showVoiceMap(audio, message.audio, seconds);
    audio.setAttribute("aria-label", `Voice message from ${mine ? "you" : senderName}`);
    const transcript = bubble.querySelector(".transcript");
    if (status === "DONE") {
      transcript.replaceChildren(transcriptText(message));
    } else if (status === "FAILED") {
      transcript.replaceChildren(
        h("p", { class: "muted small" }, "Transcription failed."),
        h("button", {
          type: "button", class: "ghost small", "data-testid": "retry-transcription",
          onclick: (event) => retryTranscription(li, event.currentTarget),
        }, "Retry transcription"),
      );
    } else {
      transcript.replaceChildren(h("p", { class: "muted small transcribing" }, "transcribing…"));
    }
  }

  const oldQuote = bubble.querySelector(":scope > .quote"); // a voice bubble keeps its player: swap the quote only
  if (oldQuote) oldQuote.remove();
  const quote = !message.deletedAt && renderQuote(message.replyTo);
  if (quote) bubble.prepend(quote);
  li.querySelector(".reactions").replaceChildren(...renderReactions(message));
  li.querySelector(".actions").replaceChildren(...(local ? [] : renderActions(message)));

  const time = h("time", { datetime: message.sentAt, title: dateTimeFormat.format(new Date(message.sentAt)) }, shortTime(message.sentAt));
  const parts = [time];
  if (message.editedAt && !message.deletedAt) {
    parts.push(h("span", { class: "edited", "data-testid": "message-edited", title: dateTimeFormat.format(new Date(message.editedAt)) },
      " · edited"));
  }
  if (!mine && message.id && !local && !message.deletedAt) parts.push(reportControl(message.id));
  if (local && local.state === "sending") parts.push(h("span", { class: "sending" }, local.phase || " · Sending…"));
  if (local && local.state === "failed") {
    parts.push(
      h("span", { class: "failed", role: "alert", title: local.error }, " · Not sent",
        h("span", { class: "visually-hidden" }, `: ${local.error}`)),
      h("button", {
        type: "button", class: "ghost small", "data-testid": "retry-send",
        onclick: () => resend(local),
      }, "Retry"),
    );
  }
  meta.replaceChildren(...parts);
  if (refocus) {
    const same = [...li.querySelectorAll(`[data-action="${refocus.action}"]`)]
      .find((el) => !refocus.emoji || el.dataset.emoji === refocus.emoji);
    if (same) same.focus();
    else li.focus();
  }
}

async function refreshAudioUrl(li, audio) {
  // Signed URLs expire: fetch the message again for a fresh one (once per element).
  if (!li.dataset.id || audio.dataset.refreshed) return;
  audio.dataset.refreshed = "true";
  try {
    const { message } = await api(Q.message, { id: li.dataset.id });
    if (message && message.audio) audio.src = message.audio.url;
  } catch (error) {
    console.warn("audio url", error);
  }
}

async function retryTranscription(li, button) {
  button.disabled = true;
  try {
    const { retryTranscription: message } = await api(Q.retryTranscription, { id: li.dataset.id });
    if (state.open) upsertMessage(message);
  } catch (error) {
    button.disabled = false;
    $("composer-error").textContent = describeError(error);
  }
}
