// What one device says to another inside Olm: the to-device payload (a port of
// tlschat/e2e/payloads.py; docs/PROTOCOL.md section 23, "To-device payloads"). The plaintext is a
// UTF-8 JSON object of at most 2048 bytes: `type`, the envelope (`sender`, `sender_device`,
// `recipient`, `recipient_device`) and the type's fields. Olm proves which Curve25519 key sent
// it, not which user or device that is, nor whom it was for: the envelope says so, and the
// receiver checks it (`checkEnvelope`) before it acts on anything else.

import { utf8 } from "../protocol/bytes.js";
import { fingerprintsEqual } from "../protocol/identity.js";
import { b64decode, b64encode } from "./codec.js";

export const MAX_PAYLOAD_BYTES = 2048;
export const ROOM_KEY = "room_key";
export const PRIVATE = "private";
export const VERIFY_TYPES = Object.freeze([
  "verify_request",
  "verify_accept",
  "verify_key",
  "verify_mac",
  "verify_cancel",
]);
const PAYLOAD_TYPES = new Set([ROOM_KEY, PRIVATE, ...VERIFY_TYPES]);
const ENVELOPE_FIELDS = ["type", "sender", "sender_device", "recipient", "recipient_device"];

export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
export const DEVICE_ID = /^[A-Z2-7]{16}$/;
const ROOM = /^#[A-Za-z0-9_-]{1,32}$/;
const SESSION_ID = /^[A-Za-z0-9+/]{1,64}$/;
// An exported Megolm session key is 229 bytes: 306 characters of unpadded base64.
const SESSION_KEY = /^[A-Za-z0-9+/]{1,512}$/;
const PRIVATE_KEY = /^[A-Za-z0-9+/]{43}=?$/;
export const PRIVATE_KEY_SIZE = 32;

/** A to-device payload of the wrong shape, not for us, or not from whom Olm says. */
export class PayloadError extends Error {}

/**
 * Who says it to whom: user fingerprints and device ids.
 * @typedef {{sender: string, senderDevice: string, recipient: string,
 *            recipientDevice: string}} Envelope
 * @typedef {{kind: string, envelope: Envelope, fields: Record<string, unknown>}} ToDevicePayload
 *   `fields`: the type's own, bounded by each type's reader
 * @typedef {{network: string, room: string, sessionId: string, sessionKey: string}} SharedRoomKey
 */

/** @param {Envelope} envelope */
const envelopeFields = (envelope) => ({
  sender: envelope.sender,
  sender_device: envelope.senderDevice,
  recipient: envelope.recipient,
  recipient_device: envelope.recipientDevice,
});

/**
 * @param {string} kind
 * @param {Envelope} envelope
 * @param {Record<string, unknown>} fields
 * @returns {string} the JSON text (compact, as Python's json.dumps with separators writes it)
 */
export function encodePayload(kind, envelope, fields) {
  if (!PAYLOAD_TYPES.has(kind)) throw new RangeError(`not a to-device payload type: ${kind}`);
  if (ENVELOPE_FIELDS.some((name) => Object.hasOwn(fields, name)))
    throw new RangeError("a payload's fields cannot replace its envelope");
  const text = JSON.stringify({ type: kind, ...envelopeFields(envelope), ...fields });
  if (utf8(text).length > MAX_PAYLOAD_BYTES)
    throw new RangeError(`a to-device payload is at most ${MAX_PAYLOAD_BYTES} bytes`);
  return text;
}

/**
 * @param {string} text an Olm plaintext
 * @returns {ToDevicePayload}
 */
export function parsePayload(text) {
  if (!text.isWellFormed() || utf8(text).length > MAX_PAYLOAD_BYTES)
    throw new PayloadError(`a to-device payload is at most ${MAX_PAYLOAD_BYTES} bytes of UTF-8`);
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PayloadError("a to-device payload is JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new PayloadError("a to-device payload is a JSON object");
  if (typeof value.type !== "string" || !PAYLOAD_TYPES.has(value.type))
    throw new PayloadError("unknown to-device payload type");
  const envelope = {
    sender: matching(value, "sender", FINGERPRINT),
    senderDevice: matching(value, "sender_device", DEVICE_ID),
    recipient: matching(value, "recipient", FINGERPRINT),
    recipientDevice: matching(value, "recipient_device", DEVICE_ID),
  };
  /** @type {Record<string, unknown>} */
  const fields = {};
  for (const [name, item] of Object.entries(value))
    if (!ENVELOPE_FIELDS.includes(name)) fields[name] = item;
  return { kind: value.type, envelope, fields };
}

/**
 * Refuse a payload unless it names exactly the sender Olm authenticated and our own user and
 * device. Every field is compared, whatever the first mismatch.
 * @param {ToDevicePayload} payload
 * @param {Envelope} expected
 */
export function checkEnvelope(payload, expected) {
  const got = Object.values(envelopeFields(payload.envelope));
  const want = Object.values(envelopeFields(expected));
  const results = got.map((value, i) => fingerprintsEqual(value, want[i]));
  if (!results.every(Boolean))
    throw new PayloadError("the payload names another sender or recipient than it came from or to");
}

/**
 * @param {string} network
 * @param {string} room
 * @param {string} sessionId
 * @param {string} sessionKey
 */
export const roomKeyFields = (network, room, sessionId, sessionKey) => ({
  network,
  room,
  session: sessionId,
  key: sessionKey,
});

/** @param {ToDevicePayload} payload @returns {SharedRoomKey} */
export function parseRoomKey(payload) {
  if (payload.kind !== ROOM_KEY) throw new PayloadError("not a room key");
  return {
    network: matching(payload.fields, "network", FINGERPRINT),
    room: matching(payload.fields, "room", ROOM),
    sessionId: matching(payload.fields, "session", SESSION_ID),
    sessionKey: matching(payload.fields, "key", SESSION_KEY),
  };
}

/** @param {Uint8Array} key @returns {{key: string}} */
export function privateKeyFields(key) {
  if (key.length !== PRIVATE_KEY_SIZE)
    throw new RangeError(`a private message key is ${PRIVATE_KEY_SIZE} bytes`);
  return { key: b64encode(key) };
}

/** @param {ToDevicePayload} payload @returns {Uint8Array} */
export function parsePrivateKey(payload) {
  if (payload.kind !== PRIVATE) throw new PayloadError("not a private message key");
  const key = b64decode(matching(payload.fields, "key", PRIVATE_KEY));
  if (key.length !== PRIVATE_KEY_SIZE)
    throw new PayloadError(`a private message key is ${PRIVATE_KEY_SIZE} bytes`);
  return key;
}

/**
 * @param {Record<string, unknown>} fields
 * @param {string} name
 * @param {RegExp} pattern
 * @returns {string}
 */
function matching(fields, name, pattern) {
  const value = fields[name];
  if (typeof value !== "string" || !pattern.test(value))
    throw new PayloadError(`'${name}' is missing or not well formed`);
  return value;
}
