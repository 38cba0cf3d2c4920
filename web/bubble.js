// The parts of a bubble around its text or voice: the quoted message of a reply, the
// reactions, and the actions (reply, react, edit, delete) that lifecycle.js carries out.

import { h } from "./dom.js";
import { me } from "./state.js";

export const EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

/** What a quote shows of a message: its text, or what stands in for it. */
export function quoteText(quoted) {
  if (quoted.deletedAt) return "Message deleted";
  if (quoted.kind === "VOICE" && !quoted.text) return "Voice message";
  return quoted.text;
}

export function quoteSender(quoted) {
  if (quoted.senderId === me().id) return "You";
  return quoted.sender ? quoted.sender.username : "";
}

/** The fields of a message a quote needs, as the API's `replyTo` gives them. */
export function asQuote(message) {
  const { id, kind, senderId, text, deletedAt, sender } = message;
  return { id, kind, senderId, text, deletedAt: deletedAt || null, sender: sender && { id: sender.id, username: sender.username } };
}

/** The quoted message at the top of a reply's bubble: a button that shows the original. */
export function renderQuote(quoted) {
  if (!quoted) return null;
  const sender = quoteSender(quoted);
  const text = quoteText(quoted);
  return h("button", {
    type: "button",
    class: "quote",
    "data-testid": "message-quote",
    "data-action": "show-quoted",
    dataset: { quotedId: quoted.id, deleted: String(Boolean(quoted.deletedAt)) },
    "aria-label": `In reply to ${sender}: ${text}. Show that message.`,
  }, h("span", { class: "quote-sender" }, sender), h("span", { class: "quote-text", "data-testid": "quote-text" }, text));
}

/** One chip per emoji with its count; mine are pressed, and a click takes mine back or adds it. */
export function renderReactions(message) {
  const reactions = (!message.deletedAt && message.reactions) || [];
  return reactions.map((r) => h("button", {
    type: "button",
    class: "reaction",
    "data-testid": "reaction",
    "data-action": "toggle-reaction",
    dataset: { emoji: r.emoji },
    "aria-pressed": String(Boolean(r.reactedByMe)),
    "aria-label": `${r.emoji} ${r.count}${r.reactedByMe ? ", yours: remove it" : ": add yours"}`,
  }, `${r.emoji} `, h("span", { class: "count", "data-testid": "reaction-count" }, String(r.count))));
}

function action(name, label, extra = {}) {
  return h("button", { type: "button", class: "ghost small", "data-action": name, "data-testid": `action-${name}`, ...extra }, label);
}

/** Reply and react for any sent message; edit (typed text) and delete for mine. None on a tombstone. */
export function renderActions(message) {
  if (!message.id || message.deletedAt) return [];
  const mine = message.senderId === me().id;
  return [
    action("reply", "Reply"),
    action("react", "React", { "aria-haspopup": "true", "aria-expanded": "false" }),
    mine && message.kind === "TEXT" && action("edit", "Edit"),
    mine && action("delete", "Delete"),
  ].filter(Boolean);
}
