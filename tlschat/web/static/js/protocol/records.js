// The record layer (docs/PROTOCOL.md section 4): framing, AES-256-GCM protection per direction
// with implicit sequence numbers, the length limits checked from the header before the body is
// buffered, and the per-key record limit. ChaCha20-Poly1305 (suite 0x0002) is not in WebCrypto,
// so this client protects records with AES-256-GCM only.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { ByteQueue, concat, uint } from "./bytes.js";
import { nextTrafficSecret, trafficKeys } from "./keyschedule.js";
import { CipherSuite, HandshakeType } from "./messages.js";

const subtle = globalThis.crypto.subtle;

/** @enum {number} */
export const ContentType = Object.freeze({ alert: 21, handshake: 22, application_data: 23 });

export const RECORD_HEADER_LENGTH = 5;
export const RECORD_VERSION = 0x0001;
export const MAX_PLAINTEXT = 16384;
export const TAG_LENGTH = 16;
export const MAX_CIPHERTEXT = MAX_PLAINTEXT + 1 + TAG_LENGTH;
export const KEY_UPDATE_LIMIT = 2 ** 24;
/** The suites whose AEAD this implementation has. */
export const AEAD_SUITES = Object.freeze([CipherSuite.AES_256_GCM_SHA256]);

const CONTENT_TYPES = new Set(Object.values(ContentType));

/**
 * @param {number} contentType
 * @param {number} length
 * @returns {Uint8Array}
 */
export function recordHeader(contentType, length) {
  return concat(Uint8Array.of(contentType), uint(RECORD_VERSION, 2), uint(length, 2));
}

/**
 * An unprotected record (ClientHello, and alerts before the sender has keys).
 * @param {number} contentType
 * @param {Uint8Array} content
 * @returns {Uint8Array}
 */
export function plaintextRecord(contentType, content) {
  return concat(recordHeader(contentType, content.length), content);
}

/**
 * The AEAD state of one direction: traffic secret, key, IV and the next sequence number. `limit`
 * is how many records the key may protect: the sender updates its key when `sequence` reaches
 * it, so the receiver accepts at most limit + 1 records under one key, the last a KeyUpdate.
 */
export class DirectionKeys {
  /**
   * @param {number} suite
   * @param {Uint8Array} secret a traffic secret
   * @param {number} limit
   * @returns {Promise<DirectionKeys>}
   */
  static async create(suite, secret, limit) {
    if (!AEAD_SUITES.includes(suite)) throw new RangeError(`no AEAD for suite ${suite}`);
    const keys = new DirectionKeys(suite, limit);
    await keys.install(secret);
    return keys;
  }

  /**
   * @param {number} suite
   * @param {number} limit
   */
  constructor(suite, limit) {
    this.suite = suite;
    this.limit = limit;
    this.generation = 0;
    this.sequence = 0;
    this.secret = new Uint8Array(0);
    this.iv = new Uint8Array(12);
    /** @type {CryptoKey | null} */
    this.key = null;
  }

  /** @param {Uint8Array} secret */
  async install(secret) {
    const { key, iv } = await trafficKeys(secret);
    this.key = await subtle.importKey("raw", key, { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    key.fill(0);
    this.secret = secret.slice();
    this.iv = iv;
    this.sequence = 0;
  }

  /** Switch to application_traffic_secret_N+1 (KeyUpdate), sequence 0. */
  async update() {
    const previous = this.secret;
    await this.install(await nextTrafficSecret(previous));
    previous.fill(0);
    this.generation += 1;
  }

  /** @returns {boolean} whether the sender must update before protecting another record */
  get needsUpdate() {
    return this.sequence >= this.limit;
  }

  /** @returns {Uint8Array} iv XOR sequence, the sequence as a 12-byte big-endian integer */
  nonce() {
    const nonce = this.iv.slice();
    const view = new DataView(nonce.buffer);
    view.setBigUint64(4, view.getBigUint64(4) ^ BigInt(this.sequence));
    return nonce;
  }

  /**
   * Protect one record: content || type, encrypted with the header as associated data.
   * @param {number} contentType
   * @param {Uint8Array} content
   * @returns {Promise<Uint8Array>} the whole record
   */
  async seal(contentType, content) {
    if (this.sequence > this.limit) {
      throw new ProtocolError(AlertDescription.key_exhausted, "write key used past its limit");
    }
    const header = recordHeader(ContentType.application_data, content.length + 1 + TAG_LENGTH);
    const nonce = this.nonce();
    this.sequence += 1;
    const sealed = await subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: header, tagLength: 128 },
      /** @type {CryptoKey} */ (this.key),
      concat(content, Uint8Array.of(contentType)),
    );
    return concat(header, new Uint8Array(sealed));
  }

  /**
   * Open one protected record.
   * @param {Uint8Array} header
   * @param {Uint8Array} fragment ciphertext || tag
   * @returns {Promise<{contentType: number, content: Uint8Array}>}
   */
  async open(header, fragment) {
    if (this.sequence > this.limit) {
      throw new ProtocolError(
        AlertDescription.key_exhausted,
        `peer sent record ${this.sequence} under one key without KeyUpdate`,
      );
    }
    if (fragment.length < 1 + TAG_LENGTH) {
      throw new ProtocolError(AlertDescription.bad_record_mac, "record shorter than its tag");
    }
    const nonce = this.nonce();
    let inner;
    try {
      inner = new Uint8Array(
        await subtle.decrypt(
          { name: "AES-GCM", iv: nonce, additionalData: header, tagLength: 128 },
          /** @type {CryptoKey} */ (this.key),
          fragment,
        ),
      );
    } catch {
      throw new ProtocolError(
        AlertDescription.bad_record_mac,
        `record ${this.sequence} failed authentication`,
      );
    }
    this.sequence += 1;
    const contentType = inner[inner.length - 1];
    if (!CONTENT_TYPES.has(contentType)) {
      throw new ProtocolError(
        AlertDescription.unexpected_message,
        `unknown inner content type ${contentType}`,
      );
    }
    const content = inner.subarray(0, inner.length - 1);
    if (content.length > MAX_PLAINTEXT) {
      throw new ProtocolError(
        AlertDescription.record_overflow,
        `plaintext of ${content.length} bytes`,
      );
    }
    return { contentType, content };
  }
}

/** Splits the incoming stream into records, checking each header before its body arrives. */
export class RecordReader {
  constructor() {
    this.queue = new ByteQueue();
    /** @type {DirectionKeys | null} */
    this.readKeys = null;
    // A peer that failed before it had write keys can only send a plaintext alert, so one is
    // accepted from the moment read keys exist until the handshake completes.
    this.acceptPlainAlerts = false;
  }

  /** @returns {number} bytes received and not yet a whole record */
  get pending() {
    return this.queue.length;
  }

  /** @param {Uint8Array} data */
  feed(data) {
    this.queue.push(data);
  }

  /**
   * The next whole record's content type and plaintext content, or null if it is incomplete.
   * @returns {Promise<{contentType: number, content: Uint8Array} | null>}
   */
  async next() {
    if (this.queue.length < RECORD_HEADER_LENGTH) return null;
    const header = this.queue.peek(RECORD_HEADER_LENGTH);
    const contentType = header[0];
    const length = (header[3] << 8) | header[4];
    if (!CONTENT_TYPES.has(contentType)) {
      throw new ProtocolError(
        AlertDescription.unexpected_message,
        `unknown record type ${contentType}`,
      );
    }
    const version = (header[1] << 8) | header[2];
    if (version !== RECORD_VERSION) {
      throw new ProtocolError(
        AlertDescription.protocol_version,
        `record version 0x${version.toString(16).padStart(4, "0")}`,
      );
    }
    const keys = this.readKeys;
    const limit = keys === null ? MAX_PLAINTEXT : MAX_CIPHERTEXT;
    if (length > limit) {
      throw new ProtocolError(
        AlertDescription.record_overflow,
        `record length ${length} exceeds ${limit}`,
      );
    }
    if (this.queue.length < RECORD_HEADER_LENGTH + length) return null;
    const fragment = this.queue.take(RECORD_HEADER_LENGTH + length).subarray(RECORD_HEADER_LENGTH);
    if (keys === null) {
      if (contentType === ContentType.application_data) {
        throw new ProtocolError(
          AlertDescription.unexpected_message,
          "application data before keys",
        );
      }
      return { contentType, content: fragment };
    }
    if (contentType === ContentType.alert && this.acceptPlainAlerts) {
      return { contentType, content: fragment };
    }
    if (contentType !== ContentType.application_data) {
      throw new ProtocolError(
        AlertDescription.unexpected_message,
        `unprotected record of type ${contentType} after keys were set`,
      );
    }
    const record = await keys.open(header, fragment);
    const isKeyUpdate =
      record.contentType === ContentType.handshake &&
      record.content[0] === HandshakeType.key_update;
    if (keys.sequence > keys.limit && !isKeyUpdate) {
      throw new ProtocolError(
        AlertDescription.key_exhausted,
        `record ${keys.limit} under one key was not a KeyUpdate`,
      );
    }
    return record;
  }
}
