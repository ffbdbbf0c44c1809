// The client once connected (docs/PROTOCOL.md sections 15-19): application messages in any split,
// KeyUpdate both ways and the sender's key limit, idle records, alerts, closure and truncation.
// The server's side is played with the worked example's application traffic secrets.

import assert from "node:assert/strict";
import { test } from "node:test";

import { concat, uint } from "../../tlschat/web/static/js/protocol/bytes.js";
import { nextTrafficSecret } from "../../tlschat/web/static/js/protocol/keyschedule.js";
import { ContentType } from "../../tlschat/web/static/js/protocol/records.js";
import { clientAt, keysAt, readRecords, secretOf } from "../support/worked_example.mjs";

/** The server's application write keys (seq 0) and the client's, to read what it sends. */
async function connected(overrides = {}) {
  return {
    client: await clientAt("CONNECTED", overrides),
    server: await keysAt(secretOf("server_application"), 0),
    reader: await keysAt(secretOf("client_application"), 0),
  };
}

/**
 * @param {import("../../tlschat/web/static/js/protocol/records.js").DirectionKeys} keys
 * @param {[number, Uint8Array | number[]][]} records
 * @returns {Promise<Uint8Array>}
 */
async function seal(keys, records) {
  const out = [];
  for (const [type, content] of records) out.push(await keys.seal(type, Uint8Array.from(content)));
  return concat(...out);
}

const message = (/** @type {string} */ text) =>
  concat(uint(text.length, 3), new TextEncoder().encode(text));
const texts = (
  /** @type {import("../../tlschat/web/static/js/protocol/events.js").ConnectionEvent[]} */ events,
) => events.map((e) => (e.type === "data_received" ? new TextDecoder().decode(e.data) : e.type));

test("application messages are reassembled from any split of records", async () => {
  const { client, server } = await connected();
  const stream = concat(message("first"), message(""), message("second, longer"));
  const records = [
    [23, stream.subarray(0, 4)],
    [23, stream.subarray(4, 12)],
    [23, stream.subarray(12)],
  ];
  assert.deepEqual(
    texts(await client.receiveData(await seal(server, /** @type {any} */ (records)))),
    ["first", "", "second, longer"],
  );
});

test("messages queued together are sealed together, split at 16384 bytes", async () => {
  const { client, reader } = await connected();
  const long = new Uint8Array(40000).fill(0x61);
  client.sendData(Uint8Array.of(0x7b, 0x7d));
  client.sendData(long);
  const records = await readRecords(await client.dataToSend(), reader);
  assert.deepEqual(
    records.map((r) => [r.contentType, r.content.length]),
    [
      [23, 16384],
      [23, 16384],
      [23, 40008 - 32768],
    ],
  );
  assert.deepEqual(
    concat(...records.map((r) => r.content)),
    concat(uint(2, 3), Uint8Array.of(0x7b, 0x7d), uint(40000, 3), long),
  );
});

test("sending is refused before the handshake completes, after close(), and past maxMessage", async () => {
  const early = await clientAt("WAIT_TRUST");
  assert.throws(
    () => early.sendData(new Uint8Array(1)),
    /cannot send application data in state WAIT_TRUST/,
  );
  const { client } = await connected({ maxMessage: 10 });
  assert.throws(() => client.sendData(new Uint8Array(11)), RangeError);
  await client.close();
  assert.throws(() => client.sendData(new Uint8Array(1)), /cannot send/);
  await assert.rejects(client.updateKeys(), /cannot update keys/);
});

test("an application message longer than maxMessage is record_overflow from its 3 length bytes", async () => {
  const { client, server, reader } = await connected();
  const [failed] = await client.receiveData(await seal(server, [[23, uint(65537, 3)]]));
  assert.equal(failed.type === "connection_failed" && failed.error.alertName, "record_overflow");
  assert.deepEqual(await readRecords(await client.dataToSend(), reader), [
    { contentType: 21, content: Uint8Array.of(2, 22) },
  ]);
});

test("a KeyUpdate asking for one is answered; both directions move to the next secret", async () => {
  const { client, server, reader } = await connected();
  const events = await client.receiveData(await seal(server, [[22, [24, 0, 0, 1, 1]]]));
  assert.deepEqual(events, [
    { type: "key_updated", direction: "read", generation: 1 },
    { type: "key_updated", direction: "write", generation: 1 },
  ]);
  client.sendData(message("after"));
  const sent = await client.dataToSend();
  const [answer] = await readRecords(sent.subarray(0, 5 + 5 + 17), reader);
  assert.deepEqual(
    answer,
    { contentType: 22, content: Uint8Array.of(24, 0, 0, 1, 0) },
    "KeyUpdate(update_not_requested)",
  );
  const nextWrite = await keysAt(await nextTrafficSecret(secretOf("client_application")), 0);
  assert.deepEqual(await readRecords(sent.subarray(27), nextWrite), [
    { contentType: 23, content: concat(uint(8, 3), message("after")) },
  ]);
  const nextRead = await keysAt(await nextTrafficSecret(secretOf("server_application")), 0);
  assert.deepEqual(
    texts(await client.receiveData(await seal(nextRead, [[23, message("new key")]]))),
    ["new key"],
  );
  const stale = await client.receiveData(await seal(server, [[23, message("old key")]]));
  assert.equal(stale[0].type === "connection_failed" && stale[0].error.alertName, "bad_record_mac");
});

test("a KeyUpdate(update_not_requested) is never answered", async () => {
  const { client, server } = await connected();
  assert.deepEqual(await client.receiveData(await seal(server, [[22, [24, 0, 0, 1, 0]]])), [
    { type: "key_updated", direction: "read", generation: 1 },
  ]);
  assert.equal((await client.dataToSend()).length, 0);
});

test("updateKeys(true) sends KeyUpdate(update_requested), then writes under the next secret", async () => {
  const { client, reader } = await connected();
  client.sendData(message("before"));
  await client.updateKeys(true);
  client.sendData(message("after"));
  const sent = await client.dataToSend();
  const old = await readRecords(sent.subarray(0, 2 * 5 + (3 + 9) + 17 + 5 + 17), reader);
  assert.deepEqual(
    old.map((r) => [r.contentType, Array.from(r.content.subarray(0, 5))]),
    [
      [23, [0, 0, 9, 0, 0]],
      [22, [24, 0, 0, 1, 1]],
    ],
  );
  const next = await keysAt(await nextTrafficSecret(secretOf("client_application")), 0);
  assert.deepEqual(await readRecords(sent.subarray(2 * 5 + 12 + 17 + 5 + 17), next), [
    { contentType: 23, content: concat(uint(8, 3), message("after")) },
  ]);
  assert.equal(client.writeGeneration, 1);
});

test("the sender updates its key by itself after keyUpdateAfter records", async () => {
  const { client, reader } = await connected({ keyUpdateAfter: 2 });
  for (const text of ["one", "two"]) {
    client.sendData(message(text));
    await client.dataToSend();
  }
  client.sendData(message("three"));
  const sent = await client.dataToSend();
  reader.sequence = 2;
  const [update] = await readRecords(sent.subarray(0, 5 + 5 + 17), reader);
  assert.deepEqual(update, { contentType: 22, content: Uint8Array.of(24, 0, 0, 1, 0) });
  const next = await keysAt(await nextTrafficSecret(secretOf("client_application")), 0);
  assert.equal((await readRecords(sent.subarray(27), next)).length, 1);
  assert.equal(client.writeGeneration, 1);
});

test("KeyUpdate refusals: request_update 2, and data after it in its record", async () => {
  for (const [content, alert] of [
    [[24, 0, 0, 1, 2], "illegal_parameter"],
    [[24, 0, 0, 1, 0, 24], "unexpected_message"],
  ]) {
    const { client, server, reader } = await connected();
    const failed = (
      await client.receiveData(await seal(server, [[22, /** @type {number[]} */ (content)]]))
    ).at(-1);
    assert.equal(failed?.type === "connection_failed" && failed.error.alertName, alert);
    const [record] = await readRecords(await client.dataToSend(), reader);
    assert.deepEqual(
      record.content,
      Uint8Array.of(
        2,
        /** @type {any} */ ({ illegal_parameter: 47, unexpected_message: 10 })[alert],
      ),
    );
  }
});

test("a handshake message other than KeyUpdate once connected is unexpected_message", async () => {
  const { client, server } = await connected();
  const [failed] = await client.receiveData(
    await seal(server, [[22, concat(Uint8Array.of(20, 0, 0, 32), new Uint8Array(32))]]),
  );
  assert.equal(failed.type === "connection_failed" && failed.error.alertName, "unexpected_message");
});

test("64 idle records in a row pass, the 65th is too_many_records; data resets the count", async () => {
  const { client, server, reader } = await connected();
  const failures = (
    /** @type {import("../../tlschat/web/static/js/protocol/events.js").ConnectionEvent[]} */ events,
  ) => events.filter((e) => e.type === "connection_failed");
  /** Empty records, user_canceled warnings and a KeyUpdate: n records without data. */
  const idle = async (/** @type {number} */ n) => {
    const out = [await server.seal(22, Uint8Array.of(24, 0, 0, 1, 0))];
    await server.update();
    for (let i = 1; i < n; i++)
      out.push(
        await server.seal(i % 2 ? 23 : 21, i % 2 ? new Uint8Array(0) : Uint8Array.of(1, 90)),
      );
    return concat(...out);
  };
  assert.deepEqual(failures(await client.receiveData(await idle(64))), []);
  assert.deepEqual(
    texts(await client.receiveData(await seal(server, [[23, message("x")]]))),
    ["x"],
    "data resets the count",
  );
  assert.deepEqual(failures(await client.receiveData(await idle(64))), []);
  const [failed] = failures(await client.receiveData(await seal(server, [[23, []]])));
  assert.equal(failed.type === "connection_failed" && failed.error.alertName, "too_many_records");
  assert.deepEqual(await readRecords(await client.dataToSend(), reader), [
    { contentType: 21, content: Uint8Array.of(2, 203) },
  ]);
});

test("user_canceled (warning) is ignored; any other alert ends the connection, unanswered", async () => {
  const { client, server } = await connected();
  assert.deepEqual(await client.receiveData(await seal(server, [[21, [1, 90]]])), []);
  const [failed] = await client.receiveData(await seal(server, [[21, [1, 40]]]));
  assert.equal(
    failed.type === "connection_failed" &&
      `${failed.error.alertName} ${failed.error.received} ${failed.error.sender}`,
    "handshake_failure true server",
  );
  assert.equal((await client.dataToSend()).length, 0);
});

test("close_notify: answered once, the half-closed side still reads, bytes after it are refused", async () => {
  const { client, server, reader } = await connected();
  const events = await client.receiveData(
    concat(
      await seal(server, [
        [23, message("last")],
        [21, [1, 0]],
      ]),
      Uint8Array.of(23),
    ),
  );
  assert.deepEqual(texts(events), ["last", "connection_closed", "connection_failed"]);
  assert.equal(client.error?.alertName, "unexpected_message");
  assert.deepEqual(
    await readRecords(await client.dataToSend(), reader),
    [{ contentType: 21, content: Uint8Array.of(1, 0) }],
    "only the answering close_notify",
  );

  const second = await connected();
  assert.deepEqual(
    texts(await second.client.receiveData(await seal(second.server, [[21, [2, 0]]]))),
    ["connection_closed"],
    "close_notify at level 2 closes cleanly",
  );
  const [late] = await second.client.receiveData(Uint8Array.of(23, 0, 1));
  assert.equal(late.type === "connection_failed" && late.error.alertName, "unexpected_message");
  assert.equal(
    (await second.client.dataToSend()).length,
    5 + 2 + 17,
    "one close_notify, no alert after it",
  );
});

test("end of stream: clean after close_notify, truncated without it (and nothing sent)", async () => {
  const { client } = await connected();
  const [failed] = await client.receiveEof();
  assert.equal(failed.type === "connection_failed" && failed.error.alertName, "truncated");
  assert.equal((await client.dataToSend()).length, 0);

  const closing = await connected();
  await closing.client.close();
  assert.deepEqual(await closing.client.receiveEof(), []);
  assert.equal(closing.client.error, null);
});
