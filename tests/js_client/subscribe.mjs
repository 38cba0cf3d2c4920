// Subscribe to a GraphQL subscription with the real `graphql-ws` client (graphql-transport-ws
// protocol) and report what happens as JSON lines on stdout. Driven by tests/utils/node_client.py.
//
// Usage:
//   node subscribe.mjs <ws-url> <token> <query> [maxEvents=1] [timeoutSeconds=30] [variablesJson]
//
//   <token>          sent as connectionParams { Authorization: "Bearer <token>" };
//                    an empty string sends empty connectionParams ({}).
//   maxEvents        exit 0 after this many `next` events; 0 = no limit (run until
//                    complete / error / timeout / killed).
//   timeoutSeconds   exit 2 if not done by then; 0 = no timeout.
//   variablesJson    optional JSON object of GraphQL variables.
//
// stdout: exactly one JSON object per line, written in this order of occurrence:
//   {"event":"subscribed"}                     client.subscribe() has been called (printed
//                                              right away, normally BEFORE "connected")
//   {"event":"connected"}                      the server acknowledged the connection
//                                              (connection_ack) -- WAIT FOR THIS ONE
//   {"event":"next","payload":{...}}           one per execution result ({data, errors?})
//   {"event":"error","error":<value>}          an Error (its message, a string) or the GraphQL
//                                              errors array the server sent in an `error` message
//   {"event":"closed","code":N,"reason":"..."} the socket closed before we were done (e.g. the
//                                              server rejected connection_init with 4403)
//   {"event":"complete"}                       the server completed the subscription
//   {"event":"timeout","seconds":N}            timeoutSeconds elapsed
//
// Exit codes: 0 = maxEvents `next` events printed (the client is disposed first);
//             1 = error or close (also a usage error); 2 = timeout;
//             3 = the server completed the subscription before maxEvents events arrived.
//
// Caveat for callers: "connected" means the connection is acknowledged; the `subscribe` frame is
// sent right after that, and the server starts the subscription asynchronously. The protocol has
// no "subscription started" acknowledgement, so an event published immediately after
// "connected" can still race the server-side subscription set-up.

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const USAGE =
  'usage: node subscribe.mjs <ws-url> <token> <query> [maxEvents=1] [timeoutSeconds=30] [variablesJson]';

let lastWrite = Promise.resolve();
let finished = false;

function emit(obj) {
  const line = JSON.stringify(obj) + '\n';
  lastWrite = new Promise((resolve) => {
    // Every line is handed to the stream on its own; pipes are synchronous on POSIX, and the
    // callback tells us when it has been written, so nothing is lost on exit.
    process.stdout.write(line, () => resolve());
  });
  return lastWrite;
}

async function finish(code, client) {
  if (finished) return;
  finished = true;
  if (client) {
    try {
      // dispose() sends `complete` for live subscriptions and closes the socket (1000).
      await Promise.race([
        Promise.resolve(client.dispose()),
        new Promise((resolve) => setTimeout(resolve, 2000)),
      ]);
    } catch (err) {
      process.stderr.write(`dispose failed: ${err && err.stack ? err.stack : err}\n`);
    }
  }
  await lastWrite;
  process.exit(code);
}

function isLikeCloseEvent(val) {
  return val !== null && typeof val === 'object' && 'code' in val && 'reason' in val;
}

function describeError(err) {
  if (err instanceof Error) return err.message || String(err);
  if (Array.isArray(err)) return err; // GraphQL errors from an `error` message
  if (typeof err === 'string') return err;
  // A WebSocket ErrorEvent (e.g. ECONNREFUSED): its fields are prototype getters, not own keys.
  if (err && err.error instanceof Error) return err.error.message || String(err.error);
  if (err && typeof err.message === 'string' && err.message) return err.message;
  try {
    return JSON.parse(JSON.stringify(err));
  } catch {
    return String(err);
  }
}

function parseNonNegativeNumber(raw, name, fallback) {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const [url, token, query, maxEventsRaw, timeoutRaw, variablesRaw] = process.argv.slice(2);

let maxEvents;
let timeoutSeconds;
let variables;
try {
  if (!url || token === undefined || !query) throw new Error('missing arguments');
  maxEvents = Math.floor(parseNonNegativeNumber(maxEventsRaw, 'maxEvents', 1));
  timeoutSeconds = parseNonNegativeNumber(timeoutRaw, 'timeoutSeconds', 30);
  if (variablesRaw !== undefined && variablesRaw !== '') {
    variables = JSON.parse(variablesRaw);
    if (variables === null || typeof variables !== 'object' || Array.isArray(variables)) {
      throw new Error('variablesJson must be a JSON object');
    }
  }
} catch (err) {
  process.stderr.write(`${USAGE}\n`);
  await emit({ event: 'error', error: `usage: ${err.message}` });
  process.exit(1);
}

let client;
let received = 0;

// Errors can reach us twice (subscription sink and onNonLazyError): report the first only.
function fail(err) {
  if (finished) return;
  if (isLikeCloseEvent(err)) {
    emit({ event: 'closed', code: err.code, reason: String(err.reason ?? '') });
  } else {
    emit({ event: 'error', error: describeError(err) });
  }
  finish(1, client);
}

if (timeoutSeconds > 0) {
  setTimeout(() => {
    if (finished) return;
    emit({ event: 'timeout', seconds: timeoutSeconds });
    finish(2, client);
  }, timeoutSeconds * 1000);
}

try {
  client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: token === '' ? {} : { Authorization: 'Bearer ' + token },
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: fail,
    on: {
      connected: () => {
        if (!finished) emit({ event: 'connected' });
      },
      error: (err) => {
        // Socket-level errors (e.g. ECONNREFUSED); the close that follows is reported on stdout.
        process.stderr.write(`socket error: ${err && err.message ? err.message : err}\n`);
      },
    },
  });

  const payload = variables === undefined ? { query } : { query, variables };
  client.subscribe(payload, {
    next: (result) => {
      if (finished) return;
      emit({ event: 'next', payload: result });
      received += 1;
      if (maxEvents > 0 && received >= maxEvents) finish(0, client);
    },
    error: fail,
    complete: () => {
      if (finished) return;
      emit({ event: 'complete' });
      finish(maxEvents > 0 && received < maxEvents ? 3 : 0, client);
    },
  });
  emit({ event: 'subscribed' });
} catch (err) {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  fail(err);
}
