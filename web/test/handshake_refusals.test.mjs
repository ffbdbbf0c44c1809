// What the client refuses during the handshake, and with which alert (docs/PROTOCOL.md sections
// 4-14 and 18): each case brings a client of the worked example to a state with the document's
// own records, feeds it one bad input, and reads the alert it sent with the keys of that moment.

import assert from "node:assert/strict";
import { test } from "node:test";

import { AlertDescription, alertName } from "../../tlschat/web/static/js/protocol/alerts.js";
import { concat, uint } from "../../tlschat/web/static/js/protocol/bytes.js";
import { decodeHandshake, encodeHandshake } from "../../tlschat/web/static/js/protocol/messages.js";
import { ContentType, plaintextRecord } from "../../tlschat/web/static/js/protocol/records.js";
import {
  clientAt,
  keysAt,
  readRecords,
  readWorkedExample,
  secretOf,
  valueOf,
} from "../support/worked_example.mjs";

const doc = readWorkedExample();
const wire = (/** @type {number} */ n) => valueOf(doc.records[n - 1].fields, "record on the wire");
const message = (/** @type {number} */ n) =>
  n <= 2
    ? wire(n).subarray(5)
    : valueOf(doc.records[n - 1].fields, "inner plaintext: content").subarray(0, -1);
const plain = (/** @type {number} */ type, /** @type {number[] | Uint8Array} */ content) =>
  plaintextRecord(type, Uint8Array.from(content));
/** Records the server would send under its handshake keys, from sequence number `seq` on. */
const serverHandshake = async (
  /** @type {number} */ seq,
  /** @type {[number, Uint8Array | number[]][]} */ records,
) => {
  const keys = await keysAt(secretOf("server_handshake"), seq);
  const out = [];
  for (const [type, content] of records) out.push(await keys.seal(type, Uint8Array.from(content)));
  return concat(...out);
};
const serverHello = (/** @type {object} */ changes) =>
  encodeHandshake({ ...decodeHandshake(message(2)), ...changes });
const certificate = () => decodeHandshake(message(3));
const withCertificate = (/** @type {Uint8Array} */ data, type = 1) =>
  serverHandshake(0, [
    [ContentType.handshake, encodeHandshake({ msgType: 11, certificateType: type, data })],
  ]);
const withVerify = (/** @type {object} */ changes) =>
  serverHandshake(1, [
    [ContentType.handshake, encodeHandshake({ ...decodeHandshake(message(4)), ...changes })],
  ]);

/**
 * @param {Uint8Array} bytes
 * @param {number} byte index
 * @returns {Uint8Array} a copy with that byte changed
 */
function flipped(bytes, byte) {
  const copy = bytes.slice();
  copy[byte] ^= 0x01;
  return copy;
}

/**
 * The certificate with the first "tlschat" (the issuer's CN) spelled otherwise: issuer ≠ subject.
 * @param {Uint8Array} der
 * @returns {Uint8Array}
 */
function otherIssuer(der) {
  const copy = der.slice();
  const at = Buffer.from(copy).indexOf("tlschat");
  assert.ok(at > 0);
  copy[at] = "T".charCodeAt(0);
  return copy;
}

/**
 * @typedef {"WAIT_SERVER_HELLO" | "WAIT_SERVER_CERTIFICATE" | "WAIT_SERVER_CERTIFICATE_VERIFY" | "WAIT_TRUST" | "WAIT_SERVER_FINISHED"} Stage
 * @typedef {{name: string, at: Stage, input: () => Uint8Array | Promise<Uint8Array>, alert: string,
 *            received?: boolean, sentWith?: string | null}} Case
 *   `sentWith`: the keys the client's alert is under ("" plaintext, null none sent)
 */

/** @param {Stage} stage */
async function client(stage) {
  if (stage !== "WAIT_SERVER_CERTIFICATE_VERIFY") return clientAt(stage);
  const connection = await clientAt("WAIT_SERVER_CERTIFICATE");
  await connection.receiveData(wire(3));
  assert.equal(connection.state, stage);
  return connection;
}

/** @type {Case[]} */
const CASES = [
  {
    name: "a record of unknown type, from its header alone",
    at: "WAIT_SERVER_HELLO",
    input: () => Uint8Array.of(24, 0, 1, 0, 0),
    alert: "unexpected_message",
    sentWith: "",
  },
  {
    name: "a record header version other than 0x0001",
    at: "WAIT_SERVER_HELLO",
    input: () => Uint8Array.of(22, 3, 3, 0, 4, 2, 0, 0, 0),
    alert: "protocol_version",
    sentWith: "",
  },
  {
    name: "a length over 16384 before keys, before the body arrives",
    at: "WAIT_SERVER_HELLO",
    input: () => Uint8Array.of(22, 0, 1, 0x40, 0x01),
    alert: "record_overflow",
    sentWith: "",
  },
  {
    name: "application data before keys",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(23, [0, 0, 0]),
    alert: "unexpected_message",
    sentWith: "",
  },
  {
    name: "an empty handshake record",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, []),
    alert: "unexpected_message",
    sentWith: "",
  },
  {
    name: "a handshake length over 32768, from its 4 header bytes",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, [2, 0, 0x80, 0x01]),
    alert: "decode_error",
    sentWith: "",
  },
  {
    name: "an unknown handshake type",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, [3, 0, 0, 0]),
    alert: "unexpected_message",
    sentWith: "",
  },
  {
    name: "a message the state does not expect (Finished first)",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, message(8)),
    alert: "unexpected_message",
    sentWith: "",
  },
  {
    name: "a ServerHello with a byte left over",
    at: "WAIT_SERVER_HELLO",
    input: () =>
      plain(22, concat(Uint8Array.of(2), uint(70, 3), message(2).subarray(4), Uint8Array.of(0))),
    alert: "decode_error",
    sentWith: "",
  },
  {
    name: "a ServerHello too short for its fields",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, concat(Uint8Array.of(2), uint(68, 3), message(2).subarray(4, -1))),
    alert: "decode_error",
    sentWith: "",
  },
  {
    name: "a version the client did not offer",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, serverHello({ version: 3 })),
    alert: "illegal_parameter",
    sentWith: "",
  },
  {
    name: "a suite the client did not offer",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, serverHello({ cipherSuite: 3 })),
    alert: "illegal_parameter",
    sentWith: "",
  },
  {
    name: "ChaCha20-Poly1305, offered but not in WebCrypto",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, serverHello({ cipherSuite: 2 })),
    alert: "handshake_failure",
    sentWith: "",
  },
  {
    name: "a key share of 31 bytes",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, serverHello({ keyShare: new Uint8Array(31).fill(9) })),
    alert: "illegal_parameter",
    sentWith: "",
  },
  {
    name: "a low-order key share (all-zero shared secret)",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, serverHello({ keyShare: new Uint8Array(32) })),
    alert: "illegal_parameter",
    sentWith: "",
  },
  {
    name: "more handshake data after ServerHello in its record",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(22, concat(message(2), message(3).subarray(0, 1))),
    alert: "unexpected_message",
    sentWith: "client_handshake",
  },
  {
    name: "an alert of 3 bytes",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(21, [2, 40, 0]),
    alert: "decode_error",
    sentWith: "",
  },
  {
    name: "an alert level other than 1 or 2",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(21, [3, 40]),
    alert: "illegal_parameter",
    sentWith: "",
  },
  {
    name: "the server's plaintext alert before keys",
    at: "WAIT_SERVER_HELLO",
    input: () => plain(21, [2, 204]),
    alert: "server_busy",
    received: true,
    sentWith: null,
  },
  {
    name: "a corrupted protected record",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => flipped(wire(3), 100),
    alert: "bad_record_mac",
    sentWith: "client_handshake",
  },
  {
    name: "a protected record shorter than 17 bytes",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => concat(Uint8Array.of(23, 0, 1, 0, 16), new Uint8Array(16)),
    alert: "bad_record_mac",
    sentWith: "client_handshake",
  },
  {
    name: "a protected length over 16401, before the body arrives",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => Uint8Array.of(23, 0, 1, 0x40, 0x12),
    alert: "record_overflow",
    sentWith: "client_handshake",
  },
  {
    name: "an unprotected handshake record once keys are set",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => plain(22, message(3)),
    alert: "unexpected_message",
    sentWith: "client_handshake",
  },
  {
    name: "an inner content type of 0 (padding)",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => serverHandshake(0, [[0, message(3)]]),
    alert: "unexpected_message",
    sentWith: "client_handshake",
  },
  {
    name: "the server's plaintext alert during the handshake",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => plain(21, [2, 202]),
    alert: "handshake_timeout",
    received: true,
    sentWith: null,
  },
  {
    name: "an alert inside a split handshake message",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () =>
      serverHandshake(0, [
        [22, message(3).subarray(0, 10)],
        [21, [1, 90]],
      ]),
    alert: "unexpected_message",
    sentWith: "client_handshake",
  },
  {
    name: "a raw public key where the server's certificate belongs",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => withCertificate(certificate().data, 2),
    alert: "unsupported_certificate",
    sentWith: "client_handshake",
  },
  {
    name: "a certificate that does not parse",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => withCertificate(certificate().data.subarray(0, 400)),
    alert: "bad_certificate",
    sentWith: "client_handshake",
  },
  {
    name: "a certificate whose signature does not verify",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => withCertificate(flipped(certificate().data, certificate().data.length - 5)),
    alert: "bad_certificate",
    sentWith: "client_handshake",
  },
  {
    name: "a certificate whose issuer is not its subject",
    at: "WAIT_SERVER_CERTIFICATE",
    input: () => withCertificate(otherIssuer(certificate().data)),
    alert: "bad_certificate",
    sentWith: "client_handshake",
  },
  {
    name: "a CertificateVerify scheme the client did not offer",
    at: "WAIT_SERVER_CERTIFICATE_VERIFY",
    input: () => withVerify({ algorithm: 0x0403 }),
    alert: "illegal_parameter",
    sentWith: "client_handshake",
  },
  {
    name: "a CertificateVerify scheme that is not the key's",
    at: "WAIT_SERVER_CERTIFICATE_VERIFY",
    input: () => withVerify({ algorithm: 0x0807 }),
    alert: "illegal_parameter",
    sentWith: "client_handshake",
  },
  {
    name: "a server signature that does not verify",
    at: "WAIT_SERVER_CERTIFICATE_VERIFY",
    input: () => withVerify({ signature: flipped(decodeHandshake(message(4)).signature, 0) }),
    alert: "decrypt_error",
    sentWith: "client_handshake",
  },
  {
    name: "any record but an alert while the user decides",
    at: "WAIT_TRUST",
    input: () => serverHandshake(2, [[23, []]]),
    alert: "unexpected_message",
    sentWith: "client_handshake",
  },
  {
    name: "the server's alert while the user decides",
    at: "WAIT_TRUST",
    input: () => serverHandshake(2, [[21, [2, 202]]]),
    alert: "handshake_timeout",
    received: true,
    sentWith: null,
  },
  {
    name: "a server Finished that does not verify",
    at: "WAIT_SERVER_FINISHED",
    input: () => serverHandshake(2, [[22, flipped(message(8), 10)]]),
    alert: "decrypt_error",
    sentWith: "client_application",
  },
  {
    name: "application data before the server's Finished",
    at: "WAIT_SERVER_FINISHED",
    input: () => serverHandshake(2, [[23, [0, 0, 0]]]),
    alert: "unexpected_message",
    sentWith: "client_application",
  },
  {
    name: "a KeyUpdate before the handshake completes",
    at: "WAIT_SERVER_FINISHED",
    input: () => serverHandshake(2, [[22, [24, 0, 0, 1, 0]]]),
    alert: "unexpected_message",
    sentWith: "client_application",
  },
];

for (const refusal of CASES) {
  test(`${refusal.at}: ${refusal.name} is ${refusal.alert}`, async () => {
    const connection = await client(refusal.at);
    const events = await connection.receiveData(await refusal.input());
    const failed = events.at(-1);
    assert.equal(failed?.type, "connection_failed", JSON.stringify(events));
    assert.equal(failed.type === "connection_failed" && failed.error.alertName, refusal.alert);
    assert.equal(
      failed.type === "connection_failed" && failed.error.received,
      refusal.received ?? false,
    );
    assert.equal(connection.state, "CLOSED");
    assert.equal(connection.error?.alertName, refusal.alert);
    const sent = await connection.dataToSend();
    if (refusal.sentWith === null) {
      assert.equal(sent.length, 0, "nothing is sent back to a peer's alert");
      return;
    }
    const keys = refusal.sentWith ? await keysAt(secretOf(refusal.sentWith), 0) : null;
    const records = await readRecords(sent, keys);
    assert.deepEqual(records, [
      {
        contentType: ContentType.alert,
        content: Uint8Array.of(2, AlertDescription[refusal.alert]),
      },
    ]);
    assert.deepEqual(
      await connection.receiveData(Uint8Array.of(1, 2, 3)),
      [],
      "a failed connection reads nothing more",
    );
  });
}

test("rejectServer() sends bad_certificate under the client's handshake keys, and closes", async () => {
  const connection = await clientAt("WAIT_TRUST");
  const error = await connection.rejectServer("the key is not the pinned one");
  assert.equal(error.alertName, "bad_certificate");
  assert.equal(error.reason, "the key is not the pinned one");
  assert.equal(connection.state, "CLOSED");
  const records = await readRecords(
    await connection.dataToSend(),
    await keysAt(secretOf("client_handshake"), 0),
  );
  assert.deepEqual(records, [{ contentType: ContentType.alert, content: Uint8Array.of(2, 42) }]);
  await assert.rejects(connection.trustServer(), /no server to trust/);
});

test("the handshake deadline: nothing before it, handshake_timeout at it, none once connected", async () => {
  const connection = await clientAt("WAIT_TRUST");
  assert.deepEqual(await connection.handleTimer(9.999), []);
  const events = await connection.handleTimer(10);
  assert.equal(
    events.length === 1 && events[0].type === "connection_failed" && events[0].error.alertName,
    "handshake_timeout",
  );
  const records = await readRecords(
    await connection.dataToSend(),
    await keysAt(secretOf("client_handshake"), 0),
  );
  assert.deepEqual(records, [{ contentType: ContentType.alert, content: Uint8Array.of(2, 202) }]);
  const connected = await clientAt("CONNECTED");
  assert.deepEqual(await connected.handleTimer(1e9), []);
});

test("a peer's unknown alert code is reported as internal_error, its code in the reason", async () => {
  const connection = await clientAt("WAIT_SERVER_HELLO");
  const [failed] = await connection.receiveData(plain(21, [2, 99]));
  assert.equal(
    failed.type === "connection_failed" && String(failed.error),
    "internal_error (server alert received): peer sent alert 99 (level 2)",
  );
  assert.equal(alertName(99), "unknown_alert_99");
  assert.equal((await connection.dataToSend()).length, 0, "a received alert is not answered");
});

test("the configuration is checked when the connection is made", async () => {
  await assert.rejects(clientAt("WAIT_SERVER_HELLO", { cipherSuites: [] }), RangeError);
  await assert.rejects(clientAt("WAIT_SERVER_HELLO", { keyUpdateAfter: 0 }), RangeError);
  await assert.rejects(clientAt("WAIT_SERVER_HELLO", { maxMessage: 2 ** 24 }), RangeError);
  await assert.rejects(clientAt("WAIT_SERVER_HELLO", { handshakeTimeout: 0 }), RangeError);
});
