// This browser's end-to-end state (a port of tlschat/chat/client/crypto.py): its device, Olm
// sessions, the room keys it received, its encrypted rooms, the key directory's cache and the
// users it verified; and the Olm exchanges with other devices. Pure but for WebCrypto: the glue
// builds it from the states vault.js kept (none on the first run: a new device with one-time
// keys and a fallback key) and, after handling anything, seals and stores what `takeDirty`
// returns before it sends what the client queued, so that an inbox item is acknowledged only
// once the state it changed is kept.

import { toBase64 } from "../protocol/bytes.js";
import { Device, signDeviceKeys } from "./device.js";
import { DeviceDirectory } from "./directory.js";
import {
  LOW_ONE_TIME_KEYS,
  MAX_SERVER_ONE_TIME_KEYS,
  MAX_UPLOAD_KEYS,
  deviceKeysFields,
  oneTimeKeyFields,
} from "./frames.js";
import { OlmSessions, PRE_KEY } from "./olm_sessions.js";
import { checkEnvelope, encodePayload, parsePayload } from "./payloads.js";
import { RoomKeys } from "./room_keys.js";
import { RoomCrypto } from "./rooms.js";
import { VerifiedKeys } from "./verified.js";

export const DEVICE = "device";
export const OLM_SESSIONS = "olm_sessions";
export const ROOM_KEYS = "room_keys";
export const ROOMS = "rooms";
export const VERIFIED = "verified";
export const STATES = Object.freeze([DEVICE, OLM_SESSIONS, ROOM_KEYS, ROOMS, VERIFIED]);

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("../protocol/frames.js").Frame} Frame */

export class ClientCrypto {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {Device} device
   * @param {DeviceKeys} ownKeys
   */
  constructor(olm, identity, device, ownKeys) {
    this.olm = olm;
    this.identity = identity;
    this.device = device;
    this.ownKeys = ownKeys;
    this.olmSessions = new OlmSessions(device);
    this.roomKeys = new RoomKeys(olm);
    this.rooms = new RoomCrypto(olm);
    this.verified = new VerifiedKeys();
    this.directory = new DeviceDirectory(olm, identity, device.deviceId);
    /** @type {Set<string>} */
    this._dirty = new Set();
  }

  /**
   * The state kept, opened; a new device when there is none. A state that does not read throws:
   * a device is never silently replaced, since its peers would lose every session with it.
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {Record<string, any>} states by name (STATES), as `takeDirty` gave them
   * @returns {Promise<ClientCrypto>}
   */
  static async open(olm, identity, states) {
    const fresh = !(DEVICE in states);
    const device = fresh ? await Device.create(olm) : await Device.fromPickle(olm, states[DEVICE]);
    if (fresh) {
      // One slot of the first upload is the fallback key's.
      device.generateOneTimeKeys(MAX_UPLOAD_KEYS - 1);
      device.generateFallbackKey();
    }
    const crypto = new ClientCrypto(olm, identity, device, await signDeviceKeys(device, identity));
    if (OLM_SESSIONS in states)
      crypto.olmSessions = OlmSessions.fromState(device, states[OLM_SESSIONS]);
    if (ROOM_KEYS in states) crypto.roomKeys = RoomKeys.fromState(olm, states[ROOM_KEYS]);
    if (ROOMS in states) crypto.rooms = RoomCrypto.fromState(olm, states[ROOMS]);
    if (VERIFIED in states) crypto.verified = VerifiedKeys.fromState(states[VERIFIED]);
    if (fresh) crypto.mark(...STATES);
    return crypto;
  }

  get fingerprint() {
    return this.identity.fingerprint;
  }

  get deviceId() {
    return this.device.deviceId;
  }

  /** These states changed: the next `takeDirty` hands them out. @param {...string} names */
  mark(...names) {
    for (const name of names) this._dirty.add(name);
  }

  /** @returns {Record<string, any>} the states changed since the last call, by name */
  takeDirty() {
    const writers = {
      [DEVICE]: () => this.device.pickle(),
      [OLM_SESSIONS]: () => this.olmSessions.toState(),
      [ROOM_KEYS]: () => this.roomKeys.toState(),
      [ROOMS]: () => this.rooms.toState(),
      [VERIFIED]: () => this.verified.toState(),
    };
    const dirty = this._dirty;
    this._dirty = new Set();
    return Object.fromEntries(
      STATES.filter((name) => dirty.has(name)).map((name) => [name, writers[name]()]),
    );
  }

  /** @returns {Frame} this device's `device_keys` for `hello`, with the identity key that signed them */
  deviceKeysFields() {
    return { ...deviceKeysFields(this.ownKeys), key: toBase64(this.identity.spki) };
  }

  /**
   * The one-time keys (and fallback key) no server holds yet, for `hello`: a new device is never
   * listed without keys to start a session with. Marked published here.
   * @returns {Frame[]}
   */
  helloKeys() {
    const keys = this.device.unpublishedOneTimeKeys().slice(0, MAX_UPLOAD_KEYS - 1);
    const fallback = this.device.unpublishedFallbackKey();
    if (fallback !== null) keys.push(fallback);
    if (!keys.length) return [];
    this.device.markKeysAsPublished();
    this.mark(DEVICE);
    return keys.map(oneTimeKeyFields);
  }

  /**
   * A `keys_upload` topping the server's one-time keys up (and its fallback key), or null when
   * it holds enough.
   * @param {number} held
   * @param {boolean} hasFallback
   * @returns {Frame | null}
   */
  uploadFrame(held, hasFallback) {
    if (held >= LOW_ONE_TIME_KEYS && hasFallback) return null;
    if (!hasFallback && this.device.unpublishedFallbackKey() === null)
      this.device.generateFallbackKey();
    const fallback = this.device.unpublishedFallbackKey();
    const slots = MAX_UPLOAD_KEYS - (fallback === null ? 0 : 1);
    if (held < LOW_ONE_TIME_KEYS) {
      const wanted = Math.min(slots, MAX_SERVER_ONE_TIME_KEYS - Math.max(0, held));
      const extra = Math.min(wanted - this.device.unpublishedOneTimeKeys().length, slots);
      if (extra > 0) this.device.generateOneTimeKeys(extra);
    }
    const keys = this.device.unpublishedOneTimeKeys().slice(0, slots);
    if (fallback !== null) keys.push(fallback);
    if (!keys.length) return null;
    this.device.markKeysAsPublished();
    this.mark(DEVICE);
    return { type: "keys_upload", one_time_keys: keys.map(oneTimeKeyFields) };
  }

  /** @param {DeviceKeys} device no Olm session with it and no claimed one-time key */
  needsSession(device) {
    return !this.olmSessions.hasSession(device.curve25519) && !this.directory.hasClaimed(device);
  }

  /**
   * A payload for `device` (verified keys), Olm-encrypted; throws OlmError when there is no
   * session and no usable one-time key.
   * @param {DeviceKeys} device
   * @param {string} kind
   * @param {Record<string, unknown>} fields
   * @returns {import("./frames.js").OlmItem}
   */
  encryptFor(device, kind, fields) {
    const envelope = {
      sender: this.fingerprint,
      senderDevice: this.deviceId,
      recipient: device.user,
      recipientDevice: device.deviceId,
    };
    const plaintext = encodePayload(kind, envelope, fields);
    const oneTimeKey = this.olmSessions.hasSession(device.curve25519)
      ? null
      : this.directory.takeClaimed(device);
    const { type, body } = this.olmSessions.encrypt(device, oneTimeKey, plaintext);
    this.mark(OLM_SESSIONS);
    return { fingerprint: device.user, device: device.deviceId, type, body };
  }

  /**
   * The payload `sender` (verified keys) sent this device; throws if it does not decrypt, is
   * malformed, or names another sender or recipient.
   * @param {DeviceKeys} sender
   * @param {number} type
   * @param {string} body
   * @returns {import("./payloads.js").ToDevicePayload}
   */
  decryptFrom(sender, type, body) {
    const plaintext = this.olmSessions.decrypt(sender.curve25519, { type, body });
    this.mark(OLM_SESSIONS);
    if (type === PRE_KEY) this.mark(DEVICE); // it may have used up one of our one-time keys
    const payload = parsePayload(plaintext);
    checkEnvelope(payload, {
      sender: sender.user,
      senderDevice: sender.deviceId,
      recipient: this.fingerprint,
      recipientDevice: this.deviceId,
    });
    return payload;
  }
}
