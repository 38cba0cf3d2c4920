// The composer's modes: replying to a message (quoted above the text box) or editing one of
// mine (its text in the box); the bar above the box says which, with a Cancel button.

import { quoteSender, quoteText } from "./bubble.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

export function renderModeBar() {
  const bar = $("compose-mode");
  const { editing, replyTo } = state;
  bar.hidden = !editing && !replyTo;
  if (editing) {
    bar.dataset.mode = "edit";
    $("compose-mode-label").textContent = "Editing your message";
    $("compose-mode-text").textContent = editing.text;
    $("compose-mode-cancel").setAttribute("aria-label", "Cancel editing");
  } else if (replyTo) {
    bar.dataset.mode = "reply";
    $("compose-mode-label").textContent = `Replying to ${quoteSender(replyTo)}`;
    $("compose-mode-text").textContent = quoteText(replyTo);
    $("compose-mode-cancel").setAttribute("aria-label", "Cancel reply");
  } else {
    delete bar.dataset.mode;
  }
}

/** The message the next send replies to, forgotten as it is taken. */
export function takeReply() {
  const replyTo = state.replyTo;
  state.replyTo = null;
  if (replyTo) renderModeBar();
  return replyTo;
}

/** Leave any mode (the conversation closes, or the page logs out). */
export function resetMode() {
  state.replyTo = null;
  state.editing = null;
  renderModeBar();
}
