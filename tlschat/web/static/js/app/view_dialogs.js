// The page's dialogs: trust a new server's key, choose a nick, the help, the room switcher, and
// the notices that stop everything (a changed key, a refused invitation, a kick). Each is a
// native modal <dialog>: the rest of the page is inert while it is open, Escape closes it, and
// focus goes back to where it was when it closes.

import { KEYS_HELP } from "./chat_commands.js";
import { NICK_PATTERN } from "./lines.js";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Open `dialog` modally; focus goes back to the element that had it once it closes.
 * @param {HTMLDialogElement} dialog
 * @param {HTMLElement} [focus] what gets focus in it first
 */
export function openDialog(dialog, focus) {
  const before = document.activeElement;
  dialog.addEventListener(
    "close",
    () => {
      if (before instanceof HTMLElement && before.isConnected) before.focus();
    },
    { once: true },
  );
  dialog.showModal();
  focus?.focus();
}

/**
 * Ask whether to trust a server key never seen: yes, or no (also Escape, the safe answer).
 * @param {string} fingerprint
 * @param {string} host
 * @returns {Promise<boolean>}
 */
export function askTrust(fingerprint, host) {
  const dialog = /** @type {HTMLDialogElement} */ (byId("trust-dialog"));
  byId("trust-host").textContent = host;
  byId("trust-fingerprint").textContent = fingerprint;
  const yes = byId("trust-yes");
  const no = byId("trust-no");
  return new Promise((resolve) => {
    let answer = false;
    const onYes = () => {
      answer = true;
      dialog.close();
    };
    const onNo = () => dialog.close();
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener(
      "close",
      () => {
        yes.removeEventListener("click", onYes);
        no.removeEventListener("click", onNo);
        resolve(answer);
      },
      { once: true },
    );
    // Focus on the safe answer: a stray Enter does not trust a key.
    openDialog(dialog, no);
  });
}

/**
 * Ask for a nick on first start. Escape leaves it to the server, which gives the key one.
 * @returns {Promise<string>}
 */
export function askNick() {
  const dialog = /** @type {HTMLDialogElement} */ (byId("nick-dialog"));
  const input = /** @type {HTMLInputElement} */ (byId("nick-input"));
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue !== "" && NICK_PATTERN.test(input.value) ? input.value : ""),
      { once: true },
    );
    // The submit button's value: Escape leaves it empty.
    dialog.returnValue = "";
    openDialog(dialog, input);
  });
}

/** The keys and what they do, in the help dialog. */
export function openHelp() {
  const dialog = /** @type {HTMLDialogElement} */ (byId("help-dialog"));
  const table = byId("help-keys");
  if (!table.childElementCount) {
    for (const [keys, what] of KEYS_HELP) {
      const row = document.createElement("tr");
      const key = document.createElement("th");
      key.scope = "row";
      key.textContent = keys;
      const cell = document.createElement("td");
      cell.textContent = what;
      row.append(key, cell);
      table.append(row);
    }
    const close = /** @type {HTMLElement} */ (dialog.querySelector("[data-close]"));
    close.addEventListener("click", () => dialog.close());
  }
  openDialog(dialog, /** @type {HTMLElement} */ (dialog.querySelector("[data-close]")));
}

/**
 * The room switcher: type to filter, arrows to choose, Enter to go.
 * @param {string[]} names every buffer
 * @param {(name: string) => void} pick
 */
export function openSwitcher(names, pick) {
  const dialog = /** @type {HTMLDialogElement} */ (byId("switcher-dialog"));
  const input = /** @type {HTMLInputElement} */ (byId("switcher-input"));
  const list = byId("switcher-list");
  let selected = 0;
  /** @type {string[]} */
  let shown = [];
  const draw = () => {
    const filter = input.value.trim().toLowerCase();
    shown = names.filter((name) => name.toLowerCase().includes(filter));
    selected = Math.min(selected, Math.max(0, shown.length - 1));
    list.replaceChildren(
      ...shown.map((name, index) => {
        const option = document.createElement("li");
        option.id = `switcher-option-${index}`;
        option.setAttribute("role", "option");
        option.textContent = name;
        option.setAttribute("aria-selected", String(index === selected));
        option.addEventListener("click", () => choose(name));
        return option;
      }),
    );
    if (shown.length) input.setAttribute("aria-activedescendant", `switcher-option-${selected}`);
    else input.removeAttribute("aria-activedescendant");
  };
  const choose = (/** @type {string} */ name) => {
    dialog.close();
    pick(name);
  };
  /** @param {KeyboardEvent} event */
  const onKey = (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (shown.length)
        selected = (selected + (event.key === "ArrowDown" ? 1 : -1) + shown.length) % shown.length;
      draw();
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (shown.length) choose(shown[selected]);
    }
  };
  input.value = "";
  input.addEventListener("input", draw);
  input.addEventListener("keydown", onKey);
  dialog.addEventListener(
    "close",
    () => {
      input.removeEventListener("input", draw);
      input.removeEventListener("keydown", onKey);
    },
    { once: true },
  );
  draw();
  openDialog(dialog, input);
}

/**
 * Stop everything where everyone sees it: the changed key's warning, or why the page stopped.
 * @param {"changed" | "refused" | "untrusted" | "dismissed" | "broken"} kind
 * @param {string} message
 */
export function showStop(kind, message) {
  if (kind === "changed") {
    byId("key-changed-text").textContent = message;
    byId("key-changed").hidden = false;
    return;
  }
  const titles = {
    refused: "Refused: the server's key is not the invitation's",
    untrusted: "Not trusted",
    dismissed: "Disconnected by the server",
    broken: "The web client cannot start",
  };
  byId("stopped-title").textContent = titles[kind];
  byId("stopped-text").textContent = message;
  byId("stopped").hidden = false;
  byId("reload-button").focus();
}
