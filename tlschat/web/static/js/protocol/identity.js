// Identities (docs/PROTOCOL.md sections 8 and 9): which public keys a peer may present, their
// fingerprints, signature verification by scheme, and the client's own long-term identity key.
// A fingerprint is "SHA256:" and the unpadded base64 of SHA-256 over the key's SubjectPublicKeyInfo
// as re-encoded here (canonical DER), so it names the key, never one encoding of it.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { concat, constantTimeEqual, toBase64, utf8 } from "./bytes.js";
import { DerError, DerReader, Tag, derElement, inside, oidHex } from "./der.js";
import { sha256 } from "./keyschedule.js";
import { SignatureScheme } from "./messages.js";

const subtle = globalThis.crypto.subtle;

export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 8192;
// The only exponent accepted: a huge one would make each verification cost a hundred.
const RSA_PUBLIC_EXPONENT = [0x01, 0x00, 0x01];
export const PSS_SALT_LENGTH = 32;
const OID_RSA_ENCRYPTION = "2a864886f70d010101";
const OID_RSASSA_PSS = "2a864886f70d01010a";
// AlgorithmIdentifier { rsaEncryption, NULL }
const RSA_ENCRYPTION_ALGORITHM = Uint8Array.of(
  0x30,
  0x0d,
  0x06,
  0x09,
  0x2a,
  0x86,
  0x48,
  0x86,
  0xf7,
  0x0d,
  0x01,
  0x01,
  0x01,
  0x05,
  0x00,
);
const OID_ED25519 = "2b6570";
const RSA_PSS_SHA256 = Object.freeze({ name: "RSA-PSS", hash: "SHA-256" });

/**
 * @param {Uint8Array} spki DER SubjectPublicKeyInfo
 * @returns {Promise<string>} `SHA256:` + 43 base64 characters
 */
export async function fingerprintOfSpki(spki) {
  return "SHA256:" + toBase64(await sha256(spki)).replace(/=+$/, "");
}

/**
 * Constant-time equality of two fingerprints (a peer's string may be anything, even ill-formed).
 * @param {string} a
 * @param {string} b
 * @returns {boolean}
 */
export function fingerprintsEqual(a, b) {
  if (!a.isWellFormed() || !b.isWellFormed()) return false;
  return constantTimeEqual(utf8(a), utf8(b));
}

/** A public key the table of section 9 accepts, with its canonical SPKI and fingerprint. */
export class PublicKey {
  /**
   * @param {"rsa" | "ed25519"} type
   * @param {CryptoKey} cryptoKey imported for verifying with the key's scheme
   * @param {Uint8Array} spki canonical DER
   * @param {string} fingerprint
   */
  constructor(type, cryptoKey, spki, fingerprint) {
    this.type = type;
    this.cryptoKey = cryptoKey;
    this.spki = spki;
    this.fingerprint = fingerprint;
  }

  /** @returns {number} the scheme that follows from the key (section 8) */
  get scheme() {
    return this.type === "rsa" ? SignatureScheme.rsa_pss_rsae_sha256 : SignatureScheme.ed25519;
  }
}

/**
 * The key's algorithm OID (hex) and its BIT STRING element's contents.
 * @param {Uint8Array} spki
 * @returns {{oid: string, key: Uint8Array}}
 */
function spkiFields(spki) {
  const outer = new DerReader(spki);
  const info = inside(outer.expect(Tag.SEQUENCE));
  outer.finish();
  const algorithm = inside(info.expect(Tag.SEQUENCE));
  const oid = oidHex(algorithm.expect(Tag.OID));
  const key = info.expect(Tag.BIT_STRING).contents;
  info.finish();
  return { oid, key };
}

/**
 * Accept RSA (2048 to 8192 bits, exponent 65537) or Ed25519; refuse anything else with the alert
 * of section 9. Every key a peer presents passes here before anything is verified with it.
 * @param {Uint8Array} spki DER SubjectPublicKeyInfo
 * @returns {Promise<PublicKey>}
 */
export async function loadPublicKey(spki) {
  let fields;
  try {
    fields = spkiFields(spki);
  } catch (error) {
    if (error instanceof DerError) {
      throw new ProtocolError(AlertDescription.bad_certificate, "unparseable public key");
    }
    throw error;
  }
  /** @type {"rsa" | "ed25519"} */
  let type;
  /** @type {RsaHashedImportParams | Algorithm} */
  let algorithm;
  let importable = spki;
  if (fields.oid === OID_RSA_ENCRYPTION || fields.oid === OID_RSASSA_PSS) {
    type = "rsa";
    algorithm = RSA_PSS_SHA256;
    if (fields.oid === OID_RSASSA_PSS) {
      // An RSA key labelled for PSS only is still an RSA key (its canonical form, as the Python
      // peer re-encodes it, says rsaEncryption), but WebCrypto imports only that form.
      importable = derElement(
        Tag.SEQUENCE,
        concat(RSA_ENCRYPTION_ALGORITHM, derElement(Tag.BIT_STRING, fields.key)),
      );
    }
  } else if (fields.oid === OID_ED25519) {
    type = "ed25519";
    algorithm = { name: "Ed25519" };
  } else {
    throw new ProtocolError(
      AlertDescription.unsupported_certificate,
      `unsupported key type (OID ${fields.oid})`,
    );
  }
  let cryptoKey;
  try {
    cryptoKey = await subtle.importKey("spki", importable, algorithm, true, ["verify"]);
  } catch {
    throw new ProtocolError(AlertDescription.bad_certificate, "unparseable public key");
  }
  if (type === "rsa") checkRsa(/** @type {RsaHashedKeyAlgorithm} */ (cryptoKey.algorithm));
  const canonical = new Uint8Array(await subtle.exportKey("spki", cryptoKey));
  return new PublicKey(type, cryptoKey, canonical, await fingerprintOfSpki(canonical));
}

/** @param {RsaHashedKeyAlgorithm} algorithm */
function checkRsa(algorithm) {
  const bits = algorithm.modulusLength;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new ProtocolError(AlertDescription.insufficient_security, `RSA key of ${bits} bits`);
  }
  const exponent = Array.from(algorithm.publicExponent);
  while (exponent.length > 1 && exponent[0] === 0) exponent.shift();
  if (
    exponent.length !== RSA_PUBLIC_EXPONENT.length ||
    exponent.some((b, i) => b !== RSA_PUBLIC_EXPONENT[i])
  ) {
    const shown =
      exponent.length <= 4
        ? String(exponent.reduce((v, b) => v * 256 + b, 0))
        : `${exponent.length * 8} bits`;
    throw new ProtocolError(
      AlertDescription.insufficient_security,
      `RSA public exponent ${shown}, not 65537`,
    );
  }
}

/**
 * WebCrypto's verify, where a malformed signature is simply one that does not verify.
 * @param {AlgorithmIdentifier | RsaPssParams} algorithm
 * @param {CryptoKey} key
 * @param {Uint8Array} signature
 * @param {Uint8Array} data
 * @returns {Promise<boolean>}
 */
export async function verifies(algorithm, key, signature, data) {
  try {
    return await subtle.verify(algorithm, key, signature, data);
  } catch {
    return false;
  }
}

/**
 * Succeed only if `signature` is `scheme`'s valid signature of `data` by `key`: a scheme that is
 * not the key's is illegal_parameter, a signature that does not verify decrypt_error.
 * @param {PublicKey} key
 * @param {number} scheme
 * @param {Uint8Array} data
 * @param {Uint8Array} signature
 * @returns {Promise<void>}
 */
export async function verifySignature(key, scheme, data, signature) {
  if (scheme !== key.scheme) {
    throw new ProtocolError(
      AlertDescription.illegal_parameter,
      `signature scheme 0x${scheme.toString(16).padStart(4, "0")} does not match the ${key.type} key`,
    );
  }
  const algorithm =
    key.type === "rsa" ? { name: "RSA-PSS", saltLength: PSS_SALT_LENGTH } : { name: "Ed25519" };
  if (!(await verifies(algorithm, key.cryptoKey, signature, data))) {
    throw new ProtocolError(AlertDescription.decrypt_error, "signature does not verify");
  }
}

/** What a handshake proved about the peer: its key, fingerprint, and certificate if any. */
export class PeerIdentity {
  /**
   * @param {PublicKey} publicKey
   * @param {Uint8Array | null} certificate DER, for a server
   */
  constructor(publicKey, certificate) {
    this.publicKey = publicKey;
    this.certificate = certificate;
  }

  /** @returns {string} */
  get fingerprint() {
    return this.publicKey.fingerprint;
  }

  /** @returns {Uint8Array} canonical DER SubjectPublicKeyInfo */
  get spki() {
    return this.publicKey.spki;
  }

  /**
   * A raw public key (a client Certificate, a chat message's `key`).
   * @param {Uint8Array} spki
   * @returns {Promise<PeerIdentity>}
   */
  static async fromSpki(spki) {
    return new PeerIdentity(await loadPublicKey(spki), null);
  }
}

/** The client's long-term identity: it signs CertificateVerify and every chat line. */
export class ClientIdentity {
  /**
   * A key pair from WebCrypto: Ed25519 (what the web client makes), or RSA-PSS with SHA-256.
   * The private key may be, and should be, non-extractable.
   * @param {CryptoKeyPair} pair
   * @returns {Promise<ClientIdentity>}
   */
  static async fromKeyPair(pair) {
    const publicKey = await loadPublicKey(
      new Uint8Array(await subtle.exportKey("spki", pair.publicKey)),
    );
    const algorithm = /** @type {RsaHashedKeyAlgorithm} */ (pair.privateKey.algorithm);
    const fits =
      publicKey.type === "ed25519"
        ? algorithm.name === "Ed25519"
        : algorithm.name === "RSA-PSS" && algorithm.hash.name === "SHA-256";
    if (!fits) {
      throw new TypeError(
        `a ${algorithm.name} private key cannot sign for a ${publicKey.type} key`,
      );
    }
    return new ClientIdentity(pair.privateKey, publicKey);
  }

  /**
   * A new Ed25519 identity whose private key never leaves WebCrypto.
   * @returns {Promise<ClientIdentity>}
   */
  static async generate() {
    const pair = /** @type {CryptoKeyPair} */ (
      await subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])
    );
    return ClientIdentity.fromKeyPair(pair);
  }

  /**
   * @param {CryptoKey} privateKey
   * @param {PublicKey} publicKey
   */
  constructor(privateKey, publicKey) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** @returns {string} */
  get fingerprint() {
    return this.publicKey.fingerprint;
  }

  /** @returns {Uint8Array} */
  get spki() {
    return this.publicKey.spki;
  }

  /** @returns {number} */
  get scheme() {
    return this.publicKey.scheme;
  }

  /**
   * @param {Uint8Array} data
   * @returns {Promise<Uint8Array>} the signature with the key's scheme
   */
  async sign(data) {
    const algorithm =
      this.publicKey.type === "rsa"
        ? { name: "RSA-PSS", saltLength: PSS_SALT_LENGTH }
        : { name: "Ed25519" };
    return new Uint8Array(await subtle.sign(algorithm, this.privateKey, data));
  }
}
