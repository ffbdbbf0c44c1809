// The page: what the session reports, drawn (lines into buffers, the panes, the status line),
// and what the user does, handed to the session (typing, switching rooms, opening a
// conversation, loading older lines). The one module that knows the page's elements.

import { Buffers, SERVER_BUFFER } from "./buffers.js";
import { makeLine } from "./lines.js";
import { askToNotify, notify, notifyState } from "./notifications.js";
import { askTrust, openHelp, openSwitcher, showStop } from "./view_dialogs.js";
import { MessageList } from "./view_messages.js";
import { VerifyDialog } from "./view_verify.js";
import { drawBufferLists, drawMembers, drawYou } from "./view_panes.js";
import { saveNick } from "./store.js";

// Wide enough for the members pane beside the messages (app.css's breakpoint).
const WIDE = "(min-width: 761px)";
const PRIVATE_NOTE =
  "Private messages are end-to-end encrypted (🔒): only this browser's device, the other" +
  " person's devices and your other devices can read them. /verify NICK compares emoji with them.";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @implements {import("./session.js").SessionView} */
export class AppView {
  /** @param {import("./chat_client.js").ChatClient} chat */
  constructor(chat) {
    this.chat = chat;
    /** @type {import("./session.js").Session | null} */
    this.session = null;
    this.buffers = new Buffers();
    this.messages = new MessageList(
      byId("messages"),
      /** @type {HTMLOListElement} */ (byId("message-rows")),
    );
    /** @type {number | null} where the read marker of the buffer shown goes */
    this.markerAt = null;
    this.followedRoom = "";
    this.savedNick = "";
    this.app = byId("app");
    this.composer = /** @type {HTMLTextAreaElement} */ (byId("composer"));
    this.wide = window.matchMedia(WIDE);
    this.verify = new VerifyDialog((yes) =>
      this.session?.input(`/verify ${yes ? "yes" : "no"}`, ""),
    );
  }

  /** @param {import("./session.js").Session} session */
  attach(session) {
    this.session = session;
    this._listen();
    this._drawPanes();
    this.messages.show(this.buffers.get(SERVER_BUFFER), null, "");
    this.composer.focus();
  }

  // --- what the session reports -------------------------------------------------------------

  /** @param {import("./lines.js").Line[]} lines */
  lines(lines) {
    const { touched, rings } = this.buffers.file(lines, this.chat.nick);
    notify(
      rings,
      (line) => this.buffers.route(line),
      (name) => this.switchTo(name),
    );
    if (touched.has(this.buffers.current)) this._drawMessages();
    this._drawPanes();
  }

  /**
   * @param {string} text
   * @param {string} state
   */
  status(text, state) {
    const line = byId("status");
    line.textContent = text;
    line.dataset.state = state;
  }

  changed() {
    // The room the chat logic talks in moved (a room joined at the user's /join, the server's
    // first join, a room left): the page follows it.
    const room = this.chat.room;
    if (room && room !== this.followedRoom && this.chat.rooms.includes(room)) {
      this.followedRoom = room;
      if (room !== this.buffers.current) this.switchTo(room, false);
    }
    if (this.chat.nick && this.chat.nick !== this.savedNick) {
      saveNick(this.chat.nick);
      this.savedNick = this.chat.nick;
    }
    this.verify.update(this.chat.verificationPrompt());
    // The invitation did its work once welcomed: its secret leaves the address bar.
    if (this.chat.ready && this.chat.invitation && location.hash)
      history.replaceState(null, "", location.pathname + location.search);
    this._drawPanes();
  }

  /**
   * @param {string} fingerprint
   * @param {string} host
   */
  async askTrust(fingerprint, host) {
    const trusted = await askTrust(fingerprint, host);
    this.composer.focus();
    return trusted;
  }

  /**
   * @param {"changed" | "refused" | "untrusted" | "dismissed" | "broken"} kind
   * @param {string} message
   */
  stop(kind, message) {
    this.composer.disabled = true;
    /** @type {HTMLButtonElement} */ (byId("send-button")).disabled = true;
    showStop(kind, message);
  }

  // --- what the user does -------------------------------------------------------------------

  /**
   * Show buffer `name`.
   * @param {string} name
   * @param {boolean} [focus] put the focus in the message box
   */
  switchTo(name, focus = true) {
    const buffer = this.buffers.switch(name);
    this.markerAt = buffer.readUpto < buffer.lines.length ? buffer.readUpto : null;
    if (name.startsWith("#")) this.followedRoom = name;
    this.app.classList.remove("nav-open");
    byId("nav-toggle").setAttribute("aria-expanded", "false");
    this._drawMessages();
    this._drawPanes();
    this.session?.showRoom(name.startsWith("#") ? name : "", this._membersShown());
    if (focus) this.composer.focus();
  }

  /** @param {string} nick open the conversation with `nick` */
  openConversation(nick) {
    const name = this.buffers.findPrivate(nick);
    if (!this.buffers.buffers.has(name)) {
      this.buffers.get(name).lines.push(makeLine("notice", Date.now() / 1000, PRIVATE_NOTE));
    }
    this.switchTo(name);
  }

  _send() {
    const text = this.composer.value;
    if (!text.trim() || this.session === null) return;
    const current = this.buffers.current;
    this.session.input(text, current === SERVER_BUFFER ? "" : current);
    this.composer.value = "";
  }

  /** @returns {boolean} the members pane is on screen */
  _membersShown() {
    return this.wide.matches || this.app.classList.contains("members-open");
  }

  _listen() {
    const session = /** @type {import("./session.js").Session} */ (this.session);
    byId("composer-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this._send();
    });
    this.composer.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this._send();
      }
    });
    document.addEventListener("keydown", (event) => this._shortcut(event));
    for (const id of ["room-list", "private-list"]) {
      byId(id).addEventListener("click", (event) => {
        const item = /** @type {HTMLElement} */ (event.target).closest("[data-buffer]");
        if (item instanceof HTMLElement && item.dataset.buffer) this.switchTo(item.dataset.buffer);
      });
    }
    byId("member-list").addEventListener("click", (event) => {
      const item = /** @type {HTMLElement} */ (event.target).closest("[data-nick]");
      if (item instanceof HTMLElement && item.dataset.nick)
        this.openConversation(item.dataset.nick);
    });
    byId("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = /** @type {HTMLInputElement} */ (byId("join-input"));
      const room = input.value.trim();
      if (!room) return;
      session.input(`/join ${room.startsWith("#") ? room : `#${room}`}`, "");
      input.value = "";
    });
    byId("load-older").addEventListener("click", () => session.loadOlder(this.buffers.current));
    byId("help-button").addEventListener("click", () => openHelp());
    byId("reload-button").addEventListener("click", () => location.reload());
    byId("nav-toggle").addEventListener("click", () => this._toggle("nav-open", "nav-toggle"));
    byId("members-toggle").addEventListener("click", () => {
      this._toggle("members-open", "members-toggle");
      const current = this.buffers.current;
      session.showRoom(current.startsWith("#") ? current : "", this._membersShown());
    });
    byId("notify-button").addEventListener("click", async () => {
      await askToNotify();
      this._drawNotifyButton();
    });
    window.addEventListener("online", () => session.retryNow());
    window.addEventListener("pagehide", () => session.saveNow());
  }

  /**
   * @param {string} className
   * @param {string} buttonId
   */
  _toggle(className, buttonId) {
    const open = this.app.classList.toggle(className);
    byId(buttonId).setAttribute("aria-expanded", String(open));
  }

  /** @param {KeyboardEvent} event */
  _shortcut(event) {
    if (document.querySelector("dialog[open]")) return; // a dialog has the keys
    if (event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown")) {
      event.preventDefault();
      this.switchTo(
        this.buffers.step(event.key === "ArrowUp" ? -1 : 1),
        document.activeElement === this.composer,
      );
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      openSwitcher(this.buffers.names(), (name) => this.switchTo(name));
    } else if (event.key === "Escape" && this.app.matches(".nav-open, .members-open")) {
      this.app.classList.remove("nav-open", "members-open");
      byId("nav-toggle").setAttribute("aria-expanded", "false");
      byId("members-toggle").setAttribute("aria-expanded", "false");
    }
  }

  // --- drawing ------------------------------------------------------------------------------

  _drawMessages() {
    this.messages.show(this.buffers.get(this.buffers.current), this.markerAt, this.chat.nick);
  }

  _drawPanes() {
    const current = this.buffers.current;
    drawBufferLists(
      { rooms: byId("room-list"), conversations: byId("private-list") },
      this.buffers,
      (room) => this.chat.talksIn(room),
    );
    drawMembers({ count: byId("member-count"), list: byId("member-list") }, this.chat, current);
    drawYou(
      {
        nick: byId("you-nick"),
        fingerprint: byId("you-fingerprint"),
        server: byId("server-fingerprint"),
      },
      this.chat,
    );
    byId("buffer-title").textContent = current === SERVER_BUFFER ? "Server messages" : current;
    byId("buffer-topic").textContent = this.chat.topics.get(current) ?? "";
    byId("load-older").hidden = !(current.startsWith("#") && this.chat.hasOlder(current));
    this._drawNotifyButton();
  }

  _drawNotifyButton() {
    const button = /** @type {HTMLButtonElement} */ (byId("notify-button"));
    const state = notifyState();
    button.hidden = state === "unsupported";
    button.disabled = state !== "default";
    if (state === "granted")
      button.textContent = "Desktop notifications are on for mentions and private lines";
    if (state === "denied")
      button.textContent = "Notifications are blocked in this browser's settings";
  }
}
