// The record layer alone (docs/PROTOCOL.md section 4): protection round trips, nonces, the
// sequence numbers that make a replayed record fail, the per-key record limit, and a reader that
// waits for whole records.

import assert from "node:assert/strict";
import { test } from "node:test";

import { concat } from "../../tlschat/web/static/js/protocol/bytes.js";
import {
  ContentType,
  DirectionKeys,
  RecordReader,
  recordHeader,
} from "../../tlschat/web/static/js/protocol/records.js";
import { fromHex, toHex } from "../support/worked_example.mjs";

const SECRET = fromHex("11".repeat(32));
const keys = (limit = 2 ** 24) => DirectionKeys.create(1, SECRET, limit);

test("a sealed record opens under the same key and sequence, and only then", async () => {
  const sender = await keys();
  const receiver = await keys();
  const first = await sender.seal(ContentType.application_data, Uint8Array.of(1, 2, 3));
  const second = await sender.seal(ContentType.alert, Uint8Array.of(1, 0));
  assert.equal(
    toHex(first.subarray(0, 5)),
    "1700010014",
    "outer type 23, version 1, length content + 1 + 16",
  );
  assert.deepEqual(await receiver.open(first.subarray(0, 5), first.subarray(5)), {
    contentType: 23,
    content: Uint8Array.of(1, 2, 3),
  });
  await assert.rejects(
    receiver.open(first.subarray(0, 5), first.subarray(5)),
    { alertName: "bad_record_mac" },
    "a replayed record",
  );
  const other = await keys();
  await assert.rejects(
    other.open(second.subarray(0, 5), second.subarray(5)),
    { alertName: "bad_record_mac" },
    "a reordered record",
  );
  const altered = first.slice();
  altered[2] = 2;
  await assert.rejects(
    (await keys()).open(altered.subarray(0, 5), altered.subarray(5)),
    { alertName: "bad_record_mac" },
    "the header is authenticated",
  );
});

test("the nonce is the IV XOR the sequence number, big-endian in 12 bytes", async () => {
  const direction = await keys();
  const iv = direction.nonce();
  direction.sequence = 0x01020304;
  const expected = iv.slice();
  for (const [i, byte] of [
    [8, 1],
    [9, 2],
    [10, 3],
    [11, 4],
  ])
    expected[i] ^= byte;
  assert.equal(toHex(direction.nonce()), toHex(expected));
});

test("the receiver takes records 0 .. L-1 freely; record L must be a KeyUpdate; none after it", async () => {
  const sender = await keys(2);
  const reader = new RecordReader();
  reader.readKeys = await keys(2);
  reader.feed(
    concat(await sender.seal(23, Uint8Array.of(0, 0, 0)), await sender.seal(23, new Uint8Array(0))),
  );
  assert.equal((await reader.next())?.contentType, 23);
  assert.equal((await reader.next())?.contentType, 23);
  reader.feed(await sender.seal(23, Uint8Array.of(0, 0, 0)));
  await assert.rejects(
    reader.next(),
    { alertName: "key_exhausted" },
    "record L was not a KeyUpdate",
  );

  const updater = await keys(2);
  const patient = new RecordReader();
  patient.readKeys = await keys(2);
  const records = [];
  for (let i = 0; i < 2; i++) records.push(await updater.seal(23, new Uint8Array(0)));
  records.push(await updater.seal(22, Uint8Array.of(24, 0, 0, 1, 0)));
  patient.feed(concat(...records, recordHeader(23, 17), new Uint8Array(17)));
  for (let i = 0; i < 3; i++) assert.ok(await patient.next());
  await assert.rejects(
    patient.next(),
    { alertName: "key_exhausted" },
    "a record after L fails before decryption",
  );
});

test("the sender refuses to protect past its key's limit", async () => {
  const sender = await keys(1);
  assert.ok(!sender.needsUpdate);
  await sender.seal(23, new Uint8Array(0));
  assert.ok(sender.needsUpdate);
  await sender.seal(21, Uint8Array.of(1, 0));
  await assert.rejects(sender.seal(21, Uint8Array.of(1, 0)), { alertName: "key_exhausted" });
  await sender.update();
  assert.equal(`${sender.sequence} ${sender.generation} ${sender.needsUpdate}`, "0 1 false");
});

test("the reader waits for whole records and checks the header first", async () => {
  const reader = new RecordReader();
  reader.feed(Uint8Array.of(22, 0, 1));
  assert.equal(await reader.next(), null);
  reader.feed(Uint8Array.of(0, 2, 9));
  assert.equal(await reader.next(), null);
  assert.equal(reader.pending, 6);
  reader.feed(Uint8Array.of(9, 21));
  assert.deepEqual(await reader.next(), { contentType: 22, content: Uint8Array.of(9, 9) });
  assert.equal(reader.pending, 1);
  reader.feed(Uint8Array.of(0, 1, 0x40, 0x00));
  assert.equal(await reader.next(), null, "a plaintext record of exactly 16384 bytes is awaited");
});

test("a suite without an AEAD here (ChaCha20-Poly1305) cannot be installed", async () => {
  await assert.rejects(DirectionKeys.create(2, SECRET, 1), RangeError);
});
