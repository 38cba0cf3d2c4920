// Muting the open conversation (no push notifications from it) for a while or until unmuted;
// the list marks muted conversations (contacts.js). A mute with an end ends by itself.

import { api, describeError } from "./api.js";
import { isMuted, renderContacts } from "./contacts.js";
import { Q } from "./documents.js";
import { $ } from "./dom.js";
import { shortTime } from "./format.js";
import { state } from "./state.js";

const timers = new Map(); // conversation id -> timer that redraws when its mute ends

function openRecord() {
  const open = state.open;
  return (open && open.conversationId && state.conversations.get(open.conversationId)) || null;
}

/** The header's choice, for the open conversation (hidden until the conversation exists). */
export function renderMuteControl() {
  const record = openRecord();
  $("mute-label").hidden = !record;
  if (!record) return;
  const select = $("mute-select");
  const until = select.querySelector('option[value="until"]');
  until.hidden = true;
  if (!isMuted(record)) select.value = "";
  else if (!record.mutedUntil) select.value = "forever";
  else {
    until.textContent = `Muted until ${shortTime(record.mutedUntil)}`;
    until.hidden = false;
    select.value = "until";
  }
}

/** Redraw when a mute ends by itself. */
export function watchMute(record) {
  clearTimeout(timers.get(record.id));
  if (!isMuted(record) || !record.mutedUntil) return;
  const left = Date.parse(record.mutedUntil) - Date.now() + 50;
  timers.set(record.id, setTimeout(() => {
    renderContacts();
    renderMuteControl();
  }, Math.min(left, 2 ** 31 - 1)));
}

export async function onMuteChosen() {
  const record = openRecord();
  if (!record) return;
  const choice = $("mute-select").value;
  try {
    const result = choice === ""
      ? (await api(Q.unmute, { id: record.id })).unmuteConversation
      : (await api(Q.mute, {
        id: record.id,
        until: choice === "forever" ? null : new Date(Date.now() + Number(choice) * 1000).toISOString(),
      })).muteConversation;
    record.muted = result.muted;
    record.mutedUntil = result.mutedUntil;
    watchMute(record);
  } catch (error) {
    $("composer-error").textContent = describeError(error);
  }
  renderMuteControl();
  renderContacts();
}
