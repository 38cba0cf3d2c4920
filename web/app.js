// Chattergram web client: a single page on the public GraphQL API (see gql.js for the wire).
// No framework: the DOM in index.html, updated by the small functions below.

import { ApiError, NetworkError, Socket, request, upload } from "./gql.js";

// ---------------------------------------------------------------------------------------
// GraphQL documents

const USER_FIELDS = "id username online lastSeenAt";
const MESSAGE_FIELDS = `id clientId kind senderId receiverId text sentAt transcriptionStatus
  audio { id url mimeType durationSeconds } transcript { text }`;

const Q = {
  register: `mutation Register($input: RegisterInput!) {
    register(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  login: `mutation Login($input: LoginInput!) {
    login(input: $input) { token expiresAt user { ${USER_FIELDS} } } }`,
  me: `query Me { me { ${USER_FIELDS} } }`,
  contacts: `query Contacts {
    conversations(first: 100) { edges { node { unreadCount partnerLastReadAt
      lastMessage { id sentAt } partner { ${USER_FIELDS} } } } }
    online: users(onlineOnly: true, first: 200) { edges { node { ${USER_FIELDS} } } } }`,
  people: `query People($after: String) {
    users(first: 100, after: $after) { edges { node { ${USER_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
  history: `query History($partnerId: ID!, $last: Int, $before: String) {
    history(partnerId: $partnerId, last: $last, before: $before) {
      edges { node { ${MESSAGE_FIELDS} } } pageInfo { hasPreviousPage startCursor } } }`,
  message: `query Message($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`,
  send: `mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { ${MESSAGE_FIELDS} } }`,
  upload: `mutation UploadAudio($file: Upload!) { uploadAudio(file: $file) { id url mimeType durationSeconds } }`,
  retryTranscription: `mutation RetryTranscription($id: ID!) { retryTranscription(messageId: $id) { ${MESSAGE_FIELDS} } }`,
  markRead: `mutation MarkRead($partnerId: ID!, $upTo: ID!) { markRead(partnerId: $partnerId, upTo: $upTo) { unreadCount } }`,
  setTyping: `mutation SetTyping($partnerId: ID!, $typing: Boolean!) { setTyping(partnerId: $partnerId, typing: $typing) }`,
  search: `query Search($query: String!) { search(query: $query, first: 20) { total hits {
    __typename
    ... on UserHit { user { ${USER_FIELDS} } }
    ... on MessageHit { snippet message { id kind senderId receiverId sentAt
      sender { ${USER_FIELDS} } receiver { ${USER_FIELDS} } } } } } }`,
  messageEvents: `subscription MessageEvents { messageEvents { type message { ${MESSAGE_FIELDS}
    sender { ${USER_FIELDS} } receiver { ${USER_FIELDS} } } } }`,
  presence: `subscription Presence { presence { online at user { ${USER_FIELDS} } } }`,
  conversationEvents: `subscription ConversationEvents { conversationEvents { type partnerId at upTo } }`,
};

const PAGE_SIZE = 30;
const MAX_PAGES_TO_FIND_HIT = 40;
const MAX_RECORDING_SECONDS = 300;
const SESSION_KEY = "chattergram.session";
// Voice messages are listened to later and transcribed: there is no echo to cancel, and the
// speech recogniser does better on the plain signal than on the output of the browser's
// voice processing (measured: automatic gain control and noise suppression both turned
// clear speech into wrong words with Whisper tiny.en).
const AUDIO_CONSTRAINTS = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };

// ---------------------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);

/** Build an element: h("p", {class: "x", dataset: {a: 1}, onclick}, child, "text", …). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function shortTime(iso) {
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dateTimeFormat.format(date);
}

function ago(iso) {
  if (!iso) return "offline";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "last seen just now";
  if (seconds < 3600) return `last seen ${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `last seen ${Math.round(seconds / 3600)} h ago`;
  return `last seen ${dateTimeFormat.format(new Date(iso))}`;
}

function clock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

/** A search snippet (HTML-escaped text with matches in <b>…</b>) as DOM nodes, without innerHTML. */
function snippetNodes(snippet) {
  const nodes = [];
  let bold = false;
  for (const part of snippet.split(/(<\/?b>)/)) {
    if (part === "<b>") bold = true;
    else if (part === "</b>") bold = false;
    else if (part) {
      const text = part.replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (e) => ENTITIES[e]);
      nodes.push(bold ? h("mark", {}, text) : document.createTextNode(text));
    }
  }
  return nodes;
}

function describeError(error) {
  if (error instanceof ApiError) {
    if (error.code === "RATE_LIMITED" && error.extra.retryAfter) {
      return `Too many attempts: try again in ${Math.ceil(error.extra.retryAfter)} s.`;
    }
    return error.message;
  }
  if (error instanceof NetworkError) return "Cannot reach the server. Check your connection.";
  return "Something went wrong.";
}

// ---------------------------------------------------------------------------------------
// State

const state = {
  session: null, // {token, expiresAt, user}
  socket: null,
  unsubscribe: [],
  users: new Map(), // id -> user
  conversations: new Map(), // partnerId -> {lastActivity, unread, partnerLastReadAt}
  contactEls: new Map(), // user id -> <li>
  people: { after: null, hasMore: false, loading: false },
  open: null, // the open conversation (see openConversation)
  recording: null,
  typingSent: 0,
  typingTimer: null,
  searchTimer: null,
  searchSeq: 0,
  expiryTimer: null,
};

const me = () => state.session && state.session.user;
const token = () => state.session && state.session.token;

/** An authenticated request; an UNAUTHENTICATED answer ends the session. */
async function api(query, variables) {
  try {
    return await request(query, variables, token());
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED" && state.session) {
      logout("Your session has ended. Please log in again.");
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// Sign up / log in / log out

function saveSession(payload) {
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

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function fieldError(form, message, field) {
  const box = form.querySelector(".form-error");
  box.textContent = message || "";
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

async function submitAuth(form, mutation, input, key) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const data = await request(mutation, { input });
    saveSession(data[key]);
    form.reset();
    fieldError(form, "");
    startChat();
  } catch (error) {
    fieldError(form, describeError(error));
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

function onSignup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const username = $("signup-username").value.trim();
  const email = $("signup-email").value.trim();
  const password = $("signup-password").value;
  if (!USERNAME.test(username)) return fieldError(form, "Choose a username of 3–32 letters, digits, “_”, “.” or “-”.", $("signup-username"));
  if (!EMAIL.test(email)) return fieldError(form, "Enter a valid email address.", $("signup-email"));
  if (password.length < 8 || password.length > 128) return fieldError(form, "The password needs 8 to 128 characters.", $("signup-password"));
  fieldError(form, "");
  return submitAuth(form, Q.register, { username, email, password }, "register");
}

function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const login = $("login-login").value.trim();
  const password = $("login-password").value;
  if (!login) return fieldError(form, "Enter your username or email.", $("login-login"));
  if (!password) return fieldError(form, "Enter your password.", $("login-password"));
  fieldError(form, "");
  return submitAuth(form, Q.login, { login, password }, "login");
}

function logout(notice) {
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
  state.contactEls.clear();
  state.people = { after: null, hasMore: false, loading: false };
  $("contacts").replaceChildren();
  clearSearch();
  showAuth(typeof notice === "string" ? notice : "");
}

// ---------------------------------------------------------------------------------------
// The chat screen, live events

function setConnection(stateName) {
  const el = $("connection");
  el.dataset.state = stateName;
  el.textContent = { connecting: "Connecting…", open: "Live", closed: "Offline, reconnecting…" }[stateName] || stateName;
}

function startChat() {
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
    onReconnected: () => {
      loadContacts();
      if (state.open) refreshOpenConversation();
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
  if (!matchMedia("(pointer: coarse)").matches) $("search-input").focus();
}

function rememberUser(user) {
  if (!user || (me() && user.id === me().id)) return null;
  const known = state.users.get(user.id);
  const merged = known ? { ...known, ...user } : { ...user };
  state.users.set(user.id, merged);
  return merged;
}

async function loadContacts() {
  const session = state.session;
  try {
    const data = await api(Q.contacts);
    if (state.session !== session) return; // logged out meanwhile
    const online = new Set(data.online.edges.map(({ node }) => node.id));
    if (online.size < 200) {
      // The complete list of who is online: anyone else went offline (e.g. while we were disconnected).
      for (const user of state.users.values()) if (!online.has(user.id)) user.online = false;
    }
    for (const { node } of data.online.edges) rememberUser(node);
    for (const { node } of data.conversations.edges) {
      rememberUser(node.partner);
      state.conversations.set(node.partner.id, {
        lastActivity: node.lastMessage ? new Date(node.lastMessage.sentAt).getTime() : 0,
        unread: node.unreadCount,
        partnerLastReadAt: node.partnerLastReadAt,
      });
    }
    renderContacts();
  } catch (error) {
    console.warn("contacts", error);
  }
}

async function loadPeople(first = false) {
  if (state.people.loading) return;
  const session = state.session;
  state.people.loading = true;
  $("more-people").disabled = true;
  try {
    const data = await api(Q.people, { after: first ? null : state.people.after });
    if (state.session !== session) return;
    for (const { node } of data.users.edges) rememberUser(node);
    state.people.after = data.users.pageInfo.endCursor;
    state.people.hasMore = data.users.pageInfo.hasNextPage;
    renderContacts();
  } catch (error) {
    console.warn("people", error);
  } finally {
    state.people.loading = false;
    $("more-people").disabled = false;
  }
}

function onPresence(event) {
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

function onMessageEvent(event) {
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

function onConversationEvent(event) {
  if (!state.open || state.open.partner.id !== event.partnerId) return;
  if (event.type === "TYPING_STARTED") showTyping();
  else if (event.type === "TYPING_STOPPED") hideTyping();
  else if (event.type === "READ" && event.upTo) markSeen(event.upTo);
}

let typingHideTimer = null;
function showTyping() {
  $("typing").textContent = `${state.open.partner.username} is typing…`;
  clearTimeout(typingHideTimer);
  typingHideTimer = setTimeout(hideTyping, 7000);
}
function hideTyping() {
  clearTimeout(typingHideTimer);
  $("typing").textContent = "";
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.open) markRead();
});

// ---------------------------------------------------------------------------------------
// Contacts

function contactOrder(a, b) {
  const ca = state.conversations.get(a.id);
  const cb = state.conversations.get(b.id);
  const ta = ca ? ca.lastActivity : -1;
  const tb = cb ? cb.lastActivity : -1;
  if (ta !== tb) return tb - ta; // recent conversations first
  if (a.online !== b.online) return a.online ? -1 : 1; // then who is online
  return a.username.localeCompare(b.username);
}

function renderContact(user) {
  let li = state.contactEls.get(user.id);
  if (!li) {
    const button = h("button", {
      type: "button",
      class: "contact",
      "data-testid": "contact",
      onclick: () => openConversation(user.id),
    });
    li = h("li", {}, button);
    state.contactEls.set(user.id, li);
  }
  const button = li.firstChild;
  const conversation = state.conversations.get(user.id);
  const unread = conversation ? conversation.unread : 0;
  button.dataset.username = user.username;
  button.dataset.userId = user.id;
  button.dataset.online = String(Boolean(user.online));
  button.dataset.unread = String(unread);
  button.classList.toggle("has-chat", Boolean(conversation));
  if (state.open && state.open.partner.id === user.id) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  const status = user.online ? "online" : ago(user.lastSeenAt);
  button.replaceChildren(
    h("span", { class: "dot", "aria-hidden": "true" }),
    h("span", { class: "contact-text" },
      h("span", { class: "contact-name" }, user.username),
      h("span", { class: "contact-status" }, status)),
    ...(unread ? [h("span", { class: "badge", "aria-hidden": "true" }, unread > 99 ? "99+" : unread)] : []),
  );
  button.setAttribute("aria-label", `${user.username}, ${status}${unread ? `, ${unread} unread` : ""}`);
  return li;
}

function renderContacts() {
  const list = $("contacts");
  const users = [...state.users.values()].sort(contactOrder);
  const wanted = users.map(renderContact);
  const current = [...list.children];
  const same = current.length === wanted.length && current.every((el, i) => el === wanted[i]);
  if (!same) {
    const focused = document.activeElement;
    wanted.forEach((li, i) => {
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    // Moving an element drops its keyboard focus: give it back.
    if (focused && focused !== document.activeElement && list.contains(focused)) focused.focus({ preventScroll: true });
  }
  $("contacts-empty").hidden = users.length > 0;
  $("more-people").hidden = !state.people.hasMore;
  const unread = [...state.conversations.values()].reduce((n, c) => n + (c.unread || 0), 0);
  document.title = unread ? `(${unread}) Chattergram` : "Chattergram";
}

// ---------------------------------------------------------------------------------------
// Conversation

function renderPartnerHeader() {
  const partner = state.users.get(state.open.partner.id) || state.open.partner;
  state.open.partner = partner;
  $("partner-name").textContent = partner.username;
  $("partner-status").textContent = partner.online ? "online" : ago(partner.lastSeenAt);
  $("partner-dot").dataset.online = String(Boolean(partner.online));
}

function closeConversation() {
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

async function openConversation(partnerId, { focusMessageId = null } = {}) {
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
async function refreshOpenConversation() {
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

function updateHistoryTop() {
  const open = state.open;
  $("load-older").hidden = !open.hasPrevious;
  $("history-start").hidden = open.hasPrevious;
  $("history-start").textContent = open.elements.size || open.pending.size
    ? "This is the beginning of your conversation."
    : `No messages yet. Say hello to ${open.partner.username}!`;
}

const scroller = () => $("messages-scroller");
function isNearBottom() {
  const el = scroller();
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}
function scrollToBottom() {
  const el = scroller();
  el.scrollTop = el.scrollHeight;
}

/** One older page, prepended without moving what the reader sees. */
function loadOlder() {
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

function maybeLoadOlder() {
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

async function markRead() {
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
function markSeen(upToId) {
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

// ---------------------------------------------------------------------------------------
// Messages

/** Insert or update a message of the open conversation (deduplicated by id and clientId). */
function upsertMessage(message, { live = false } = {}) {
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

function renderMessage(message) {
  const mine = message.senderId === me().id;
  const li = h("li", {
    class: `message ${mine ? "mine" : "theirs"}`,
    "data-testid": "message",
    tabindex: "-1",
    dataset: { mine: String(mine), kind: message.kind },
  });
  li.append(h("div", { class: "bubble" }), h("p", { class: "meta" }));
  fillMessage(li, message);
  return li;
}

/** (Re)draw a message element from the message; keeps a playing <audio> untouched. */
function fillMessage(li, message, local = null) {
  // A late answer never takes a finished transcript back to "transcribing…".
  if (li.dataset.status === "DONE" && message.transcriptionStatus === "PENDING" && li.dataset.id === message.id) return;
  const mine = message.senderId === me().id;
  if (message.id) li.dataset.id = message.id;
  if (message.clientId) li.dataset.clientId = message.clientId;
  li.dataset.kind = message.kind;
  li.dataset.sentAt = message.sentAt;
  li.dataset.state = local ? local.state : "sent";
  const bubble = li.querySelector(".bubble");
  const meta = li.querySelector(".meta");

  if (message.kind === "TEXT") {
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
    }
    // Recordings made by MediaRecorder carry no duration: show the one the server measured.
    const seconds = message.audio ? message.audio.durationSeconds : local && local.seconds;
    bubble.querySelector(".duration").textContent = seconds ? clock(Math.round(seconds)) : "";
    const audioId = message.audio ? message.audio.id : "local";
    if (src && (audio.dataset.audioId !== audioId) && (audio.paused || !audio.currentSrc)) {
      audio.dataset.audioId = audioId;
      audio.src = src;
    }
    audio.setAttribute("aria-label", `Voice message from ${mine ? "you" : (state.open ? state.open.partner.username : "")}`);
    const transcript = bubble.querySelector(".transcript");
    if (status === "DONE") {
      transcript.replaceChildren(h("p", { class: "text", "data-testid": "message-text" }, message.text || "(no speech)"));
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

  const time = h("time", { datetime: message.sentAt, title: dateTimeFormat.format(new Date(message.sentAt)) }, shortTime(message.sentAt));
  const parts = [time];
  if (local && local.state === "sending") parts.push(h("span", { class: "sending" }, local.phase || " · Sending…"));
  if (local && local.state === "failed") {
    parts.push(
      h("span", { class: "failed", role: "alert", title: local.error }, " · Not sent",
        h("span", { class: "visually-hidden" }, `: ${local.error}`)),
      h("button", {
        type: "button", class: "ghost small", "data-testid": "retry-send",
        onclick: () => deliver(local),
      }, "Retry"),
    );
  }
  meta.replaceChildren(...parts);
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

// ---------------------------------------------------------------------------------------
// Sending: optimistic, idempotent by clientId, retryable

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

async function deliver(local) {
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
    const input = { receiverId: local.message.receiverId, clientId: local.message.clientId };
    if (local.kind === "VOICE") input.audioId = local.audioId;
    else input.text = local.message.text;
    const { sendMessage: message } = await api(Q.send, { input });
    local.state = "sent";
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

function sendText() {
  const input = $("message-input");
  const text = input.value.trim();
  if (!text || !state.open) return;
  input.value = "";
  autoGrow();
  stopTyping();
  $("composer-error").textContent = "";
  const local = {
    kind: "TEXT",
    open: state.open,
    state: "sending",
    message: {
      id: null, clientId: randomId(), kind: "TEXT", senderId: me().id, receiverId: state.open.partner.id,
      text, sentAt: new Date().toISOString(),
    },
  };
  addLocalMessage(local);
  deliver(local);
}

function sendVoice(blob, mimeType, seconds) {
  if (!state.open) return;
  const blobUrl = URL.createObjectURL(blob);
  state.open.blobUrls.push(blobUrl);
  const local = {
    kind: "VOICE",
    open: state.open,
    state: "sending",
    blob,
    blobUrl,
    seconds,
    filename: mimeType.includes("ogg") ? "voice.ogg" : mimeType.includes("mp4") ? "voice.m4a" : "voice.webm",
    message: {
      id: null, clientId: randomId(), kind: "VOICE", senderId: me().id, receiverId: state.open.partner.id,
      text: "", sentAt: new Date().toISOString(), transcriptionStatus: "PENDING", audio: null,
    },
  };
  addLocalMessage(local);
  deliver(local);
}

// Typing notices: at most one "started" per 2 s while typing, "stopped" on send or clear.
function onComposerInput() {
  autoGrow();
  if (!state.open) return;
  const text = $("message-input").value.trim();
  if (!text) {
    stopTyping();
    return;
  }
  const now = Date.now();
  if (now - state.typingSent > 2000) {
    state.typingSent = now;
    api(Q.setTyping, { partnerId: state.open.partner.id, typing: true }).catch(() => {});
  }
}

function stopTyping() {
  if (state.typingSent && state.open) {
    api(Q.setTyping, { partnerId: state.open.partner.id, typing: false }).catch(() => {});
  }
  state.typingSent = 0;
}

function autoGrow() {
  const input = $("message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

// ---------------------------------------------------------------------------------------
// Voice recording: click to start, click to stop and send; Cancel or Escape discards

function recordingMimeType() {
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"]) {
    if (MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

async function startRecording() {
  const button = $("record-button");
  $("composer-error").textContent = "";
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    $("composer-error").textContent = "Voice recording is not available here (it needs a secure https:// page).";
    return;
  }
  button.disabled = true;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS });
  } catch (error) {
    button.disabled = false;
    $("composer-error").textContent = error && error.name === "NotAllowedError"
      ? "Microphone access was refused." : "No microphone could be opened.";
    return;
  }
  button.disabled = false;
  if (!state.open) {
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  const mimeType = recordingMimeType();
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType, audioBitsPerSecond: 32000 } : {});
  const recording = { recorder, stream, chunks: [], cancelled: false, startedAt: 0, timer: null, open: state.open };
  state.recording = recording;
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data && event.data.size) recording.chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => {
    for (const track of stream.getTracks()) track.stop();
    clearInterval(recording.timer);
    if (state.recording === recording) state.recording = null;
    showRecording(false);
    if (recording.cancelled || state.open !== recording.open) return;
    const type = recorder.mimeType || mimeType || "audio/webm";
    const blob = new Blob(recording.chunks, { type });
    if (!blob.size) {
      $("composer-error").textContent = "Nothing was recorded.";
      return;
    }
    sendVoice(blob, type, (performance.now() - recording.startedAt) / 1000);
  });
  recorder.start(1000);
  recording.startedAt = performance.now();
  showRecording(true);
  $("rec-timer").textContent = "0:00";
  recording.timer = setInterval(() => {
    const seconds = (performance.now() - recording.startedAt) / 1000;
    $("rec-timer").textContent = clock(seconds);
    if (seconds >= MAX_RECORDING_SECONDS) stopRecording();
  }, 250);
}

function stopRecording() {
  const recording = state.recording;
  if (recording && recording.recorder.state !== "inactive") recording.recorder.stop();
}

function cancelRecording() {
  const recording = state.recording;
  if (!recording) return;
  recording.cancelled = true;
  if (recording.recorder.state !== "inactive") recording.recorder.stop();
  else for (const track of recording.stream.getTracks()) track.stop();
  state.recording = null;
  showRecording(false);
}

function showRecording(on) {
  const button = $("record-button");
  button.setAttribute("aria-pressed", String(on));
  button.setAttribute("aria-label", on ? "Stop and send the voice message" : "Record a voice message");
  button.classList.toggle("recording", on);
  $("recording-bar").hidden = !on;
  $("message-input").hidden = on;
  $("send-button").disabled = on;
  if (on) button.focus();
}

// ---------------------------------------------------------------------------------------
// Search

function clearSearch() {
  clearTimeout(state.searchTimer);
  state.searchSeq += 1;
  $("search-input").value = "";
  $("search-panel").hidden = true;
  $("contacts-panel").hidden = false;
  $("search-results").replaceChildren();
}

function onSearchInput() {
  clearTimeout(state.searchTimer);
  const query = $("search-input").value.trim();
  if (!query) {
    clearSearch();
    return;
  }
  state.searchTimer = setTimeout(() => runSearch(query), 250);
}

async function runSearch(query) {
  const seq = ++state.searchSeq;
  $("search-panel").hidden = false;
  $("contacts-panel").hidden = true;
  $("search-summary").textContent = "Searching…";
  try {
    const { search } = await api(Q.search, { query });
    if (seq !== state.searchSeq) return;
    const items = [];
    for (const hit of search.hits) {
      if (hit.__typename === "UserHit") {
        const user = hit.user;
        if (me() && user.id === me().id) continue;
        rememberUser(user);
        items.push(h("li", {}, h("button", {
          type: "button", class: "result", "data-testid": "search-result", dataset: { kind: "user", userId: user.id },
          onclick: () => openConversation(user.id),
        }, h("span", { class: "dot", "aria-hidden": "true", dataset: { online: String(user.online) } }),
        h("span", { class: "result-title" }, user.username),
        h("span", { class: "muted small" }, user.online ? "online" : "person"))));
      } else if (hit.__typename === "MessageHit") {
        const message = hit.message;
        const partner = message.senderId === me().id ? message.receiver : message.sender;
        rememberUser(partner);
        const from = message.senderId === me().id ? `You → ${partner.username}` : partner.username;
        items.push(h("li", {}, h("button", {
          type: "button", class: "result", "data-testid": "search-result",
          dataset: { kind: "message", messageId: message.id, partnerId: partner.id },
          onclick: () => openConversation(partner.id, { focusMessageId: message.id }),
        }, h("span", { class: "result-head" },
          h("span", { class: "result-title" }, from,
            message.kind === "VOICE" ? h("span", { class: "muted small" }, " · voice") : null),
          h("time", { class: "muted small", datetime: message.sentAt }, shortTime(message.sentAt))),
        h("span", { class: "snippet" }, snippetNodes(hit.snippet)))));
      }
    }
    $("search-results").replaceChildren(...items);
    $("search-summary").textContent = items.length ? `${search.total} found` : "Nothing found.";
  } catch (error) {
    if (seq === state.searchSeq) $("search-summary").textContent = describeError(error);
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("signup-form").addEventListener("submit", onSignup);
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => logout());
  $("more-people").addEventListener("click", () => loadPeople());
  $("back").addEventListener("click", () => {
    const partnerId = state.open && state.open.partner.id;
    closeConversation();
    const li = partnerId && state.contactEls.get(partnerId);
    if (li) li.firstChild.focus();
  });

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("search-input").value.trim();
    if (query) runSearch(query);
  });
  $("search-input").addEventListener("input", onSearchInput);
  $("search-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape") clearSearch();
  });

  const composer = $("composer");
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendText();
  });
  const input = $("message-input");
  input.addEventListener("input", onComposerInput);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText();
    }
  });
  $("record-button").addEventListener("click", () => {
    if (state.recording) stopRecording();
    else startRecording();
  });
  $("rec-cancel").addEventListener("click", () => {
    cancelRecording();
    $("record-button").focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.recording) cancelRecording();
  });

  const scrollEl = scroller();
  scrollEl.addEventListener("scroll", maybeLoadOlder, { passive: true });
  $("load-older").addEventListener("click", () => loadOlder());
}

async function boot() {
  wire();
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

boot();
