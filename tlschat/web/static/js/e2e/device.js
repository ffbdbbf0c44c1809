// This browser's device: an Olm account, and the keys others need to reach it (a port of
// tlschat/e2e/device.py; docs/PROTOCOL.md section 23, "Devices").
//
// A device has a Curve25519 key (Olm's identity key) and an Ed25519 key (it signs the device's
// one-time keys). Its id is the base32 (no padding) of the first 10 bytes of
// SHA-256("tlschat v1 device id" || 0x00 || the Curve25519 key's 32 bytes). The user's identity
// key signs the device keys over
//   "tlschat v1 device keys" || 0x00 || u8 len || user || u8 len || device
//     || u8 len || curve25519 || u8 len || ed25519
// and the device's Ed25519 key signs each one-time key over
//   "tlschat v1 one-time key" || 0x00 || u8 len || device || u8 len || key id
//     || u8 fallback (0/1) || u8 len || key.

import { Writer, utf8 } from "../protocol/bytes.js";
import { fingerprintsEqual, verifySignature } from "../protocol/identity.js";
import { sha256 } from "../protocol/keyschedule.js";
import { b64decode } from "./codec.js";

const DEVICE_ID_CONTEXT = utf8("tlschat v1 device id\0");
const DEVICE_KEYS_CONTEXT = utf8("tlschat v1 device keys\0");
const ONE_TIME_KEY_CONTEXT = utf8("tlschat v1 one-time key\0");
const DEVICE_ID_BYTES = 10;
export const KEY_SIZE = 32;
// libolm encrypts its pickles with a key of the caller's; the page seals every pickle again
// under its own non-extractable AES-GCM key (vault.js), which is what keeps it secret, so this
// one is a constant.
export const PICKLE_KEY = "tlschat web: sealed by the page's vault key";
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * A device's public keys as its user vouches for them.
 * @typedef {{user: string, deviceId: string, curve25519: string, ed25519: string,
 *            signature: Uint8Array}} DeviceKeys
 *   `user`: the fingerprint of the user's identity key; `signature`: that key's signature
 */
/**
 * A Curve25519 key that starts one Olm session (the fallback key: any number until replaced),
 * signed by its device's Ed25519 key (unpadded base64).
 * @typedef {{keyId: string, key: string, fallback: boolean, signature: string}} SignedOneTimeKey
 */

/**
 * @param {string} text a key in (unpadded) base64
 * @returns {Uint8Array} its 32 bytes; a RangeError for anything else
 */
export function rawKey(text) {
  const key = b64decode(text);
  if (key.length !== KEY_SIZE)
    throw new RangeError(`a key is ${KEY_SIZE} bytes, not ${key.length}`);
  return key;
}

/** @param {Uint8Array} bytes @returns {string} RFC 4648 base32 without padding */
function base32(bytes) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * @param {string} curve25519 the device's Curve25519 key (base64)
 * @returns {Promise<string>} the device id derived from it
 */
export async function deviceIdOf(curve25519) {
  const digest = await sha256(
    new Writer().fixed(DEVICE_ID_CONTEXT).fixed(rawKey(curve25519)).bytes(),
  );
  return base32(digest.subarray(0, DEVICE_ID_BYTES));
}

/**
 * The exact bytes the identity signature of device keys covers.
 * @param {string} user
 * @param {string} deviceId
 * @param {string} curve25519
 * @param {string} ed25519
 * @returns {Uint8Array}
 */
export function deviceKeysSignedBytes(user, deviceId, curve25519, ed25519) {
  return new Writer()
    .fixed(DEVICE_KEYS_CONTEXT)
    .vector(1, asciiBytes(user))
    .vector(1, asciiBytes(deviceId))
    .vector(1, rawKey(curve25519))
    .vector(1, rawKey(ed25519))
    .bytes();
}

/**
 * The exact bytes a device's signature of a one-time key covers.
 * @param {string} deviceId
 * @param {string} keyId
 * @param {boolean} fallback
 * @param {string} key
 * @returns {Uint8Array}
 */
export function oneTimeKeySignedBytes(deviceId, keyId, fallback, key) {
  return new Writer()
    .fixed(ONE_TIME_KEY_CONTEXT)
    .vector(1, asciiBytes(deviceId))
    .vector(1, asciiBytes(keyId))
    .uint(fallback ? 1 : 0, 1)
    .vector(1, rawKey(key))
    .bytes();
}

/** @param {string} text @returns {Uint8Array} */
function asciiBytes(text) {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError("not ASCII");
  return utf8(text);
}

/**
 * libolm's `{"curve25519": {id: key}}` as a list, in key id order.
 * @param {string} json
 * @returns {[string, string][]}
 */
function keysOf(json) {
  const keys = JSON.parse(json).curve25519 ?? {};
  return Object.keys(keys)
    .sort()
    .map((id) => [id, keys[id]]);
}

/** One browser's Olm account. After anything changes it, the caller seals and stores it again. */
export class Device {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {any} account an Olm Account
   * @param {string} deviceId
   */
  constructor(olm, account, deviceId) {
    this.olm = olm;
    this.account = account;
    this.deviceId = deviceId;
    const keys = JSON.parse(account.identity_keys());
    /** @type {string} */
    this.curve25519Key = keys.curve25519;
    /** @type {string} */
    this.ed25519Key = keys.ed25519;
  }

  /** @param {import("./olm.js").OlmLibrary} olm @returns {Promise<Device>} a new account */
  static async create(olm) {
    const account = new olm.Account();
    account.create();
    return Device._of(olm, account);
  }

  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {string} pickle what `pickle()` returned
   * @returns {Promise<Device>}
   */
  static async fromPickle(olm, pickle) {
    const account = new olm.Account();
    account.unpickle(PICKLE_KEY, pickle);
    return Device._of(olm, account);
  }

  /** @param {import("./olm.js").OlmLibrary} olm @param {any} account */
  static async _of(olm, account) {
    const curve = JSON.parse(account.identity_keys()).curve25519;
    return new Device(olm, account, await deviceIdOf(curve));
  }

  /** @returns {string} */
  pickle() {
    return this.account.pickle(PICKLE_KEY);
  }

  /** @returns {number} how many one-time keys the account holds at most */
  get maxOneTimeKeys() {
    return this.account.max_number_of_one_time_keys();
  }

  /** @param {number} count */
  generateOneTimeKeys(count) {
    if (!(count > 0 && count <= this.maxOneTimeKeys))
      throw new RangeError(`generate 1 to ${this.maxOneTimeKeys} one-time keys, not ${count}`);
    this.account.generate_one_time_keys(count);
  }

  /** A new fallback key; libolm keeps the previous one too until the next. */
  generateFallbackKey() {
    this.account.generate_fallback_key();
  }

  /** @returns {SignedOneTimeKey[]} */
  unpublishedOneTimeKeys() {
    return keysOf(this.account.one_time_keys()).map(([id, key]) => this._signed(id, key, false));
  }

  /** @returns {SignedOneTimeKey | null} */
  unpublishedFallbackKey() {
    const [first] = keysOf(this.account.unpublished_fallback_key());
    return first === undefined ? null : this._signed(first[0], first[1], true);
  }

  /** The unpublished one-time keys and fallback key are in the directory now. */
  markKeysAsPublished() {
    this.account.mark_keys_as_published();
  }

  /**
   * @param {string} keyId
   * @param {string} key
   * @param {boolean} fallback
   * @returns {SignedOneTimeKey}
   */
  _signed(keyId, key, fallback) {
    const payload = oneTimeKeySignedBytes(this.deviceId, keyId, fallback, key);
    return { keyId, key, fallback, signature: this.account.sign(payload) };
  }
}

/**
 * `device`'s public keys, vouched for by the user's identity key.
 * @param {Device} device
 * @param {import("../protocol/identity.js").ClientIdentity} identity
 * @returns {Promise<DeviceKeys>}
 */
export async function signDeviceKeys(device, identity) {
  const user = identity.fingerprint;
  const payload = deviceKeysSignedBytes(
    user,
    device.deviceId,
    device.curve25519Key,
    device.ed25519Key,
  );
  return {
    user,
    deviceId: device.deviceId,
    curve25519: device.curve25519Key,
    ed25519: device.ed25519Key,
    signature: await identity.sign(payload),
  };
}

/**
 * True if `owner` (the identity key the entry is listed for) is the user `keys` names, signed
 * exactly these keys, and the id is the one the Curve25519 key gives. Keys failing here are
 * never used.
 * @param {DeviceKeys} keys
 * @param {import("../protocol/identity.js").PeerIdentity} owner
 * @returns {Promise<boolean>}
 */
export async function verifyDeviceKeys(keys, owner) {
  if (!fingerprintsEqual(owner.fingerprint, keys.user)) return false;
  try {
    rawKey(keys.ed25519);
    if ((await deviceIdOf(keys.curve25519)) !== keys.deviceId) return false;
    const payload = deviceKeysSignedBytes(keys.user, keys.deviceId, keys.curve25519, keys.ed25519);
    await verifySignature(owner.publicKey, owner.publicKey.scheme, payload, keys.signature);
  } catch {
    return false;
  }
  return true;
}

/**
 * True if `key` is signed by the Ed25519 key of `owner` (device keys verified already) for that
 * device. A key failing here is never used.
 * @param {import("./olm.js").OlmLibrary} olm
 * @param {DeviceKeys} owner
 * @param {SignedOneTimeKey} key
 * @returns {boolean}
 */
export function verifyOneTimeKey(olm, owner, key) {
  const utility = new olm.Utility();
  try {
    rawKey(key.key);
    const payload = oneTimeKeySignedBytes(owner.deviceId, key.keyId, key.fallback, key.key);
    utility.ed25519_verify(owner.ed25519, payload, key.signature);
    return true;
  } catch {
    return false;
  } finally {
    utility.free();
  }
}
