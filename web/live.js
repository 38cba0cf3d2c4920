// Live events from the subscriptions: messages created or changed, presence, typing and read notices.

import { rememberUser, renderContacts } from "./contacts.js";
import { hideTyping, markRead, markSeen, renderPartnerHeader, showTyping } from "./conversation.js";
import { upsertMessage } from "./messages.js";
import { me, state } from "./state.js";

export function onPresence(event) {
  const user = rememberUser({ ...event.user, online: event.online, lastSeenAt: event.online ? event.user.lastSeenAt : event.at });
  if (!user) return;
  renderContacts();
  if (state.open && state.open.partner.id === user.id) renderPartnerHeader();
}

function partnerOf(message) {
  return message.senderId === me().id ? message.receiverId : message.senderId;
}

function viewing(partnerId) {
  return state.open && state.open.partner.id === partnerId && document.visibilityState === "visible";
}

export function onMessageEvent(event) {
  const { message } = event;
  rememberUser(message.sender);
  rememberUser(message.receiver);
  const partnerId = partnerOf(message);
  const conversation = state.conversations.get(partnerId) || { lastActivity: 0, unread: 0 };
  conversation.lastActivity = Math.max(conversation.lastActivity, new Date(message.sentAt).getTime());
  const fromPartner = message.senderId !== me().id;
  if (event.type === "CREATED" && fromPartner && !viewing(partnerId)) conversation.unread += 1;
  state.conversations.set(partnerId, conversation);
  renderContacts();
  if (state.open && state.open.partner.id === partnerId) {
    upsertMessage(message, { live: true });
    if (event.type === "CREATED" && fromPartner) {
      hideTyping();
      if (viewing(partnerId)) markRead();
    }
  }
}

export function onConversationEvent(event) {
  if (!state.open || state.open.partner.id !== event.partnerId) return;
  if (event.type === "TYPING_STARTED") showTyping();
  else if (event.type === "TYPING_STOPPED") hideTyping();
  else if (event.type === "READ" && event.upTo) markSeen(event.upTo);
}
