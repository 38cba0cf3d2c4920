// Web Push opt-in: a header toggle (permission is asked only when it is clicked, never on page
// load), the service worker (sw.js) that shows notifications, and opening the conversation a
// notification was clicked for (by a message to an open page, or /#conversation=<id>).

import { api } from "./api.js";
import { openConversation } from "./conversation.js";
import { Q } from "./documents.js";
import { $ } from "./dom.js";
import { request } from "./gql.js";

const WORKER_URL = "/static/sw.js";
const WORKER_SCOPE = "/static/"; // it only shows notifications: it needs no pages in its scope
let serverKey = null; // the server's VAPID public key; null while push is unavailable

function supported() {
  return window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

function decodeKey(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function sameKey(subscription) {
  const key = subscription.options && subscription.options.applicationServerKey;
  if (!key) return true;
  const wanted = decodeKey(serverKey);
  const have = new Uint8Array(key);
  return have.length === wanted.length && have.every((byte, i) => byte === wanted[i]);
}

function show(on) {
  const button = $("notify-toggle");
  button.hidden = false;
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "Notifications on" : "Notifications off";
}

async function activeRegistration() {
  const registration = await navigator.serviceWorker.register(WORKER_URL, { scope: WORKER_SCOPE });
  if (registration.active) return registration;
  const worker = registration.installing || registration.waiting;
  await new Promise((resolve) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve();
    });
  });
  return registration;
}

async function currentSubscription() {
  const registration = await navigator.serviceWorker.getRegistration(WORKER_SCOPE);
  return registration ? registration.pushManager.getSubscription() : null;
}

async function tellServer(subscription) {
  const { endpoint, keys } = subscription.toJSON();
  await api(Q.registerPush, { input: { endpoint, p256dh: keys.p256dh, auth: keys.auth } });
}

/** At chat start: show the toggle if push works here, and renew an opt-in made before. Never asks. */
export async function syncNotifications() {
  $("notify-toggle").hidden = true;
  if (!supported()) return;
  try {
    serverKey = (await api(Q.vapidPublicKey)).vapidPublicKey;
  } catch {
    serverKey = null; // push is off on this server (FORBIDDEN): no toggle
    return;
  }
  show(false);
  if (Notification.permission !== "granted") return;
  const subscription = await currentSubscription();
  if (!subscription || !sameKey(subscription)) return;
  await tellServer(subscription);
  show(true);
}

async function enable() {
  if ((await Notification.requestPermission()) !== "granted") {
    $("notify-error").textContent = "Notifications are blocked for this site in the browser's settings.";
    return;
  }
  const registration = await activeRegistration();
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription = subscription || await registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: decodeKey(serverKey),
  });
  await tellServer(subscription);
  show(true);
}

async function disable() {
  const subscription = await currentSubscription();
  if (subscription) {
    await api(Q.unregisterPush, { endpoint: subscription.endpoint });
    await subscription.unsubscribe();
  }
  show(false);
}

/** On log-out (with the session's token, before it is forgotten): this browser stops getting its pushes. */
export async function dropPushSubscription(token) {
  if (!supported() || !serverKey) return;
  serverKey = null;
  const subscription = await currentSubscription();
  if (!subscription) return;
  await request(Q.unregisterPush, { endpoint: subscription.endpoint }, token).catch(() => {});
  await subscription.unsubscribe();
}

/** Open the conversation named by /#conversation=<id> (a clicked notification opened this page). */
export function openLinkedConversation() {
  const match = /^#conversation=([\w-]+)$/.exec(location.hash);
  if (!match) return;
  history.replaceState(null, "", location.pathname + location.search);
  openConversation({ conversationId: match[1] });
}

export function wireNotifications() {
  $("notify-toggle").addEventListener("click", async () => {
    const button = $("notify-toggle");
    $("notify-error").textContent = "";
    button.disabled = true;
    try {
      if (button.getAttribute("aria-pressed") === "true") await disable();
      else await enable();
    } catch (error) {
      console.warn("notifications", error);
      $("notify-error").textContent = "Notifications could not be switched.";
    } finally {
      button.disabled = false;
    }
  });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      const data = event.data || {};
      if (data.type === "open-conversation" && data.conversationId) openConversation({ conversationId: data.conversationId });
    });
  }
}
