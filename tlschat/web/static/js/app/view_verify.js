// The verification dialog (SAS, `/verify`): a request from another user to accept or refuse,
// then the seven emoji (with their names, which a screen reader reads) and the three numbers to
// compare with what the other user sees. Its buttons answer as `/verify yes` and `/verify no`
// would; Escape only closes it (the notice lines still say how to answer), and it does not open
// again for the same question.

import { openDialog } from "./view_dialogs.js";

/**
 * @typedef {ReturnType<import("./chat_client.js").ChatClient["verificationPrompt"]>} Prompt
 */

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export class VerifyDialog {
  /** @param {(yes: boolean) => void} answer what the user's button says */
  constructor(answer) {
    this.dialog = /** @type {HTMLDialogElement} */ (byId("verify-dialog"));
    /** The question shown (or dismissed) last: flow and stage. */
    this.asked = "";
    /** @type {boolean | null} the button pressed for the question shown */
    this._answer = null;
    byId("verify-yes").addEventListener("click", () => this._close(true));
    byId("verify-no").addEventListener("click", () => this._close(false));
    this.dialog.addEventListener("close", () => {
      const answered = this._answer;
      this._answer = null;
      if (answered !== null) answer(answered);
    });
  }

  /**
   * Show the question the chat has now, or close the dialog when it has none.
   * @param {Prompt} prompt
   */
  update(prompt) {
    if (prompt === null) {
      if (this.dialog.open) this.dialog.close();
      this.asked = "";
      return;
    }
    const key = `${prompt.flow} ${prompt.stage}`;
    if (key === this.asked) return;
    this.asked = key;
    const request = prompt.stage === "request";
    byId("verify-title").textContent = request
      ? `${prompt.nick} wants to verify you`
      : `Verify ${prompt.nick}`;
    byId("verify-text").textContent = request
      ? `${prompt.nick} (${prompt.fingerprint}) asks to compare emoji with you, to prove that the` +
        " key this server shows for each of you is the other's."
      : `Compare these with what ${prompt.nick} sees, in person or on a call. Only if they are the same,` +
        ` and in the same order, is the key ${prompt.fingerprint} really ${prompt.nick}'s.`;
    const list = byId("verify-emoji");
    list.replaceChildren(
      ...prompt.emoji.map(([picture, name]) => {
        const item = document.createElement("li");
        const shown = document.createElement("span");
        shown.className = "picture";
        shown.setAttribute("aria-hidden", "true");
        shown.textContent = picture;
        const label = document.createElement("span");
        label.textContent = name;
        item.append(shown, label);
        return item;
      }),
    );
    list.hidden = request;
    const numbers = byId("verify-numbers");
    numbers.textContent = request ? "" : `Or the numbers: ${prompt.numbers.join(" ")}`;
    numbers.hidden = request;
    byId("verify-yes").textContent = request ? "Start verifying" : "They match";
    const no = byId("verify-no");
    no.textContent = request ? "Refuse" : "They don't match";
    this._answer = null;
    if (this.dialog.open) this.dialog.close();
    // The safe answer has the focus: a stray Enter verifies nobody.
    openDialog(this.dialog, no);
  }

  /** @param {boolean} yes */
  _close(yes) {
    this._answer = yes;
    this.dialog.close();
  }
}
