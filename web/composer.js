// Writing and sending: the text box, typing notices, optimistic sends (idempotent by clientId, retryable).

import { api, describeError } from "./api.js";
import { asQuote } from "./bubble.js";
import { takeReply } from "./composing.js";
import { noteMessage, renderContacts } from "./contacts.js";
import { Q } from "./documents.js";
import { $ } from "./dom.js";
import { upload } from "./gql.js";
import { fillMessage, isNearBottom, renderMessage, scrollToBottom, updateHistoryTop } from "./messages.js";
import { me, state, token } from "./state.js";

function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function addLocalMessage(local) {
  const open = state.open;
  const li = renderMessage(local.message);
  local.li = li;
  fillMessage(li, local.message, local);
  open.pending.set(local.message.clientId, local);
  $("messages").append(li);
  updateHistoryTop();
  scrollToBottom();
}

export async function deliver(local) {
  const open = local.open;
  local.state = "sending";
  local.phase = local.kind === "VOICE" && !local.audioId ? " · Uploading…" : " · Sending…";
  fillMessage(local.li, local.message, local);
  try {
    if (local.kind === "VOICE" && !local.audioId) {
      const data = await upload(Q.upload, "file", local.blob, local.filename, token());
      local.audioId = data.uploadAudio.id;
      local.phase = " · Sending…";
      fillMessage(local.li, local.message, local);
    }
    // The first message to someone creates the DIRECT conversation: from then on, its id.
    const to = open.conversationId ? { conversationId: open.conversationId } : { receiverId: local.message.receiverId };
    const input = { ...to, clientId: local.message.clientId };
    if (local.message.replyTo) input.replyToId = local.message.replyTo.id;
    if (local.kind === "VOICE") input.audioId = local.audioId;
    else input.text = local.message.text;
    const { sendMessage: message } = await api(Q.send, { input });
    local.state = "sent";
    const record = noteMessage(message);
    if (!open.conversationId) open.conversationId = message.conversationId;
    if (record) renderContacts();
    if (state.open === open) {
      open.pending.delete(message.clientId);
      if (!open.elements.has(message.id)) open.elements.set(message.id, local.li);
      fillMessage(local.li, message);
    }
  } catch (error) {
    if (local.li.dataset.id) return; // its CREATED event already arrived: it was sent
    local.state = "failed";
    local.error = describeError(error);
    if (state.open === open) {
      const stick = isNearBottom();
      fillMessage(local.li, local.message, local);
      if (stick) scrollToBottom();
    }
  }
}

export function sendText() {
  const input = $("message-input");
  const text = input.value.trim();
  if (!text || !state.open) return;
  input.value = "";
  autoGrow();
  stopTyping();
  $("composer-error").textContent = "";
  const replyTo = takeReply();
  const local = {
    kind: "TEXT",
    open: state.open,
    state: "sending",
    message: {
      id: null, clientId: randomId(), kind: "TEXT", senderId: me().id, receiverId: state.open.partner && state.open.partner.id, sender: me(),
      text, sentAt: new Date().toISOString(), replyTo: replyTo && asQuote(replyTo), reactions: [],
    },
  };
  addLocalMessage(local);
  deliver(local);
}

export function sendVoice(blob, mimeType, seconds) {
  if (!state.open) return;
  const blobUrl = URL.createObjectURL(blob);
  state.open.blobUrls.push(blobUrl);
  const replyTo = takeReply();
  const local = {
    kind: "VOICE",
    open: state.open,
    state: "sending",
    blob,
    blobUrl,
    seconds,
    filename: mimeType.includes("ogg") ? "voice.ogg" : mimeType.includes("mp4") ? "voice.m4a" : "voice.webm",
    message: {
      id: null, clientId: randomId(), kind: "VOICE", senderId: me().id, receiverId: state.open.partner && state.open.partner.id, sender: me(),
      text: "", sentAt: new Date().toISOString(), transcriptionStatus: "PENDING", audio: null,
      replyTo: replyTo && asQuote(replyTo), reactions: [],
    },
  };
  addLocalMessage(local);
  deliver(local);
}

// conversation.js exports where(), but imports this module: the same rule, here.
function whereOpen() {
  const open = state.open;
  return open.conversationId ? { conversationId: open.conversationId, partnerId: null }
    : { conversationId: null, partnerId: open.partner.id };
}

// Typing notices: at most one "started" per 2 s while typing, "stopped" on send or clear.
export function onComposerInput() {
  autoGrow();
  if (!state.open || state.editing) return; // an edit is no news to the others until saved
  const text = $("message-input").value.trim();
  if (!text) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (now - state.typingSent > 2000) {
    state.typingSent = now;
    api(Q.setTyping, { ...whereOpen(), typing: true }).catch(() => {});
  }
}

export function stopTyping() {
  if (state.typingSent && state.open) {
    api(Q.setTyping, { ...whereOpen(), typing: false }).catch(() => {});
  }
  state.typingSent = 0;
}

export function autoGrow() {
  const input = $("message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}
