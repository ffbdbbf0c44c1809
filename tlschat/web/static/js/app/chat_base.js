// One user's chat state in the browser: who they are, where they talk, whom they ignore, what
// they owe the server (the outbox), and what it takes to start again after a lost connection.
// Pure, as the Python client's chat/client/base.py it ports: frames in, lines and frames out,
// time passed in. The chat logic is split by concern into a chain of classes, each a module:
// ClientBase (here) <- ClientSending <- ClientRosters <- ClientHistory <- ClientEncrypting <-
// ClientDecrypting <- ClientVerifying <- ClientInbox <- ChatClient.

import { ROOMS } from "../e2e/crypto.js";
import { fingerprintsEqual } from "../protocol/identity.js";
import { DeliveryQueue } from "./delivery.js";
import { Verifier } from "./verifier.js";

export const DEFAULT_ROOM = "#general";
// How the server refuses a message whose counter it has seen: for a re-sent one, the proof
// that the first sending was delivered before the connection was lost.
export const REPLAYED_COUNTER = "replayed or out-of-order counter";

/**
 * Someone in a room, as the server last described them.
 * @typedef {{nick: string, fingerprint: string, away: string}} Member
 */

export class ClientBase {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick the nick to ask for
   */
  constructor(identity, nick) {
    this.identity = identity;
    this.wantedNick = nick;
    this.nick = "";
    /** @type {string[]} */
    this.rooms = [];
    this.room = DEFAULT_ROOM;
    /** An invitation's secret, sent in every `hello` of this page (ignored once it was used). */
    this.invitation = "";
    /** Why the server said goodbye (`bye`): a kick or a ban is final, no reconnect. */
    this.dismissed = "";
    /** @type {import("../protocol/frames.js").Frame[]} */
    this.outbox = [];
    this._counter = 0;
    // The first key seen for each nick in this page; another key later is flagged loudly.
    /** @type {Map<string, string>} */
    this._nickKeys = new Map();
    /** @type {Map<string, string>} casefolded nick -> fingerprint */
    this.directory = new Map();
    /** @type {Set<string>} fingerprints */
    this.ignored = new Set();
    /** @type {[string, string] | null} nick and fingerprint of the last private line */
    this.lastPrivate = null;
    /** @type {string[]} */
    this._rejoin = [];
    // The rooms the page was in when its connection was lost, until each is back: their
    // buffers stay, and what is typed for them meanwhile waits.
    /** @type {Set<string>} */
    this.rejoining = new Set();
    /** @type {Map<string, Map<string, Member>>} room -> casefolded nick -> member */
    this.members = new Map();
    /** @type {Map<string, string>} each room's topic, as last heard */
    this.topics = new Map();
    /** Rooms known to be end-to-end encrypted, this page. */
    /** @type {Set<string>} */
    this.encryptedRooms = new Set();
    /**
     * This browser's device (the end-to-end layer), or null: then private lines and lines for
     * encrypted rooms are refused, saying why.
     * @type {import("../e2e/crypto.js").ClientCrypto | null}
     */
    this.crypto = null;
    this.degraded = false;
    this.verifier = new Verifier(identity.fingerprint);
    this.queue = new DeliveryQueue();
    // Nothing queued goes out before the server's welcome and the rejoin of every room: a
    // message sent first could be refused for a room not yet rejoined.
    this._welcomed = false;
    /** @type {Set<string>} */
    this._awaitingRejoin = new Set();
    // The nick whose key a `whois` is asking for, so that a /msg can be signed for it.
    this._resolving = "";
    /** @type {number | null} when the glue should call tick(): the pace allows the next line */
    this.wakeAt = null;
  }

  /** @returns {string} the fingerprint of the server key of this connection */
  get network() {
    return this.verifier.network;
  }

  /** @returns {boolean} welcomed and every room rejoined: what is sent now goes out */
  get ready() {
    return this._welcomed && this._awaitingRejoin.size === 0;
  }

  /**
   * Connected to the server whose key is `network`; `ledger` is what was shown on it before.
   * @param {string} network
   * @param {import("./seen.js").SeenLedger} ledger
   */
  useNetwork(network, ledger) {
    this.verifier.useNetwork(network, ledger);
  }

  /** @returns {import("../protocol/frames.js").Frame} */
  helloFrame() {
    /** @type {import("../protocol/frames.js").Frame} */
    const frame = { type: "hello", nick: this.wantedNick };
    if (this.invitation) frame.invitation = this.invitation;
    return frame;
  }

  /**
   * Before a new connection: ask for the same nick and rooms; keep keys, ignores, counters, and
   * the room the user talks in. Messages in flight go again, unchanged, once the new session
   * has rejoined. Idempotent, since several attempts may fail before one gets through.
   */
  prepareReconnect() {
    if (this.rooms.length) {
      const current = this.room;
      this._rejoin = this.rooms.filter((room) => room !== DEFAULT_ROOM && room !== current);
      if (current && (this._rejoin.length || current !== DEFAULT_ROOM)) this._rejoin.push(current);
      this.rejoining = new Set(this.rooms);
    }
    this.wantedNick = this.nick || this.wantedNick;
    this.rooms = [];
    this.members.clear();
    this.outbox = [];
    this.degraded = false;
    this._welcomed = false;
    this._resolving = "";
    this._awaitingRejoin.clear();
    this.queue.connectionLost();
    this.wakeAt = null;
  }

  /**
   * Whether what is typed for `room` goes there: the client is in it, or a rejoin brings it back.
   * @param {string} room
   */
  talksIn(room) {
    return this.rooms.includes(room) || this.rejoining.has(room);
  }

  /** @returns {import("../protocol/frames.js").Frame[]} */
  takeOutbox() {
    const frames = this.outbox;
    this.outbox = [];
    return frames;
  }

  /**
   * `room` is end-to-end encrypted: so it stays for this device, whatever a server says later.
   * @param {string} room
   */
  _roomIsEncrypted(room) {
    this.encryptedRooms.add(room);
    if (this.crypto?.rooms.markEncrypted(this.network, room)) this.crypto.mark(ROOMS);
  }

  /**
   * A member left `room`: this device's key for it is renewed before its next line.
   * @param {string} room
   * @param {string} fingerprint
   */
  _memberGone(room, fingerprint) {
    if (this.crypto?.rooms.memberLeft(this.network, room, fingerprint)) this.crypto.mark(ROOMS);
  }

  /** @param {string} nick @param {string} fingerprint */
  _learn(nick, fingerprint) {
    this.directory.set(nick.toLowerCase(), fingerprint);
  }

  /**
   * @param {string} nick
   * @param {string} fingerprint
   * @returns {boolean} the nick came with another key before, in this page
   */
  _keyChanged(nick, fingerprint) {
    const folded = nick.toLowerCase();
    if (!this._nickKeys.has(folded)) this._nickKeys.set(folded, fingerprint);
    return !fingerprintsEqual(/** @type {string} */ (this._nickKeys.get(folded)), fingerprint);
  }
}
