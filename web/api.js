// Authenticated GraphQL requests, and errors worded for people.

import { ApiError, NetworkError, request } from "./gql.js";
import { state, token } from "./state.js";

// Ending the session is session.js's job (it imports this module): app.js hands it in.
let endSession = () => {};
export function onUnauthenticated(handler) {
  endSession = handler;
}

/** An authenticated request; an UNAUTHENTICATED answer ends the session. */
export async function api(query, variables) {
  try {
    return await request(query, variables, token());
  } catch (error) {
    if (error instanceof ApiError && error.code === "UNAUTHENTICATED" && state.session) {
      endSession("Your session has ended. Please log in again.");
    }
    throw error;
  }
}

export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.code === "RATE_LIMITED" && error.extra.retryAfter) {
      return `Too many attempts: try again in ${Math.ceil(error.extra.retryAfter)} s.`;
    }
    return error.message;
  }
  if (error instanceof NetworkError) return "Cannot reach the server. Check your connection.";
  return "Something went wrong.";
}
