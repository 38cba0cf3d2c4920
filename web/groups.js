// Groups: create one (title + people), and the open group's details: members with their roles,
// add, remove, change a role, rename, leave. Errors show next to the control they concern.

import { api, describeError } from "./api.js";
import { forgetConversation, rememberConversation, renderContacts } from "./contacts.js";
import { closeConversation, fetchConversation, isOpen, openConversation, renderPartnerHeader } from "./conversation.js";
import { Q } from "./documents.js";
import { $, h } from "./dom.js";
import { ApiError } from "./gql.js";
import { peoplePicker } from "./people_picker.js";
import { me, state } from "./state.js";

const MANAGERS = new Set(["OWNER", "ADMIN"]);

function sentence(text) {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

/** Put an error where it belongs: BAD_USER_INPUT/NOT_FOUND name a field; the rest go to `fallback`. */
function showError(error, fallback, fields = {}) {
  const field = error instanceof ApiError ? error.extra.field : null;
  const [where, input] = (field && fields[field]) || [fallback, null];
  const prefix = error instanceof ApiError && error.code === "FORBIDDEN" ? "Not allowed: " : "";
  where.textContent = prefix + sentence(describeError(error));
  if (input) input.setAttribute("aria-invalid", "true");
}

function clearErrors(...elements) {
  for (const el of elements) {
    if (el.matches("input")) el.removeAttribute("aria-invalid");
    else el.textContent = "";
  }
}

// The people pickers of the two forms: a new group's members, and people to add to the open one.
const newMembers = peoplePicker($("group-candidates"), $("group-find"), () => new Set());
const addable = peoplePicker($("add-candidates"), $("add-find"),
  () => new Set(state.open && state.open.group ? state.open.group.members.map((m) => m.user.id) : []));

// ---- a new group ----------------------------------------------------------------------

function openNewGroup() {
  $("new-group-form").hidden = false;
  $("new-group").setAttribute("aria-expanded", "true");
  $("group-title").value = "";
  clearErrors($("group-title"), $("group-title-error"), $("group-members-error"), $("new-group-error"));
  newMembers.reset();
  $("group-title").focus();
}

function closeNewGroup({ focus = true } = {}) {
  $("new-group-form").hidden = true;
  $("new-group").setAttribute("aria-expanded", "false");
  if (focus) $("new-group").focus();
}

async function createGroup(event) {
  event.preventDefault();
  const title = $("group-title");
  clearErrors(title, $("group-title-error"), $("group-members-error"), $("new-group-error"));
  const submit = event.target.querySelector('[type="submit"]');
  submit.disabled = true;
  try {
    const data = await api(Q.createGroup, { input: { title: title.value, memberIds: newMembers.picked() } });
    const record = rememberConversation(data.createGroup);
    renderContacts();
    closeNewGroup({ focus: false });
    await openConversation({ conversationId: record.id });
  } catch (error) {
    showError(error, $("new-group-error"), {
      title: [$("group-title-error"), title],
      memberIds: [$("group-members-error"), null],
    });
  } finally {
    submit.disabled = false;
  }
}

// ---- the open group's details ---------------------------------------------------------

function myRole(group) {
  const mine = group.members.find((m) => m.user.id === me().id);
  return mine ? mine.role : "MEMBER";
}

function memberItem(group, member, role) {
  const { user } = member;
  const self = user.id === me().id;
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "member-error" });
  const controls = [];
  if (!self && (role === "OWNER" || (role === "ADMIN" && member.role === "MEMBER"))) {
    controls.push(h("button", {
      type: "button", class: "ghost small", "data-testid": "remove-member", "aria-label": `Remove ${user.username} from the group`,
      dataset: { focusKey: `remove:${user.id}` },
      onclick: () => change(Q.removeMember, { conversationId: group.id, userId: user.id }, error),
    }, "Remove"));
  }
  if (!self && role === "OWNER" && member.role !== "OWNER") {
    const next = member.role === "ADMIN" ? "MEMBER" : "ADMIN";
    controls.push(h("button", {
      type: "button", class: "ghost small", "data-testid": "set-role",
      "aria-label": `Make ${user.username} ${next === "ADMIN" ? "an admin" : "a member"}`,
      dataset: { focusKey: `role:${user.id}` },
      onclick: () => change(Q.setMemberRole, { conversationId: group.id, userId: user.id, role: next }, error),
    }, next === "ADMIN" ? "Make admin" : "Make member"));
  }
  return h("li", { class: "member", "data-testid": "group-member", dataset: { username: user.username, role: member.role } },
    h("span", { class: "member-name" }, self ? `${user.username} (you)` : user.username),
    h("span", { class: "role", "data-testid": "member-role" }, member.role.toLowerCase()),
    ...controls, error);
}

export function renderGroupPanel() {
  const open = state.open;
  if (!open || open.kind !== "GROUP" || $("group-panel").hidden) return;
  const group = open.group;
  const role = myRole(group);
  const manager = MANAGERS.has(role);
  const focusKey = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.focusKey;
  $("rename-form").hidden = !manager;
  if (document.activeElement !== $("rename-input")) $("rename-input").value = group.title;
  $("group-members").replaceChildren(...group.members.map((m) => memberItem(group, m, role)));
  $("add-members-form").hidden = !manager;
  if (manager && !$("add-candidates").contains(document.activeElement)) addable.render();
  if (focusKey) {
    const again = $("group-panel").querySelector(`[data-focus-key="${focusKey}"]`);
    (again || $("group-panel-title")).focus();
  }
}

function toggleGroupPanel(show = $("group-panel").hidden) {
  $("group-panel").hidden = !show;
  $("group-toggle").setAttribute("aria-expanded", String(show));
  if (show) {
    clearErrors($("rename-input"), $("rename-error"), $("add-members-error"), $("leave-error"));
    renderGroupPanel();
    $("group-panel-title").focus();
    // Role changes send no event: fetch the group afresh whenever its details are opened.
    refreshGroup(state.open.conversationId);
  } else {
    $("group-toggle").focus();
  }
}

function changed(record) {
  renderContacts();
  if (isOpen(record.id)) {
    renderPartnerHeader();
    renderGroupPanel();
  }
}

/** A group mutation answering the group as it is now; its error goes to `errorEl`. */
async function change(query, variables, errorEl, fields = {}) {
  errorEl.textContent = "";
  try {
    const data = await api(query, variables);
    changed(rememberConversation(Object.values(data)[0]));
    return true;
  } catch (error) {
    showError(error, errorEl, fields);
    return false;
  }
}

async function rename(event) {
  event.preventDefault();
  const input = $("rename-input");
  clearErrors(input);
  await change(Q.renameGroup, { conversationId: state.open.conversationId, title: input.value }, $("rename-error"),
    { title: [$("rename-error"), input] });
}

async function addMembers(event) {
  event.preventDefault();
  const userIds = addable.picked();
  if (!userIds.length) {
    $("add-members-error").textContent = "Pick at least one person to add.";
    return;
  }
  if (await change(Q.addMembers, { conversationId: state.open.conversationId, userIds }, $("add-members-error"))) {
    addable.reset();
  }
}

async function leave() {
  const open = state.open;
  $("leave-error").textContent = "";
  try {
    await api(Q.leaveGroup, { conversationId: open.conversationId, userId: me().id });
  } catch (error) {
    showError(error, $("leave-error"));
    return;
  }
  forgetConversation(open.conversationId);
  if (state.open === open) closeConversation();
  $("conversation-notice").textContent = `You left “${open.group.title}”.`;
  renderContacts();
  $("new-group").focus();
}

/** After MEMBER_ADDED / MEMBER_REMOVED (of someone else) / RENAMED: fetch the group again. */
export async function refreshGroup(conversationId) {
  try {
    changed(await fetchConversation(conversationId));
  } catch (error) {
    console.warn("group", error);
  }
}

export function wireGroups() {
  $("new-group").addEventListener("click", () => {
    if ($("new-group-form").hidden) openNewGroup();
    else closeNewGroup();
  });
  $("new-group-cancel").addEventListener("click", () => closeNewGroup());
  $("new-group-form").addEventListener("submit", createGroup);
  $("new-group-form").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeNewGroup();
  });
  $("group-toggle").addEventListener("click", () => toggleGroupPanel());
  $("group-panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      toggleGroupPanel(false);
    }
  });
  $("rename-form").addEventListener("submit", rename);
  // An error about a field goes as soon as the field is edited.
  $("group-title").addEventListener("input", () => clearErrors($("group-title"), $("group-title-error")));
  $("rename-input").addEventListener("input", () => clearErrors($("rename-input"), $("rename-error")));
  $("add-members-form").addEventListener("submit", addMembers);
  $("leave-group").addEventListener("click", leave);
}
