// Words of a voice message in time: its transcript as one span per timed word (the word being
// spoken highlighted while it plays), a search hit's spoken matches (“budget” at 0:12), and
// playing a recording from a given second (a hit opens its message playing from the word).

import { h } from "./dom.js";
import { clock } from "./format.js";

const MAX_SHOWN = 3; // matches listed on a hit; the rest are counted
const GAP = 0.4; // seconds: between two words the last one spoken stays highlighted this long
const spoken = new WeakMap(); // <audio> -> its highlighted word span

const bare = (word) => word.trim().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");

/** A voice bubble's transcript: the text as text nodes with a <span> around each timed word
 *  (found in spoken order in the text, so the text reads exactly as the API gave it). */
export function transcriptText(message) {
  const text = message.text || "";
  const p = h("p", { class: "text", "data-testid": "message-text" });
  if (!text) {
    p.append("(no speech)");
    return p;
  }
  const words = (message.transcript && message.transcript.words) || [];
  let at = 0;
  for (const w of words) {
    const word = w.word.trim();
    const found = word ? text.indexOf(word, at) : -1;
    if (found === -1) continue; // the engine's word is not in the text as such: leave it plain
    if (found > at) p.append(text.slice(at, found));
    p.append(h("span", {
      class: "spoken-word", "data-testid": "transcript-word", dataset: { start: w.start, end: w.end },
    }, word));
    at = found + word.length;
  }
  if (at < text.length) p.append(text.slice(at));
  return p;
}

/** Highlight, in `audio`'s bubble, the word being spoken now; none when paused or ended. */
export function highlightSpokenWord(audio) {
  const bubble = audio.closest(".bubble");
  const spans = bubble ? bubble.querySelectorAll(".transcript .spoken-word") : [];
  let current = null;
  if (!audio.paused && !audio.ended) {
    const now = audio.currentTime;
    for (const span of spans) {
      if (Number(span.dataset.start) > now) break;
      current = now < Number(span.dataset.end) + GAP ? span : null;
    }
  }
  const before = spoken.get(audio);
  if (before === current) return;
  if (before) before.removeAttribute("data-speaking");
  if (current) current.dataset.speaking = "true";
  spoken.set(audio, current);
}

/** What a search hit shows of its spoken matches: “word” at m:ss, the first few. */
export function wordHitNodes(matches) {
  if (!matches || !matches.length) return null;
  const shown = matches.slice(0, MAX_SHOWN).flatMap((m, i) => [
    i ? ", " : "",
    h("span", { class: "word-hit", "data-testid": "word-hit", dataset: { start: m.start } },
      `“${bare(m.word) || m.word}” at ${clock(m.start)}`),
  ]);
  const more = matches.length > MAX_SHOWN ? ` and ${matches.length - MAX_SHOWN} more` : "";
  return h("span", { class: "word-hits small", "data-testid": "word-hits" }, "Spoken: ", shown, more);
}

/** Play the voice message shown by `li` from `seconds` (seek first, once the length is known). */
export async function playFrom(li, seconds) {
  const audio = li && li.querySelector("audio");
  if (!audio) return;
  try {
    if (audio.readyState < HTMLMediaElement.HAVE_METADATA) {
      await new Promise((resolve, reject) => {
        audio.addEventListener("loadedmetadata", resolve, { once: true });
        audio.addEventListener("error", () => reject(audio.error), { once: true });
        if (audio.networkState === HTMLMediaElement.NETWORK_EMPTY) audio.load();
      });
    }
    audio.currentTime = seconds;
    await audio.play();
  } catch (error) {
    console.warn("play from word", error); // e.g. the browser refuses autoplay: the player stays usable
  }
}
