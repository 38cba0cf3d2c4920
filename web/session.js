// The session: kept for the tab, resumed on load, the live chat started (socket, subscriptions) and ended.

import { loadContacts, loadPeople } from "./contacts.js";
import { closeConversation, refreshOpenConversation } from "./conversation.js";
import { Q } from "./documents.js";
import { $ } from "./dom.js";
import { ApiError, Socket, request } from "./gql.js";
import { onConversationEvent, onMessageEvent, onPresence } from "./live.js";
import { cancelRecording } from "./recording.js";
import { dropPushSubscription, openLinkedConversation, syncNotifications } from "./notifications.js";
import { clearSearch } from "./search.js";
import { me, state, token } from "./state.js";

const SESSION_KEY = "chattergram.session";

export function saveSession(payload) {
  state.session = { token: payload.token, expiresAt: payload.expiresAt, user: payload.user };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
}

function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (session && session.token && session.user && new Date(session.expiresAt) > new Date()) return session;
  } catch {
    /* ignore a damaged entry */
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

function showAuth(notice) {
  $("boot").hidden = true;
  $("chat-screen").hidden = true;
  $("auth-screen").hidden = false;
  $("auth-notice").hidden = !notice;
  $("auth-notice").textContent = notice || "";
  document.title = "Chattergram";
  $("login-login").focus();
}

export function logout(notice) {
  if (state.session) dropPushSubscription(token());
  cancelRecording();
  closeConversation();
  for (const stop of state.unsubscribe) stop();
  state.unsubscribe = [];
  if (state.socket) state.socket.stop();
  state.socket = null;
  clearTimeout(state.expiryTimer);
  state.session = null;
  sessionStorage.removeItem(SESSION_KEY);
  state.users.clear();
  state.conversations.clear();
  state.directs.clear();
  state.contactEls.clear();
  state.people = { after: null, hasMore: false, loading: false };
  $("contacts").replaceChildren();
  $("new-group-form").hidden = true;
  $("new-group").setAttribute("aria-expanded", "false");
  $("conversation-notice").textContent = "";
  clearSearch();
  showAuth(typeof notice === "string" ? notice : "");
}

function setConnection(stateName) {
  const el = $("connection");
  el.dataset.state = stateName;
  el.textContent = { connecting: "Connecting…", open: "Live", closed: "Offline, reconnecting…" }[stateName] || stateName;
}

export function startChat() {
  const user = me();
  $("boot").hidden = true;
  $("auth-screen").hidden = true;
  $("chat-screen").hidden = false;
  $("me-name").textContent = user.username;
  clearTimeout(state.expiryTimer);
  const left = new Date(state.session.expiresAt).getTime() - Date.now();
  state.expiryTimer = setTimeout(() => logout("Your session has ended. Please log in again."), Math.min(left, 2 ** 31 - 1));

  const socket = new Socket({
    token: token(),
    onStatus: setConnection,
    onAuthFailure: () => logout("Your session has ended. Please log in again."),
    onReconnected: async () => {
      await loadContacts();
      const open = state.open;
      // Removed from the open group while disconnected: its events never came.
      if (open && open.conversationId && !state.conversations.has(open.conversationId)) closeConversation();
      else if (open) refreshOpenConversation();
    },
  });
  state.socket = socket;
  setConnection("connecting");
  const sink = (next) => ({ next, error: (errors) => console.warn("subscription error", errors) });
  state.unsubscribe = [
    socket.subscribe(Q.messageEvents, {}, sink((data) => onMessageEvent(data.messageEvents))),
    socket.subscribe(Q.presence, {}, sink((data) => onPresence(data.presence))),
    socket.subscribe(Q.conversationEvents, {}, sink((data) => onConversationEvent(data.conversationEvents))),
  ];
  loadContacts();
  loadPeople(true);
  syncNotifications().catch((error) => console.warn("notifications", error));
  openLinkedConversation();
  if (!matchMedia("(pointer: coarse)").matches) $("search-input").focus();
}

/** On load: resume the tab's session if the server still knows it, else show the log-in screen. */
export async function restoreSession() {
  const session = loadSession();
  if (!session) {
    showAuth();
    return;
  }
  state.session = session;
  try {
    const { me: user } = await request(Q.me, {}, session.token);
    state.session.user = user;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  } catch (error) {
    if (error instanceof ApiError) {
      state.session = null;
      sessionStorage.removeItem(SESSION_KEY);
      showAuth("Your session has ended. Please log in again.");
      return;
    }
    // Offline: carry on with the stored profile; the socket reconnects when it can.
  }
  startChat();
}
