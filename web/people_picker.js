// Picking people for a group: checkboxes of the people the page knows (conversations, who is
// online, the first pages of users), narrowed by a "Find people" box that also asks the server
// (username prefix search), so anyone can be added however many users there are.

import { api } from "./api.js";
import { rememberUser } from "./contacts.js";
import { Q } from "./documents.js";
import { h } from "./dom.js";
import { state } from "./state.js";

const FIND_DELAY_MS = 250;

/** A picker over `list` (a <ul>) with its `find` box; `excluded()` gives ids never offered. */
export function peoplePicker(list, find, excluded) {
  let timer = 0;
  let asked = "";
  const picker = {
    /** Draw the candidates again, keeping what is ticked. */
    render() {
      const ticked = new Set(picker.picked());
      const needle = find.value.trim().toLowerCase();
      const skip = excluded();
      const people = [...state.users.values()]
        .filter((u) => !skip.has(u.id) && (!needle || u.username.toLowerCase().includes(needle) || ticked.has(u.id)))
        .sort((a, b) => a.username.localeCompare(b.username));
      list.replaceChildren(...people.map((user) => h("li", {},
        h("label", { class: "pick-item" },
          h("input", { type: "checkbox", value: user.id, checked: ticked.has(user.id), "data-testid": "pick-user",
            dataset: { username: user.username } }),
          h("span", {}, user.username)))));
      if (!people.length) {
        list.replaceChildren(h("li", { class: "muted small" }, needle ? "Nobody by that name." : "Nobody else to add."));
      }
    },
    picked: () => [...list.querySelectorAll("input:checked")].map((input) => input.value),
    /** Empty the box and untick everyone (a new form). */
    reset() {
      find.value = "";
      list.replaceChildren();
      picker.render();
    },
  };
  find.addEventListener("input", () => {
    picker.render();
    clearTimeout(timer);
    const query = find.value.trim();
    if (!query || query === asked) return;
    timer = setTimeout(async () => {
      try {
        const data = await api(Q.findPeople, { query });
        asked = query; // a failed search is asked again when the box changes
        for (const hit of data.search.hits) if (hit.user) rememberUser(hit.user);
        if (find.value.trim() === query) picker.render();
      } catch (error) {
        console.warn("find people", error);
      }
    }, FIND_DELAY_MS);
  });
  // Enter in the box must not submit the form half-picked.
  find.addEventListener("keydown", (event) => { if (event.key === "Enter") event.preventDefault(); });
  return picker;
}
