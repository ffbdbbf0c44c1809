// Megolm, the sending side of an encrypted room (a port of tlschat/e2e/megolm.py): this device's
// outbound session for one room, and when it must start a new one. Its key reaches each member
// device over Olm (the chat layer shares it); whoever holds it decrypts from the index it was
// shared at onward, never before (room_keys.js is the receiving side). A new session starts
// after 100 lines, after 7 days, and once a member left, so that a member who left reads nothing
// sent after; `encrypt` refuses until the session is rotated.

import { PICKLE_KEY } from "./device.js";

export const DEFAULT_MAX_MESSAGES = 100;
export const DEFAULT_MAX_AGE = 7 * 24 * 3600;

/** The room's session must be rotated (and the new key shared) before the next line. */
export class RotationDue extends Error {}

/** @typedef {{room: string, sessionId: string, sessionKey: string}} RoomKey */

export class RoomSender {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {string} room the room's label (network and name)
   * @param {any} session an OutboundGroupSession
   * @param {number} createdAt seconds
   * @param {boolean} [memberHasLeft]
   */
  constructor(olm, room, session, createdAt, memberHasLeft = false) {
    this.olm = olm;
    this.room = room;
    this.session = session;
    this.createdAt = createdAt;
    this.memberHasLeft = memberHasLeft;
    this.maxMessages = DEFAULT_MAX_MESSAGES;
    this.maxAge = DEFAULT_MAX_AGE;
  }

  /** @param {import("./olm.js").OlmLibrary} olm @param {string} room @param {number} now */
  static start(olm, room, now) {
    const session = new olm.OutboundGroupSession();
    session.create();
    return new RoomSender(olm, room, session, now);
  }

  /** @returns {string} */
  get sessionId() {
    return this.session.session_id();
  }

  /** @returns {RoomKey} the key to share: it decrypts from the next message on */
  roomKey() {
    return { room: this.room, sessionId: this.sessionId, sessionKey: this.session.session_key() };
  }

  memberLeft() {
    this.memberHasLeft = true;
  }

  /** @param {number} now @returns {boolean} */
  shouldRotate(now) {
    return (
      this.memberHasLeft ||
      this.session.message_index() >= this.maxMessages ||
      now - this.createdAt >= this.maxAge
    );
  }

  /** A new session; its key must reach the members before the next line. @param {number} now */
  rotate(now) {
    this.session.free();
    this.session = new this.olm.OutboundGroupSession();
    this.session.create();
    this.createdAt = now;
    this.memberHasLeft = false;
    return this.roomKey();
  }

  /**
   * @param {Uint8Array} plaintext
   * @param {number} now
   * @returns {{sessionId: string, ciphertext: string}}
   */
  encrypt(plaintext, now) {
    if (this.shouldRotate(now))
      throw new RotationDue(`rotate the session of ${this.room} and share its key first`);
    return {
      sessionId: this.sessionId,
      ciphertext: this.olm.groupEncrypt(this.session, plaintext),
    };
  }

  toState() {
    return {
      room: this.room,
      session: this.session.pickle(PICKLE_KEY),
      created_at: this.createdAt,
      member_has_left: this.memberHasLeft,
    };
  }

  /** @param {import("./olm.js").OlmLibrary} olm @param {any} state */
  static fromState(olm, state) {
    const session = new olm.OutboundGroupSession();
    session.unpickle(PICKLE_KEY, state.session);
    return new RoomSender(
      olm,
      String(state.room),
      session,
      Number(state.created_at),
      state.member_has_left === true,
    );
  }
}
