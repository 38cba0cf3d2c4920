// A voice bubble's tools around its <audio>: the recording's waveform (the played part
// highlighted; click it or use the arrow keys to seek), playback speed 1×/1.5×/2×, and
// "skip silence", which jumps over the gaps between the speech segments found at upload;
// while it plays, the transcript word being spoken is highlighted (word_hits.js).

import { h } from "./dom.js";
import { clock } from "./format.js";
import { highlightSpokenWord } from "./word_hits.js";

const SVG = "http://www.w3.org/2000/svg";
const SPEEDS = [1, 1.5, 2];
const MIN_JUMP = 0.3; // seconds: a shorter gap is not worth a seek
const STEP = 5; // seconds an arrow key moves
const players = new WeakMap(); // <audio> -> its player

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

const speedLabel = (rate) => `${rate}×`;

/** Add the tools after `playerRow` (the row holding `audio`); once per bubble. */
export function mountVoicePlayer(playerRow, audio) {
  const player = {
    audio, audioId: null, duration: 0, segments: [], skip: false, bars: [], playedBars: -1, frame: 0,
    wave: svg("svg", { class: "voice-wave", viewBox: "0 0 64 24", preserveAspectRatio: "none", "aria-hidden": "true" }),
  };
  player.seek = h("div", {
    class: "voice-seek", role: "slider", tabindex: "0", "data-testid": "voice-waveform", hidden: true,
    "aria-label": "Seek", "aria-valuemin": "0", "aria-valuemax": "0", "aria-valuenow": "0",
    onclick: (event) => seekToPointer(player, event), onkeydown: (event) => seekByKey(player, event),
  }, player.wave);
  player.speed = h("button", {
    type: "button", class: "ghost small voice-speed", "data-testid": "voice-speed",
    "aria-label": "Playback speed 1×, change it", onclick: () => nextSpeed(player),
  }, speedLabel(1));
  player.skipButton = h("button", {
    type: "button", class: "ghost small voice-skip", "data-testid": "voice-skip-silence", "aria-pressed": "false",
    hidden: true, onclick: () => toggleSkip(player),
  }, "Skip silence");
  playerRow.after(h("div", { class: "voice-tools" }, player.seek, player.speed, player.skipButton));
  for (const type of ["timeupdate", "seeked", "durationchange", "ended", "pause"]) audio.addEventListener(type, () => tick(player));
  audio.addEventListener("play", () => follow(player));
  // A new src resets playbackRate to defaultPlaybackRate: keep the chosen speed across it.
  audio.addEventListener("loadedmetadata", () => { audio.playbackRate = audio.defaultPlaybackRate; });
  players.set(audio, player);
}

/** Show the recording's map (`audioFile`: the API's AudioFile, or null while still local). */
export function showVoiceMap(audio, audioFile, seconds) {
  const player = players.get(audio);
  if (!player) return;
  player.duration = seconds || 0;
  if (!audioFile || player.audioId === audioFile.id) return;
  player.audioId = audioFile.id;
  const peaks = audioFile.waveform || [];
  player.segments = audioFile.speechSegments || [];
  player.bars = peaks.map((peak, i) => {
    const height = Math.max(peak * 22, 1); // silence still draws a line
    return svg("rect", { x: i + 0.15, width: 0.7, y: (24 - height) / 2, height, rx: 0.3 });
  });
  player.wave.replaceChildren(...player.bars);
  player.playedBars = -1;
  player.seek.hidden = peaks.length === 0; // recordings from before waveforms existed
  player.seek.dataset.bars = String(peaks.length);
  player.skipButton.hidden = player.segments.length === 0;
  tick(player);
}

function lengthOf(player) {
  const { audio } = player;
  return player.duration || (Number.isFinite(audio.duration) ? audio.duration : 0);
}

function nextSpeed(player) {
  const rate = SPEEDS[(SPEEDS.indexOf(player.audio.playbackRate) + 1) % SPEEDS.length];
  player.audio.defaultPlaybackRate = rate;
  player.audio.playbackRate = rate;
  player.speed.textContent = speedLabel(rate);
  player.speed.setAttribute("aria-label", `Playback speed ${speedLabel(rate)}, change it`);
}

function toggleSkip(player) {
  player.skip = !player.skip;
  player.skipButton.setAttribute("aria-pressed", String(player.skip));
  skipSilence(player);
}

function seekTo(player, seconds) {
  const length = lengthOf(player);
  if (!length) return;
  player.audio.currentTime = Math.min(Math.max(seconds, 0), length);
  tick(player);
}

function seekToPointer(player, event) {
  const box = player.seek.getBoundingClientRect();
  seekTo(player, ((event.clientX - box.left) / box.width) * lengthOf(player));
}

function seekByKey(player, event) {
  const now = player.audio.currentTime;
  const to = { ArrowLeft: now - STEP, ArrowDown: now - STEP, ArrowRight: now + STEP, ArrowUp: now + STEP,
    Home: 0, End: lengthOf(player) }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  seekTo(player, to);
}

/** While playing, follow every animation frame: the highlight moves smoothly and a gap is
 *  skipped as soon as it starts (timeupdate alone comes only every 250 ms or so). */
function follow(player) {
  cancelAnimationFrame(player.frame);
  const step = () => {
    tick(player);
    if (!player.audio.paused) player.frame = requestAnimationFrame(step);
  };
  step();
}

function tick(player) {
  skipSilence(player);
  const length = lengthOf(player);
  const now = player.audio.currentTime;
  const played = length ? Math.min(Math.floor((now / length) * player.bars.length), player.bars.length) : 0;
  if (played !== player.playedBars) {
    player.bars.forEach((bar, i) => bar.classList.toggle("played", i < played));
    player.playedBars = played;
  }
  player.seek.setAttribute("aria-valuemax", String(Math.round(length)));
  player.seek.setAttribute("aria-valuenow", String(Math.round(now)));
  player.seek.setAttribute("aria-valuetext", `${clock(now)} of ${clock(length)}`);
  highlightSpokenWord(player.audio);
}

/** Playing in a gap between speech segments (or before the first, after the last): jump to
 *  the next segment, or to the end. */
function skipSilence(player) {
  const { audio, segments } = player;
  if (!player.skip || !segments.length || audio.paused || audio.seeking) return;
  const now = audio.currentTime;
  if (segments.some((s) => now >= s.start && now < s.end)) return;
  const next = segments.find((s) => s.start > now);
  const target = next ? next.start : lengthOf(player);
  if (target - now >= MIN_JUMP) audio.currentTime = target;
}
