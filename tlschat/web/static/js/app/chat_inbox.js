// The end-to-end frames from the server (a port of chat/client/inbox.py): the key directory's
// answers, and this device's inbox of Olm messages. An inbox item is decrypted once its sender's
// device is in that user's verified device list (asked for first, and once more if the device
// is not in it; then an item from a device its user does not list is dropped). Items are
// acknowledged (`device_ack`) up to the last one handled with none before it still waiting,
// after the state they changed is marked: the glue keeps that state before it sends the ack.

import { ROOMS, ROOM_KEYS } from "../e2e/crypto.js";
import {
  fieldDevice,
  fieldFingerprint,
  fieldList,
  fieldObject,
  parseOlmBody,
} from "../e2e/frames.js";
import { OlmReplay } from "../e2e/olm_sessions.js";
import { PRIVATE, ROOM_KEY, VERIFY_TYPES, parsePrivateKey, parseRoomKey } from "../e2e/payloads.js";
import { FrameError, fieldInt } from "../protocol/frames.js";
import { ClientVerifying } from "./chat_verifying.js";
import { error } from "./lines.js";

const MAX_INBOX_PAGE = 1024;
const MAX_INBOX_ID = Number.MAX_SAFE_INTEGER;
const MAX_HELD_KEYS = 1_000_000;

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/** @typedef {import("../e2e/device.js").DeviceKeys} DeviceKeys */
/**
 * @typedef {{id: number, sender: string, senderDevice: string, olmType: number,
 *            olmBody: string, message: Frame | null, asked: boolean}} InboxItem
 *   `message`: a private line's `message` frame (its text under the key the Olm part carries);
 *   `asked`: its sender's device list was asked for after it came
 */

/** @param {Frame} entry @returns {InboxItem} */
function parseInboxItem(entry) {
  const { type, body } = parseOlmBody(fieldObject(entry, "olm"));
  const message = entry.message ?? null;
  if (message !== null && (typeof message !== "object" || Array.isArray(message)))
    throw new FrameError("'message' must be an object");
  return {
    id: fieldInt(entry, "id", MAX_INBOX_ID),
    sender: fieldFingerprint(entry, "from"),
    senderDevice: fieldDevice(entry, "from_device"),
    olmType: type,
    olmBody: body,
    message: /** @type {Frame | null} */ (message),
    asked: false,
  };
}

export class ClientInbox extends ClientVerifying {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   * @param {import("../e2e/crypto.js").ClientCrypto | null} crypto
   */
  constructor(identity, nick, crypto) {
    super(identity, nick, crypto);
    /** @type {InboxItem[]} */
    this._inbox = [];
    /** @type {Set<number>} */
    this._inboxDone = new Set();
    this._inboxAcked = 0;
  }

  /** @param {string} network @param {import("./seen.js").SeenLedger} ledger */
  useNetwork(network, ledger) {
    if (network !== this.network) this._inboxAcked = 0; // inbox ids are per network
    super.useNetwork(network, ledger);
  }

  prepareReconnect() {
    super.prepareReconnect();
    // The server sends again what was not acknowledged.
    this._inbox = [];
    this._inboxDone.clear();
  }

  // --- the directory -------------------------------------------------------------------------

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onKeys(frame, now) {
    if (this.crypto === null) return [];
    /** @type {Line[]} */
    let lines = [];
    try {
      const answer = await this.crypto.directory.receiveKeys(frame);
      if (answer.rejected) {
        const who = this._nickOf(answer.fingerprint);
        lines.push(
          ...error(
            `the server lists ${answer.rejected} device(s) for ${who} that ${who}'s key did not sign: never used`,
            now,
          ),
        );
      }
      lines.push(...(await this._devicesAnswered(answer, now)));
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      lines = error(`malformed 'keys' frame from server: ${problem.message}`, now);
    }
    return [...lines, ...(await this._processInbox(now)), ...(await this.tick(now))];
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onClaimed(frame, now) {
    if (this.crypto === null) return [];
    this.crypto.directory.receiveClaimed(frame);
    return [...this._flushHeld(now), ...(await this.tick(now))];
  }

  /** @param {Frame} frame */
  async _onKeysChanged(frame) {
    const fingerprint = fieldFingerprint(frame, "fingerprint");
    this.crypto?.directory.forget(fingerprint);
    return [];
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onKeysUploaded(frame, now) {
    const device = fieldDevice(frame);
    const held = fieldInt(frame, "one_time_keys", MAX_HELD_KEYS);
    if (typeof frame.fallback !== "boolean")
      throw new FrameError("'fallback' must be true or false");
    if (this.crypto === null || device !== this.crypto.deviceId) return [];
    const upload = this.crypto.uploadFrame(held, frame.fallback);
    if (upload !== null) this.outbox.push(upload);
    // It comes once a session has a device: payloads held for keys asked on a lost connection
    // ask again.
    return this._flushHeld(now);
  }

  // --- the inbox -----------------------------------------------------------------------------

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _onDeviceMessages(frame, now) {
    if (this.crypto === null) return [];
    /** @type {Line[]} */
    const lines = [];
    let again = false;
    const waiting = new Set(this._inbox.map((item) => item.id));
    for (const entry of fieldList(frame, "messages", MAX_INBOX_PAGE)) {
      let item;
      try {
        item = parseInboxItem(entry);
      } catch (problem) {
        if (!(problem instanceof FrameError)) throw problem;
        lines.push(...error(`a malformed item in this device's inbox: ${problem.message}`, now));
        if (Number.isSafeInteger(entry.id) && Number(entry.id) > 0)
          this._inboxDone.add(Number(entry.id));
        continue;
      }
      if (item.id <= this._inboxAcked)
        again = true; // handled; its ack was lost with a connection
      else if (!this._inboxDone.has(item.id) && !waiting.has(item.id)) {
        this._inbox.push(item);
        waiting.add(item.id);
      }
    }
    this._inbox.sort((a, b) => a.id - b.id);
    return [...lines, ...(await this._processInbox(now, again))];
  }

  /**
   * Handle what waits in the inbox, in order per sender; acknowledge what is done.
   * @param {number} now
   * @param {boolean} [acknowledge] acknowledge again even if nothing new is done
   * @returns {Promise<Line[]>}
   */
  async _processInbox(now, acknowledge = false) {
    const crypto = this.crypto;
    if (crypto === null) return [];
    const directory = crypto.directory;
    /** @type {Line[]} */
    const lines = [];
    /** @type {InboxItem[]} */
    const remaining = [];
    const blocked = new Set();
    for (const item of this._inbox) {
      const device = directory.device(item.sender, item.senderDevice);
      if (device === null && !item.asked && !blocked.has(item.sender)) {
        item.asked = true;
        directory.forget(item.sender);
        this.outbox.push(...directory.query([item.sender], now));
      }
      if (blocked.has(item.sender) || (device === null && !directory.known(item.sender))) {
        blocked.add(item.sender);
        remaining.push(item);
        continue;
      }
      if (device === null) {
        const who = this._nickOf(item.sender);
        lines.push(
          ...error(
            `dropped a message from device ${item.senderDevice}, which ${who} does not list`,
            now,
          ),
        );
      } else {
        lines.push(...(await this._openItem(device, item, now)));
      }
      this._inboxDone.add(item.id);
    }
    this._inbox = remaining;
    this._acknowledge(acknowledge);
    return lines;
  }

  /** @param {boolean} again */
  _acknowledge(again) {
    const firstWaiting = this._inbox.length
      ? Math.min(...this._inbox.map((item) => item.id))
      : Infinity;
    const done = [...this._inboxDone].filter((id) => id < firstWaiting);
    const upto = done.length ? Math.max(...done) : 0;
    if (upto > this._inboxAcked || (again && this._inboxAcked)) {
      this._inboxAcked = Math.max(upto, this._inboxAcked);
      this._inboxDone = new Set([...this._inboxDone].filter((id) => id > this._inboxAcked));
      this.outbox.push({ type: "device_ack", upto: this._inboxAcked });
    }
  }

  /**
   * @param {DeviceKeys} device
   * @param {InboxItem} item
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _openItem(device, item, now) {
    const crypto = /** @type {import("../e2e/crypto.js").ClientCrypto} */ (this.crypto);
    const who = this._nickOf(device.user);
    let payload;
    try {
      payload = crypto.decryptFrom(device, item.olmType, item.olmBody);
    } catch (problem) {
      if (problem instanceof OlmReplay) return []; // handled before (sent again after a lost connection)
      if (!(problem instanceof Error) || problem instanceof TypeError) throw problem;
      return error(
        `a message from ${who} (device ${device.deviceId}) was refused: ${problem.message}`,
        now,
      );
    }
    if (payload.kind === ROOM_KEY) return this._roomKey(device, payload, now);
    if (payload.kind === PRIVATE) return this._private(device, payload, item.message, now);
    if (VERIFY_TYPES.includes(payload.kind))
      return this._verificationPayload(device, payload.kind, payload.fields, now);
    return [];
  }

  /**
   * @param {DeviceKeys} device
   * @param {import("../e2e/payloads.js").ToDevicePayload} payload
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _roomKey(device, payload, now) {
    const crypto = /** @type {import("../e2e/crypto.js").ClientCrypto} */ (this.crypto);
    const who = this._nickOf(device.user);
    let shared;
    let fresh;
    try {
      shared = parseRoomKey(payload);
      if (shared.network !== this.network)
        return error(`a room key from ${who} for another network was dropped`, now);
      const owner = { fingerprint: device.user, curve25519: device.curve25519 };
      fresh = crypto.rooms.importShared(crypto.roomKeys, owner, shared);
    } catch (problem) {
      if (!(problem instanceof Error) || problem instanceof TypeError) throw problem;
      return error(`a room key from ${who} was refused: ${problem.message}`, now);
    }
    crypto.mark(ROOM_KEYS, ROOMS);
    return fresh ? this._keyArrived(shared.sessionId, now) : [];
  }

  /**
   * @param {DeviceKeys} device
   * @param {import("../e2e/payloads.js").ToDevicePayload} payload
   * @param {Frame | null} message
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _private(device, payload, message, now) {
    const who = this._nickOf(device.user);
    if (message === null)
      return error(`a private message key from ${who} came without its message`, now);
    let line;
    try {
      line = await this._privateLine(device, parsePrivateKey(payload), message, now);
    } catch (problem) {
      if (!(problem instanceof Error) || problem instanceof TypeError) throw problem;
      return error(`a private message from ${who} was refused: ${problem.message}`, now);
    }
    return line === null ? [] : [line];
  }
}
