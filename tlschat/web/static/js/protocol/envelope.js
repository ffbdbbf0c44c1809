// Signed chat messages (docs/PROTOCOL.md section 21): the exact bytes a line's signature covers,
// composing a line by the sender rules, the fields of `say` and `message` frames, and the
// recipient's checks that need no memory of earlier lines (network, target, key, sender,
// signature, time). Which lines were shown before (replays) is the chat client's to remember.

import { Writer, toBase64, utf8 } from "./bytes.js";
import { fieldBase64, fieldInt, fieldStr } from "./frames.js";
import { PeerIdentity, fingerprintsEqual, verifySignature } from "./identity.js";

export const CHAT_SIGNATURE_CONTEXT = utf8("tlschat v2 chat message\0");
export const MAX_NETWORK = 64;
export const MAX_TARGET = 64;
export const MAX_SENDER = 64;
export const MAX_BODY_BYTES = 4096;
export const MAX_SIGNATURE_BASE64 = 2048;
export const MAX_KEY_BASE64 = 4096;
/** How far ahead of the recipient's clock a line may be dated (10 minutes). */
export const FUTURE_SKEW_MS = 600_000;

/** Why a received line is not verified, as the Python client words it. */
export const Problem = Object.freeze({
  ANOTHER_NETWORK: "signed for another network",
  ANOTHER_ROOM: "signed for another room",
  NOT_FOR_YOU: "signed for someone else",
  BAD_KEY: "unusable key",
  BAD_SIGNATURE: "bad signature",
  FROM_THE_FUTURE: "dated in the future",
});

/**
 * A chat line as its sender signed it. `network` is the fingerprint of the server key it was
 * signed for; `target` a `#room` or `@fingerprint`; counter and timestampMs safe integers.
 * @typedef {{network: string, target: string, sender: string, counter: number,
 *            timestampMs: number, body: string, signature: Uint8Array}} SignedMessage
 */

/**
 * The exact bytes a chat signature covers (section 21).
 * @param {Omit<SignedMessage, "signature">} message
 * @returns {Uint8Array}
 */
export function signedBytes(message) {
  if (!/^[\x00-\x7f]*$/.test(message.sender)) throw new RangeError("sender is not ASCII");
  return new Writer()
    .fixed(CHAT_SIGNATURE_CONTEXT)
    .vector(1, utf8(message.network))
    .vector(1, utf8(message.target))
    .vector(1, utf8(message.sender))
    .u64(message.counter)
    .u64(message.timestampMs)
    .vector(4, utf8(message.body))
    .bytes();
}

/** Signs the lines of one identity on one network, with counters that never repeat. */
export class Composer {
  /**
   * @param {import("./identity.js").ClientIdentity} identity
   * @param {string} network the fingerprint of the server key of the current connection
   * @param {number} [counter] the last counter this identity used, if known
   */
  constructor(identity, network, counter = 0) {
    this.identity = identity;
    this.network = network;
    this.counter = counter;
  }

  /**
   * Sign `body` for `target` at `now`: counter = max(previous + 1, floor(now × 10^6)), strictly
   * increasing and, being at least the time in microseconds, also across restarts;
   * timestampMs = floor(now × 1000).
   * @param {string} target
   * @param {string} body
   * @param {number} now seconds since the Unix epoch, when the line's turn to be signed came
   * @returns {Promise<SignedMessage>}
   */
  async sign(target, body, now) {
    const counter = Math.max(this.counter + 1, Math.floor(now * 1_000_000));
    const fields = {
      network: this.network,
      target,
      sender: this.identity.fingerprint,
      counter,
      timestampMs: Math.floor(now * 1000),
      body,
    };
    const signature = await this.identity.sign(signedBytes(fields));
    this.counter = counter;
    return { ...fields, signature };
  }
}

/**
 * True if `key` is the claimed sender's and signed exactly these fields.
 * @param {SignedMessage} message
 * @param {PeerIdentity} key
 * @returns {Promise<boolean>}
 */
export async function verifyMessage(message, key) {
  if (!fingerprintsEqual(key.fingerprint, message.sender)) return false;
  try {
    await verifySignature(
      key.publicKey,
      key.publicKey.scheme,
      signedBytes(message),
      message.signature,
    );
    return true;
  } catch {
    return false;
  }
}

/**
 * @typedef {{network: string, ownFingerprint: string, rooms: string[], historyRoom?: string,
 *            now: number}} Recipient
 *   `historyRoom`: the room a `history` entry came for (empty or absent for a live line);
 *   `now`: seconds since the Unix epoch
 */

/**
 * The recipient checks of section 21, in order, that need no memory of earlier lines.
 * @param {SignedMessage} message
 * @param {Uint8Array} keyDer the `key` the server relayed with it (DER SPKI)
 * @param {Recipient} recipient
 * @returns {Promise<{verified: boolean, problem: string}>}
 */
export async function checkMessage(message, keyDer, recipient) {
  const refused = (/** @type {string} */ problem) => ({ verified: false, problem });
  if (message.network !== recipient.network) return refused(Problem.ANOTHER_NETWORK);
  if (message.target.startsWith("@")) {
    if (!fingerprintsEqual(message.target.slice(1), recipient.ownFingerprint)) {
      return refused(Problem.NOT_FOR_YOU);
    }
  } else if (
    !(recipient.historyRoom ? [recipient.historyRoom] : recipient.rooms).includes(message.target)
  ) {
    return refused(Problem.ANOTHER_ROOM);
  }
  let key;
  try {
    key = await PeerIdentity.fromSpki(keyDer);
  } catch {
    return refused(Problem.BAD_KEY);
  }
  if (!(await verifyMessage(message, key))) return refused(Problem.BAD_SIGNATURE);
  if (message.timestampMs > Math.floor(recipient.now * 1000) + FUTURE_SKEW_MS) {
    return refused(Problem.FROM_THE_FUTURE);
  }
  return { verified: true, problem: "" };
}

/**
 * The `say` frame that carries a signed line (a room line; private lines are end-to-end
 * encrypted, section 23).
 * @param {SignedMessage} message
 * @returns {import("./frames.js").Frame}
 */
export function sayFrame(message) {
  return {
    type: "say",
    network: message.network,
    target: message.target,
    sender: message.sender,
    counter: message.counter,
    ts: message.timestampMs,
    body: message.body,
    sig: toBase64(message.signature),
  };
}

/**
 * The signed line of a `message` frame (or a `say`), each field bounded as section 22 says.
 * @param {import("./frames.js").Frame} frame
 * @returns {SignedMessage}
 */
export function parseSignedMessage(frame) {
  const body = fieldStr(frame, "body", MAX_BODY_BYTES);
  return {
    network: fieldStr(frame, "network", MAX_NETWORK),
    target: fieldStr(frame, "target", MAX_TARGET),
    sender: fieldStr(frame, "sender", MAX_SENDER),
    counter: fieldInt(frame, "counter", Number.MAX_SAFE_INTEGER),
    timestampMs: fieldInt(frame, "ts", Number.MAX_SAFE_INTEGER),
    body,
    signature: fieldBase64(frame, "sig", MAX_SIGNATURE_BASE64),
  };
}

/**
 * The sender's key relayed in a `message` frame's `key` field (base64 DER SPKI).
 * @param {import("./frames.js").Frame} frame
 * @returns {Uint8Array}
 */
export function messageKey(frame) {
  return fieldBase64(frame, "key", MAX_KEY_BASE64);
}
