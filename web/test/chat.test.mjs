// Signed chat lines and chat frames (docs/PROTOCOL.md sections 21 and 22): what a signature binds,
// the sender's counters, the recipient's checks in their order, and the bounds of a frame and its
// fields.

import assert from "node:assert/strict";
import { test } from "node:test";

import { toBase64, utf8 } from "../../tlschat/web/static/js/protocol/bytes.js";
import {
  Composer,
  Problem,
  checkMessage,
  messageKey,
  parseSignedMessage,
  sayFrame,
  signedBytes,
  verifyMessage,
} from "../../tlschat/web/static/js/protocol/envelope.js";
import {
  FrameError,
  decodeFrame,
  encodeFrame,
  fieldInt,
  fieldStr,
} from "../../tlschat/web/static/js/protocol/frames.js";
import { PeerIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { exampleClientIdentity, readWorkedExample } from "../support/worked_example.mjs";

const NETWORK = /** @type {string} */ (readWorkedExample().facts.get("server key fingerprint"));
const NOW = 1_767_225_600;

async function line(target = "#general", body = "hello, world") {
  const identity = await exampleClientIdentity();
  return { identity, message: await new Composer(identity, NETWORK).sign(target, body, NOW) };
}

test("a signature binds every field: change any and it no longer verifies", async () => {
  const { identity, message } = await line();
  const key = await PeerIdentity.fromSpki(identity.spki);
  assert.ok(await verifyMessage(message, key));
  for (const change of [
    { network: "SHA256:x" },
    { target: "#other" },
    { counter: message.counter + 1 },
    { timestampMs: message.timestampMs + 1 },
    { body: "hello, World" },
  ]) {
    assert.ok(!(await verifyMessage({ ...message, ...change }, key)), JSON.stringify(change));
  }
  assert.ok(
    !(await verifyMessage({ ...message, sender: NETWORK }, key)),
    "another sender than the key's",
  );
  const bad = message.signature.slice();
  bad[0] ^= 1;
  assert.ok(!(await verifyMessage({ ...message, signature: bad }, key)));
});

test("signed bytes refuse what they cannot encode faithfully", async () => {
  const { message } = await line();
  assert.throws(() => signedBytes({ ...message, sender: "SHA256:é" }), RangeError);
  assert.throws(() => signedBytes({ ...message, body: "\ud800" }), RangeError);
  assert.throws(() => signedBytes({ ...message, network: "n".repeat(256) }), RangeError);
  assert.equal(
    signedBytes({ ...message, body: "é\n2" }).at(-5),
    4,
    "a body's u32 length counts UTF-8 bytes",
  );
});

test("counters: at least the time in microseconds, and always above the previous one", async () => {
  const identity = await exampleClientIdentity();
  const composer = new Composer(identity, NETWORK, 5e15);
  const first = await composer.sign("#a", "x", NOW);
  assert.equal(first.counter, 5e15 + 1, "a clock behind the last counter still moves forward");
  const later = new Composer(identity, NETWORK);
  const ahead = await later.sign("#a", "x", NOW + 1);
  assert.equal(ahead.counter, (NOW + 1) * 1e6);
  const behind = await later.sign("#a", "x", NOW);
  assert.equal(behind.counter, ahead.counter + 1, "the clock went back");
  assert.equal(behind.timestampMs, NOW * 1000, "the time is the clock's, whatever the counter");
});

test("the recipient's checks, in order, each with its problem", async () => {
  const { identity, message } = await line();
  const other = await exampleClientIdentity();
  const recipient = {
    network: NETWORK,
    ownFingerprint: "SHA256:me",
    rooms: ["#general"],
    now: NOW,
  };
  const check = (
    /** @type {object} */ change,
    /** @type {object} */ where = {},
    key = identity.spki,
  ) => checkMessage({ ...message, ...change }, key, { ...recipient, ...where });
  assert.deepEqual(await check({}), { verified: true, problem: "" });
  assert.equal((await check({ network: "SHA256:else" })).problem, Problem.ANOTHER_NETWORK);
  assert.equal((await check({}, { rooms: ["#other"] })).problem, Problem.ANOTHER_ROOM);
  assert.equal(
    (await check({}, { historyRoom: "#other" })).problem,
    Problem.ANOTHER_ROOM,
    "history is for its own room",
  );
  assert.equal((await check({ target: "@SHA256:someone" })).problem, Problem.NOT_FOR_YOU);
  assert.equal(
    (await check({ body: "changed" }, {}, Uint8Array.of(1, 2))).problem,
    Problem.BAD_KEY,
    "the key before the signature",
  );
  assert.equal((await check({ body: "changed" })).problem, Problem.BAD_SIGNATURE);
  assert.equal(
    (await check({}, { now: NOW - 600 })).verified,
    true,
    "ten minutes ahead is still fine",
  );
  assert.equal((await check({}, { now: NOW - 600.001 })).problem, Problem.FROM_THE_FUTURE);
  const mine = await new Composer(other, NETWORK).sign("@SHA256:me", "private", NOW);
  assert.deepEqual(await checkMessage(mine, other.spki, recipient), {
    verified: true,
    problem: "",
  });
});

test("a say frame goes through the frame codec and back to the same signed line", async () => {
  const { identity, message } = await line("#general", "multi\nline ✓");
  const frame = decodeFrame(encodeFrame(sayFrame(message)));
  assert.deepEqual(parseSignedMessage(frame), message);
  const relayed = { ...frame, type: "message", from: "alice", key: toBase64(identity.spki) };
  assert.deepEqual(messageKey(relayed), identity.spki);
});

test("a signed line's fields are bounded as section 22 says", async () => {
  const { message } = await line();
  const frame = /** @type {Record<string, unknown>} */ (sayFrame(message));
  const refuse = (/** @type {object} */ change, /** @type {RegExp} */ why) =>
    assert.throws(
      () => parseSignedMessage(/** @type {any} */ ({ ...frame, ...change })),
      (error) => error instanceof FrameError && why.test(error.message),
    );
  refuse({ body: "é".repeat(2049) }, /'body' is longer than 4096 bytes/);
  refuse({ network: "n".repeat(65) }, /'network'/);
  refuse({ target: 7 }, /'target' must be a string/);
  refuse({ sender: "\ud800" }, /'sender' is not valid Unicode/);
  refuse({ counter: -1 }, /'counter' must be an integer/);
  refuse({ counter: 2 ** 53 }, /'counter' must be an integer/);
  refuse({ counter: true }, /'counter'/);
  refuse({ ts: 1.5 }, /'ts'/);
  refuse({ sig: "not base64!" }, /'sig' is not base64/);
  refuse({ sig: "A".repeat(2052) }, /'sig' is longer than 2048/);
});

test("frames: at most 65536 bytes, UTF-8 JSON, an object with a string type", () => {
  const refuse = (/** @type {Uint8Array} */ data, /** @type {RegExp} */ why) =>
    assert.throws(
      () => decodeFrame(data),
      (error) => error instanceof FrameError && why.test(error.message),
    );
  refuse(utf8(`{"type":"x","p":"${"a".repeat(65530)}"}`), /exceeds 65536/);
  refuse(Uint8Array.of(0x7b, 0xff, 0x7d), /not UTF-8 JSON/);
  refuse(utf8("{type: 1}"), /not UTF-8 JSON/);
  refuse(utf8("[1]"), /string 'type'/);
  refuse(utf8("null"), /string 'type'/);
  refuse(utf8('{"type":1}'), /string 'type'/);
  assert.deepEqual(decodeFrame(utf8('{"type":"pong"}')), { type: "pong" });
  assert.equal(fieldStr({ type: "x", s: "\ud83d\ude00" }, "s", 4), "😀");
  assert.throws(
    () => fieldStr(decodeFrame(utf8('{"type":"x","s":"\\ud800"}')), "s", 64),
    /not valid Unicode/,
  );
  assert.throws(() => fieldInt({ type: "x" }, "n", 10), /'n' must be an integer in \[0, 10\]/);
  assert.equal(
    new TextDecoder().decode(encodeFrame({ type: "hello", nick: "ä" })),
    '{"type":"hello","nick":"ä"}',
    "compact, non-ASCII as UTF-8",
  );
});
