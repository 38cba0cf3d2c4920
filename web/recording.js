// Voice recording: click to start, click to stop and send; Cancel or Escape discards.

import { sendVoice } from "./composer.js";
import { $ } from "./dom.js";
import { clock } from "./format.js";
import { state } from "./state.js";

const MAX_RECORDING_SECONDS = 300;

// Voice messages are listened to later and transcribed: there is no echo to cancel, and the
// speech recogniser does better on the plain signal than after the browser's voice processing
// (automatic gain control and noise suppression turn clear speech into wrong words).
const AUDIO_CONSTRAINTS = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };

function recordingMimeType() {
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"]) {
    if (MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

export async function startRecording() {
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

export function stopRecording() {
  const recording = state.recording;
  if (recording && recording.recorder.state !== "inactive") recording.recorder.stop();
}

export function cancelRecording() {
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
