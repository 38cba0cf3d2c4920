// The conversation list: DIRECT and GROUP conversations (most recent activity first), then the
// people you have not written to yet (who is online first); unread badges; drawn in order.

import { api } from "./api.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { ago } from "./format.js";
import { me, state } from "./state.js";

// Opening a conversation is conversation.js's job (it imports this module): app.js hands it in.
// It gets a target: {conversationId} or {partnerId} (a DIRECT one, maybe not created yet).
let chooseContact = () => {};
export function onContactChosen(handler) {
  chooseContact = handler;
}

export function rememberUser(user) {
  if (!user || (me() && user.id === me().id)) return null;
  const known = state.users.get(user.id);
  const merged = known ? { ...known, ...user } : { ...user };
  state.users.set(user.id, merged);
  return merged;
}

/** A user by id: known people, then me. */
export function userById(id) {
  if (me() && id === me().id) return me();
  return state.users.get(id) || null;
}

/** Store a Conversation as the API returns it; returns the record the page keeps. */
export function rememberConversation(node) {
  const known = state.conversations.get(node.id);
  if (node.partner) rememberUser(node.partner);
  for (const member of node.members || []) rememberUser(member.user);
  const mine = (node.members || []).find((m) => me() && m.user.id === me().id);
  const activity = node.lastMessage ? new Date(node.lastMessage.sentAt).getTime()
    : mine ? new Date(mine.joinedAt).getTime() : 0;
  const record = {
    ...known,
    id: node.id,
    kind: node.kind,
    title: node.title,
    partner: node.partner || null,
    memberCount: node.memberCount,
    members: node.members || (known ? known.members : []),
    lastActivity: Math.max(activity, known ? known.lastActivity : 0),
    // The open conversation's count is the page's (markRead zeroes it before the server answers).
    unread: known && state.open && state.open.conversationId === node.id ? known.unread : node.unreadCount,
    partnerLastReadAt: node.partnerLastReadAt,
    muted: node.muted ?? (known ? known.muted : false),
    mutedUntil: node.mutedUntil ?? null,
  };
  state.conversations.set(node.id, record);
  if (record.kind === "DIRECT" && record.partner) state.directs.set(record.partner.id, node.id);
  return record;
}

/** A message's conversation record, made on the spot for a DIRECT one; null for an unknown group. */
export function noteMessage(message) {
  let record = state.conversations.get(message.conversationId);
  if (!record && message.receiverId) {
    const partnerId = message.senderId === me().id ? message.receiverId : message.senderId;
    const partner = userById(partnerId) || (message.senderId === me().id ? message.receiver : message.sender);
    record = { id: message.conversationId, kind: "DIRECT", title: null, partner, memberCount: 2, members: [],
      lastActivity: 0, unread: 0, partnerLastReadAt: null };
    state.conversations.set(record.id, record);
    state.directs.set(partnerId, record.id);
  }
  if (record) record.lastActivity = Math.max(record.lastActivity, new Date(message.sentAt).getTime());
  return record || null;
}

export function forgetConversation(id) {
  const record = state.conversations.get(id);
  if (!record) return;
  state.conversations.delete(id);
  if (record.kind === "DIRECT" && record.partner) state.directs.delete(record.partner.id);
  const li = state.contactEls.get(`c:${id}`);
  if (li) li.remove();
  state.contactEls.delete(`c:${id}`);
}

/** The record for {conversationId} or {partnerId}, if the page knows one. */
export function conversationFor(target) {
  const id = target.conversationId || state.directs.get(target.partnerId);
  return (id && state.conversations.get(id)) || null;
}

/** The list row key of the open conversation (or of a target). */
export function rowKey(target) {
  const record = conversationFor(target);
  if (record && record.kind === "GROUP") return `c:${record.id}`;
  const partnerId = target.partnerId || (record && record.partner && record.partner.id) || (target.partner && target.partner.id);
  return `u:${partnerId}`;
}

export async function loadContacts() {
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
    const listed = new Set(data.conversations.edges.map(({ node }) => node.id));
    if (listed.size < 100) {
      // Groups we were removed from while disconnected.
      for (const [id, record] of [...state.conversations]) {
        if (record.kind === "GROUP" && !listed.has(id)) forgetConversation(id);
      }
    }
    for (const { node } of data.conversations.edges) rememberConversation(node);
    renderContacts();
  } catch (error) {
    console.warn("contacts", error);
  }
}

export async function loadPeople(first = false) {
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

// A row is a group {group} or a person {user} with their DIRECT conversation, if any.
function rows() {
  const list = [];
  for (const record of state.conversations.values()) if (record.kind === "GROUP") list.push({ group: record });
  for (const user of state.users.values()) list.push({ user, direct: conversationFor({ partnerId: user.id }) });
  return list;
}

function activity(row) {
  const record = row.group || row.direct;
  return record ? record.lastActivity : -1;
}

function rowOrder(a, b) {
  const ta = activity(a);
  const tb = activity(b);
  if (ta !== tb) return tb - ta; // recent conversations first
  if (a.user && b.user && a.user.online !== b.user.online) return a.user.online ? -1 : 1; // then who is online
  const name = (row) => (row.group ? row.group.title : row.user.username) || "";
  return name(a).localeCompare(name(b));
}

function isOpenRow(row) {
  const open = state.open;
  if (!open) return false;
  if (row.group) return open.conversationId === row.group.id;
  return open.kind === "DIRECT" && open.partner.id === row.user.id;
}

function rowElement(key, target) {
  let li = state.contactEls.get(key);
  if (!li) {
    const button = h("button", {
      type: "button",
      class: "contact",
      "data-testid": "contact",
      onclick: () => chooseContact(target),
    });
    li = h("li", {}, button);
    state.contactEls.set(key, li);
  }
  return li;
}

/** Muted now: a mute with an end ends by itself (the server says the same once it passed). */
export function isMuted(record) {
  return Boolean(record && record.muted && (!record.mutedUntil || Date.parse(record.mutedUntil) > Date.now()));
}

function muteMark(record) {
  return isMuted(record) ? [h("span", { class: "mute-mark", "aria-hidden": "true" }, "muted")] : [];
}

function badge(unread) {
  return unread ? [h("span", { class: "badge", "aria-hidden": "true" }, unread > 99 ? "99+" : unread)] : [];
}

function renderRow(row) {
  const record = row.group || row.direct;
  const unread = record ? record.unread : 0;
  const li = row.group
    ? rowElement(`c:${row.group.id}`, { conversationId: row.group.id })
    : rowElement(`u:${row.user.id}`, { partnerId: row.user.id });
  const button = li.firstChild;
  button.dataset.kind = row.group ? "GROUP" : record ? "DIRECT" : "PERSON";
  button.dataset.unread = String(unread);
  if (record) button.dataset.conversationId = record.id;
  else delete button.dataset.conversationId;
  button.classList.toggle("has-chat", Boolean(record));
  if (isOpenRow(row)) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  const unreadLabel = (unread ? `, ${unread} unread` : "") + (isMuted(record) ? ", muted" : "");
  button.dataset.muted = String(isMuted(record));
  if (row.group) {
    const { title, memberCount } = row.group;
    button.dataset.title = title;
    const status = `Group · ${memberCount} member${memberCount === 1 ? "" : "s"}`;
    button.replaceChildren(
      h("span", { class: "group-mark", "aria-hidden": "true" }, (title || "#").slice(0, 1).toUpperCase()),
      h("span", { class: "contact-text" },
        h("span", { class: "contact-name" }, title),
        h("span", { class: "contact-status" }, status)),
      ...muteMark(record),
      ...badge(unread),
    );
    button.setAttribute("aria-label", `${title}, group of ${memberCount}${unreadLabel}`);
  } else {
    const user = row.user;
    button.dataset.username = user.username;
    button.dataset.userId = user.id;
    button.dataset.online = String(Boolean(user.online));
    const status = user.online ? "online" : ago(user.lastSeenAt);
    button.replaceChildren(
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("span", { class: "contact-text" },
        h("span", { class: "contact-name" }, user.username),
        h("span", { class: "contact-status" }, status)),
      ...muteMark(record),
      ...badge(unread),
    );
    button.setAttribute("aria-label", `${user.username}, ${status}${unreadLabel}`);
  }
  return li;
}

let muteEndTimer = null;

/** Redraw the list when the next mute with an end ends. */
function redrawAtNextMuteEnd() {
  clearTimeout(muteEndTimer);
  const ends = [...state.conversations.values()].filter((r) => isMuted(r) && r.mutedUntil)
    .map((r) => Date.parse(r.mutedUntil));
  if (ends.length) muteEndTimer = setTimeout(renderContacts, Math.min(Math.min(...ends) - Date.now() + 50, 2 ** 31 - 1));
}

export function renderContacts() {
  redrawAtNextMuteEnd();
  const list = $("contacts");
  const all = rows().sort(rowOrder);
  const wanted = all.map(renderRow);
  const current = [...list.children];
  const same = current.length === wanted.length && current.every((el, i) => el === wanted[i]);
  if (!same) {
    const focused = document.activeElement;
    for (const el of current) if (!wanted.includes(el)) el.remove();
    wanted.forEach((li, i) => {
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    // Moving an element drops its keyboard focus: give it back.
    if (focused && focused !== document.activeElement && list.contains(focused)) focused.focus({ preventScroll: true });
  }
  $("contacts-empty").hidden = all.length > 0;
  $("more-people").hidden = !state.people.hasMore;
  const unread = [...state.conversations.values()].reduce((n, c) => n + (c.unread || 0), 0);
  document.title = unread ? `(${unread}) Chattergram` : "Chattergram";
}
