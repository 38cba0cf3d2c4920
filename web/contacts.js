// The contact list: who is known (conversations, who is online, pages of people), drawn in order.

import { api } from "./api.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { ago } from "./format.js";
import { me, state } from "./state.js";

// Opening a conversation is conversation.js's job (it imports this module): app.js hands it in.
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
      onclick: () => chooseContact(user.id),
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

export function renderContacts() {
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
