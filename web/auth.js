// The sign-up and log-in forms: checked here first, then sent; success starts the session.

import { describeError } from "./api.js";
import { Q } from "./documents.js";
import { $ } from "./dom.js";
import { request } from "./gql.js";
import { saveSession, startChat } from "./session.js";

const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function fieldError(form, message, field) {
  const box = form.querySelector(".form-error");
  box.textContent = message || "";
  for (const input of form.querySelectorAll("input")) input.removeAttribute("aria-invalid");
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus();
  }
}

async function submitAuth(form, mutation, input, key) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const data = await request(mutation, { input });
    saveSession(data[key]);
    form.reset();
    fieldError(form, "");
    startChat();
  } catch (error) {
    fieldError(form, describeError(error));
  } finally {
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

export function onSignup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const username = $("signup-username").value.trim();
  const email = $("signup-email").value.trim();
  const password = $("signup-password").value;
  if (!USERNAME.test(username)) return fieldError(form, "Choose a username of 3–32 letters, digits, “_”, “.” or “-”.", $("signup-username"));
  if (!EMAIL.test(email)) return fieldError(form, "Enter a valid email address.", $("signup-email"));
  if (password.length < 8 || password.length > 128) return fieldError(form, "The password needs 8 to 128 characters.", $("signup-password"));
  fieldError(form, "");
  return submitAuth(form, Q.register, { username, email, password }, "register");
}

export function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const login = $("login-login").value.trim();
  const password = $("login-password").value;
  if (!login) return fieldError(form, "Enter your username or email.", $("login-login"));
  if (!password) return fieldError(form, "Enter your password.", $("login-password"));
  fieldError(form, "");
  return submitAuth(form, Q.login, { login, password }, "login");
}
