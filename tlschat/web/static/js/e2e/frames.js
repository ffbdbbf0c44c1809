// The end-to-end layer's values on the wire (a port of tlschat/chat/e2e_frames.py;
// docs/PROTOCOL.md section 23): device keys, one-time keys, Olm items, the `megolm` and
// `olm_private` fields of encrypted lines, and the sealed line inside them. Every field a peer
// controls is bounded here, before anything uses it; a bad one is a FrameError.

import { Reader, Writer, fromUtf8, toBase64 } from "../protocol/bytes.js";
import {
  CHAT_SIGNATURE_CONTEXT,
  MAX_BODY_BYTES,
  MAX_NETWORK,
  MAX_SIGNATURE_BASE64,
  MAX_TARGET,
  signedBytes,
} from "../protocol/envelope.js";
import {
  FrameError,
  MAX_FRAME,
  encodeFrame,
  fieldBase64,
  fieldInt,
  fieldStr,
} from "../protocol/frames.js";
import { DEVICE_ID, FINGERPRINT } from "./payloads.js";

export { DEVICE_ID, FINGERPRINT };
// libolm's and vodozemac's unpadded base64 of a 32-byte key is 43 characters.
export const KEY_43 = /^[A-Za-z0-9+/]{43}$/;
const KEY_ID = /^[A-Za-z0-9+/=_-]{1,64}$/;
const SESSION_ID = /^[A-Za-z0-9+/]{1,64}$/;
const MAX_OTK_SIGNATURE = 128;
const MAX_OLM_BODY = 4096;
const MAX_MEGOLM_CT = 8192;
const MAX_PRIVATE_CT = 8192;
export const MAX_PRIVATE_KEYS = 16;
export const MAX_UPLOAD_KEYS = 50;
export const MAX_QUERY = 32;
export const MAX_CLAIMS = 32;
export const MAX_TO_DEVICE = 128;
export const MAX_DEVICES_PER_KEY = 8;
export const MAX_SERVER_ONE_TIME_KEYS = 100;
/** A client tops its one-time keys up when the server holds fewer than this. */
export const LOW_ONE_TIME_KEYS = 25;
const MAX_SEALED_SIGNATURE = 1024;
// `to_device` frames stay this far under the frame limit (each item is about 1 KiB).
const TO_DEVICE_BYTES = MAX_FRAME - 4096;

/** @typedef {import("../protocol/frames.js").Frame} Frame */
/**
 * One Olm ciphertext for one device: an item of `to_device` or of `olm_private.keys`.
 * @typedef {{fingerprint: string, device: string, type: number, body: string}} OlmItem
 * @typedef {{session: string, ct: string}} MegolmLine
 * @typedef {{ct: string, keys: OlmItem[]}} PrivateLine
 * @typedef {{network: string, target: string, sender: string, counter: number,
 *            timestampMs: number, megolm: MegolmLine | null, private: PrivateLine | null}}
 *   EncryptedSay the readable fields of an encrypted `say` or `message`
 */

/** @param {Frame} frame @param {string} name @returns {string} */
export function fieldFingerprint(frame, name) {
  const value = fieldStr(frame, name, 64);
  if (!FINGERPRINT.test(value)) throw new FrameError(`'${name}' is not a fingerprint`);
  return value;
}

/** @param {Frame} frame @param {string} [name] @returns {string} */
export function fieldDevice(frame, name = "device") {
  const value = fieldStr(frame, name, 32);
  if (!DEVICE_ID.test(value)) throw new FrameError(`'${name}' is not a device id`);
  return value;
}

/**
 * A list of at most `maximum` JSON objects.
 * @param {Frame | Record<string, unknown>} frame
 * @param {string} name
 * @param {number} maximum
 * @returns {Frame[]}
 */
export function fieldList(frame, name, maximum) {
  const value = frame[name];
  if (!Array.isArray(value)) throw new FrameError(`'${name}' must be a list`);
  if (value.length > maximum) throw new FrameError(`'${name}' has more than ${maximum} items`);
  if (!value.every((item) => item !== null && typeof item === "object" && !Array.isArray(item)))
    throw new FrameError(`'${name}' must hold objects`);
  return value;
}

/** @param {Frame | Record<string, unknown>} frame @param {string} name @returns {Frame} */
export function fieldObject(frame, name) {
  const value = frame[name];
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new FrameError(`'${name}' must be an object`);
  return /** @type {Frame} */ (value);
}

/** @param {Frame} frame @param {string} name @returns {string} */
function key43(frame, name) {
  const value = fieldStr(frame, name, 64);
  if (!KEY_43.test(value)) throw new FrameError(`'${name}' is not a 32-byte key`);
  return value;
}

/**
 * A `device_keys` object, bounded; its signature is not checked here.
 * @param {Frame} frame
 * @returns {import("./device.js").DeviceKeys}
 */
export function parseDeviceKeys(frame) {
  return {
    user: fieldFingerprint(frame, "fingerprint"),
    deviceId: fieldDevice(frame),
    curve25519: key43(frame, "curve25519"),
    ed25519: key43(frame, "ed25519"),
    signature: fieldBase64(frame, "sig", MAX_SIGNATURE_BASE64),
  };
}

/** @param {import("./device.js").DeviceKeys} keys */
export function deviceKeysFields(keys) {
  return {
    fingerprint: keys.user,
    device: keys.deviceId,
    curve25519: keys.curve25519,
    ed25519: keys.ed25519,
    sig: toBase64(keys.signature),
  };
}

/** @param {Frame} frame @returns {import("./device.js").SignedOneTimeKey} */
export function parseOneTimeKey(frame) {
  const keyId = fieldStr(frame, "id", 64);
  if (!KEY_ID.test(keyId)) throw new FrameError("'id' is not a key id");
  if (typeof frame.fallback !== "boolean") throw new FrameError("'fallback' must be true or false");
  const signature = fieldStr(frame, "sig", MAX_OTK_SIGNATURE);
  return { keyId, key: key43(frame, "key"), fallback: frame.fallback, signature };
}

/** @param {import("./device.js").SignedOneTimeKey} key */
export const oneTimeKeyFields = (key) => ({
  id: key.keyId,
  key: key.key,
  fallback: key.fallback,
  sig: key.signature,
});

/** @param {Frame} frame @returns {{type: number, body: string}} an Olm ciphertext */
export function parseOlmBody(frame) {
  const type = fieldInt(frame, "type", 1);
  const body = fieldStr(frame, "body", MAX_OLM_BODY);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new FrameError("'body' is not base64");
  return { type, body: body.replace(/=+$/, "") };
}

/** @param {Frame} frame @returns {OlmItem} */
export function parseOlmItem(frame) {
  const { type, body } = parseOlmBody(frame);
  return {
    fingerprint: fieldFingerprint(frame, "fingerprint"),
    device: fieldDevice(frame),
    type,
    body,
  };
}

/** @param {Frame} frame @returns {MegolmLine} */
function parseMegolm(frame) {
  const field = fieldObject(frame, "megolm");
  const session = fieldStr(field, "session", 64);
  if (!SESSION_ID.test(session)) throw new FrameError("'session' is not a Megolm session id");
  const ct = fieldStr(field, "ct", MAX_MEGOLM_CT);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(ct)) throw new FrameError("'ct' is not base64");
  return { session, ct: ct.replace(/=+$/, "") };
}

/**
 * @param {Frame} frame
 * @param {boolean} withKeys what a recipient gets carries no `keys`
 * @returns {PrivateLine}
 */
function parsePrivate(frame, withKeys) {
  const field = fieldObject(frame, "olm_private");
  const ct = fieldStr(field, "ct", MAX_PRIVATE_CT);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(ct)) throw new FrameError("'ct' is not base64");
  if (!withKeys) return { ct, keys: [] };
  const keys = fieldList(field, "keys", MAX_PRIVATE_KEYS).map(parseOlmItem);
  if (new Set(keys.map((item) => `${item.fingerprint} ${item.device}`)).size !== keys.length)
    throw new FrameError("'keys' names a device twice");
  return { ct, keys };
}

/**
 * An encrypted `say`/`message`: exactly one of `megolm` (a room) or `olm_private` (private),
 * matching the target, and neither `body` nor `sig`.
 * @param {Frame} frame
 * @param {boolean} [withKeys]
 * @returns {EncryptedSay}
 */
export function parseEncryptedSay(frame, withKeys = true) {
  if ("body" in frame || "sig" in frame)
    throw new FrameError("an encrypted message carries no 'body' or 'sig'");
  const target = fieldStr(frame, "target", MAX_TARGET);
  const isPrivate = target.startsWith("@");
  if ("olm_private" in frame !== isPrivate || "megolm" in frame === isPrivate)
    throw new FrameError("a private message is 'olm_private', a room line 'megolm'");
  return {
    network: fieldStr(frame, "network", MAX_NETWORK),
    target,
    sender: fieldFingerprint(frame, "sender"),
    counter: fieldInt(frame, "counter", Number.MAX_SAFE_INTEGER),
    timestampMs: fieldInt(frame, "ts", Number.MAX_SAFE_INTEGER),
    megolm: isPrivate ? null : parseMegolm(frame),
    private: isPrivate ? parsePrivate(frame, withKeys) : null,
  };
}

/**
 * The `say` frame of an encrypted line.
 * @param {import("../protocol/envelope.js").SignedMessage} message
 * @param {{megolm?: MegolmLine, private?: PrivateLine}} sealed
 * @returns {Frame}
 */
export function encryptedSayFrame(message, sealed) {
  /** @type {Frame} */
  const frame = {
    type: "say",
    network: message.network,
    target: message.target,
    sender: message.sender,
    counter: message.counter,
    ts: message.timestampMs,
  };
  if (sealed.megolm) frame.megolm = sealed.megolm;
  if (sealed.private) frame.olm_private = sealed.private;
  return frame;
}

/**
 * What is encrypted for a line: u16 len || signature || the exact bytes it signs.
 * @param {import("../protocol/envelope.js").SignedMessage} message
 * @returns {Uint8Array}
 */
export function sealLine(message) {
  return new Writer().vector(2, message.signature).fixed(signedBytes(message)).bytes();
}

/**
 * The signed line inside `data`, every length checked; a FrameError if it is not one.
 * @param {Uint8Array} data
 * @returns {import("../protocol/envelope.js").SignedMessage}
 */
export function openSealedLine(data) {
  try {
    const reader = new Reader(data);
    const signature = reader.vector(2, 1, MAX_SEALED_SIGNATURE, "signature");
    const context = reader.fixed(CHAT_SIGNATURE_CONTEXT.length);
    if (!context.every((byte, i) => byte === CHAT_SIGNATURE_CONTEXT[i]))
      throw new FrameError("the sealed line is not a signed chat line");
    const network = fromUtf8(reader.vector(1, 1, MAX_NETWORK, "network"));
    const target = fromUtf8(reader.vector(1, 1, MAX_TARGET, "target"));
    const senderBytes = reader.vector(1, 1, 64, "sender");
    if (!senderBytes.every((byte) => byte < 0x80)) throw new FrameError("the sender is not ASCII");
    const sender = fromUtf8(senderBytes);
    const counter = u64(reader);
    const timestampMs = u64(reader);
    const body = fromUtf8(reader.vector(4, 0, MAX_BODY_BYTES, "body"));
    if (reader.remaining) throw new FrameError("the sealed line has bytes after its body");
    return { network, target, sender, counter, timestampMs, body, signature };
  } catch (problem) {
    if (problem instanceof FrameError) throw problem;
    throw new FrameError(
      `the sealed line does not parse: ${/** @type {Error} */ (problem).message}`,
    );
  }
}

/** @param {Reader} reader @returns {number} a u64 that must be a safe integer */
function u64(reader) {
  const value = new DataView(reader.fixed(8).buffer).getBigUint64(0);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameError("a u64 past 2^53 - 1");
  return Number(value);
}

/**
 * `to_device` frames carrying `items`, each within the item and size limits.
 * @param {OlmItem[]} items
 * @returns {Frame[]}
 */
export function toDeviceFrames(items) {
  /** @type {Frame[]} */
  const frames = [];
  /** @type {OlmItem[]} */
  let batch = [];
  let size = 0;
  for (const item of items) {
    const length = encodeFrame(/** @type {any} */ (item)).length + 1;
    if (batch.length && (batch.length >= MAX_TO_DEVICE || size + length > TO_DEVICE_BYTES)) {
      frames.push({ type: "to_device", messages: batch });
      [batch, size] = [[], 0];
    }
    batch.push(item);
    size += length;
  }
  if (batch.length) frames.push({ type: "to_device", messages: batch });
  return frames;
}
