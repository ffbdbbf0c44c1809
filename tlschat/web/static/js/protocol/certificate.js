// The server's X.509 certificate (docs/PROTOCOL.md section 9): it must parse, carry a key the
// identity rules accept, and be validly self-signed (issuer equals subject, and the signature
// verifies with its own key). Dates, extensions and names are not checked: trust is in the key,
// which the user pins (section 13). Each failure is bad_certificate, except the key's own alerts.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { constantTimeEqual } from "./bytes.js";
import { DerError, DerReader, Tag, bitStringBytes, inside, oidHex } from "./der.js";
import { PeerIdentity, loadPublicKey, verifies } from "./identity.js";

const subtle = globalThis.crypto.subtle;

const OID_ED25519 = "2b6570";
const OID_RSASSA_PSS = "2a864886f70d01010a";
const OID_MGF1 = "2a864886f70d010108";
/** sha{256,384,512}WithRSAEncryption: RSASSA-PKCS1-v1_5. */
const PKCS1_HASHES = new Map([
  ["2a864886f70d01010b", "SHA-256"],
  ["2a864886f70d01010c", "SHA-384"],
  ["2a864886f70d01010d", "SHA-512"],
]);
const HASHES = new Map([
  ["608648016503040201", "SHA-256"],
  ["608648016503040202", "SHA-384"],
  ["608648016503040203", "SHA-512"],
]);

/**
 * @typedef {{keyType: "rsa" | "ed25519", importAs: Algorithm | RsaHashedImportParams,
 *            verifyWith: Algorithm | RsaPssParams}} SignatureAlgorithm
 */

/**
 * The hash of an AlgorithmIdentifier whose parameters are absent or NULL.
 * @param {import("./der.js").Element} element
 * @returns {string}
 */
function hashOf(element) {
  const algorithm = inside(element);
  const hash = HASHES.get(oidHex(algorithm.expect(Tag.OID)));
  algorithm.optional(Tag.NULL);
  algorithm.finish();
  if (hash === undefined) throw new DerError("unsupported hash");
  return hash;
}

/**
 * @param {Uint8Array} contents a non-negative INTEGER's contents, small
 * @returns {number}
 */
function smallInteger(contents) {
  if (contents.length < 1 || contents.length > 4 || contents[0] & 0x80) {
    throw new DerError("bad small integer");
  }
  return contents.reduce((value, byte) => value * 256 + byte, 0);
}

/**
 * RSASSA-PSS parameters (RFC 4055): hash, MGF1 with the same hash, salt length, trailer 1.
 * Defaults (SHA-1) are not supported.
 * @param {import("./der.js").Element | null} params
 * @returns {SignatureAlgorithm}
 */
function pssAlgorithm(params) {
  if (params === null || params.tag !== Tag.SEQUENCE) {
    throw new DerError("RSASSA-PSS without parameters");
  }
  const fields = inside(params);
  const hashField = fields.optional(Tag.context(0));
  const mgfField = fields.optional(Tag.context(1));
  const saltField = fields.optional(Tag.context(2));
  const trailerField = fields.optional(Tag.context(3));
  fields.finish();
  if (hashField === null || mgfField === null) throw new DerError("RSASSA-PSS with SHA-1 defaults");
  const hash = hashOf(inside(hashField).expect(Tag.SEQUENCE));
  const mgf = inside(inside(mgfField).expect(Tag.SEQUENCE));
  if (oidHex(mgf.expect(Tag.OID)) !== OID_MGF1 || hashOf(mgf.expect(Tag.SEQUENCE)) !== hash) {
    throw new DerError("RSASSA-PSS mask generation other than MGF1 with its own hash");
  }
  mgf.finish();
  const salt =
    saltField === null ? 20 : smallInteger(inside(saltField).expect(Tag.INTEGER).contents);
  if (
    trailerField !== null &&
    smallInteger(inside(trailerField).expect(Tag.INTEGER).contents) !== 1
  ) {
    throw new DerError("RSASSA-PSS trailer field other than 1");
  }
  return {
    keyType: "rsa",
    importAs: { name: "RSA-PSS", hash },
    verifyWith: { name: "RSA-PSS", saltLength: salt },
  };
}

/**
 * The certificate's signature algorithm, as WebCrypto runs it.
 * @param {import("./der.js").Element} element AlgorithmIdentifier
 * @returns {SignatureAlgorithm}
 */
function signatureAlgorithm(element) {
  const fields = inside(element);
  const oid = oidHex(fields.expect(Tag.OID));
  const params = fields.done ? null : fields.next();
  fields.finish();
  if (oid === OID_ED25519 && params === null) {
    return { keyType: "ed25519", importAs: { name: "Ed25519" }, verifyWith: { name: "Ed25519" } };
  }
  if (oid === OID_RSASSA_PSS) return pssAlgorithm(params);
  const hash = PKCS1_HASHES.get(oid);
  if (hash !== undefined && (params === null || params.tag === Tag.NULL)) {
    return {
      keyType: "rsa",
      importAs: { name: "RSASSA-PKCS1-v1_5", hash },
      verifyWith: { name: "RSASSA-PKCS1-v1_5" },
    };
  }
  throw new DerError(`unsupported certificate signature algorithm (OID ${oid})`);
}

/**
 * @typedef {{tbs: Uint8Array, algorithm: import("./der.js").Element, signature: Uint8Array,
 *            issuer: Uint8Array, subject: Uint8Array, spki: Uint8Array}} ParsedCertificate
 */

/**
 * @param {Uint8Array} der
 * @returns {ParsedCertificate}
 */
function parseCertificate(der) {
  const outer = new DerReader(der);
  const certificate = inside(outer.expect(Tag.SEQUENCE));
  outer.finish();
  const tbsElement = certificate.expect(Tag.SEQUENCE);
  const algorithm = certificate.expect(Tag.SEQUENCE);
  const signature = bitStringBytes(certificate.expect(Tag.BIT_STRING));
  certificate.finish();
  const tbs = inside(tbsElement);
  tbs.optional(Tag.context(0)); // version
  tbs.expect(Tag.INTEGER); // serialNumber
  tbs.expect(Tag.SEQUENCE); // signature (the outer one is the one verified)
  const issuer = tbs.expect(Tag.SEQUENCE).raw;
  tbs.expect(Tag.SEQUENCE); // validity: not checked (section 9)
  const subject = tbs.expect(Tag.SEQUENCE).raw;
  const spki = tbs.expect(Tag.SEQUENCE).raw;
  return { tbs: tbsElement.raw, algorithm, signature, issuer, subject, spki };
}

/**
 * The server's identity from its Certificate message (certificate_type x509), checked in the
 * order of section 9: it parses; its key is accepted; it is validly self-signed.
 * @param {Uint8Array} der
 * @returns {Promise<PeerIdentity>}
 */
export async function identityFromCertificate(der) {
  const parsed = asBadCertificate("unparseable X.509 certificate", () => parseCertificate(der));
  const publicKey = await loadPublicKey(parsed.spki);
  const notSelfSigned = "certificate is not validly self-signed";
  const algorithm = asBadCertificate(notSelfSigned, () => signatureAlgorithm(parsed.algorithm));
  if (!constantTimeEqual(parsed.issuer, parsed.subject) || algorithm.keyType !== publicKey.type) {
    throw new ProtocolError(AlertDescription.bad_certificate, notSelfSigned);
  }
  const key = await subtle.importKey("spki", publicKey.spki, algorithm.importAs, false, ["verify"]);
  if (!(await verifies(algorithm.verifyWith, key, parsed.signature, parsed.tbs))) {
    throw new ProtocolError(AlertDescription.bad_certificate, notSelfSigned);
  }
  return new PeerIdentity(publicKey, der);
}

/**
 * Run a DER step; its DerError becomes bad_certificate with `what` and the detail.
 * @template T
 * @param {string} what
 * @param {() => T} step
 * @returns {T}
 */
function asBadCertificate(what, step) {
  try {
    return step();
  } catch (error) {
    if (error instanceof DerError) {
      throw new ProtocolError(AlertDescription.bad_certificate, `${what}: ${error.message}`);
    }
    throw error;
  }
}
