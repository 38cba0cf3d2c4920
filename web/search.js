// Search as you type: people and message hits; snippets become text nodes and <mark>s. A
// voice hit lists its spoken matches and opens its message playing from the first of them.

import { api, describeError } from "./api.js";
import { rememberUser } from "./contacts.js";
import { isOpen, openConversation } from "./conversation.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { shortTime } from "./format.js";
import { me, state } from "./state.js";
import { playFrom, wordHitNodes } from "./word_hits.js";

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

/** Open the hit's conversation at its message; a spoken match also plays it from that word. */
async function openMessageHit(message, matches) {
  await openConversation({ conversationId: message.conversationId }, { focusMessageId: message.id });
  if (matches.length && isOpen(message.conversationId)) playFrom(state.open.elements.get(message.id), matches[0].start);
}

export function clearSearch() {
  clearTimeout(state.searchTimer);
  state.searchSeq += 1;
  $("search-input").value = "";
  $("search-panel").hidden = true;
  $("contacts-panel").hidden = false;
  $("search-results").replaceChildren();
}

export function onSearchInput() {
  clearTimeout(state.searchTimer);
  const query = $("search-input").value.trim();
  if (!query) {
    clearSearch();
    return;
  }
  state.searchTimer = setTimeout(() => runSearch(query), 250);
}

export async function runSearch(query) {
  const seq = ++state.searchSeq;
  $("search-panel").hidden = false;
  $("contacts-panel").hidden = true;
  $("search-summary").textContent = "Searching…";
  try {
    // "Only in this conversation": its id (a DIRECT conversation not created yet has no messages).
    const scoped = $("search-scope").checked && state.open && state.open.conversationId;
    const { search } = await api(Q.search, { query, conversationId: scoped || null });
    if (seq !== state.searchSeq) return;
    const items = [];
    for (const hit of search.hits) {
      if (hit.__typename === "UserHit") {
        const user = hit.user;
        if (me() && user.id === me().id) continue;
        rememberUser(user);
        items.push(h("li", {}, h("button", {
          type: "button", class: "result", "data-testid": "search-result", dataset: { kind: "user", userId: user.id },
          onclick: () => openConversation({ partnerId: user.id }),
        }, h("span", { class: "dot", "aria-hidden": "true", dataset: { online: String(user.online) } }),
        h("span", { class: "result-title" }, user.username),
        h("span", { class: "muted small" }, user.online ? "online" : "person"))));
      } else if (hit.__typename === "MessageHit") {
        const message = hit.message;
        rememberUser(message.sender);
        rememberUser(message.receiver);
        const record = state.conversations.get(message.conversationId);
        const mine = message.senderId === me().id;
        let from;
        if (message.receiverId) {
          const partner = mine ? message.receiver : message.sender;
          from = mine ? `You → ${partner.username}` : partner.username;
        } else {
          const sender = mine ? "You" : message.sender.username;
          from = record && record.title ? `${sender} in ${record.title}` : sender;
        }
        items.push(h("li", {}, h("button", {
          type: "button", class: "result", "data-testid": "search-result",
          dataset: { kind: "message", messageId: message.id, conversationId: message.conversationId },
          onclick: () => openMessageHit(message, hit.matches || []),
        }, h("span", { class: "result-head" },
          h("span", { class: "result-title" }, from,
            message.kind === "VOICE" ? h("span", { class: "muted small" }, " · voice") : null),
          h("time", { class: "muted small", datetime: message.sentAt }, shortTime(message.sentAt))),
        h("span", { class: "snippet" }, snippetNodes(hit.snippet)),
        wordHitNodes(hit.matches))));
      }
    }
    $("search-results").replaceChildren(...items);
    $("search-summary").textContent = items.length ? `${search.total} found` : "Nothing found.";
  } catch (error) {
    if (seq === state.searchSeq) $("search-summary").textContent = describeError(error);
  }
}
