// The page's connection to the chat, from first contact to reconnects (the terminal client's
// client/sessions.py in the browser): connect, decide whether to trust the server's key, say
// hello, hand frames to the chat logic and its lines to the view, and after a lost connection
// try again with full-jitter backoff, rejoining rooms, without losing what is on screen. A
// changed key, a refused invitation, a "no" to a new key, or the server's `bye` (a kick, a ban)
// stop it for good. Everything it handles runs one step at a time, in order, through one queue.
// The device's end-to-end state that a step changed is sealed into IndexedDB (the vault) before
// anything the step queued is sent: an inbox item is acknowledged only once what it changed is
// kept, and a Megolm index is never used twice across a reload.

import { alertName } from "../protocol/alerts.js";
import { backoffDelay, describeDelay } from "./backoff.js";
import { Link } from "./link.js";
import { error } from "./lines.js";
import { loadLedger, loadPin, saveLedger, savePin } from "./store.js";
import { NOT_TRUSTED, decideTrust } from "./trust.js";

// How long a ledger change waits before it is written: one write for a burst of lines.
const LEDGER_SAVE_DELAY_MS = 1000;

/**
 * @typedef {"connecting" | "trust" | "connected" | "reconnecting" | "stopped"} SessionState
 * @typedef {{
 *   lines: (lines: import("./lines.js").Line[]) => void,
 *   status: (text: string, state: SessionState) => void,
 *   changed: () => void,
 *   askTrust: (fingerprint: string, host: string) => Promise<boolean>,
 *   stop: (kind: "changed" | "refused" | "untrusted" | "dismissed", message: string) => void,
 * }} SessionView
 *   `changed`: the chat state the view draws from (rooms, members, nick) may have changed.
 */

/** @returns {number} seconds since the Unix epoch */
const wallClock = () => Date.now() / 1000;

export class Session {
  /**
   * @param {import("./chat_client.js").ChatClient} chat
   * @param {{url: string, host: string, invited: string, view: SessionView,
   *          vault?: import("../e2e/vault.js").Vault | null}} options
   *   `invited`: the fingerprint an invitation link pins ("" without one); `vault`: where the
   *   chat's device is kept (none when the page has no device)
   */
  constructor(chat, { url, host, invited, view, vault = null }) {
    this.chat = chat;
    this.vault = vault;
    this.url = url;
    this.host = host;
    this.invited = invited;
    this.view = view;
    /** @type {Link | null} */
    this.link = null;
    /** The large room whose members are shown ("" for none): watched, after a reconnect too. */
    this.watchRoom = "";
    this.stopped = false;
    this.attempt = 0;
    /** @type {Promise<void>} */
    this._queue = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._tickTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._saveTimer = undefined;
  }

  /**
   * Run `step` after every step before it, one at a time: the chat logic and the connection
   * are never in two steps at once. A step that throws shows an error line; the queue goes on.
   * @param {() => Promise<void>} step
   */
  run(step) {
    this._queue = this._queue.then(step).catch((problem) => {
      console.error(problem);
      this.view.lines(error(`internal error in the web client: ${problem}`, wallClock()));
    });
  }

  start() {
    this.run(async () => this._connect());
  }

  /**
   * What the user typed in buffer `target` (a room or '@nick'; "" for the server buffer).
   * @param {string} text
   * @param {string} target
   */
  input(text, target) {
    this.run(async () => this._show(await this.chat.userInput(text, wallClock(), target)));
  }

  /**
   * The user looks at `room` ("" for none): lines typed without a target go there, and a large
   * room's member list is kept current while it is shown.
   * @param {string} room
   * @param {boolean} membersShown
   */
  showRoom(room, membersShown) {
    this.run(async () => {
      if (room && this.chat.talksIn(room)) this.chat.room = room;
      this.watchRoom = membersShown ? room : "";
      await this._show([]);
    });
  }

  /** @param {string} room */
  loadOlder(room) {
    this.run(async () => this._show(await this.chat.loadOlder(room, wallClock())));
  }

  /** The network is back: try now rather than at the end of the backoff. */
  retryNow() {
    if (this._retryTimer === undefined || this.stopped) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = undefined;
    this.run(async () => this._connect());
  }

  /** Write the ledger of lines shown now (the page is going away). */
  saveNow() {
    clearTimeout(this._saveTimer);
    this._saveTimer = undefined;
    if (this.chat.network && this.chat.verifier.ledger.dirty)
      saveLedger(this.chat.network, this.chat.verifier.ledger);
  }

  async _connect() {
    if (this.stopped || this.link !== null) return;
    this.view.status(`Connecting to ${this.host}…`, "connecting");
    const link = new Link(
      this.url,
      this.chat.identity,
      {
        run: (step) => this.run(step),
        events: (events) => this._events(link, events),
        ended: (opened) =>
          this._lost(link, opened ? this._brokenWords(link) : `Can't reach ${this.host}`),
      },
      wallClock(),
    );
    this.link = link;
    const deadline = /** @type {number} */ (link.connection.deadline);
    setTimeout(
      () => this.run(async () => (link === this.link ? link.timer(wallClock()) : undefined)),
      (deadline - wallClock()) * 1000,
    );
  }

  /** @param {Link} link @returns {string} */
  _brokenWords(link) {
    return link.established
      ? "The connection to the server broke"
      : `The connection to ${this.host} broke while connecting`;
  }

  /**
   * @param {Link} link
   * @param {import("../protocol/events.js").ConnectionEvent[]} events
   */
  async _events(link, events) {
    for (const event of events) {
      if (link !== this.link) return;
      if (event.type === "server_authenticated")
        await this._decide(link, event.identity.fingerprint);
      else if (event.type === "handshake_complete")
        await this._connected(link, event.peer.fingerprint);
      else if (event.type === "data_received")
        await this._show(await this.chat.receive(event.data, wallClock()));
      else if (event.type === "connection_closed") {
        link.shut();
        await this._lost(link, "The server closed the connection");
      } else if (event.type === "connection_failed") {
        const { error: failure } = event;
        link.shut();
        const words = failure.received
          ? `The server ended the connection (${alertName(failure.alert)}: ${failure.reason})`
          : `${this._brokenWords(link)} (${failure.reason})`;
        await this._lost(link, words);
      }
    }
  }

  /**
   * The server proved it holds `fingerprint`: trust it, ask, or stop.
   * @param {Link} link
   * @param {string} fingerprint
   */
  async _decide(link, fingerprint) {
    const decision = decideTrust({
      host: this.host,
      presented: fingerprint,
      pinned: loadPin(),
      invited: this.invited,
    });
    if (decision.kind === "trust") {
      if (decision.remember) savePin(fingerprint);
      await link.trust();
      return;
    }
    if (decision.kind === "ask") {
      this.view.status("Is this the server you meant? Waiting for your answer…", "trust");
      if (await this.view.askTrust(fingerprint, this.host)) {
        savePin(fingerprint);
        // If the server gave up waiting meanwhile, the link's end comes next, and the reconnect
        // finds the key pinned.
        if (link.waitsForTrust) await link.trust();
        return;
      }
      await this._stop(link, "untrusted", NOT_TRUSTED);
      return;
    }
    await this._stop(link, decision.kind, decision.message);
  }

  /**
   * @param {Link} link
   * @param {"changed" | "refused" | "untrusted"} kind
   * @param {string} message
   */
  async _stop(link, kind, message) {
    this.stopped = true;
    await link.reject(message);
    this.view.status(
      kind === "changed" ? "Not connected: the server's key has changed." : message,
      "stopped",
    );
    this.view.stop(kind, message);
  }

  /**
   * The secure channel is up: the lines on it are signed for `network`; say hello.
   * @param {Link} link
   * @param {string} network
   */
  async _connected(link, network) {
    link.established = true;
    this.attempt = 0;
    if (network !== this.chat.network) {
      this.saveNow();
      this.chat.useNetwork(network, loadLedger(network, Date.now()));
    }
    this.view.status(`Connected to ${this.host}; saying hello…`, "connecting");
    const hello = this.chat.helloFrame();
    await this._keepDevice();
    await link.send([hello]);
  }

  /**
   * Show `lines`, send what the chat logic queued, and wake it when its pace allows more.
   * @param {import("./lines.js").Line[]} lines
   */
  async _show(lines) {
    // Nothing goes out when the watch is as it should be already.
    if (this.chat.ready)
      lines = [...lines, ...(await this.chat.watchOnly(this.watchRoom, wallClock()))];
    if (lines.length) this.view.lines(lines);
    await this._keepDevice();
    const frames = this.chat.takeOutbox();
    if (this.link !== null) await this.link.send(frames);
    clearTimeout(this._tickTimer);
    const wakeAt = this.chat.wakeAt;
    if (wakeAt !== null) {
      this._tickTimer = setTimeout(
        () => this.run(async () => this._show(await this.chat.tick(wallClock()))),
        Math.max(0, wakeAt - wallClock()) * 1000,
      );
    }
    if (this.chat.verifier.ledger.dirty && this._saveTimer === undefined) {
      this._saveTimer = setTimeout(() => this.saveNow(), LEDGER_SAVE_DELAY_MS);
    }
    if (this.link?.connected && this.chat.nick) {
      const degraded = this.chat.degraded
        ? "; messages wait: the server cannot reach its cluster's store"
        : "";
      this.view.status(`Connected to ${this.host} as ${this.chat.nick}${degraded}`, "connected");
    }
    this.view.changed();
  }

  /** Seal and store the device's states that changed, before anything is sent. */
  async _keepDevice() {
    if (this.vault !== null && this.chat.crypto !== null)
      await this.vault.save(this.chat.crypto.takeDirty());
  }

  /**
   * The connection `link` is gone: try again, unless the page stopped or the server dismissed it.
   * @param {Link} link
   * @param {string} words what happened, in plain words
   */
  async _lost(link, words) {
    if (link !== this.link || this.stopped) return;
    this.link = null;
    clearTimeout(this._tickTimer);
    if (this.chat.dismissed) {
      this.stopped = true;
      const message = `Disconnected by the server: ${this.chat.dismissed}`;
      this.view.status(message, "stopped");
      this.view.stop("dismissed", message);
      return;
    }
    this.chat.prepareReconnect();
    const delay = backoffDelay(this.attempt, Math.random);
    this.attempt += 1;
    const counted = this.attempt > 1 ? ` (attempt ${this.attempt})` : "";
    this.view.status(`${words}; reconnecting ${describeDelay(delay)}${counted}…`, "reconnecting");
    this.view.changed();
    this._retryTimer = setTimeout(() => {
      this._retryTimer = undefined;
      this.run(async () => this._connect());
    }, delay * 1000);
  }
}
