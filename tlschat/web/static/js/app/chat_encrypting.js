// What the user sends end-to-end encrypted: private lines always, room lines in encrypted rooms
// (a port of chat/client/encrypting.py; docs/PROTOCOL.md section 23, "What the client does").
// Such a line waits in the delivery queue like any other and, when its turn comes, for what
// encrypting it needs: the verified device lists of the users it is for (`keys_query`), an Olm
// session with each of their devices (`keys_claim`), and in a room this device's Megolm key
// shared with every member device that lacks it. Then it is signed, sealed and encrypted once,
// and the frame is kept: after a lost connection it goes again byte for byte, after the
// `to_device` frames that shared its room key (a device that had them drops the copies).

import { ROOM_KEYS, ROOMS, OLM_SESSIONS } from "../e2e/crypto.js";
import { refOf } from "../e2e/directory.js";
import {
  FINGERPRINT,
  MAX_PRIVATE_KEYS,
  MAX_QUERY,
  encryptedSayFrame,
  sealLine,
  toDeviceFrames,
} from "../e2e/frames.js";
import { PRIVATE, ROOM_KEY, privateKeyFields, roomKeyFields } from "../e2e/payloads.js";
import { newPrivateKey, sealPrivate } from "../e2e/private.js";
import { toBase64 } from "../protocol/bytes.js";
import { MAX_FRAME, encodeFrame } from "../protocol/frames.js";
import { fingerprintsEqual } from "../protocol/identity.js";
import { ClientHistory } from "./chat_history.js";
import { NO_DEVICE_FOR_PRIVATE } from "./chat_sending.js";
import { makeLine } from "./lines.js";

/** How long a line waits for the server's key directory before it is refused (seconds). */
export const PREREQUISITE_TIMEOUT = 30;
/** A line refused as 'stale' this many times is given up: the directory keeps changing. */
export const MAX_REBUILDS = 3;
export const NO_ANSWER = "the server did not answer for its recipients' keys";

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("./delivery.js").Outgoing} Outgoing */
/** @typedef {import("../e2e/device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("../e2e/crypto.js").ClientCrypto} ClientCrypto */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/**
 * An encrypted line on its way: since when it waits, how often the server sent it back as
 * 'stale', and the `to_device` frames that go before it.
 * @typedef {{since: number | null, rebuilds: number, prelude: Frame[]}} Preparation
 */

/** Nobody the line is for can be encrypted for. */
class CannotEncrypt extends Error {}

export class ClientEncrypting extends ClientHistory {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   * @param {ClientCrypto | null} crypto
   */
  constructor(identity, nick, crypto) {
    super(identity, nick);
    this.crypto = crypto;
    /** @type {Map<number, Preparation>} by the line's ref */
    this._preparing = new Map();
    // Devices the user was told get no copy (no one-time key), so as to say it once.
    /** @type {Set<string>} */
    this._reported = new Set();
  }

  /** `hello`, with this device's keys and the one-time keys no server holds yet. */
  helloFrame() {
    const frame = super.helloFrame();
    if (this.crypto !== null) {
      frame.device_keys = this.crypto.deviceKeysFields();
      const keys = this.crypto.helloKeys();
      if (keys.length) frame.one_time_keys = keys;
    }
    return frame;
  }

  prepareReconnect() {
    super.prepareReconnect();
    for (const preparation of this._preparing.values()) preparation.since = null;
    this.crypto?.directory.connectionLost();
  }

  // --- before a line is signed ---------------------------------------------------------------

  /** @param {Outgoing} item @param {number} now @returns {Promise<boolean | Line>} */
  async _ready(item, now) {
    if (!this._encrypts(item.target)) return true;
    const crypto = this.crypto;
    if (crypto === null) return this._drop(item, NO_DEVICE_FOR_PRIVATE, now);
    let preparation = this._preparing.get(item.ref);
    if (preparation === undefined) {
      preparation = { since: null, rebuilds: 0, prelude: [] };
      this._preparing.set(item.ref, preparation);
    }
    const directory = crypto.directory;
    if (preparation.since === null) {
      preparation.since = now;
      // A device the server had no key for may have uploaded some since: each new line asks
      // once more, so one empty answer does not cut a device off for good.
      directory.unreachable.clear();
    }
    const users = this._usersOf(item.target);
    const unknown = users.filter((fp) => !directory.known(fp));
    if (unknown.length) {
      this.outbox.push(...directory.query(unknown, now));
      return this._waiting(item, preparation, now);
    }
    let devices;
    if (item.target.startsWith("@")) {
      devices = this._privateDevices(crypto, item.target.slice(1));
      if (!devices.length) return this._drop(item, this._nobodyToEncryptFor(item), now);
    } else {
      devices = this._roomDevices(crypto, item.target, users, now);
    }
    const need = devices.filter((d) => crypto.needsSession(d) && !directory.isUnreachable(d));
    if (!need.length) return true;
    const toClaim = need.filter((d) => !directory.isClaiming(d));
    if (toClaim.length) {
      const wait = this.queue.work.take(now, Math.min(toClaim.length, this.queue.work.burst));
      if (wait > 0) {
        this._wake(now + Math.max(wait, 0.001));
        return false;
      }
      this.outbox.push(...directory.claim(toClaim));
    }
    return this._waiting(item, preparation, now);
  }

  /**
   * The users a line is for: a private line's recipient and this user (its other devices), a
   * room line's members and this user.
   * @param {string} target
   * @returns {string[]}
   */
  _usersOf(target) {
    const own = this.identity.fingerprint;
    if (target.startsWith("@")) return [...new Set([target.slice(1), own])];
    const members = [...(this.members.get(target)?.values() ?? [])].map((m) => m.fingerprint);
    return [...new Set([...members, own])];
  }

  /**
   * The recipient's devices and our other ones; none if the recipient has none.
   * @param {ClientCrypto} crypto
   * @param {string} recipient
   * @returns {DeviceKeys[]}
   */
  _privateDevices(crypto, recipient) {
    const theirs = crypto.directory.devices(recipient);
    if (!theirs.length) return [];
    const all = new Map();
    for (const device of [...theirs, ...crypto.directory.devices(this.identity.fingerprint)])
      all.set(refOf(device), device);
    return [...all.values()];
  }

  /**
   * The member devices that lack this device's current key for `room`; starts or rotates the
   * session first when due (a device left, 100 lines, 7 days).
   * @param {ClientCrypto} crypto
   * @param {string} room
   * @param {string[]} users
   * @param {number} now
   * @returns {DeviceKeys[]}
   */
  _roomDevices(crypto, room, users, now) {
    const directory = crypto.directory;
    crypto.rooms.checkMembers(
      this.network,
      room,
      new Map(users.map((fp) => [fp, new Set(directory.devices(fp).map((d) => d.deviceId))])),
    );
    const { newKey } = crypto.rooms.sender(this.network, room, now);
    if (newKey !== null) {
      const owner = {
        fingerprint: this.identity.fingerprint,
        curve25519: crypto.ownKeys.curve25519,
      };
      crypto.rooms.ownSession(crypto.roomKeys, owner, newKey);
      crypto.mark(ROOMS, ROOM_KEYS);
    }
    const devices = users.flatMap((fp) => directory.devices(fp));
    const unshared = new Set(crypto.rooms.unshared(this.network, room, devices.map(refOf)));
    return devices.filter((d) => unshared.has(refOf(d)));
  }

  /** @param {Outgoing} item @returns {string} */
  _nobodyToEncryptFor(item) {
    const who = item.recipient || item.target.slice(1);
    if (fingerprintsEqual(item.target.slice(1), this.identity.fingerprint))
      return "you have no other device to send it to";
    if (this.crypto?.directory.devices(item.target.slice(1)).length)
      return `no device of ${who} can be reached: the server has no one-time key for them`;
    return `${who} has no device that can receive end-to-end encrypted messages yet`;
  }

  /** @param {Outgoing} item @param {Preparation} preparation @param {number} now */
  _waiting(item, preparation, now) {
    const since = preparation.since ?? now;
    if (now - since >= PREREQUISITE_TIMEOUT) return this._drop(item, NO_ANSWER, now);
    this._wake(since + PREREQUISITE_TIMEOUT);
    return false;
  }

  /** @param {number} at */
  _wake(at) {
    this.wakeAt = this.wakeAt === null ? at : Math.min(this.wakeAt, at);
  }

  /** @param {Outgoing} item @param {string} reason @param {number} now @returns {Line} */
  _drop(item, reason, now) {
    this.queue.waiting.splice(this.queue.waiting.indexOf(item), 1);
    return this._refuse(item, reason, now);
  }

  // --- signing and encrypting ----------------------------------------------------------------

  /** @param {Outgoing} item @param {number} now @returns {Promise<Line[]>} */
  async _signAndSend(item, now) {
    const preparation = this._preparing.get(item.ref);
    /** @type {Line[]} */
    let lines = [];
    if (item.frame === null && preparation !== undefined) {
      lines = await this._encrypt(item, preparation, now);
      if (item.frame === null) return lines;
    }
    if (preparation !== undefined) this.outbox.push(...preparation.prelude);
    return [...lines, ...(await super._signAndSend(item, now))];
  }

  /**
   * Sign, seal and encrypt `item` into its frame (`item.frame`), or refuse it.
   * @param {Outgoing} item
   * @param {Preparation} preparation
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _encrypt(item, preparation, now) {
    const crypto = /** @type {ClientCrypto} */ (this.crypto); // _ready prepared only with one
    this._composer.network = this.network;
    const message = await this._composer.sign(item.target, item.body, now);
    /** @type {Line[]} */
    const notes = [];
    let frame;
    try {
      if (item.target.startsWith("@")) {
        frame = await this._privateFrame(crypto, item, message, notes, now);
      } else {
        [frame, preparation.prelude] = this._roomFrame(crypto, message, notes, now);
      }
    } catch (problem) {
      if (!(problem instanceof Error) || problem instanceof TypeError) throw problem;
      return [...notes, this._drop(item, `not encrypted: ${problem.message}`, now)];
    }
    const size = encodeFrame(frame).length;
    if (size > MAX_FRAME)
      return [...notes, this._drop(item, `${size} bytes is more than one message carries`, now)];
    this.verifier.rememberOwn(message, now);
    item.frame = frame;
    if (item.line !== null) item.line = { ...item.line, encrypted: true };
    return notes;
  }

  /**
   * @param {ClientCrypto} crypto
   * @param {Outgoing} item
   * @param {import("../protocol/envelope.js").SignedMessage} message
   * @param {Line[]} notes
   * @param {number} now
   * @returns {Promise<Frame>}
   */
  async _privateFrame(crypto, item, message, notes, now) {
    const recipient = item.target.slice(1);
    const devices = this._reachable(crypto, this._privateDevices(crypto, recipient), notes, now);
    if (!devices.some((d) => d.user === recipient))
      throw new CannotEncrypt(this._nobodyToEncryptFor(item));
    const key = newPrivateKey();
    const sealed = await sealPrivate(key, sealLine(message));
    const fields = privateKeyFields(key);
    const keys = devices
      .slice(0, MAX_PRIVATE_KEYS)
      .map((d) => crypto.encryptFor(d, PRIVATE, fields));
    return encryptedSayFrame(message, { private: { ct: toBase64(sealed), keys } });
  }

  /**
   * @param {ClientCrypto} crypto
   * @param {import("../protocol/envelope.js").SignedMessage} message
   * @param {Line[]} notes
   * @param {number} now
   * @returns {[Frame, Frame[]]} the `say`, and the `to_device` frames that go before it
   */
  _roomFrame(crypto, message, notes, now) {
    const room = message.target;
    const devices = this._roomDevices(crypto, room, this._usersOf(room), now);
    const { sender } = crypto.rooms.sender(this.network, room, now);
    const key = sender.roomKey();
    const fields = roomKeyFields(this.network, room, key.sessionId, key.sessionKey);
    const reachable = this._reachable(crypto, devices, notes, now);
    const items = reachable.map((device) => crypto.encryptFor(device, ROOM_KEY, fields));
    crypto.rooms.markShared(this.network, room, reachable.map(refOf));
    const { sessionId, ciphertext } = sender.encrypt(sealLine(message), now);
    // The session moved on: kept before the line leaves, or a reload would reuse the index and
    // members would refuse the next line as a forgery.
    crypto.mark(ROOMS, OLM_SESSIONS);
    const frame = encryptedSayFrame(message, { megolm: { session: sessionId, ct: ciphertext } });
    return [frame, toDeviceFrames(items)];
  }

  /**
   * The devices there is an Olm session (or a one-time key) for; the others are said, once, to
   * get nothing.
   * @param {ClientCrypto} crypto
   * @param {DeviceKeys[]} devices
   * @param {Line[]} notes
   * @param {number} now
   * @returns {DeviceKeys[]}
   */
  _reachable(crypto, devices, notes, now) {
    const reachable = [];
    for (const device of devices) {
      if (!crypto.needsSession(device)) reachable.push(device);
      else if (!this._reported.has(refOf(device))) {
        this._reported.add(refOf(device));
        const text =
          `device ${device.deviceId} of ${this._nickOf(device.user)} gets nothing end-to-end` +
          " encrypted: the server has no one-time key for it";
        notes.push(makeLine("notice", now, text));
      }
    }
    return reachable;
  }

  /** @param {string} fingerprint @returns {string} a nick known for it, else the fingerprint */
  _nickOf(fingerprint) {
    if (fingerprintsEqual(fingerprint, this.identity.fingerprint)) return this.nick || fingerprint;
    for (const present of this.members.values())
      for (const member of present.values())
        if (member.fingerprint === fingerprint) return member.nick;
    for (const [nick, fp] of this.directory) if (fp === fingerprint) return nick;
    return fingerprint;
  }

  // --- outcomes ------------------------------------------------------------------------------

  /** @param {Outgoing} item @param {string} reason @param {number} now @returns {Line} */
  _refuse(item, reason, now) {
    this._preparing.delete(item.ref);
    return super._refuse(item, reason, now);
  }

  /** @param {Outgoing} item @returns {Line[]} */
  _deliver(item) {
    this._preparing.delete(item.ref);
    return super._deliver(item);
  }

  /**
   * The server refused an encrypted line because the devices of some users changed (`stale`):
   * ask for their lists again and encrypt the line anew, signed anew (a later line may have been
   * accepted meanwhile, and counters only go up). Null if `frame` is no such refusal of ours.
   * @param {Frame} frame
   * @param {string} text
   * @param {number} now
   * @returns {Promise<Line[] | null>}
   */
  async _rebuildStale(frame, text, now) {
    const { counter, stale } = frame;
    const item = typeof counter === "number" ? this.queue.inFlight.get(counter) : undefined;
    if (item === undefined || !Array.isArray(stale) || this.crypto === null) return null;
    const preparation = this._preparing.get(item.ref);
    if (preparation === undefined) return null;
    const named = stale
      .slice(0, MAX_QUERY)
      .filter((fp) => typeof fp === "string" && FINGERPRINT.test(fp));
    for (const fingerprint of named.length ? named : this._usersOf(item.target))
      this.crypto.directory.forget(fingerprint);
    this.queue.settle(/** @type {number} */ (counter));
    preparation.rebuilds += 1;
    if (preparation.rebuilds > MAX_REBUILDS)
      return [this._refuse(item, text, now), ...(await this.tick(now))];
    item.frame = null;
    item.resent = false;
    item.throttled = false;
    preparation.since = null;
    preparation.prelude = [];
    this.queue.requeue(item);
    return this.tick(now);
  }
}
