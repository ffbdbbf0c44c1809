// Handshake messages (docs/PROTOCOL.md sections 5 and 6): the codec of each body, the 4-byte
// framing, and the reassembler that joins messages split across records and splits coalesced
// ones. Every length is checked against its bound before anything is sliced; a malformed body is
// decode_error, an unknown type unexpected_message.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { ByteQueue, DecodeError, Reader, Writer, concat, uint } from "./bytes.js";

/** @enum {number} */
export const HandshakeType = Object.freeze({
  client_hello: 1,
  server_hello: 2,
  certificate: 11,
  certificate_verify: 15,
  finished: 20,
  key_update: 24,
});

/** @enum {number} */
export const CertificateType = Object.freeze({ x509: 1, raw_public_key: 2 });

/** @enum {number} */
export const SignatureScheme = Object.freeze({ rsa_pss_rsae_sha256: 0x0804, ed25519: 0x0807 });

/** @enum {number} */
export const CipherSuite = Object.freeze({
  AES_256_GCM_SHA256: 0x0001,
  CHACHA20_POLY1305_SHA256: 0x0002,
});

/** The names HandshakeComplete reports (section 8). */
export const SUITE_NAMES = Object.freeze({ 1: "AES-GCM-256", 2: "CHACHA20-POLY1305" });

export const RANDOM_LENGTH = 32;
export const HANDSHAKE_HEADER = 4;
export const MAX_HANDSHAKE_BODY = 32768;
const MAX_KEY_SHARE = 255;
const MAX_VERSIONS = 16;
const MAX_SUITES = 32;
const MAX_SIGNATURE_ALGORITHMS = 16;
const MAX_CERTIFICATE = 16384;
const MAX_SIGNATURE = 1024;
const VERIFY_DATA_LENGTH = 32;

/**
 * @typedef {{msgType: 1, random: Uint8Array, versions: number[], cipherSuites: number[],
 *            signatureAlgorithms: number[], keyShare: Uint8Array}} ClientHello
 * @typedef {{msgType: 2, version: number, random: Uint8Array, cipherSuite: number,
 *            keyShare: Uint8Array}} ServerHello
 * @typedef {{msgType: 11, certificateType: number, data: Uint8Array}} Certificate
 * @typedef {{msgType: 15, algorithm: number, signature: Uint8Array}} CertificateVerify
 * @typedef {{msgType: 20, verifyData: Uint8Array}} Finished
 * @typedef {{msgType: 24, requestUpdate: boolean}} KeyUpdate
 * @typedef {ClientHello | ServerHello | Certificate | CertificateVerify | Finished | KeyUpdate}
 *   HandshakeMessage
 */

/** @type {Record<number, (m: any) => Uint8Array>} */
const ENCODERS = {
  [HandshakeType.client_hello]: (m) =>
    new Writer()
      .fixed(m.random)
      .u16List(m.versions)
      .u16List(m.cipherSuites)
      .u16List(m.signatureAlgorithms)
      .vector(1, m.keyShare)
      .bytes(),
  [HandshakeType.server_hello]: (m) =>
    new Writer()
      .uint(m.version, 2)
      .fixed(m.random)
      .uint(m.cipherSuite, 2)
      .vector(1, m.keyShare)
      .bytes(),
  [HandshakeType.certificate]: (m) =>
    new Writer().uint(m.certificateType, 1).vector(3, m.data).bytes(),
  [HandshakeType.certificate_verify]: (m) =>
    new Writer().uint(m.algorithm, 2).vector(2, m.signature).bytes(),
  [HandshakeType.finished]: (m) => m.verifyData,
  [HandshakeType.key_update]: (m) => Uint8Array.of(m.requestUpdate ? 1 : 0),
};

/** @type {Record<number, (r: Reader) => HandshakeMessage>} */
const DECODERS = {
  [HandshakeType.client_hello]: (r) => ({
    msgType: HandshakeType.client_hello,
    random: r.fixed(RANDOM_LENGTH),
    versions: r.u16List(1, MAX_VERSIONS, "versions"),
    cipherSuites: r.u16List(1, MAX_SUITES, "cipher_suites"),
    signatureAlgorithms: r.u16List(1, MAX_SIGNATURE_ALGORITHMS, "signature_algorithms"),
    keyShare: r.vector(1, 0, MAX_KEY_SHARE, "key_share"),
  }),
  [HandshakeType.server_hello]: (r) => ({
    msgType: HandshakeType.server_hello,
    version: r.u16(),
    random: r.fixed(RANDOM_LENGTH),
    cipherSuite: r.u16(),
    keyShare: r.vector(1, 0, MAX_KEY_SHARE, "key_share"),
  }),
  [HandshakeType.certificate]: (r) => ({
    msgType: HandshakeType.certificate,
    certificateType: r.u8(),
    data: r.vector(3, 1, MAX_CERTIFICATE, "certificate"),
  }),
  [HandshakeType.certificate_verify]: (r) => ({
    msgType: HandshakeType.certificate_verify,
    algorithm: r.u16(),
    signature: r.vector(2, 1, MAX_SIGNATURE, "signature"),
  }),
  [HandshakeType.finished]: (r) => ({
    msgType: HandshakeType.finished,
    verifyData: r.fixed(VERIFY_DATA_LENGTH),
  }),
  [HandshakeType.key_update]: (r) => {
    const value = r.u8();
    if (value > 1) {
      throw new ProtocolError(AlertDescription.illegal_parameter, `request_update ${value}`);
    }
    return { msgType: HandshakeType.key_update, requestUpdate: value === 1 };
  },
};

const TYPE_NAMES = new Map(Object.entries(HandshakeType).map(([name, code]) => [code, name]));

/**
 * @param {number} msgType
 * @returns {string}
 */
export function handshakeTypeName(msgType) {
  return TYPE_NAMES.get(msgType) ?? `handshake type ${msgType}`;
}

/**
 * The whole message as on the wire: type, u24 body length, body.
 * @param {HandshakeMessage} message
 * @returns {Uint8Array}
 */
export function encodeHandshake(message) {
  const body = ENCODERS[message.msgType](message);
  return concat(Uint8Array.of(message.msgType), uint(body.length, 3), body);
}

/**
 * @param {number} msgType
 * @param {Uint8Array} body
 * @returns {HandshakeMessage}
 */
export function decodeHandshakeBody(msgType, body) {
  const decoder = DECODERS[msgType];
  if (decoder === undefined) {
    throw new ProtocolError(
      AlertDescription.unexpected_message,
      `unknown handshake type ${msgType}`,
    );
  }
  const reader = new Reader(body);
  const message = decoder(reader);
  reader.finish(handshakeTypeName(msgType));
  return message;
}

/**
 * Exactly one whole handshake message, header included.
 * @param {Uint8Array} data
 * @returns {HandshakeMessage}
 */
export function decodeHandshake(data) {
  const reader = new Reader(data);
  const msgType = reader.u8();
  const body = reader.vector(3, 0, MAX_HANDSHAKE_BODY, "handshake body");
  reader.finish("handshake message");
  return decodeHandshakeBody(msgType, body);
}

/** Joins handshake messages split across records and splits coalesced ones. */
export class HandshakeReassembler {
  constructor() {
    this.queue = new ByteQueue();
  }

  /** @returns {number} bytes of an incomplete message held */
  get pending() {
    return this.queue.length;
  }

  /**
   * The messages `data` completes, each with its exact wire bytes (for the transcript). A length
   * over the bound is refused as soon as the 4 header bytes are there.
   * @param {Uint8Array} data
   * @returns {{message: HandshakeMessage, raw: Uint8Array}[]}
   */
  feed(data) {
    this.queue.push(data);
    const out = [];
    while (this.queue.length >= HANDSHAKE_HEADER) {
      const header = this.queue.peek(HANDSHAKE_HEADER);
      const length = (header[1] << 16) | (header[2] << 8) | header[3];
      if (length > MAX_HANDSHAKE_BODY) {
        throw new DecodeError(`handshake body of ${length} bytes exceeds ${MAX_HANDSHAKE_BODY}`);
      }
      if (this.queue.length < HANDSHAKE_HEADER + length) break;
      const raw = this.queue.take(HANDSHAKE_HEADER + length);
      out.push({ message: decodeHandshakeBody(raw[0], raw.subarray(HANDSHAKE_HEADER)), raw });
    }
    return out;
  }
}
