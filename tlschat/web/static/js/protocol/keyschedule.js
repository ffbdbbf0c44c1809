// The key schedule (docs/PROTOCOL.md section 11): TLS 1.3's (RFC 8446 section 7.1) without PSK,
// SHA-256, and the label prefix "tlschat1 ". WebCrypto's HKDF always runs Extract and Expand
// together, while the schedule needs them apart, so both are built on WebCrypto's HMAC-SHA256
// exactly as RFC 5869 defines them.

import { concat, utf8 } from "./bytes.js";

const subtle = globalThis.crypto.subtle;

export const HASH_LENGTH = 32;
export const LABEL_PREFIX = "tlschat1 ";
const ZEROS = new Uint8Array(HASH_LENGTH);

/**
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>} SHA-256(data)
 */
export async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

/** SHA-256 of nothing: the context of every "derived" secret. */
export const EMPTY_HASH = await sha256(new Uint8Array(0));

/**
 * @param {Uint8Array} key
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>} HMAC-SHA256(key, data)
 */
export async function hmacSha256(key, data) {
  const hmacKey = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await subtle.sign("HMAC", hmacKey, data));
}

/**
 * HKDF-Extract (RFC 5869): HMAC-SHA256 keyed with the salt.
 * @param {Uint8Array} salt
 * @param {Uint8Array} ikm
 * @returns {Promise<Uint8Array>}
 */
export function hkdfExtract(salt, ikm) {
  return hmacSha256(salt, ikm);
}

/**
 * HKDF-Expand (RFC 5869) with SHA-256.
 * @param {Uint8Array} secret
 * @param {Uint8Array} info
 * @param {number} length 1 to 255 * 32 bytes
 * @returns {Promise<Uint8Array>}
 */
export async function hkdfExpand(secret, info, length) {
  if (!(length > 0 && length <= 255 * HASH_LENGTH)) throw new RangeError(`HKDF length ${length}`);
  const blocks = [];
  let previous = new Uint8Array(0);
  for (let i = 1; blocks.length * HASH_LENGTH < length; i++) {
    previous = await hmacSha256(secret, concat(previous, info, Uint8Array.of(i)));
    blocks.push(previous);
  }
  return concat(...blocks).slice(0, length);
}

/**
 * HKDF-Expand-Label: info = u16 length || u8 len || "tlschat1 " || label || u8 len || context.
 * @param {Uint8Array} secret
 * @param {string} label without the prefix
 * @param {Uint8Array} context
 * @param {number} length
 * @returns {Promise<Uint8Array>}
 */
export function hkdfExpandLabel(secret, label, context, length) {
  const fullLabel = utf8(LABEL_PREFIX + label);
  if (fullLabel.length > 255 || context.length > 255) throw new RangeError("label or context");
  const info = concat(
    Uint8Array.of(length >> 8, length & 0xff, fullLabel.length),
    fullLabel,
    Uint8Array.of(context.length),
    context,
  );
  return hkdfExpand(secret, info, length);
}

/**
 * Derive-Secret with the transcript already hashed.
 * @param {Uint8Array} secret
 * @param {string} label
 * @param {Uint8Array} transcriptHash
 * @returns {Promise<Uint8Array>}
 */
export function deriveSecret(secret, label, transcriptHash) {
  return hkdfExpandLabel(secret, label, transcriptHash, HASH_LENGTH);
}

/**
 * The AEAD key and IV of one traffic secret.
 * @param {Uint8Array} secret
 * @returns {Promise<{key: Uint8Array, iv: Uint8Array}>}
 */
export async function trafficKeys(secret) {
  const none = new Uint8Array(0);
  return {
    key: await hkdfExpandLabel(secret, "key", none, 32),
    iv: await hkdfExpandLabel(secret, "iv", none, 12),
  };
}

/**
 * @param {Uint8Array} handshakeSecret a handshake traffic secret
 * @returns {Promise<Uint8Array>} its finished_key
 */
export function finishedKey(handshakeSecret) {
  return hkdfExpandLabel(handshakeSecret, "finished", new Uint8Array(0), HASH_LENGTH);
}

/**
 * The body of a Finished message (section 12).
 * @param {Uint8Array} handshakeSecret
 * @param {Uint8Array} transcriptHash
 * @returns {Promise<Uint8Array>}
 */
export async function finishedVerifyData(handshakeSecret, transcriptHash) {
  return hmacSha256(await finishedKey(handshakeSecret), transcriptHash);
}

/**
 * application_traffic_secret_N+1, for KeyUpdate (section 15).
 * @param {Uint8Array} secret
 * @returns {Promise<Uint8Array>}
 */
export function nextTrafficSecret(secret) {
  return hkdfExpandLabel(secret, "traffic upd", new Uint8Array(0), HASH_LENGTH);
}

/** The secrets of one handshake, from the X25519 shared secret on. */
export class KeySchedule {
  /**
   * @param {Uint8Array} sharedSecret
   * @returns {Promise<KeySchedule>}
   */
  static async fromSharedSecret(sharedSecret) {
    const early = await hkdfExtract(ZEROS, ZEROS);
    const handshake = await hkdfExtract(
      await deriveSecret(early, "derived", EMPTY_HASH),
      sharedSecret,
    );
    const master = await hkdfExtract(await deriveSecret(handshake, "derived", EMPTY_HASH), ZEROS);
    return new KeySchedule(handshake, master);
  }

  /**
   * @param {Uint8Array} handshakeSecret
   * @param {Uint8Array} masterSecret
   */
  constructor(handshakeSecret, masterSecret) {
    this.handshakeSecret = handshakeSecret;
    this.masterSecret = masterSecret;
  }

  /**
   * @param {Uint8Array} helloHash H(ClientHello .. ServerHello)
   * @returns {Promise<[Uint8Array, Uint8Array]>} the client's and the server's
   */
  async handshakeTrafficSecrets(helloHash) {
    return [
      await deriveSecret(this.handshakeSecret, "c hs traffic", helloHash),
      await deriveSecret(this.handshakeSecret, "s hs traffic", helloHash),
    ];
  }

  /**
   * @param {Uint8Array} transcriptHash H(ClientHello .. client Finished)
   * @returns {Promise<[Uint8Array, Uint8Array]>} the client's and the server's
   */
  async applicationTrafficSecrets(transcriptHash) {
    return [
      await deriveSecret(this.masterSecret, "c ap traffic", transcriptHash),
      await deriveSecret(this.masterSecret, "s ap traffic", transcriptHash),
    ];
  }

  /** Once connected nothing derives from these: a later memory disclosure should find none. */
  forget() {
    this.handshakeSecret.fill(0);
    this.masterSecret.fill(0);
  }
}
