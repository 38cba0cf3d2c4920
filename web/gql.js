// Talking to the Chattergram GraphQL API, with no libraries:
//  - request(): POST /graphql with a JSON body (queries and mutations);
//  - upload(): the GraphQL multipart request spec (operations + map + file parts);
//  - Socket: the graphql-transport-ws protocol over one WebSocket, with reconnection.

export const ENDPOINT = "/graphql";

/** A GraphQL error answer; `code` is `extensions.code` (UNAUTHENTICATED, BAD_USER_INPUT, …). */
export class ApiError extends Error {
  constructor(message, code, extra = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code || "ERROR";
    this.extra = extra;
  }
}

/** The network failed (no answer at all): worth retrying. */
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = "NetworkError";
  }
}

function operationName(query) {
  const match = /^\s*(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(query);
  return match ? match[1] : undefined;
}

async function answer(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    if (response.status === 413) throw new ApiError("That is too large.", "PAYLOAD_TOO_LARGE");
    throw new NetworkError(`The server answered ${response.status}.`);
  }
  if (body.errors && body.errors.length) {
    const [first] = body.errors;
    const ext = first.extensions || {};
    throw new ApiError(first.message || "Something went wrong.", ext.code, ext);
  }
  if (!body.data) throw new NetworkError(`The server answered ${response.status} without data.`);
  return body.data;
}

function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Run a query or mutation; resolves to `data`, throws ApiError / NetworkError. */
export async function request(query, variables = {}, token = null, { signal } = {}) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders(token) },
      body: JSON.stringify({ query, variables, operationName: operationName(query) }),
      credentials: "omit",
      signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new NetworkError("The server cannot be reached.");
  }
  return answer(response);
}

/** A mutation taking one `Upload` variable named `variable`, sent as multipart/form-data. */
export async function upload(query, variable, file, filename, token) {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query, variables: { [variable]: null }, operationName: operationName(query) }));
  form.append("map", JSON.stringify({ 0: [`variables.${variable}`] }));
  form.append("0", file, filename);
  let response;
  try {
    response = await fetch(ENDPOINT, { method: "POST", headers: authHeaders(token), body: form, credentials: "omit" });
  } catch {
    throw new NetworkError("The upload did not reach the server.");
  }
  return answer(response);
}

// ---------------------------------------------------------------------------------------
// graphql-transport-ws (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md)

const CLOSE_UNAUTHORIZED = new Set([4401, 4403]);
// The server ended a subscription and events meant for it may be lost (its Redis pub/sub
// connection dropped, or we read too slowly): subscribe again, then refetch.
const RESUBSCRIBE = "RESUBSCRIBE";
const CALM_AFTER_MS = 30000; // a subscription that lived this long resubscribes at once again
const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 10000;

/**
 * One WebSocket carrying many subscriptions. Subscriptions survive reconnects: after every
 * `connection_ack` each active one is subscribed again. Reconnects back off exponentially
 * (0.5 s … 30 s, with jitter) and start over once a connection is acknowledged.
 *
 * A subscription the server ends with the RESUBSCRIBE error code (events may be lost) is
 * subscribed again at once — with the same back-off if that keeps happening — and then
 * onReconnected() runs, once for all the subscriptions ended together.
 *
 * Callbacks: onStatus(state) with "connecting" | "open" | "closed"; onAuthFailure() when the
 * server refuses the token (close 4401/4403: no reconnect); onReconnected() after every ack
 * but the first and after a RESUBSCRIBE (refetch what may have been missed).
 */
export class Socket {
  constructor({ token, onStatus = () => {}, onAuthFailure = () => {}, onReconnected = () => {} }) {
    this.token = token;
    this.onStatus = onStatus;
    this.onAuthFailure = onAuthFailure;
    this.onReconnected = onReconnected;
    this.subscriptions = new Map(); // id -> {id, payload, sink, ...}
    this.nextId = 1;
    this.ws = null;
    this.acknowledged = false;
    this.everAcknowledged = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.resyncTimer = null;
    this.stopped = false;
    this.state = "closed";
    this.wake = () => {
      if (!this.stopped && !this.ws) this.reconnectNow();
    };
    window.addEventListener("online", this.wake);
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${ENDPOINT}`;
  }

  setState(state) {
    if (state !== this.state) {
      this.state = state;
      this.onStatus(state);
    }
  }

  connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url(), "graphql-transport-ws");
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.acknowledged = false;
    ws.addEventListener("open", () => {
      this.send({ type: "connection_init", payload: { Authorization: `Bearer ${this.token}` } });
    });
    ws.addEventListener("message", (event) => this.receive(ws, event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event.code));
    ws.addEventListener("error", () => {
      /* a close event follows */
    });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      ws.close(4400, "Invalid message");
      return;
    }
    switch (message.type) {
      case "connection_ack": {
        this.acknowledged = true;
        this.attempt = 0;
        this.setState("open");
        for (const [id, sub] of this.subscriptions) {
          sub.resubscribe = false; // its `complete` was lost with the old socket
          this.send({ id, type: "subscribe", payload: sub.payload });
        }
        this.startPinging();
        if (this.everAcknowledged) this.onReconnected();
        this.everAcknowledged = true;
        break;
      }
      case "ping":
        this.send({ type: "pong", payload: message.payload });
        break;
      case "pong":
        clearTimeout(this.pongTimer);
        this.pongTimer = null;
        break;
      case "next": {
        const sub = this.subscriptions.get(message.id);
        if (sub) {
          const { data, errors } = message.payload || {};
          if (errors && !data) {
            if (errors.some((e) => e.extensions && e.extensions.code === RESUBSCRIBE)) sub.resubscribe = true;
            else sub.sink.error(errors);
          } else sub.sink.next(data);
        }
        break;
      }
      case "error": {
        const sub = this.subscriptions.get(message.id);
        if (sub) {
          this.subscriptions.delete(message.id);
          sub.sink.error(message.payload);
        }
        break;
      }
      case "complete": {
        const sub = this.subscriptions.get(message.id);
        if (sub) {
          this.subscriptions.delete(message.id);
          if (sub.resubscribe) this.resubscribe(sub);
          else if (sub.sink.complete) sub.sink.complete();
        }
        break;
      }
      default:
        break;
    }
  }

  startPinging() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (!this.acknowledged || this.pongTimer) return;
      this.send({ type: "ping" });
      // No pong in time: the connection is dead even if the browser has not noticed.
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        if (this.ws) this.ws.close(4499, "No pong");
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.acknowledged = false;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = null;
    if (this.stopped) return;
    if (CLOSE_UNAUTHORIZED.has(code)) {
      this.stop();
      this.onAuthFailure();
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    this.setState("closed");
    if (this.stopped || this.retryTimer) return;
    const base = Math.min(30000, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  /** Start a subscription; returns a function that ends it. */
  subscribe(query, variables, sink) {
    const sub = { payload: { query, variables: variables || {} }, sink, since: Date.now(), interruptions: 0 };
    this.start(sub);
    return () => {
      sub.stopped = true;
      clearTimeout(sub.timer);
      if (this.subscriptions.get(sub.id) === sub) {
        this.subscriptions.delete(sub.id);
        if (this.acknowledged) this.send({ id: sub.id, type: "complete" });
      }
    };
  }

  start(sub) {
    sub.id = String(this.nextId++); // a fresh id: the server may not have forgotten the old one yet
    sub.resubscribe = false;
    this.subscriptions.set(sub.id, sub);
    if (this.acknowledged) this.send({ id: sub.id, type: "subscribe", payload: sub.payload });
    else this.connect();
  }

  /** The server ended `sub` with RESUBSCRIBE: subscribe again, then refetch (once for all). */
  resubscribe(sub) {
    sub.interruptions = Date.now() - sub.since < CALM_AFTER_MS ? sub.interruptions + 1 : 1;
    const base = Math.min(30000, 500 * 2 ** (sub.interruptions - 1));
    const delay = sub.interruptions === 1 ? 0 : base / 2 + Math.random() * (base / 2);
    sub.timer = setTimeout(() => {
      if (this.stopped || sub.stopped) return;
      sub.since = Date.now();
      this.start(sub);
      // Refetch once the new subscriptions are in place, so nothing falls between the two.
      clearTimeout(this.resyncTimer);
      this.resyncTimer = setTimeout(() => {
        if (!this.stopped) this.onReconnected();
      }, 300);
    }, delay);
  }

  /** Close for good (log out). */
  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.wake);
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.resyncTimer);
    this.subscriptions.clear();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "Bye");
    this.setState("closed");
  }
}
