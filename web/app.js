// Chattergram web client: a single page on the public GraphQL API (see gql.js for the wire).
// No framework, no build step: the DOM in index.html, updated by small ES modules, one per
// concern; this entry wires the page's events to them and boots.
//
// Module graph (imports point one way, no cycles; most modules also import the leaves
// state.js, dom.js, documents.js, format.js and api.js, which import only gql.js and state.js):
//   app.js          -> auth, session, contacts, conversation, groups, messages, composer, recording, search,
//                      notifications, mute
//   auth.js         -> session
//   session.js      -> live, search, conversation, recording, contacts, notifications
//   notifications.js -> conversation
//   live.js         -> groups, conversation, contacts, messages, lifecycle
//   lifecycle.js    -> composer, composing, messages, bubble (reply, edit, delete, react)
//   search.js       -> conversation, contacts
//   groups.js       -> conversation, contacts
//   conversation.js -> recording, composer, composing, contacts, messages, mute, safety
//   mute.js         -> contacts
//   recording.js    -> composer
//   composer.js     -> messages, contacts, composing, bubble
//   composing.js    -> bubble (the composer's reply / edit bar)
//   messages.js     -> bubble, safety
//   contacts.js, bubble.js, safety.js -> leaves only
// Three calls go up the graph, as handlers app.js passes in: an UNAUTHENTICATED answer logs
// out (api.js), a row of the list opens its conversation (contacts.js), Retry resends (messages.js).

import { onUnauthenticated } from "./api.js";
import { onLogin, onSignup } from "./auth.js";
import { deliver, onComposerInput, sendText } from "./composer.js";
import { loadPeople, onContactChosen, rowKey } from "./contacts.js";
import { closeConversation, loadOlder, markRead, maybeLoadOlder, openConversation } from "./conversation.js";
import { $ } from "./dom.js";
import { wireGroups } from "./groups.js";
import { onComposerKey, wireLifecycle } from "./lifecycle.js";
import { onRetrySend, scroller } from "./messages.js";
import { onMuteChosen } from "./mute.js";
import { wireNotifications } from "./notifications.js";
import { cancelRecording, startRecording, stopRecording } from "./recording.js";
import { clearSearch, onSearchInput, runSearch } from "./search.js";
import { logout, restoreSession } from "./session.js";
import { state } from "./state.js";

function wire() {
  $("signup-form").addEventListener("submit", onSignup);
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => logout());
  $("more-people").addEventListener("click", () => loadPeople());
  $("back").addEventListener("click", () => {
    const key = state.open && rowKey(state.open);
    closeConversation();
    const li = key && state.contactEls.get(key);
    if (li) li.firstChild.focus();
  });

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("search-input").value.trim();
    if (query) runSearch(query);
  });
  $("search-input").addEventListener("input", onSearchInput);
  $("search-scope").addEventListener("change", () => {
    const query = $("search-input").value.trim();
    if (query) runSearch(query);
  });
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
    if (onComposerKey(event)) return;
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

  wireGroups();
  wireLifecycle();
  wireNotifications();
  $("mute-select").addEventListener("change", onMuteChosen);

  const scrollEl = scroller();
  scrollEl.addEventListener("scroll", maybeLoadOlder, { passive: true });
  $("load-older").addEventListener("click", () => loadOlder());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.open) markRead();
  });
}

function boot() {
  onUnauthenticated(logout);
  onContactChosen(openConversation);
  onRetrySend(deliver);
  wire();
  restoreSession();
}

boot();
