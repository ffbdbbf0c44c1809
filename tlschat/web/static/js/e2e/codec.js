// Encodings the end-to-end modules share (a port of tlschat/e2e/codec.py): libolm's and
// vodozemac's unpadded base64, and the sealed form of this layer's own state, which the page
// keeps in IndexedDB: JSON under AES-256-GCM with a key WebCrypto never lets out (vault.js), the
// purpose as associated data, so that a state of one kind never opens as another.

import { fromBase64, fromUtf8, toBase64, utf8 } from "../protocol/bytes.js";

const SEALED_PREFIX = "v1.";
const NONCE_SIZE = 12;

/** A sealed state that does not open with the key, or holds no state of its kind. */
export class UnreadableState extends Error {}

/** @param {Uint8Array} bytes @returns {string} standard base64 without padding */
export function b64encode(bytes) {
  return toBase64(bytes).replace(/=+$/, "");
}

/**
 * @param {string} text standard base64, padded or not
 * @returns {Uint8Array} its bytes; a RangeError for anything else
 */
export function b64decode(text) {
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  return fromBase64(padded);
}

/**
 * @param {CryptoKey} key an AES-GCM key
 * @param {string} purpose what the state is (the associated data)
 * @param {unknown} state anything JSON holds
 * @returns {Promise<string>} "v1." + base64(nonce || ciphertext and tag)
 */
export async function seal(key, purpose, state) {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: utf8(purpose) },
    key,
    utf8(JSON.stringify(state)),
  );
  const out = new Uint8Array(NONCE_SIZE + sealed.byteLength);
  out.set(nonce);
  out.set(new Uint8Array(sealed), NONCE_SIZE);
  return SEALED_PREFIX + b64encode(out);
}

/**
 * @param {CryptoKey} key
 * @param {string} purpose
 * @param {string} text what `seal` made
 * @returns {Promise<any>} the state; UnreadableState for anything else
 */
export async function unseal(key, purpose, text) {
  if (!text.startsWith(SEALED_PREFIX)) throw new UnreadableState(`not a sealed ${purpose}`);
  try {
    const raw = b64decode(text.slice(SEALED_PREFIX.length));
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: raw.subarray(0, NONCE_SIZE), additionalData: utf8(purpose) },
      key,
      raw.subarray(NONCE_SIZE),
    );
    return JSON.parse(fromUtf8(new Uint8Array(plaintext)));
  } catch {
    throw new UnreadableState(`the ${purpose} does not open with this browser's key`);
  }
}
