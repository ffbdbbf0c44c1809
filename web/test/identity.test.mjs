// Identities (docs/PROTOCOL.md sections 8 and 9): which keys are accepted and with which alert,
// fingerprints, signatures by scheme, the client's own key, and the server certificate's checks,
// with certificates built here (Ed25519, RSASSA-PKCS1-v1_5) beside the example's RSA-PSS one.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { concat, utf8 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { identityFromCertificate } from "../../tlschat/web/static/js/protocol/certificate.js";
import {
  ClientIdentity,
  PeerIdentity,
  fingerprintOfSpki,
  fingerprintsEqual,
  loadPublicKey,
  verifySignature,
} from "../../tlschat/web/static/js/protocol/identity.js";
import {
  exampleClientIdentity,
  fromHex,
  pemDer,
  readWorkedExample,
} from "../support/worked_example.mjs";

const subtle = globalThis.crypto.subtle;
const doc = readWorkedExample();
const CERTIFICATE = new Uint8Array(
  readFileSync(new URL("../../tests/data/test_only_server_cert.der", import.meta.url)),
);

/**
 * One DER element.
 * @param {number} tag
 * @param {...Uint8Array} contents
 * @returns {Uint8Array}
 */
function der(tag, ...contents) {
  const body = concat(...contents);
  const n = body.length;
  const length =
    n < 0x80
      ? Uint8Array.of(n)
      : n < 0x100
        ? Uint8Array.of(0x81, n)
        : Uint8Array.of(0x82, n >> 8, n & 0xff);
  return concat(Uint8Array.of(tag), length, body);
}

const SEQUENCE = 0x30;
const algorithm = (/** @type {string} */ oid, withNull = false) =>
  der(SEQUENCE, der(0x06, fromHex(oid)), ...(withNull ? [Uint8Array.of(0x05, 0x00)] : []));
const name = (/** @type {string} */ cn) =>
  der(SEQUENCE, der(0x31, der(SEQUENCE, der(0x06, fromHex("550403")), der(0x0c, utf8(cn)))));
const ED25519 = "2b6570";
const SHA256_WITH_RSA = "2a864886f70d01010b";

/**
 * A self-signed (or otherwise signed) X.509 certificate, built field by field.
 * @param {{spki: Uint8Array, signer: CryptoKey, signWith: Algorithm, oid: string, withNull?: boolean, issuer?: string}} spec
 * @returns {Promise<Uint8Array>}
 */
async function certificate({ spki, signer, signWith, oid, withNull = false, issuer = "tlschat" }) {
  const validity = der(
    SEQUENCE,
    der(0x17, utf8("260101000000Z")),
    der(0x17, utf8("360101000000Z")),
  );
  const tbs = der(
    SEQUENCE,
    der(0xa0, der(0x02, Uint8Array.of(2))),
    der(0x02, Uint8Array.of(1)),
    algorithm(oid, withNull),
    name(issuer),
    validity,
    name("tlschat"),
    spki,
  );
  const signature = new Uint8Array(await subtle.sign(signWith, signer, tbs));
  return der(SEQUENCE, tbs, algorithm(oid, withNull), der(0x03, Uint8Array.of(0), signature));
}

/** An Ed25519 key pair, extractable, made here. */
const ed25519 = async () =>
  /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])
  );
const spkiOf = async (/** @type {CryptoKey} */ key) =>
  new Uint8Array(await subtle.exportKey("spki", key));

test("fingerprints: SHA256 and unpadded base64 of the SPKI, compared in constant time", async () => {
  const client = await exampleClientIdentity();
  assert.equal(await fingerprintOfSpki(client.spki), doc.facts.get("client key fingerprint"));
  assert.match(client.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.ok(fingerprintsEqual(client.fingerprint, `${client.fingerprint}`));
  assert.ok(!fingerprintsEqual(client.fingerprint, doc.facts.get("server key fingerprint") ?? ""));
  assert.ok(
    !fingerprintsEqual("SHA256:\ud800", "SHA256:\ud800"),
    "an ill-formed string matches nothing",
  );
});

test("the example's certificate: RSA-PSS self-signed, its key's fingerprint, not the certificate's", async () => {
  const server = await identityFromCertificate(CERTIFICATE);
  assert.equal(server.fingerprint, doc.facts.get("server key fingerprint"));
  assert.equal(await fingerprintOfSpki(server.spki), server.fingerprint);
  assert.equal(server.publicKey.type, "rsa");
  assert.equal(server.publicKey.scheme, 0x0804);
});

test("an RSA key labelled id-RSASSA-PSS is the same RSA key, with the same fingerprint", async () => {
  const server = await identityFromCertificate(CERTIFICATE);
  const bitString = server.spki.subarray(4 + 15); // after the SEQUENCE header and { rsaEncryption, NULL }
  assert.equal(bitString[0], 0x03, "the example key's BIT STRING");
  const pssOnly = der(SEQUENCE, algorithm("2a864886f70d01010a"), bitString);
  const key = await loadPublicKey(pssOnly);
  assert.equal(key.fingerprint, server.fingerprint);
  assert.deepEqual(key.spki, server.spki, "re-encoded as rsaEncryption");
});

test("keys refused: unparseable, another type, RSA under 2048 bits or with another exponent", async () => {
  const refuse = (/** @type {Uint8Array} */ spki, /** @type {string} */ alert) =>
    assert.rejects(loadPublicKey(spki), { alertName: alert });
  const client = await exampleClientIdentity();
  await refuse(Uint8Array.of(1, 2, 3), "bad_certificate");
  await refuse(concat(client.spki, Uint8Array.of(0)), "bad_certificate");
  await refuse(client.spki.subarray(0, 40), "bad_certificate");
  const p256 = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])
  );
  await refuse(await spkiOf(p256.publicKey), "unsupported_certificate");
  const x25519 = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"])
  );
  await refuse(await spkiOf(x25519.publicKey), "unsupported_certificate");
  for (const publicExponent of [Uint8Array.of(1, 0, 1), Uint8Array.of(3)]) {
    const small = /** @type {CryptoKeyPair} */ (
      await subtle.generateKey(
        { name: "RSA-PSS", modulusLength: 1024, publicExponent, hash: "SHA-256" },
        true,
        ["sign", "verify"],
      )
    );
    await refuse(await spkiOf(small.publicKey), "insufficient_security");
  }
});

test("signatures by scheme: the key's own scheme only, and a bad signature is decrypt_error", async () => {
  const client = await exampleClientIdentity();
  const key = (await PeerIdentity.fromSpki(client.spki)).publicKey;
  const data = utf8("signed");
  const signature = await client.sign(data);
  await verifySignature(key, 0x0807, data, signature);
  await assert.rejects(verifySignature(key, 0x0804, data, signature), {
    alertName: "illegal_parameter",
  });
  await assert.rejects(verifySignature(key, 0x0807, utf8("other"), signature), {
    alertName: "decrypt_error",
  });
  await assert.rejects(verifySignature(key, 0x0807, data, signature.subarray(1)), {
    alertName: "decrypt_error",
  });
});

test("client identities: a new Ed25519 key stays in WebCrypto; an RSA-PSS key signs with salt 32", async () => {
  const made = await ClientIdentity.generate();
  assert.equal(made.scheme, 0x0807);
  assert.equal(made.privateKey.extractable, false);
  const data = utf8("identity");
  await verifySignature(
    (await PeerIdentity.fromSpki(made.spki)).publicKey,
    made.scheme,
    data,
    await made.sign(data),
  );

  const server = await identityFromCertificate(CERTIFICATE);
  const rsaPrivate = await subtle.importKey(
    "pkcs8",
    pemDer("tests/data/test_only_server_rsa2048_key.pem"),
    { name: "RSA-PSS", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const rsa = await ClientIdentity.fromKeyPair({
    privateKey: rsaPrivate,
    publicKey: server.publicKey.cryptoKey,
  });
  assert.equal(rsa.scheme, 0x0804);
  assert.equal(rsa.fingerprint, server.fingerprint);
  await verifySignature(server.publicKey, 0x0804, data, await rsa.sign(data));

  const other = await ed25519();
  await assert.rejects(
    ClientIdentity.fromKeyPair({
      privateKey: other.privateKey,
      publicKey: server.publicKey.cryptoKey,
    }),
    TypeError,
  );
});

test("certificates built here: Ed25519 and RSASSA-PKCS1-v1_5 self-signed ones are accepted", async () => {
  const pair = await ed25519();
  const spki = await spkiOf(pair.publicKey);
  const edCertificate = await certificate({
    spki,
    signer: pair.privateKey,
    signWith: { name: "Ed25519" },
    oid: ED25519,
  });
  const server = await identityFromCertificate(edCertificate);
  assert.equal(server.fingerprint, await fingerprintOfSpki(spki));
  assert.equal(server.publicKey.scheme, 0x0807);

  const rsaSigner = await subtle.importKey(
    "pkcs8",
    pemDer("tests/data/test_only_server_rsa2048_key.pem"),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const rsaSpki = (await identityFromCertificate(CERTIFICATE)).spki;
  const pkcs1 = await certificate({
    spki: rsaSpki,
    signer: rsaSigner,
    signWith: { name: "RSASSA-PKCS1-v1_5" },
    oid: SHA256_WITH_RSA,
    withNull: true,
  });
  assert.equal(
    (await identityFromCertificate(pkcs1)).fingerprint,
    doc.facts.get("server key fingerprint"),
  );
});

test("certificates refused, each check in the order of section 9", async () => {
  const pair = await ed25519();
  const other = await ed25519();
  const spki = await spkiOf(pair.publicKey);
  const refuse = async (/** @type {Promise<Uint8Array>} */ made, /** @type {string} */ alert) =>
    assert.rejects(identityFromCertificate(await made), { alertName: alert });
  await refuse(
    certificate({ spki, signer: other.privateKey, signWith: { name: "Ed25519" }, oid: ED25519 }),
    "bad_certificate",
  );
  await refuse(
    certificate({
      spki,
      signer: pair.privateKey,
      signWith: { name: "Ed25519" },
      oid: ED25519,
      issuer: "someone",
    }),
    "bad_certificate",
  );
  await refuse(
    certificate({
      spki,
      signer: pair.privateKey,
      signWith: { name: "Ed25519" },
      oid: SHA256_WITH_RSA,
    }),
    "bad_certificate",
  );
  await refuse(
    certificate({
      spki,
      signer: pair.privateKey,
      signWith: { name: "Ed25519" },
      oid: "2a8648ce3d040302",
    }),
    "bad_certificate",
  );
  const weak = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 1024,
        publicExponent: Uint8Array.of(1, 0, 1),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    )
  );
  await refuse(
    certificate({
      spki: await spkiOf(weak.publicKey),
      signer: weak.privateKey,
      signWith: { name: "RSASSA-PKCS1-v1_5" },
      oid: SHA256_WITH_RSA,
      withNull: true,
    }),
    "insufficient_security",
  );
  const p256 = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])
  );
  await refuse(
    certificate({
      spki: await spkiOf(p256.publicKey),
      signer: p256.privateKey,
      signWith: { name: "ECDSA", hash: "SHA-256" },
      oid: "2a8648ce3d040302",
    }),
    "unsupported_certificate",
  );
  await refuse(Promise.resolve(CERTIFICATE.subarray(0, 500)), "bad_certificate");
  await refuse(Promise.resolve(concat(CERTIFICATE, Uint8Array.of(0))), "bad_certificate");
});
