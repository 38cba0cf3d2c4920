// The open conversation: open and close it, its header, older pages, read receipts, “typing…”.

import { api, describeError } from "./api.js";
import { autoGrow, stopTyping } from "./composer.js";
import { renderContacts } from "./contacts.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { ago } from "./format.js";
import { isNearBottom, renderMessage, scroller, scrollToBottom, updateHistoryTop, upsertMessage } from "./messages.js";
import { cancelRecording } from "./recording.js";
import { state } from "./state.js";

const PAGE_SIZE = 30;
const MAX_PAGES_TO_FIND_HIT = 40;

export function renderPartnerHeader() {
  const partner = state.users.get(state.open.partner.id) || state.open.partner;
  state.open.partner = partner;
  $("partner-name").textContent = partner.username;
  $("partner-status").textContent = partner.online ? "online" : ago(partner.lastSeenAt);
  $("partner-dot").dataset.online = String(Boolean(partner.online));
}

export function closeConversation() {
  if (state.open) {
    for (const url of state.open.blobUrls) URL.revokeObjectURL(url);
    stopTyping();
  }
  cancelRecording();
  state.open = null;
  hideTyping();
  $("messages").replaceChildren();
  $("conversation-view").hidden = true;
  $("no-conversation").hidden = false;
  document.body.classList.remove("conversation-open");
  for (const li of state.contactEls.values()) li.firstChild.removeAttribute("aria-current");
}

export async function openConversation(partnerId, { focusMessageId = null } = {}) {
  const partner = state.users.get(partnerId);
  if (!partner) return;
  if (!state.open || state.open.partner.id !== partnerId) {
    closeConversation();
    state.open = {
      partner,
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
      const page = await fetchHistory(partnerId, null);
      if (state.open !== open) return;
      for (const message of page.messages) upsertMessage(message);
      open.startCursor = page.startCursor;
      open.hasPrevious = page.hasPrevious;
      updateHistoryTop();
      scrollToBottom();
      maybeLoadOlder(); // the first page does not fill the screen
      const conversation = state.conversations.get(partnerId);
      if (conversation && conversation.partnerLastReadAt) markSeenUntilTime(conversation.partnerLastReadAt);
      markRead();
    } catch (error) {
      $("composer-error").textContent = describeError(error);
    }
  }
  if (focusMessageId) await revealMessage(focusMessageId);
  else if (!matchMedia("(pointer: coarse)").matches) $("message-input").focus();
}

async function fetchHistory(partnerId, before) {
  const data = await api(Q.history, { partnerId, last: PAGE_SIZE, before });
  const { edges, pageInfo } = data.history;
  return { messages: edges.map((e) => e.node), startCursor: pageInfo.startCursor, hasPrevious: pageInfo.hasPreviousPage };
}

/** After a reconnect: fetch the newest page and merge what was missed. */
export async function refreshOpenConversation() {
  const open = state.open;
  try {
    const page = await fetchHistory(open.partner.id, null);
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
      const page = await fetchHistory(open.partner.id, open.startCursor);
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
  const conversation = state.conversations.get(open.partner.id);
  const last = [...open.elements.values()].reverse().find((li) => li.dataset.mine !== "true");
  if (!last) return;
  if (conversation) {
    conversation.unread = 0;
    renderContacts();
  }
  if (open.readUpTo === last.dataset.id) return;
  open.readUpTo = last.dataset.id;
  try {
    await api(Q.markRead, { partnerId: open.partner.id, upTo: last.dataset.id });
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

let typingHideTimer = null;
export function showTyping() {
  $("typing").textContent = `${state.open.partner.username} is typing…`;
  clearTimeout(typingHideTimer);
  typingHideTimer = setTimeout(hideTyping, 7000);
}
export function hideTyping() {
  clearTimeout(typingHideTimer);
  $("typing").textContent = "";
}
