// The open conversation: open and close it, its header, older pages, read receipts, “typing…”.

import { api, describeError } from "./api.js";
import { autoGrow, stopTyping } from "./composer.js";
import { resetMode } from "./composing.js";
import { conversationFor, rememberConversation, renderContacts, userById } from "./contacts.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { ago } from "./format.js";
import { isNearBottom, renderMessage, scroller, scrollToBottom, updateHistoryTop, upsertMessage } from "./messages.js";
import { renderMuteControl } from "./mute.js";
import { cancelRecording } from "./recording.js";
import { renderBlockToggle } from "./safety.js";
import { me, state } from "./state.js";

const PAGE_SIZE = 30;
const MAX_PAGES_TO_FIND_HIT = 40;

/** {conversationId, partnerId} for the API: exactly one is set. */
export function where(open = state.open) {
  return open.conversationId
    ? { conversationId: open.conversationId, partnerId: null }
    : { conversationId: null, partnerId: open.partner.id };
}

/** Is this conversation (by id) the open one? */
export function isOpen(conversationId) {
  return Boolean(state.open && conversationId && state.open.conversationId === conversationId);
}

function sameTarget(open, target) {
  if (target.conversationId && open.conversationId === target.conversationId) return true;
  return Boolean(target.partnerId) && open.kind === "DIRECT" && open.partner.id === target.partnerId;
}

export function renderPartnerHeader() {
  const open = state.open;
  renderBlockToggle();
  $("search-scope-label").hidden = !open.conversationId;
  const record = open.conversationId && state.conversations.get(open.conversationId);
  renderMuteControl();
  if (open.kind === "GROUP") {
    if (record) open.group = record;
    const { title, memberCount, members } = open.group;
    $("partner-name").textContent = title;
    const names = members.map((m) => (m.user.id === me().id ? "you" : m.user.username));
    $("partner-status").textContent = `${memberCount} member${memberCount === 1 ? "" : "s"}: ${names.join(", ")}`;
    delete $("partner-dot").dataset.online;
    $("partner-dot").dataset.kind = "GROUP";
    $("group-toggle").hidden = false;
    return;
  }
  const partner = state.users.get(open.partner.id) || open.partner;
  open.partner = partner;
  $("partner-name").textContent = partner.username;
  $("partner-status").textContent = partner.online ? "online" : ago(partner.lastSeenAt);
  $("partner-dot").dataset.online = String(Boolean(partner.online));
  delete $("partner-dot").dataset.kind;
  $("group-toggle").hidden = true;
}

export function closeConversation() {
  if (state.open) {
    for (const url of state.open.blobUrls) URL.revokeObjectURL(url);
    stopTyping();
  }
  cancelRecording();
  hideTyping(); // its timers too, before the conversation goes
  if (state.editing) $("message-input").value = "";
  resetMode();
  state.open = null;
  renderMuteControl();
  $("messages").replaceChildren();
  $("conversation-view").hidden = true;
  $("group-panel").hidden = true;
  $("group-toggle").setAttribute("aria-expanded", "false");
  $("block-toggle").hidden = true;
  $("search-scope-label").hidden = true;
  $("search-scope").checked = false;
  $("no-conversation").hidden = false;
  document.body.classList.remove("conversation-open");
  for (const li of state.contactEls.values()) li.firstChild.removeAttribute("aria-current");
}

/** Fetch a conversation the page does not know yet (a group we were just added to). */
export async function fetchConversation(id) {
  const { conversation } = await api(Q.conversation, { id });
  return rememberConversation(conversation);
}

/** Open {conversationId} or {partnerId} (a DIRECT conversation, created by its first message). */
export async function openConversation(target, { focusMessageId = null } = {}) {
  let record = conversationFor(target);
  if (!record && target.conversationId) {
    try {
      record = await fetchConversation(target.conversationId);
      renderContacts();
    } catch (error) {
      console.warn("conversation", error);
      return;
    }
  }
  const partner = record
    ? record.kind === "DIRECT" && (state.users.get(record.partner.id) || record.partner)
    : state.users.get(target.partnerId);
  if (!record && !partner) return;
  if (!state.open || !sameTarget(state.open, target)) {
    closeConversation();
    $("conversation-notice").textContent = "";
    state.open = {
      conversationId: record ? record.id : null,
      kind: record ? record.kind : "DIRECT",
      partner: partner || null, // DIRECT only
      group: record && record.kind === "GROUP" ? record : null, // GROUP only
      typers: new Map(), // user id -> timer: who is typing
      elements: new Map(), // message id -> <li>
      pending: new Map(), // clientId -> local record
      blobUrls: [],
      startCursor: null,
      hasPrevious: false,
      loadingOlder: null,
      seenUpTo: null,
    };
    $("no-conversation").hidden = true;
    $("conversation-view").hidden = false;
    $("composer-error").textContent = "";
    $("history-start").hidden = true;
    $("load-older").hidden = true;
    $("message-input").value = "";
    autoGrow();
    document.body.classList.add("conversation-open");
    renderPartnerHeader();
    renderContacts();
    const open = state.open;
    try {
      const page = await fetchHistory(open, null);
      if (state.open !== open) return;
      for (const message of page.messages) upsertMessage(message);
      open.startCursor = page.startCursor;
      open.hasPrevious = page.hasPrevious;
      updateHistoryTop();
      scrollToBottom();
      maybeLoadOlder(); // the first page does not fill the screen
      if (record && record.partnerLastReadAt) markSeenUntilTime(record.partnerLastReadAt);
      markRead();
    } catch (error) {
      $("composer-error").textContent = describeError(error);
    }
  }
  if (focusMessageId) await revealMessage(focusMessageId);
  else if (!matchMedia("(pointer: coarse)").matches) $("message-input").focus();
}

async function fetchHistory(open, before) {
  const data = await api(Q.history, { ...where(open), last: PAGE_SIZE, before });
  const { edges, pageInfo } = data.history;
  return { messages: edges.map((e) => e.node), startCursor: pageInfo.startCursor, hasPrevious: pageInfo.hasPreviousPage };
}

/** After a reconnect: fetch the newest page and merge what was missed. */
export async function refreshOpenConversation() {
  const open = state.open;
  try {
    const page = await fetchHistory(open, null);
    if (state.open !== open) return;
    const nearBottom = isNearBottom();
    for (const message of page.messages) upsertMessage(message);
    if (nearBottom) scrollToBottom();
  } catch (error) {
    console.warn("refresh", error);
  }
}

/** One older page, prepended without moving what the reader sees. */
export function loadOlder() {
  const open = state.open;
  if (!open || !open.hasPrevious) return Promise.resolve(false);
  if (open.loadingOlder) return open.loadingOlder;
  $("load-older").disabled = true;
  $("load-older").textContent = "Loading…";
  open.loadingOlder = (async () => {
    try {
      const page = await fetchHistory(open, open.startCursor);
      if (state.open !== open) return false;
      const el = scroller();
      const fromBottom = el.scrollHeight - el.scrollTop;
      const fresh = page.messages.filter((m) => !open.elements.has(m.id));
      const fragment = document.createDocumentFragment();
      for (const message of fresh) {
        const li = renderMessage(message);
        open.elements.set(message.id, li);
        fragment.append(li);
      }
      $("messages").prepend(fragment);
      el.scrollTop = el.scrollHeight - fromBottom;
      open.startCursor = page.startCursor;
      open.hasPrevious = page.hasPrevious && page.messages.length > 0;
      return true;
    } catch (error) {
      $("composer-error").textContent = describeError(error);
      return false;
    } finally {
      open.loadingOlder = null;
      $("load-older").disabled = false;
      $("load-older").textContent = "Load earlier messages";
      if (state.open === open) {
        updateHistoryTop();
        // Still at the top (a short page, or a fast scroller): keep going.
        if (open.hasPrevious && scroller().scrollTop < 150) setTimeout(maybeLoadOlder, 0);
      }
    }
  })();
  return open.loadingOlder;
}

export function maybeLoadOlder() {
  if (state.open && state.open.hasPrevious && !state.open.loadingOlder && scroller().scrollTop < 150) loadOlder();
}

/** Page back until the message is loaded, then bring it into view (search hits). */
async function revealMessage(messageId) {
  const open = state.open;
  for (let pages = 0; !open.elements.has(messageId) && open.hasPrevious && pages < MAX_PAGES_TO_FIND_HIT; pages += 1) {
    if (!(await loadOlder()) || state.open !== open) break;
  }
  const li = open.elements.get(messageId);
  if (!li) return;
  for (const old of $("messages").querySelectorAll("[data-highlighted]")) old.removeAttribute("data-highlighted");
  li.dataset.highlighted = "true";
  li.scrollIntoView({ block: "center" });
  li.focus({ preventScroll: true });
}

export async function markRead() {
  const open = state.open;
  if (!open) return;
  const conversation = open.conversationId && state.conversations.get(open.conversationId);
  const last = [...open.elements.values()].reverse().find((li) => li.dataset.mine !== "true");
  if (!last) return;
  if (conversation) {
    conversation.unread = 0;
    renderContacts();
  }
  if (open.readUpTo === last.dataset.id) return;
  open.readUpTo = last.dataset.id;
  try {
    await api(Q.markRead, { ...where(open), upTo: last.dataset.id });
  } catch (error) {
    open.readUpTo = null;
    console.warn("markRead", error);
  }
}

/** Read receipts: "Seen" under the last of my messages the partner has read. */
export function markSeen(upToId) {
  const items = [...$("messages").children];
  const index = items.findIndex((li) => li.dataset.id === upToId);
  if (index === -1) return;
  const lastMine = items.slice(0, index + 1).reverse().find((li) => li.dataset.mine === "true" && li.dataset.id);
  showSeenOn(lastMine);
}

function markSeenUntilTime(iso) {
  const limit = new Date(iso).getTime();
  const mine = [...$("messages").children].filter(
    (li) => li.dataset.mine === "true" && li.dataset.id && new Date(li.dataset.sentAt).getTime() <= limit,
  );
  showSeenOn(mine[mine.length - 1]);
}

function showSeenOn(li) {
  if (!li) return;
  for (const old of $("messages").querySelectorAll(".seen")) old.remove();
  li.querySelector(".meta").append(h("span", { class: "seen" }, " · Seen"));
}

// "bob is typing…", per member: a start notice lasts 7 s unless refreshed or stopped.
function renderTyping() {
  const open = state.open;
  const names = open ? [...open.typers.keys()].map((id) => (userById(id) || { username: "someone" }).username) : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  $("typing").textContent = text;
}

export function showTyping(userId) {
  const typers = state.open.typers;
  clearTimeout(typers.get(userId));
  typers.set(userId, setTimeout(() => hideTyping(userId), 7000));
  renderTyping();
}

/** Someone stopped typing (or sent); without an id: everyone. */
export function hideTyping(userId = null) {
  const typers = state.open ? state.open.typers : new Map();
  for (const [id, timer] of [...typers]) {
    if (userId === null || id === userId) {
      clearTimeout(timer);
      typers.delete(id);
    }
  }
  renderTyping();
}
