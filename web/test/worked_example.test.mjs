// docs/PROTOCOL.md section 24, every value but the end-to-end part, reproduced by the browser
// protocol code. The values are read from the document when the tests run.

import assert from "node:assert/strict";
import { test } from "node:test";

import { concat, utf8 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { identityFromCertificate } from "../../tlschat/web/static/js/protocol/certificate.js";
import { signedContent } from "../../tlschat/web/static/js/protocol/client_connection.js";
import {
  Composer,
  checkMessage,
  sayFrame,
  signedBytes,
  verifyMessage,
} from "../../tlschat/web/static/js/protocol/envelope.js";
import { encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import { PeerIdentity, verifySignature } from "../../tlschat/web/static/js/protocol/identity.js";
import {
  EMPTY_HASH,
  deriveSecret,
  finishedKey,
  finishedVerifyData,
  hkdfExtract,
  hmacSha256,
  nextTrafficSecret,
  sha256,
  trafficKeys,
} from "../../tlschat/web/static/js/protocol/keyschedule.js";
import { decodeHandshake, encodeHandshake } from "../../tlschat/web/static/js/protocol/messages.js";
import { ContentType, plaintextRecord } from "../../tlschat/web/static/js/protocol/records.js";
import { ephemeralKey, sharedSecret } from "../../tlschat/web/static/js/protocol/x25519.js";
import {
  countingEntropy,
  exampleClient,
  exampleClientIdentity,
  flights,
  keysAt,
  readWorkedExample,
  toHex,
  valueOf,
} from "../support/worked_example.mjs";

const doc = readWorkedExample();
/** Every value, fact and chat value the tests read: at the end, all the document lists. */
const checked = new Set();
const value = (/** @type {string} */ name) => {
  checked.add(`value ${name}`);
  return valueOf(doc.values, name);
};
const fact = (/** @type {string} */ name) => {
  checked.add(`fact ${name}`);
  const found = doc.facts.get(name);
  assert.ok(found !== undefined, `${name} is not in the worked example`);
  return found;
};
const chatValue = (/** @type {string} */ name) => {
  checked.add(`chat ${name}`);
  return valueOf(doc.chat.values, name);
};
const field = (/** @type {number} */ n, /** @type {string} */ name) => {
  checked.add(`record ${n} ${name}`);
  return valueOf(doc.records[n - 1].fields, name);
};
/** The handshake message (or other content) a record carries: its inner plaintext minus the type. */
const content = (/** @type {number} */ n) => {
  const record = doc.records[n - 1];
  if (record.protection === "plaintext record") return field(n, "record on the wire").subarray(5);
  return field(n, "inner plaintext: content").subarray(0, -1);
};
const sameHex = (
  /** @type {Uint8Array} */ actual,
  /** @type {Uint8Array} */ expected,
  /** @type {string} */ what,
) => assert.equal(toHex(actual), toHex(expected), what);

test("ephemeral keys and randoms: the counting entropy, X25519 public keys", async () => {
  const client = countingEntropy(0x00);
  const server = countingEntropy(0x80);
  sameHex(client(32), value("client_x25519_private"), "client private");
  sameHex(client(32), value("client_random"), "client random");
  sameHex(server(32), value("server_x25519_private"), "server private");
  sameHex(server(32), value("server_random"), "server random");
  sameHex(
    (await ephemeralKey(value("client_x25519_private").slice())).publicBytes,
    value("client_x25519_public"),
    "client public",
  );
  sameHex(
    (await ephemeralKey(value("server_x25519_private").slice())).publicBytes,
    value("server_x25519_public"),
    "server public",
  );
});

test("key schedule: shared secret, early, handshake and master secrets", async () => {
  const client = await ephemeralKey(value("client_x25519_private").slice());
  const server = await ephemeralKey(value("server_x25519_private").slice());
  const shared = await sharedSecret(client.privateKey, value("server_x25519_public"));
  sameHex(shared, value("shared_secret"), "shared_secret");
  sameHex(
    await sharedSecret(server.privateKey, value("client_x25519_public")),
    shared,
    "X25519 agrees both ways",
  );
  const zeros = new Uint8Array(32);
  const early = await hkdfExtract(zeros, zeros);
  sameHex(early, value("early_secret"), "early_secret");
  const derivedEarly = await deriveSecret(early, "derived", EMPTY_HASH);
  sameHex(derivedEarly, value("derived_early"), "derived_early");
  const handshake = await hkdfExtract(derivedEarly, shared);
  sameHex(handshake, value("handshake_secret"), "handshake_secret");
  const derivedHandshake = await deriveSecret(handshake, "derived", EMPTY_HASH);
  sameHex(derivedHandshake, value("derived_handshake"), "derived_handshake");
  sameHex(await hkdfExtract(derivedHandshake, zeros), value("master_secret"), "master_secret");
});

test("transcript hashes, traffic secrets, keys, IVs, Finished and KeyUpdate's next secret", async () => {
  const transcript = (/** @type {number[]} */ numbers) => sha256(concat(...numbers.map(content)));
  const hashChSh = await transcript([1, 2]);
  sameHex(hashChSh, value("hash_ch_sh"), "hash_ch_sh");
  sameHex(await transcript([1, 2, 3]), value("hash_ch_scert"), "hash_ch_scert");
  sameHex(await transcript([1, 2, 3, 4, 5]), value("hash_ch_ccert"), "hash_ch_ccert");
  sameHex(await transcript([1, 2, 3, 4, 5, 6]), value("hash_ch_ccv"), "hash_ch_ccv");
  const hashChCfin = await transcript([1, 2, 3, 4, 5, 6, 7]);
  sameHex(hashChCfin, value("hash_ch_cfin"), "hash_ch_cfin");

  const handshake = value("handshake_secret");
  const clientHs = await deriveSecret(handshake, "c hs traffic", hashChSh);
  const serverHs = await deriveSecret(handshake, "s hs traffic", hashChSh);
  sameHex(clientHs, value("client_handshake_traffic_secret"), "c hs traffic");
  sameHex(serverHs, value("server_handshake_traffic_secret"), "s hs traffic");
  const master = value("master_secret");
  const clientAp = await deriveSecret(master, "c ap traffic", hashChCfin);
  const serverAp = await deriveSecret(master, "s ap traffic", hashChCfin);
  sameHex(clientAp, value("client_application_traffic_secret"), "c ap traffic");
  sameHex(serverAp, value("server_application_traffic_secret"), "s ap traffic");
  for (const [secret, prefix] of [
    [clientHs, "client_handshake"],
    [serverHs, "server_handshake"],
    [clientAp, "client_application"],
    [serverAp, "server_application"],
  ]) {
    const keys = await trafficKeys(/** @type {Uint8Array} */ (secret));
    sameHex(keys.key, value(`${prefix}_key`), `${prefix}_key`);
    sameHex(keys.iv, value(`${prefix}_iv`), `${prefix}_iv`);
  }

  sameHex(await finishedKey(clientHs), value("client_finished_key"), "client_finished_key");
  sameHex(
    await hmacSha256(value("client_finished_key"), value("hash_ch_ccv")),
    value("client_verify_data"),
    "client_verify_data",
  );
  sameHex(
    await finishedVerifyData(clientHs, value("hash_ch_ccv")),
    value("client_verify_data"),
    "client Finished",
  );
  sameHex(await finishedKey(serverHs), value("server_finished_key"), "server_finished_key");
  sameHex(
    await finishedVerifyData(serverHs, hashChCfin),
    value("server_verify_data"),
    "server Finished",
  );
  sameHex(
    content(7).subarray(4),
    value("client_verify_data"),
    "the client Finished record carries it",
  );
  sameHex(
    content(8).subarray(4),
    value("server_verify_data"),
    "the server Finished record carries it",
  );
  sameHex(
    await nextTrafficSecret(clientAp),
    value("client_application_traffic_secret_1"),
    "traffic upd",
  );
});

test("signatures: the server's RSA-PSS over its signed content, the client's Ed25519", async () => {
  sameHex(
    signedContent("server", value("hash_ch_scert")),
    value("server_signed_content"),
    "server_signed_content",
  );
  sameHex(
    signedContent("client", value("hash_ch_ccert")),
    value("client_signed_content"),
    "client_signed_content",
  );

  const server = await identityFromCertificate(decodeHandshake(content(3)).data);
  assert.equal(server.fingerprint, fact("server key fingerprint"));
  const serverVerify = decodeHandshake(content(4));
  sameHex(
    serverVerify.signature,
    value("server_signature"),
    "the CertificateVerify carries server_signature",
  );
  await verifySignature(
    server.publicKey,
    serverVerify.algorithm,
    value("server_signed_content"),
    value("server_signature"),
  );
  const other = value("server_signed_content").slice();
  other[other.length - 1] ^= 1;
  await assert.rejects(
    verifySignature(server.publicKey, serverVerify.algorithm, other, value("server_signature")),
    { alert: 51 },
  );

  const identity = await exampleClientIdentity();
  assert.equal(identity.fingerprint, fact("client key fingerprint"));
  sameHex(
    await identity.sign(value("client_signed_content")),
    value("client_signature"),
    "client_signature (Ed25519 is deterministic)",
  );
  sameHex(
    decodeHandshake(content(6)).signature,
    value("client_signature"),
    "the client CertificateVerify carries it",
  );
  sameHex(
    decodeHandshake(content(5)).data,
    identity.spki,
    "the client Certificate carries its SPKI",
  );
});

test("the plaintext records, field by field, and their codec round trip", () => {
  for (const n of [1, 2]) {
    const record = doc.records[n - 1];
    const fieldNames = [...record.fields.keys()].filter((name) => name !== "record on the wire");
    const joined = concat(...fieldNames.map((name) => field(n, name)));
    sameHex(joined, field(n, "record on the wire"), `${record.title}: the fields make the record`);
    sameHex(
      plaintextRecord(ContentType.handshake, content(n)),
      field(n, "record on the wire"),
      `${record.title} framing`,
    );
    sameHex(
      encodeHandshake(decodeHandshake(content(n))),
      content(n),
      `${record.title} decodes and encodes back`,
    );
  }
  const hello = decodeHandshake(content(1));
  sameHex(hello.random, field(1, "random"), "ClientHello random");
  sameHex(hello.random, value("client_random"), "the client's random");
  sameHex(Uint8Array.of(32, ...hello.keyShare), field(1, "key_share"), "ClientHello key_share");
  sameHex(hello.keyShare, value("client_x25519_public"), "the client's key share");
  assert.deepEqual(
    [hello.versions, hello.cipherSuites, hello.signatureAlgorithms],
    [[4], [1, 2], [0x0804, 0x0807]],
  );
  const serverHello = decodeHandshake(content(2));
  sameHex(serverHello.random, value("server_random"), "ServerHello random");
  sameHex(serverHello.keyShare, value("server_x25519_public"), "ServerHello key_share");
  assert.deepEqual([serverHello.version, serverHello.cipherSuite], [4, 1]);
});

test("every protected record: its nonce, its inner plaintext, sealed and opened byte for byte", async () => {
  for (const record of doc.records.filter((r) => r.protection !== "plaintext record")) {
    const n = record.number;
    const secret = value(`${record.keys}_traffic_secret`);
    const sealer = await keysAt(secret, record.seq);
    sameHex(sealer.nonce(), field(n, "nonce"), `record ${n} nonce`);
    const inner = field(n, "inner plaintext: content");
    const wire = field(n, "record on the wire");
    sameHex(
      await sealer.seal(inner[inner.length - 1], inner.subarray(0, -1)),
      wire,
      `record ${n} sealed`,
    );
    const opened = await (
      await keysAt(secret, record.seq)
    ).open(wire.subarray(0, 5), wire.subarray(5));
    sameHex(concat(opened.content, Uint8Array.of(opened.contentType)), inner, `record ${n} opened`);
  }
  const frame = (/** @type {string} */ name) => utf8(fact(name));
  sameHex(
    content(9).subarray(3),
    frame("client → server message"),
    "record 9 carries the hello frame",
  );
  sameHex(
    content(10).subarray(3),
    frame("server → client message"),
    "record 10 carries the welcome frame",
  );
  assert.deepEqual(
    [content(11), content(12)].map((c) => toHex(c)),
    ["0100", "0100"],
    "close_notify, warning",
  );
});

test("ClientConnection replays the whole example: what it writes is the document's records", async () => {
  const client = await exampleClient();
  const [
    hello,
    serverFlight,
    clientFlight,
    serverFinished,
    helloFrame,
    welcome,
    clientClose,
    serverClose,
  ] = flights(doc.records);
  assert.deepEqual(
    [
      hello,
      serverFlight,
      clientFlight,
      serverFinished,
      helloFrame,
      welcome,
      clientClose,
      serverClose,
    ].map((f) => f.records.map((r) => r.number)),
    [[1], [2, 3, 4], [5, 6, 7], [8], [9], [10], [11], [12]],
  );

  assert.deepEqual(await client.startHandshake(), [
    { type: "handshake_step", step: 1, text: "ClientHello sent" },
  ]);
  sameHex(await client.dataToSend(), hello.wire, "ClientHello record");

  const authenticated = await client.receiveData(serverFlight.wire);
  assert.deepEqual(
    authenticated.map((e) => (e.type === "handshake_step" ? e.step : e.type)),
    [2, 3, 4, "server_authenticated"],
  );
  const server =
    /** @type {import("../../tlschat/web/static/js/protocol/events.js").ServerAuthenticated} */ (
      authenticated[3]
    ).identity;
  assert.equal(server.fingerprint, fact("server key fingerprint"));
  assert.equal(client.state, "WAIT_TRUST");
  sameHex(await client.dataToSend(), new Uint8Array(0), "nothing is sent while the user decides");

  assert.deepEqual(await client.trustServer(), [
    { type: "handshake_step", step: 5, text: "Client Finished sent ✅" },
  ]);
  sameHex(
    await client.dataToSend(),
    clientFlight.wire,
    "client Certificate, CertificateVerify, Finished",
  );

  const complete = await client.receiveData(serverFinished.wire);
  assert.deepEqual(
    complete.map((e) => (e.type === "handshake_step" ? e.step : e.type)),
    [6, 0, "handshake_complete"],
  );
  assert.equal(
    complete[2].type === "handshake_complete" && `${complete[2].suite} ${complete[2].version}`,
    "AES-GCM-256 4",
  );
  assert.ok(client.isConnected);

  client.sendData(encodeFrame(JSON.parse(fact("client → server message"))));
  sameHex(await client.dataToSend(), helloFrame.wire, "the hello frame's record");
  const received = await client.receiveData(welcome.wire);
  assert.equal(received.length, 1);
  assert.equal(
    received[0].type === "data_received" && new TextDecoder().decode(received[0].data),
    fact("server → client message"),
  );

  assert.deepEqual(await client.close(), []);
  sameHex(await client.dataToSend(), clientClose.wire, "the client's close_notify");
  assert.equal(client.state, "CONNECTED", "half-closed: the server's close_notify is still read");
  assert.deepEqual(await client.receiveData(serverClose.wire), [{ type: "connection_closed" }]);
  assert.equal(client.state, "CLOSED");
  sameHex(await client.dataToSend(), new Uint8Array(0), "close_notify is not answered twice");
  assert.deepEqual(await client.receiveEof(), []);
  assert.equal(client.error, null);
});

test("ClientConnection accepts the server's flight one byte at a time", async () => {
  const client = await exampleClient();
  await client.startHandshake();
  await client.dataToSend();
  const wire = flights(doc.records)[1].wire;
  const events = [];
  for (let i = 0; i < wire.length; i++)
    events.push(...(await client.receiveData(wire.subarray(i, i + 1))));
  assert.deepEqual(
    events.map((e) => e.type),
    ["handshake_step", "handshake_step", "handshake_step", "server_authenticated"],
  );
});

test("the signed chat message: signed bytes, Ed25519 signature, and the say frame", async () => {
  const say = JSON.parse(doc.chat.say);
  const identity = await exampleClientIdentity();
  const network = fact("server key fingerprint");
  assert.equal(say.network, network, "the network is the server key's fingerprint");
  const composer = new Composer(identity, network);
  const message = await composer.sign(say.target, say.body, say.ts / 1000);
  assert.equal(message.counter, say.counter, "counter = floor(now × 10^6)");
  assert.equal(message.timestampMs, say.ts, "timestamp = floor(now × 1000)");
  sameHex(signedBytes(message), chatValue("signed_bytes"), "signed_bytes");
  sameHex(message.signature, chatValue("signature"), "signature");
  assert.equal(
    new TextDecoder().decode(encodeFrame(sayFrame(message))),
    doc.chat.say,
    "the say frame, byte for byte",
  );

  const key = await PeerIdentity.fromSpki(identity.spki);
  assert.ok(await verifyMessage(message, key));
  assert.deepEqual(
    await checkMessage(message, identity.spki, {
      network,
      ownFingerprint: "SHA256:other",
      rooms: [say.target],
      now: say.ts / 1000,
    }),
    { verified: true, problem: "" },
  );
  const next = await composer.sign(say.target, say.body, say.ts / 1000);
  assert.equal(
    next.counter,
    say.counter + 1,
    "a counter is never used twice, even within one microsecond",
  );
});

test("every value, fact and record field of the document was reproduced above", () => {
  const listed = [
    ...[...doc.values.keys()].map((name) => `value ${name}`),
    ...[...doc.facts.keys()].map((name) => `fact ${name}`),
    ...[...doc.chat.values.keys()].map((name) => `chat ${name}`),
    ...doc.records.flatMap((record) =>
      [...record.fields.keys()].map((name) => `record ${record.number} ${name}`),
    ),
  ];
  assert.deepEqual(
    listed.filter((name) => !checked.has(name)),
    [],
  );
  assert.equal(doc.records.length, 12);
  assert.ok(listed.length >= 38 + 4 + 2 + 12 * 3, "the parser found the example's values");
});
