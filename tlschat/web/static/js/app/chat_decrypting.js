// Received end-to-end encrypted lines (a port of chat/client/decrypting.py). An encrypted line
// is decrypted to the line its sender sealed, whose readable fields must be the frame's; then
// section 21's checks apply to it as to a plain line, so ✓ means the same, and 🔒 adds that the
// text came through the end-to-end layer from a device of that sender. A room line whose key has
// not come is shown waiting (with a `ref`) and replaced, under the same ref, when the key comes.
//
// Replays: a live room line decrypted at once is checked against what was shown, as a plain line
// is. A private line comes through the inbox, and a room line may be decrypted long after it
// came: for those, Olm (each private key comes once) and Megolm's memory of message indexes
// refuse replays, and the counter order is not applied.

import { ROOM_KEYS } from "../e2e/crypto.js";
import { b64decode } from "../e2e/codec.js";
import { openSealedLine, parseEncryptedSay } from "../e2e/frames.js";
import { openPrivate } from "../e2e/private.js";
import { MegolmError, MissingRoomKey } from "../e2e/room_keys.js";
import { Problem, messageKey, verifyMessage } from "../protocol/envelope.js";
import { FrameError, fieldStr } from "../protocol/frames.js";
import { PeerIdentity, fingerprintsEqual } from "../protocol/identity.js";
import { ClientEncrypting } from "./chat_encrypting.js";
import { isEncrypted } from "./chat_history.js";
import {
  ACTION_PREFIX,
  DELIVERED,
  NOT_DECRYPTED,
  WAITING_FOR_KEY,
  lineId,
  makeLine,
} from "./lines.js";
import { REPLAYED } from "./verifier.js";

/** Room lines held for their key at most; past it the oldest waits no longer. */
export const MAX_WAITING_LINES = 1000;
export const NO_DEVICE = "end-to-end encrypted, and this page has no device keys";
export const MISMATCH = "the sealed line does not match its frame";
/** What the verifier is told a private line from the inbox is "history of". */
const INBOX = "@";

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/** @typedef {import("../e2e/frames.js").EncryptedSay} EncryptedSay */
/** @typedef {import("../protocol/envelope.js").SignedMessage} SignedMessage */
/**
 * A room line waiting for its session's key.
 * @typedef {{frame: Frame, historyRoom: string, ref: number, sender: string, counter: number}}
 *   WaitingLine
 */

export class ClientDecrypting extends ClientEncrypting {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   * @param {import("../e2e/crypto.js").ClientCrypto | null} crypto
   */
  constructor(identity, nick, crypto) {
    super(identity, nick, crypto);
    /** @type {Map<string, WaitingLine[]>} by Megolm session id */
    this._waitingLines = new Map();
  }

  /** @param {Frame} frame @param {number} now @param {string} [historyRoom] */
  async _messageLine(frame, now, historyRoom = "") {
    if (isEncrypted(frame)) return this._encryptedLine(frame, now, historyRoom);
    return super._messageLine(frame, now, historyRoom);
  }

  // --- room lines ----------------------------------------------------------------------------

  /**
   * An encrypted `message` (live, or a history entry of `historyRoom`).
   * @param {Frame} frame
   * @param {number} now
   * @param {string} historyRoom
   * @returns {Promise<Line | null>}
   */
  async _encryptedLine(frame, now, historyRoom) {
    const outer = parseEncryptedSay(frame, false);
    const nick = fieldStr(frame, "from", 64);
    const keyDer = messageKey(frame);
    if (this.ignored.has(outer.sender)) return null;
    if (outer.megolm === null)
      return this._unreadable(outer, nick, "a private message comes through the inbox");
    this._roomIsEncrypted(historyRoom || outer.target);
    const problem = this._misplaced(outer, historyRoom);
    const crypto = this.crypto;
    if (problem || crypto === null) return this._unreadable(outer, nick, problem || NO_DEVICE);
    let plain;
    try {
      plain = crypto.rooms.decrypt(
        crypto.roomKeys,
        this.network,
        outer.target,
        outer.sender,
        outer.megolm,
      );
    } catch (failure) {
      if (failure instanceof MissingRoomKey)
        return this._waitForKey(frame, outer, nick, historyRoom);
      if (failure instanceof MegolmError) return this._unreadable(outer, nick, failure.message);
      throw failure;
    }
    crypto.mark(ROOM_KEYS);
    if (plain.duplicate && !historyRoom) {
      if (this.verifier.wasShown(outer.sender, outer.counter)) return null; // a copy after a reconnect
      return this._unreadable(outer, nick, REPLAYED); // decrypted before, on an earlier page
    }
    return this._opened(outer, plain.plaintext, nick, keyDer, now, historyRoom);
  }

  /**
   * Why the frame itself shows the line is not for here (nothing is decrypted then).
   * @param {EncryptedSay} outer
   * @param {string} historyRoom
   */
  _misplaced(outer, historyRoom) {
    if (outer.network !== this.network) return Problem.ANOTHER_NETWORK;
    if (!(historyRoom ? [historyRoom] : this.rooms).includes(outer.target))
      return Problem.ANOTHER_ROOM;
    return "";
  }

  /**
   * The line sealed in `sealed`, which must be the one the frame describes.
   * @param {EncryptedSay} outer
   * @param {Uint8Array} sealed
   * @param {string} nick
   * @param {Uint8Array} keyDer
   * @param {number} now
   * @param {string} checkRoom
   * @param {boolean} [heldBack]
   * @returns {Promise<Line | null>}
   */
  async _opened(outer, sealed, nick, keyDer, now, checkRoom, heldBack = false) {
    let inner;
    try {
      inner = openSealedLine(sealed);
    } catch (problem) {
      if (problem instanceof FrameError) return this._unreadable(outer, nick, problem.message);
      throw problem;
    }
    if (!sameFields(inner, outer)) return this._unreadable(outer, nick, MISMATCH);
    return this._signedLine(inner, nick, keyDer, now, checkRoom, { heldBack, encrypted: true });
  }

  /**
   * @param {EncryptedSay} outer
   * @param {string} nick
   * @param {string} problem
   * @returns {Line}
   */
  _unreadable(outer, nick, problem) {
    const isPrivate = outer.target.startsWith("@");
    return makeLine(isPrivate ? "private" : "message", outer.timestampMs / 1000, NOT_DECRYPTED, {
      nick,
      fingerprint: outer.sender,
      room: isPrivate ? "" : outer.target,
      verified: false,
      problem,
      encrypted: true,
    });
  }

  /**
   * @param {Frame} frame
   * @param {EncryptedSay} outer
   * @param {string} nick
   * @param {string} historyRoom
   * @returns {Line | null}
   */
  _waitForKey(frame, outer, nick, historyRoom) {
    if (this.verifier.wasShown(outer.sender, outer.counter) || this._isWaiting(outer)) return null;
    const session = /** @type {import("../e2e/frames.js").MegolmLine} */ (outer.megolm).session;
    const ref = this.queue.nextRef();
    const waiting = this._waitingLines.get(session) ?? [];
    waiting.push({ frame, historyRoom, ref, sender: outer.sender, counter: outer.counter });
    this._waitingLines.set(session, waiting);
    const total = [...this._waitingLines.values()].reduce((sum, lines) => sum + lines.length, 0);
    if (total > MAX_WAITING_LINES) {
      const [oldest] = [...this._waitingLines].sort((a, b) => a[1][0].ref - b[1][0].ref)[0];
      const lines = /** @type {WaitingLine[]} */ (this._waitingLines.get(oldest));
      lines.shift();
      if (!lines.length) this._waitingLines.delete(oldest);
    }
    return makeLine("message", outer.timestampMs / 1000, WAITING_FOR_KEY, {
      nick,
      fingerprint: outer.sender,
      room: outer.target,
      ref,
      encrypted: true,
      history: Boolean(historyRoom),
      id: lineId(outer.sender, outer.counter),
    });
  }

  /** @param {EncryptedSay} outer */
  _isWaiting(outer) {
    for (const lines of this._waitingLines.values())
      if (lines.some((w) => w.sender === outer.sender && w.counter === outer.counter)) return true;
    return false;
  }

  /**
   * The key of `session` came: the lines that waited for it, each replacing its placeholder.
   * @param {string} session
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _keyArrived(session, now) {
    const crypto = this.crypto;
    const waiting = this._waitingLines.get(session) ?? [];
    this._waitingLines.delete(session);
    if (crypto === null) return [];
    /** @type {Line[]} */
    const lines = [];
    /** @type {WaitingLine[]} */
    const still = [];
    for (const entry of waiting) {
      const outer = parseEncryptedSay(entry.frame, false);
      const nick = fieldStr(entry.frame, "from", 64);
      const megolm = /** @type {import("../e2e/frames.js").MegolmLine} */ (outer.megolm);
      let line;
      try {
        const plain = crypto.rooms.decrypt(
          crypto.roomKeys,
          this.network,
          outer.target,
          outer.sender,
          megolm,
        );
        crypto.mark(ROOM_KEYS);
        if (plain.duplicate && !entry.historyRoom) line = this._unreadable(outer, nick, REPLAYED);
        else {
          const room = entry.historyRoom || outer.target;
          line = await this._opened(
            outer,
            plain.plaintext,
            nick,
            messageKey(entry.frame),
            now,
            room,
            true,
          );
        }
      } catch (failure) {
        if (failure instanceof MissingRoomKey) {
          still.push(entry); // the key came from a later index than this line
          continue;
        }
        if (!(failure instanceof MegolmError)) throw failure;
        line = this._unreadable(outer, nick, failure.message);
      }
      if (line !== null)
        lines.push({
          ...line,
          ref: entry.ref,
          history: Boolean(entry.historyRoom) || line.history,
        });
    }
    if (still.length) this._waitingLines.set(session, still);
    return lines;
  }

  // --- private lines -------------------------------------------------------------------------

  /**
   * A private line from the inbox: `frame` carries its text under `key`, which came over Olm
   * from `device`.
   * @param {import("../e2e/device.js").DeviceKeys} device
   * @param {Uint8Array} key
   * @param {Frame} frame
   * @param {number} now
   * @returns {Promise<Line | null>}
   */
  async _privateLine(device, key, frame, now) {
    const outer = parseEncryptedSay(frame, false);
    const nick = fieldStr(frame, "from", 64);
    const keyDer = messageKey(frame);
    if (outer.private === null)
      return this._unreadable(outer, nick, "a room line is not a private message");
    if (this.ignored.has(outer.sender)) return null;
    if (outer.network !== this.network)
      return this._unreadable(outer, nick, Problem.ANOTHER_NETWORK);
    if (!fingerprintsEqual(outer.sender, device.user))
      return this._unreadable(outer, nick, "its key came from another user's device");
    let sealed;
    try {
      sealed = await openPrivate(key, b64decode(outer.private.ct));
    } catch (problem) {
      return this._unreadable(outer, nick, /** @type {Error} */ (problem).message);
    }
    if (fingerprintsEqual(outer.sender, this.identity.fingerprint))
      return this._ownCopy(outer, sealed, now);
    return this._opened(outer, sealed, nick, keyDer, now, INBOX, true);
  }

  /**
   * What another device of ours sent privately: shown as sent by us, once.
   * @param {EncryptedSay} outer
   * @param {Uint8Array} sealed
   * @param {number} now
   * @returns {Promise<Line | null>}
   */
  async _ownCopy(outer, sealed, now) {
    const nick = this.nick;
    let inner;
    try {
      inner = openSealedLine(sealed);
    } catch (problem) {
      if (problem instanceof FrameError) return this._unreadable(outer, nick, problem.message);
      throw problem;
    }
    const problem = sameFields(inner, outer) ? await this._ownProblem(inner, now) : MISMATCH;
    if (problem) return this._unreadable(outer, nick, problem);
    if (this.verifier.wasShown(inner.sender, inner.counter)) return null;
    this.verifier.rememberOwn(inner, now);
    // Its counter was taken by our key: ours go on from above it.
    this._composer.counter = Math.max(this._composer.counter, inner.counter);
    let kind = "private";
    let body = inner.body;
    if (body.startsWith(ACTION_PREFIX)) [kind, body] = ["action", body.slice(ACTION_PREFIX.length)];
    return makeLine(kind, inner.timestampMs / 1000, body, {
      nick,
      fingerprint: inner.sender,
      room: `@${this._nickOf(inner.target.slice(1))}`,
      verified: true,
      delivery: DELIVERED,
      note: "from another device of yours",
      encrypted: true,
      id: lineId(inner.sender, inner.counter),
    });
  }

  /** @param {SignedMessage} message @param {number} now @returns {Promise<string>} */
  async _ownProblem(message, now) {
    if (message.network !== this.network) return Problem.ANOTHER_NETWORK;
    if (!(await verifyMessage(message, await PeerIdentity.fromSpki(this.identity.spki))))
      return Problem.BAD_SIGNATURE;
    if (message.timestampMs > Math.floor(now * 1000) + this.verifier.ledger.skewMs)
      return Problem.FROM_THE_FUTURE;
    return "";
  }
}

/**
 * @param {SignedMessage} inner the sealed line
 * @param {EncryptedSay} outer the frame around it
 */
function sameFields(inner, outer) {
  return (
    inner.network === outer.network &&
    inner.target === outer.target &&
    inner.sender === outer.sender &&
    inner.counter === outer.counter &&
    inner.timestampMs === outer.timestampMs
  );
}
