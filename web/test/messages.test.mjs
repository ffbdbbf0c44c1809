// Codecs (docs/PROTOCOL.md sections 2, 5, 6): handshake messages encode and decode back, every
// bound is enforced with the alert the spec gives, the reassembler accepts any split; and the
// byte helpers they rest on.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ByteQueue,
  Writer,
  concat,
  constantTimeEqual,
  fromBase64,
  toBase64,
  uint,
  utf8,
} from "../../tlschat/web/static/js/protocol/bytes.js";
import {
  HandshakeReassembler,
  decodeHandshake,
  decodeHandshakeBody,
  encodeHandshake,
} from "../../tlschat/web/static/js/protocol/messages.js";

const bytes = (/** @type {number} */ n, fill = 7) => new Uint8Array(n).fill(fill);

const MESSAGES = [
  {
    msgType: 1,
    random: bytes(32),
    versions: [4, 9],
    cipherSuites: [1],
    signatureAlgorithms: [0x0804, 0x0807],
    keyShare: bytes(32),
  },
  { msgType: 2, version: 4, random: bytes(32, 1), cipherSuite: 1, keyShare: bytes(32, 2) },
  { msgType: 11, certificateType: 1, data: bytes(16384) },
  { msgType: 15, algorithm: 0x0807, signature: bytes(1024) },
  { msgType: 20, verifyData: bytes(32, 3) },
  { msgType: 24, requestUpdate: true },
  { msgType: 24, requestUpdate: false },
];

test("every handshake message decodes to what was encoded", () => {
  for (const message of MESSAGES)
    assert.deepEqual(decodeHandshake(encodeHandshake(/** @type {any} */ (message))), message);
});

/** A body refused with `alert`. */
const REFUSALS = [
  [
    "ClientHello with an odd list length",
    1,
    concat(bytes(32), Uint8Array.of(3, 0, 4, 0)),
    "decode_error",
  ],
  ["ClientHello with no version", 1, concat(bytes(32), Uint8Array.of(0)), "decode_error"],
  [
    "ClientHello with 17 versions",
    1,
    concat(bytes(32), Uint8Array.of(34), bytes(34)),
    "decode_error",
  ],
  [
    "ServerHello without its key share",
    2,
    concat(uint(4, 2), bytes(32), uint(1, 2)),
    "decode_error",
  ],
  ["Certificate with empty data", 11, Uint8Array.of(1, 0, 0, 0), "decode_error"],
  [
    "Certificate of 16385 bytes",
    11,
    concat(Uint8Array.of(1), uint(16385, 3), bytes(16385)),
    "decode_error",
  ],
  [
    "CertificateVerify with a 1025-byte signature",
    15,
    concat(uint(0x0807, 2), uint(1025, 2), bytes(1025)),
    "decode_error",
  ],
  [
    "CertificateVerify with an empty signature",
    15,
    concat(uint(0x0807, 2), uint(0, 2)),
    "decode_error",
  ],
  ["Finished of 31 bytes", 20, bytes(31), "decode_error"],
  ["Finished of 33 bytes", 20, bytes(33), "decode_error"],
  ["KeyUpdate with request_update 2", 24, Uint8Array.of(2), "illegal_parameter"],
  ["an empty KeyUpdate", 24, new Uint8Array(0), "decode_error"],
  ["an unknown type", 4, new Uint8Array(0), "unexpected_message"],
];

for (const [name, msgType, body, alert] of REFUSALS) {
  test(`${name} is ${alert}`, () => {
    assert.throws(
      () => decodeHandshakeBody(/** @type {number} */ (msgType), /** @type {Uint8Array} */ (body)),
      { alertName: alert },
    );
  });
}

test("a whole message: its length must fit the bytes and the 32768 bound", () => {
  const finished = encodeHandshake({ msgType: 20, verifyData: bytes(32) });
  assert.throws(() => decodeHandshake(finished.subarray(0, -1)), { alertName: "decode_error" });
  assert.throws(() => decodeHandshake(concat(finished, Uint8Array.of(0))), {
    alertName: "decode_error",
  });
  assert.throws(() => decodeHandshake(concat(Uint8Array.of(11), uint(32769, 3), bytes(32769))), {
    alertName: "decode_error",
  });
});

test("the reassembler takes a message split at every byte, and several messages at once", () => {
  const stream = concat(...MESSAGES.slice(3).map((m) => encodeHandshake(/** @type {any} */ (m))));
  const reassembler = new HandshakeReassembler();
  const out = [];
  for (let i = 0; i < stream.length; i++) out.push(...reassembler.feed(stream.subarray(i, i + 1)));
  assert.deepEqual(
    out.map((o) => o.message),
    MESSAGES.slice(3),
  );
  assert.deepEqual(
    concat(...out.map((o) => o.raw)),
    stream,
    "each message with its exact wire bytes",
  );
  assert.equal(reassembler.pending, 0);
  assert.equal(new HandshakeReassembler().feed(stream).length, 4);
  const partial = new HandshakeReassembler();
  assert.deepEqual(partial.feed(stream.subarray(0, 5)), []);
  assert.equal(partial.pending, 5);
  assert.throws(
    () => new HandshakeReassembler().feed(Uint8Array.of(11, 0, 0x80, 1)),
    { alertName: "decode_error" },
    "refused from the header alone",
  );
});

test("the writer refuses a value its length prefix cannot carry", () => {
  assert.throws(() => new Writer().vector(1, bytes(256)), RangeError);
  assert.throws(
    () => encodeHandshake({ msgType: 15, algorithm: 0x0807, signature: bytes(65536) }),
    RangeError,
  );
  assert.throws(
    () => new Writer().u64(2 ** 53),
    RangeError,
    "counters beyond a double's exact range",
  );
  assert.equal(
    Array.from(new Writer().u64(2 ** 53 - 1).bytes()).join(","),
    "0,31,255,255,255,255,255,255",
  );
});

test("byte helpers: strict base64, well-formed UTF-8, the byte queue, constant-time equality", () => {
  assert.equal(toBase64(Uint8Array.of(0xfb, 0xff)), "+/8=");
  assert.deepEqual(fromBase64("+/8="), Uint8Array.of(0xfb, 0xff));
  for (const bad of ["+/8", "+/8=\n", "-_8=", "+/8==", "a===", "+/8=+/8="])
    assert.throws(() => fromBase64(bad), RangeError, bad);
  assert.throws(() => utf8("\ud800"), RangeError);
  assert.deepEqual(utf8("é"), Uint8Array.of(0xc3, 0xa9));
  const queue = new ByteQueue();
  queue.push(Uint8Array.of(1, 2));
  queue.push(new Uint8Array(0));
  queue.push(Uint8Array.of(3, 4, 5));
  assert.deepEqual(queue.peek(3), Uint8Array.of(1, 2, 3));
  assert.deepEqual(queue.take(3), Uint8Array.of(1, 2, 3));
  assert.deepEqual(queue.take(2), Uint8Array.of(4, 5));
  assert.equal(queue.length, 0);
  assert.ok(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)));
  assert.ok(!constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(!constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)));
});
