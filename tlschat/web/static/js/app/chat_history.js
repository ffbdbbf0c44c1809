// Received lines, and history (ports of chat/client/decrypting.py's signed lines and
// chat/client/scrollback.py): every line is verified (✓, or ✗ UNVERIFIED with the check that
// failed, section 21); history comes on join and, page by page, on demand (`history #room
// SENDER:COUNTER`, one page at a time per room; a page nobody asked for is dropped). Lines the
// end-to-end layer sealed are chat_decrypting.js's.

import { checkMessage, messageKey, parseSignedMessage } from "../protocol/envelope.js";
import { FrameError, fieldStr } from "../protocol/frames.js";
import { ClientRosters } from "./chat_rosters.js";
import { serverCommand } from "./chat_commands.js";
import { ACTION_PREFIX, FOUND, describeAge, error, lineId, makeLine, notice } from "./lines.js";

/** The kind of the lines that introduce a page of older lines. */
export const PAGE = "page";
/** Results of one /search, at most (the server sends 50). */
const MAX_RESULTS = 50;
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/**
 * What the client holds of one room's history.
 * @typedef {{oldest: string, older: boolean, pending: string}} Scrollback
 *   `oldest`: the id of the oldest line held; `older`: the server stores lines before it;
 *   `pending`: the BEFORE of the page asked for, until it comes.
 */

/** @param {string} room */
export const startOfHistory = (room) => `— start of the history of ${room} —`;

/** @param {Frame} frame @returns {boolean} */
export const isEncrypted = (frame) => "megolm" in frame || "olm_private" in frame;

export class ClientHistory extends ClientRosters {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   */
  constructor(identity, nick) {
    super(identity, nick);
    /** @type {Map<string, Scrollback>} */
    this.scrollback = new Map();
  }

  prepareReconnect() {
    super.prepareReconnect();
    // What was shown stays, and with it where its history starts; a page asked for on the lost
    // connection will not come.
    for (const state of this.scrollback.values()) state.pending = "";
  }

  /**
   * @param {string} room
   * @returns {boolean} the server stores lines of `room` before those shown, none being asked for
   */
  hasOlder(room) {
    const state = this.scrollback.get(room);
    return state !== undefined && state.older && Boolean(state.oldest) && !state.pending;
  }

  /**
   * Ask for the page of `room`'s lines before the oldest one held (the current room's if
   * empty); the page comes later, as lines marked `earlier`.
   * @param {string} room
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async loadOlder(room, now) {
    room = room || this.room;
    if (!this.rooms.includes(room))
      return error(room ? `you are not in ${room}` : "you are in no room", now);
    const state = this._state(room);
    if (state.pending) return notice(`Still loading earlier lines of ${room}…`, now);
    if (!(state.older && state.oldest)) {
      return notice(`No earlier lines of ${room}: that is the start of its history`, now);
    }
    state.pending = state.oldest;
    return this._ask(serverCommand("history", `${room} ${state.oldest}`), `/more ${room}`, now);
  }

  /** @param {string} room @returns {Scrollback} */
  _state(room) {
    let state = this.scrollback.get(room);
    if (state === undefined) {
      state = { oldest: "", older: false, pending: "" };
      this.scrollback.set(room, state);
    }
    return state;
  }

  /** @param {Frame} frame @param {number} now */
  async _onJoined(frame, now) {
    const lines = await super._onJoined(frame, now);
    this._state(fieldStr(frame, "room", 64));
    return lines;
  }

  /** @param {Frame} frame @param {number} now */
  async _onParted(frame, now) {
    this.scrollback.delete(fieldStr(frame, "room", 64));
    return super._onParted(frame, now);
  }

  /**
   * Live lines of a room whose history held nothing: the first one is the oldest held.
   * @param {Line[]} lines
   */
  _hold(lines) {
    for (const line of lines) {
      if (!line.id || !line.room.startsWith("#") || line.history || line.earlier) continue;
      const state = this.scrollback.get(line.room);
      if (state !== undefined && !state.oldest) state.oldest = line.id;
    }
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onHistory(frame, now) {
    const room = fieldStr(frame, "room", 64);
    const messages = frame.messages;
    if (!Array.isArray(messages)) throw new FrameError("'messages' must be a list");
    if (!this.rooms.includes(room)) {
      return error(
        `dropped ${messages.length} lines of history of ${room}, a room you are not in`,
        now,
      );
    }
    const entries = messages.filter(
      (item) => item !== null && typeof item === "object" && !Array.isArray(item),
    );
    if (frame.before !== undefined)
      return this._page(room, fieldStr(frame, "before", 256), entries, frame, now);
    const state = this._state(room);
    if (!state.oldest && entries.length) {
      state.oldest = entryId(entries[0]);
      state.older = frame.older === true;
    }
    const missed = entries.filter((item) => !this.verifier.wasShown(item.sender, item.counter));
    let heading;
    if (missed.length === entries.length) heading = `Last ${messages.length} messages of ${room}:`;
    else if (missed.length)
      heading = `${missed.length} missed message${missed.length === 1 ? "" : "s"} of ${room}:`;
    else return [];
    const lines = [makeLine("notice", now, heading, { room })];
    for (const item of missed) {
      const line = await this._messageLine(item, now, room);
      if (line !== null) lines.push({ ...line, history: true });
    }
    return lines;
  }

  /**
   * A page of older lines: taken only as the answer to the page asked for.
   * @param {string} room
   * @param {string} before
   * @param {Frame[]} entries
   * @param {Frame} frame
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _page(room, before, entries, frame, now) {
    const state = this.scrollback.get(room);
    if (state === undefined || !state.pending || state.pending !== before) {
      return error(
        `dropped a page of ${room}'s history this client did not ask for (before ${before})`,
        now,
      );
    }
    state.pending = "";
    const first = entries.length ? entryId(entries[0]) : "";
    // A page that does not reach further back ends the history: asking again would bring it again.
    state.older = frame.older === true && Boolean(first) && first !== state.oldest;
    if (first) state.oldest = first;
    /** @type {Line[]} */
    const lines = [];
    for (const item of entries) {
      const line = await this._messageLine(item, now, room);
      if (line !== null) lines.push({ ...line, history: true, earlier: true });
    }
    const noun = lines.length === 1 ? "line" : "lines";
    const heading = makeLine(PAGE, now, `${lines.length} earlier ${noun} of ${room}:`, {
      room,
      earlier: true,
    });
    if (state.older) return [heading, ...lines];
    return [heading, ...lines, { ...heading, text: startOfHistory(room) }];
  }

  /**
   * An error that refuses a page asked for: it will not come. A line gone with retention ends
   * the history there (the older ones went first).
   * @param {string} text
   */
  _pageRefused(text) {
    for (const [room, state] of this.scrollback) {
      if (!state.pending) continue;
      if (
        text === `${room} holds no line ${state.pending} (any more)` ||
        text.startsWith("usage: /history")
      ) {
        state.pending = "";
        state.older = false;
      } else if (text.startsWith("slow down")) {
        state.pending = "";
      }
    }
  }

  /**
   * The line to show for a received plain message, or null: ignored, or shown already.
   * @param {Frame} frame
   * @param {number} now
   * @param {string} [historyRoom] the room a history entry came for
   * @returns {Promise<Line | null>}
   */
  async _messageLine(frame, now, historyRoom = "") {
    const message = parseSignedMessage(frame);
    return this._signedLine(
      message,
      fieldStr(frame, "from", 64),
      messageKey(frame),
      now,
      historyRoom,
    );
  }

  /**
   * The line to show for `message` as its sender signed it, or null: ignored, or shown already.
   * @param {import("../protocol/envelope.js").SignedMessage} message
   * @param {string} nick
   * @param {Uint8Array} keyDer the sender's key, as the server relayed it
   * @param {number} now
   * @param {string} [checkRoom] for history, the room it is the history of ("@" for a private
   *   line from the inbox: its target and signature are checked, its replays are Olm's)
   * @param {{heldBack?: boolean, encrypted?: boolean}} [options] `heldBack`: a live line shown
   *   only now (from the inbox, or once its key came), dated by its own age; `encrypted`: it
   *   came through the end-to-end layer
   * @returns {Promise<Line | null>}
   */
  async _signedLine(message, nick, keyDer, now, checkRoom = "", options = {}) {
    if (this.ignored.has(message.sender)) return null;
    const stale = this.verifier.ledger.isStale(message.timestampMs, Math.floor(now * 1000));
    const verdict = await this.verifier.check(message, keyDer, this.rooms, checkRoom, now);
    if (verdict.duplicate) return null;
    const late = verdict.late || (Boolean(options.heldBack) && verdict.verified && stale);
    const isPrivate = message.target.startsWith("@");
    if (isPrivate && verdict.verified) {
      this.lastPrivate = [nick, message.sender];
      this._learn(nick, message.sender);
    }
    let { body } = message;
    let kind = isPrivate ? "private" : "message";
    if (body.startsWith(ACTION_PREFIX)) [kind, body] = ["action", body.slice(ACTION_PREFIX.length)];
    const verifiedKeys = this.crypto?.verified;
    // A nick verified with another key than the one that signed this line is flagged too.
    const otherKey =
      verifiedKeys !== undefined &&
      verifiedKeys.fingerprintsFor(nick).length > 0 &&
      !verifiedKeys.isVerified(message.sender);
    return makeLine(kind, message.timestampMs / 1000, body, {
      nick,
      fingerprint: message.sender,
      room: isPrivate ? "" : message.target,
      verified: verdict.verified,
      keyChanged: this._keyChanged(nick, message.sender) || otherKey,
      history: late,
      problem: verdict.problem,
      note: late ? `signed ${describeAge(now - message.timestampMs / 1000)} ago; not new` : "",
      id: lineId(message.sender, message.counter),
      encrypted: Boolean(options.encrypted),
      trusted: verdict.verified && Boolean(verifiedKeys?.isVerified(message.sender)),
    });
  }

  /**
   * The answer to /search: each line checked as a history line, without recording it as shown.
   * @param {Frame} frame
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _onSearch(frame, now) {
    const query = fieldStr(frame, "query", 256);
    const items = frame.messages;
    if (!Array.isArray(items)) throw new FrameError("'messages' must be a list");
    /** @type {Line[]} */
    const found = [];
    for (const item of items.slice(0, MAX_RESULTS)) {
      const line = await this._foundLine(item, now);
      if (line !== null) found.push(line);
    }
    const noun = found.length === 1 ? "result" : "results";
    return [
      makeLine("notice", now, `Search for '${query}': ${found.length} ${noun}, newest first`),
      ...found,
    ];
  }

  /** @param {unknown} item @param {number} now @returns {Promise<Line | null>} */
  async _foundLine(item, now) {
    if (item === null || typeof item !== "object" || isEncrypted(/** @type {Frame} */ (item)))
      return null;
    const frame = /** @type {Frame} */ (item);
    let message, nick, keyDer;
    try {
      message = parseSignedMessage(frame);
      nick = fieldStr(frame, "from", 64);
      keyDer = messageKey(frame);
    } catch (problem) {
      if (problem instanceof FrameError) return null;
      throw problem;
    }
    if (this.ignored.has(message.sender)) return null;
    const { verified, problem } = await checkMessage(message, keyDer, {
      network: this.network,
      ownFingerprint: this.identity.fingerprint,
      rooms: this.rooms,
      now,
    });
    let { body } = message;
    let kind = "message";
    if (body.startsWith(ACTION_PREFIX)) [kind, body] = ["action", body.slice(ACTION_PREFIX.length)];
    // A copy shown with the results, where the user is: its room named, never filed under it.
    return makeLine(kind, message.timestampMs / 1000, `${message.target}: ${body}`, {
      nick,
      fingerprint: message.sender,
      verified,
      problem,
      history: true,
      note: FOUND,
    });
  }
}

/** @param {Frame} entry @returns {string} the id of a history entry, or "" when it names none */
function entryId(entry) {
  const { sender, counter } = entry;
  if (typeof sender !== "string" || !sender || sender.length > 64) return "";
  if (!Number.isSafeInteger(counter) || Number(counter) < 0 || Number(counter) > MAX_COUNTER)
    return "";
  return lineId(sender, Number(counter));
}
