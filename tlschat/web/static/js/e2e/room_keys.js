// Megolm, the receiving side (a port of tlschat/e2e/room_keys.py): the room keys this device
// received, each bound to the room and the sending device (its Curve25519 key) it was shared
// for, and decrypting only that room's lines from that device.
//
// Replays: per session, a digest of the ciphertext at each message index is kept. The same
// ciphertext again is a duplicate (decrypted and flagged); another at a remembered index is
// refused (only the holder of the outbound session can make one: a sender that rolled its
// session back, or lies). A session keeps its 1024 highest indexes; once one was forgotten, a
// message below the lowest kept is refused, as its replay could no longer be told.

import { OlmLibraryError } from "./olm.js";
import { PICKLE_KEY } from "./device.js";

export const DEFAULT_MAX_REMEMBERED = 1024;

export class MegolmError extends Error {}
/** A shared room key that is not a Megolm session key. */
export class MalformedRoomKey extends MegolmError {}
/** No key for this line yet: show it waiting, and try again when a key comes. */
export class MissingRoomKey extends MegolmError {}
/** A key or line whose room or sending device is not the one the key was shared for. */
export class RoomKeyMismatch extends MegolmError {}
/** A line that does not decrypt under the key of its session. */
export class MegolmUndecryptable extends MegolmError {}
/** Another ciphertext at a message index already seen: a forgery by the session's sender. */
export class MessageIndexReused extends MegolmError {}
/** A message index below what the replay memory of its session still holds. */
export class ReplayWindowPassed extends MegolmError {}

/**
 * @typedef {{plaintext: Uint8Array, messageIndex: number, duplicate: boolean}} MegolmPlaintext
 * @typedef {{room: string, sender: string, session: any, seen: Map<number, string>,
 *            floor: number}} InboundRoomSession
 */

export class RoomKeys {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {number} [maxRemembered]
   */
  constructor(olm, maxRemembered = DEFAULT_MAX_REMEMBERED) {
    this.olm = olm;
    this.maxRemembered = maxRemembered;
    /** @type {Map<string, InboundRoomSession>} by session id */
    this._sessions = new Map();
  }

  /**
   * Keep `key`, shared by the device `sender` (its Curve25519 key) over Olm.
   * @param {string} sender
   * @param {import("./megolm.js").RoomKey} key
   * @returns {boolean} it is new, or reaches further back than the key held
   */
  importKey(sender, key) {
    const session = new this.olm.InboundGroupSession();
    try {
      session.create(key.sessionKey);
    } catch {
      session.free();
      throw new MalformedRoomKey("not a Megolm session key");
    }
    if (session.session_id() !== key.sessionId) {
      session.free();
      throw new RoomKeyMismatch("the key is not the key of the session it names");
    }
    const held = this._sessions.get(key.sessionId);
    if (held === undefined) {
      this._sessions.set(key.sessionId, {
        room: key.room,
        sender,
        session,
        seen: new Map(),
        floor: 0,
      });
      return true;
    }
    if (held.room !== key.room || held.sender !== sender) {
      session.free();
      throw new RoomKeyMismatch("the session's key was shared for another room or sender");
    }
    if (session.first_known_index() >= held.session.first_known_index()) {
      session.free();
      return false;
    }
    held.session.free();
    held.session = session;
    return true;
  }

  /**
   * Decrypt a line that the device `sender` claims to have sent in `room`.
   * @param {string} room
   * @param {string} sender
   * @param {string} sessionId
   * @param {string} ciphertext unpadded base64
   * @returns {MegolmPlaintext}
   */
  decrypt(room, sender, sessionId, ciphertext) {
    const held = this._sessions.get(sessionId);
    if (held === undefined) throw new MissingRoomKey(`no key yet for session ${sessionId}`);
    if (held.room !== room || held.sender !== sender)
      throw new RoomKeyMismatch("the line's session belongs to another room or sender");
    let decrypted;
    try {
      decrypted = this.olm.groupDecrypt(held.session, ciphertext);
    } catch (problem) {
      if (problem instanceof OlmLibraryError && problem.message === "OLM.UNKNOWN_MESSAGE_INDEX")
        throw new MissingRoomKey(
          `the key held starts at index ${held.session.first_known_index()}`,
        );
      throw new MegolmUndecryptable("the line does not decrypt under its session");
    }
    const duplicate = record(
      held,
      decrypted.messageIndex,
      this._digest(ciphertext),
      this.maxRemembered,
    );
    return { plaintext: decrypted.plaintext, messageIndex: decrypted.messageIndex, duplicate };
  }

  /** @param {string} ciphertext @returns {string} SHA-256, base64 */
  _digest(ciphertext) {
    const utility = new this.olm.Utility();
    try {
      return utility.sha256(ciphertext);
    } finally {
      utility.free();
    }
  }

  toState() {
    return {
      max_remembered: this.maxRemembered,
      sessions: [...this._sessions.values()].map((held) => ({
        room: held.room,
        sender: held.sender,
        session: held.session.pickle(PICKLE_KEY),
        floor: held.floor,
        seen: Object.fromEntries(held.seen),
      })),
    };
  }

  /** @param {import("./olm.js").OlmLibrary} olm @param {any} state */
  static fromState(olm, state) {
    const keys = new RoomKeys(olm, Number(state.max_remembered));
    for (const entry of state.sessions) {
      const session = new olm.InboundGroupSession();
      session.unpickle(PICKLE_KEY, entry.session);
      const seen = new Map(
        Object.entries(entry.seen).map(([index, digest]) => [Number(index), String(digest)]),
      );
      keys._sessions.set(session.session_id(), {
        room: String(entry.room),
        sender: String(entry.sender),
        session,
        seen,
        floor: Number(entry.floor),
      });
    }
    return keys;
  }
}

/**
 * Remember the ciphertext at `index`.
 * @param {InboundRoomSession} held
 * @param {number} index
 * @param {string} digest the ciphertext's
 * @param {number} bound
 * @returns {boolean} this ciphertext was seen at `index` before
 */
function record(held, index, digest, bound) {
  const known = held.seen.get(index);
  if (known !== undefined) {
    if (known === digest) return true;
    throw new MessageIndexReused(`another ciphertext at message index ${index}`);
  }
  if (index < held.floor)
    throw new ReplayWindowPassed(`message index ${index} is below ${held.floor}`);
  held.seen.set(index, digest);
  if (held.seen.size > bound) {
    const lowest = Math.min(...held.seen.keys());
    held.seen.delete(lowest);
    held.floor = lowest + 1;
  }
  return false;
}
