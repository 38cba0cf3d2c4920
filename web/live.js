// Live events from the subscriptions: messages created or changed, presence, typing, read
// notices, and changes of a group's members or title.

import { forgetConversation, noteMessage, rememberUser, renderContacts } from "./contacts.js";
import {
  closeConversation, fetchConversation, hideTyping, isOpen, markRead, markSeen, renderPartnerHeader, showTyping,
} from "./conversation.js";
import { $ } from "./dom.js";
import { refreshGroup } from "./groups.js";
import { afterChange } from "./lifecycle.js";
import { refreshQuotesOf, upsertMessage } from "./messages.js";
import { me, state } from "./state.js";

export function onPresence(event) {
  const user = rememberUser({ ...event.user, online: event.online, lastSeenAt: event.online ? event.user.lastSeenAt : event.at });
  if (!user) return;
  renderContacts();
  if (state.open && state.open.kind === "DIRECT" && state.open.partner.id === user.id) renderPartnerHeader();
}

function visible() {
  return document.visibilityState === "visible";
}

export async function onMessageEvent(event) {
  const { message } = event;
  rememberUser(message.sender);
  rememberUser(message.receiver);
  const open = state.open;
  // A DIRECT conversation opened before it existed: this message made it.
  if (open && !open.conversationId && open.kind === "DIRECT" && message.receiverId
      && [message.senderId, message.receiverId].includes(open.partner.id)
      && [message.senderId, message.receiverId].includes(me().id)) {
    open.conversationId = message.conversationId;
  }
  const fromOther = message.senderId !== me().id;
  let record = noteMessage(message);
  if (record) {
    if (event.type === "CREATED" && fromOther && !(isOpen(message.conversationId) && visible())) record.unread += 1;
  } else {
    // A group the page does not know yet (we were just added): its unread count comes with it.
    try {
      record = await fetchConversation(message.conversationId);
    } catch (error) {
      console.warn("conversation", error);
      return;
    }
  }
  renderContacts();
  if (isOpen(message.conversationId)) {
    // A change to a message of an older page not loaded here only updates the replies quoting it.
    if (event.type === "CREATED" || state.open.elements.has(message.id)) upsertMessage(message, { live: true });
    else refreshQuotesOf(message);
    afterChange(message, { live: true }); // deleted elsewhere: a reply to it or an edit of it in the composer ends
    if (event.type === "CREATED" && fromOther) {
      hideTyping(message.senderId);
      if (visible()) markRead();
    }
  }
}

export function onConversationEvent(event) {
  const here = isOpen(event.conversationId)
    || (state.open && state.open.kind === "DIRECT" && event.partnerId && state.open.partner.id === event.partnerId);
  const other = event.userId !== me().id;
  switch (event.type) {
    case "TYPING_STARTED":
      if (here && other) showTyping(event.userId);
      break;
    case "TYPING_STOPPED":
      if (here && other) hideTyping(event.userId);
      break;
    case "READ":
      if (here && other && state.open.kind === "DIRECT" && event.upTo) markSeen(event.upTo);
      break;
    case "MEMBER_REMOVED":
      if (event.userId === me().id) {
        // Removed (or we left): the group goes, and no more of its events reach us.
        const record = state.conversations.get(event.conversationId);
        forgetConversation(event.conversationId);
        if (here) {
          closeConversation();
          $("conversation-notice").textContent =
            `You are no longer a member of ${record && record.title ? `“${record.title}”` : "that group"}.`;
        }
        renderContacts();
      } else {
        refreshGroup(event.conversationId);
      }
      break;
    case "MEMBER_ADDED":
    case "RENAMED":
      refreshGroup(event.conversationId);
      break;
    default:
      break;
  }
}
