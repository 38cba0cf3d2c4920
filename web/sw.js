// Chattergram's service worker: shows a Web Push notification for a new message (the server
// encrypts each payload for this browser; see the README, "Push notifications in production")
// and opens its conversation when the notification is clicked. It caches nothing.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const sender = data.senderName || "Someone";
  const title = data.conversationTitle ? `${sender} in ${data.conversationTitle}` : sender;
  event.waitUntil(self.registration.showNotification(title, {
    body: data.preview || "New message",
    tag: data.conversationId ? `conversation-${data.conversationId}` : "chattergram",
    renotify: true,
    data: { conversationId: data.conversationId || null },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const id = event.notification.data && event.notification.data.conversationId;
  event.waitUntil((async () => {
    const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const page = pages.find((client) => new URL(client.url).origin === self.location.origin);
    if (page) {
      await page.focus();
      if (id) page.postMessage({ type: "open-conversation", conversationId: id });
      return;
    }
    await self.clients.openWindow(id ? `/#conversation=${encodeURIComponent(id)}` : "/");
  })());
});
