// The text of one private message under its own key (a port of tlschat/e2e/private.py;
// docs/PROTOCOL.md section 23, "Encrypted private messages"). A private message is sealed once
// with AES-256-GCM under a fresh random 32-byte key; only the key travels over Olm, to each
// device, so a message for eight devices is encrypted once. The ciphertext is
// nonce (12 bytes) || AES-256-GCM(key, nonce, plaintext, aad = "tlschat v3 private message" || 0).
// A key seals one message only, so a random nonce never repeats under it.

import { concat, utf8 } from "../protocol/bytes.js";

export const PRIVATE_AAD = utf8("tlschat v3 private message\0");
export const PRIVATE_KEY_SIZE = 32;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
// A sealed chat line is a signature and a body of at most 4096 bytes with its fields: far below.
const MAX_PLAINTEXT = 8192;

/** A private message that does not open under the key that came for it. */
export class PrivateUndecryptable extends Error {}

/** @returns {Uint8Array} a fresh key for one private message */
export function newPrivateKey() {
  return crypto.getRandomValues(new Uint8Array(PRIVATE_KEY_SIZE));
}

/** @param {Uint8Array} key @param {KeyUsage} usage */
function importKey(key, usage) {
  return crypto.subtle.importKey("raw", key, "AES-GCM", false, [usage]);
}

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} [nonce] fresh and random unless given (the worked example's is counted)
 * @returns {Promise<Uint8Array>} nonce || ciphertext || tag
 */
export async function sealPrivate(
  key,
  plaintext,
  nonce = crypto.getRandomValues(new Uint8Array(NONCE_SIZE)),
) {
  if (key.length !== PRIVATE_KEY_SIZE)
    throw new RangeError(`a private message key is ${PRIVATE_KEY_SIZE} bytes`);
  if (plaintext.length > MAX_PLAINTEXT)
    throw new RangeError(`a private message is at most ${MAX_PLAINTEXT} bytes`);
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: PRIVATE_AAD },
    await importKey(key, "encrypt"),
    plaintext,
  );
  return concat(nonce, new Uint8Array(sealed));
}

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} sealed
 * @returns {Promise<Uint8Array>} the plaintext; PrivateUndecryptable if `key` did not seal it
 */
export async function openPrivate(key, sealed) {
  if (key.length !== PRIVATE_KEY_SIZE)
    throw new PrivateUndecryptable(`a private message key is ${PRIVATE_KEY_SIZE} bytes`);
  if (
    sealed.length < NONCE_SIZE + TAG_SIZE ||
    sealed.length > NONCE_SIZE + MAX_PLAINTEXT + TAG_SIZE
  )
    throw new PrivateUndecryptable("a private message of impossible length");
  try {
    const opened = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.subarray(0, NONCE_SIZE), additionalData: PRIVATE_AAD },
      await importKey(key, "decrypt"),
      sealed.subarray(NONCE_SIZE),
    );
    return new Uint8Array(opened);
  } catch {
    throw new PrivateUndecryptable("the private message does not open under its key");
  }
}
