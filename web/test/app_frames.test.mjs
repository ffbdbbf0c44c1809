// The web client's chat logic, frame by frame (docs/PROTOCOL.md section 22): welcome, joined,
// message (✓ and ✗ with the check that failed), history, sent and error as outcomes of the
// user's lines, and what a malformed or unknown frame does (an error line, never a throw).

import assert from "node:assert/strict";
import { test } from "node:test";

import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { utf8 } from "../../tlschat/web/static/js/protocol/bytes.js";
import {
  NO_DEVICE_FOR_PRIVATE,
  noDeviceForRoom,
} from "../../tlschat/web/static/js/app/chat_sending.js";
import { NO_DEVICE } from "../../tlschat/web/static/js/app/chat_decrypting.js";
import {
  DELIVERED,
  NOT_DECRYPTED,
  PENDING,
  REFUSED,
} from "../../tlschat/web/static/js/app/lines.js";
import { REPLAYED } from "../../tlschat/web/static/js/app/verifier.js";
import { SeenLedger } from "../../tlschat/web/static/js/app/seen.js";
import {
  NOW,
  connect,
  joined,
  newClient,
  relayed,
  sentFrames,
  welcome,
} from "../support/chat_fixture.mjs";

test("welcome and joined: the nick the server gave, the room and who is in it", async () => {
  const { client } = await newClient("alice");
  const bob = await ClientIdentity.generate();
  const lines = await client.handle(welcome(client, { nick: "alice2", operator: true }), NOW);
  assert.equal(client.nick, "alice2");
  assert.deepEqual(
    lines.map((l) => l.text),
    ["Welcome to test server, alice2 (operator)"],
  );
  const me = { nick: "alice2", fingerprint: client.identity.fingerprint };
  const shown = await client.handle(
    joined("#general", [me, { nick: "bob", fingerprint: bob.fingerprint }], { topic: "hi" }),
    NOW,
  );
  assert.deepEqual(
    shown.map((l) => [l.kind, l.room, l.text]),
    [
      ["joined", "#general", "You are alice2 in #general with bob"],
      ["topic", "#general", "Topic of #general: hi"],
    ],
  );
  assert.deepEqual(client.rooms, ["#general"]);
  assert.equal(client.members.get("#general")?.get("bob")?.fingerprint, bob.fingerprint);
});

test("a relayed line is verified ✓; any change to it is ✗ with the check that failed", async () => {
  const { client } = await newClient();
  const bob = await ClientIdentity.generate();
  await connect(client, NOW, [{ nick: "bob", fingerprint: bob.fingerprint }]);
  const frame = await relayed(bob, "bob", "#general", "hello alice", NOW);
  const [line] = await client.handle(frame, NOW + 1);
  assert.equal(line.kind, "message");
  assert.equal(line.verified, true);
  assert.equal(line.problem, "");
  assert.equal(line.text, "hello alice");
  assert.equal(line.id, `${bob.fingerprint}:${frame.counter}`);

  const forged = await relayed(bob, "bob", "#general", "original", NOW + 2);
  const [bad] = await client.handle({ ...forged, body: "forged" }, NOW + 3);
  assert.deepEqual([bad.verified, bad.problem, bad.text], [false, "bad signature", "forged"]);

  const elsewhere = await relayed(bob, "bob", "#general", "x", NOW + 4, {
    network: `SHA256:${"O".repeat(43)}`,
  });
  assert.equal((await client.handle(elsewhere, NOW + 5))[0].problem, "signed for another network");

  const other = await relayed(bob, "bob", "#secret", "x", NOW + 6);
  assert.equal((await client.handle(other, NOW + 7))[0].problem, "signed for another room");

  const mallory = await ClientIdentity.generate();
  const stolen = await relayed(bob, "bob", "#general", "x", NOW + 8);
  const [wrongKey] = await client.handle(
    { ...stolen, key: Buffer.from(mallory.spki).toString("base64") },
    NOW + 9,
  );
  assert.equal(wrongKey.problem, "bad signature", "a key that is not the sender's");

  const future = await relayed(bob, "bob", "#general", "x", NOW + 601 + 10);
  assert.equal((await client.handle(future, NOW + 10))[0].problem, "dated in the future");
});

test("replays: the same line again in this page is not shown; a replay across reloads is ✗", async () => {
  const ledger = new SeenLedger();
  const { client } = await newClient("alice", ledger);
  const bob = await ClientIdentity.generate();
  await connect(client, NOW);
  const frame = await relayed(bob, "bob", "#general", "once", NOW);
  assert.equal((await client.handle(frame, NOW)).length, 1);
  assert.deepEqual(await client.handle(frame, NOW + 1), [], "a re-delivery adds nothing");
  const older = await relayed(bob, "bob", "#general", "older counter", NOW - 1);
  const [behind] = await client.handle(older, NOW + 1);
  assert.deepEqual(
    [behind.verified, behind.problem],
    [false, REPLAYED],
    "a counter not above the last shown",
  );

  const restored = SeenLedger.fromJSON(JSON.parse(JSON.stringify(ledger)), (NOW + 2) * 1000);
  const { client: reloaded } = await newClient("alice", restored);
  await connect(reloaded, NOW + 2);
  const [again] = await reloaded.handle(frame, NOW + 2);
  assert.deepEqual([again.verified, again.problem], [false, REPLAYED]);

  const carol = await ClientIdentity.generate();
  const old = await relayed(carol, "carol", "#general", "late", NOW - 3600);
  const [late] = await reloaded.handle(old, NOW + 3);
  assert.equal(late.verified, true);
  assert.equal(late.history, true, "signed an hour ago: history, never new");
  assert.match(late.note, /^signed 1 h ago; not new$/);
});

test("history on join: checked for its room, shown as history; after a reconnect only what was missed", async () => {
  const { client } = await newClient();
  const bob = await ClientIdentity.generate();
  await connect(client, NOW);
  const first = await relayed(bob, "bob", "#general", "one", NOW - 100);
  const second = await relayed(bob, "bob", "#general", "two", NOW - 50);
  const lines = await client.handle(
    { type: "history", room: "#general", messages: [first, second] },
    NOW,
  );
  assert.deepEqual(
    lines.map((l) => [l.kind, l.text, l.verified, l.history]),
    [
      ["notice", "Last 2 messages of #general:", null, false],
      ["message", "one", true, true],
      ["message", "two", true, true],
    ],
  );
  client.prepareReconnect();
  await connect(client, NOW + 10);
  const third = await relayed(bob, "bob", "#general", "three", NOW + 5);
  const replay = await client.handle(
    { type: "history", room: "#general", messages: [first, second, third] },
    NOW + 10,
  );
  assert.deepEqual(
    replay.map((l) => l.text),
    ["1 missed message of #general:", "three"],
  );
  const dropped = await client.handle({ type: "history", room: "#other", messages: [first] }, NOW);
  assert.match(dropped[0].text, /dropped 1 lines of history of #other, a room you are not in/);
});

test("own lines: pending, then delivered on sent, or not sent with the server's reason", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  const [pending] = await client.userInput("hello", NOW);
  assert.deepEqual([pending.delivery, pending.room, pending.text], [PENDING, "#general", "hello"]);
  const [say] = sentFrames(client);
  assert.equal(say.type, "say");
  assert.equal(say.target, "#general");
  assert.equal(say.sender, client.identity.fingerprint);
  const [delivered] = await client.handle(
    { type: "sent", target: "#general", counter: say.counter },
    NOW + 1,
  );
  assert.deepEqual([delivered.ref, delivered.delivery], [pending.ref, DELIVERED]);
  assert.deepEqual(
    await client.handle({ type: "sent", target: "#general", counter: say.counter }, NOW + 2),
    [],
  );

  const [refusedLine] = await client.userInput("/me waves", NOW + 3);
  assert.equal(refusedLine.kind, "action");
  const [action] = sentFrames(client);
  assert.equal(action.body, "/me waves");
  const text = "message rejected: you are muted";
  const [refused] = await client.handle({ type: "error", text, counter: action.counter }, NOW + 4);
  assert.deepEqual(
    [refused.ref, refused.delivery, refused.problem],
    [refusedLine.ref, REFUSED, text],
  );

  const [other] = await client.handle({ type: "error", text: "no such nick: zed" }, NOW + 5);
  assert.deepEqual([other.kind, other.text], ["error", "no such nick: zed"]);
});

test("flood control: the refused line goes again, unchanged, after the wait", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  await client.userInput("first", NOW);
  const [say] = sentFrames(client);
  const shown = await client.handle(
    {
      type: "error",
      text: "flood control: message not sent",
      counter: say.counter,
      retry_after: 2,
    },
    NOW,
  );
  assert.deepEqual(shown, [], "no outcome yet");
  assert.deepEqual(sentFrames(client), []);
  assert.ok(client.wakeAt !== null && client.wakeAt >= NOW + 2);
  await client.tick(NOW + 2.5);
  assert.deepEqual(sentFrames(client), [say], "the same frame, byte for byte");
});

test("without a device, private lines and encrypted rooms are refused at once, saying why", async () => {
  const { client } = await newClient();
  const bob = await ClientIdentity.generate();
  await connect(client, NOW, [{ nick: "bob", fingerprint: bob.fingerprint }]);
  const [line, said] = await client.userInput("/msg bob psst", NOW);
  assert.deepEqual(
    [line.room, line.delivery, line.problem],
    ["@bob", REFUSED, NO_DEVICE_FOR_PRIVATE],
  );
  assert.deepEqual(
    [said.kind, said.text],
    ["error", `not sent to bob: ${NO_DEVICE_FOR_PRIVATE}`],
    "said where it was typed",
  );
  const [typed] = await client.userInput("psst", NOW, "@bob");
  assert.deepEqual([typed.kind, typed.delivery], ["private", REFUSED]);
  assert.deepEqual(sentFrames(client), []);

  const sealed = {
    type: "message",
    from: "bob",
    key: "AAAA",
    network: client.network,
    target: "#general",
    sender: bob.fingerprint,
    counter: 1,
    ts: NOW * 1000,
    megolm: { session: "s", ct: "c" },
  };
  const [shown] = await client.handle(sealed, NOW);
  assert.deepEqual(
    [shown.text, shown.encrypted, shown.verified, shown.problem, shown.nick, shown.room],
    [NOT_DECRYPTED, true, false, NO_DEVICE, "bob", "#general"],
    "shown, not dropped, and claiming nothing but that it did not decrypt",
  );
  const [refused] = await client.userInput("hi", NOW);
  assert.deepEqual([refused.delivery, refused.problem], [REFUSED, noDeviceForRoom("#general")]);
});

test("malformed and unknown frames are error lines; the client goes on", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  const texts = async (/** @type {Uint8Array} */ data) =>
    (await client.receive(data, NOW)).map((l) => l.text);
  assert.deepEqual(await texts(utf8("{not json")), [
    "malformed frame from server: frame is not UTF-8 JSON",
  ]);
  assert.deepEqual(await texts(utf8('{"type":"gossip"}')), [
    "unknown frame type 'gossip' from server",
  ]);
  assert.deepEqual(await texts(utf8('{"type":"topic","room":"#general"}')), [
    "malformed 'topic' frame from server: 'topic' must be a string",
  ]);
  assert.deepEqual(await texts(utf8('{"type":"ping"}')), []);
  assert.deepEqual(sentFrames(client), [{ type: "pong" }]);
});

test("a members run is put together before the client acts on it", async () => {
  const { client } = await newClient();
  await client.handle(welcome(client), NOW);
  const me = { nick: "alice", fingerprint: client.identity.fingerprint, away: "" };
  const first = { ...joined("#big", [me]), member_count: 3, part: 0, more: true };
  assert.deepEqual(await client.handle(first, NOW), []);
  const rest = [
    { nick: "bob", fingerprint: `SHA256:${"b".repeat(43)}`, away: "" },
    { nick: "carol", fingerprint: `SHA256:${"c".repeat(43)}`, away: "" },
  ];
  const lines = await client.handle(
    { type: "members", room: "#big", members: rest, part: 1, more: false },
    NOW,
  );
  assert.equal(lines[0].text, "You are alice in #big with bob, carol");
  assert.equal(client.members.get("#big")?.size, 3);
});

test("an invitation made here is shown as a link pinned to the key of this connection", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  const secret = "abcdefghijklmnopqrstuvwxyz012345";
  const lines = await client.handle(
    {
      type: "invitation",
      id: "0123abcd",
      secret,
      valid_for: 7 * 86400,
      address: "chat.example:8443",
    },
    NOW,
  );
  assert.deepEqual(
    lines.map((l) => l.text),
    [
      `Invitation 0123abcd: one new key may join with it, once, within 7 days. In a browser: https://chat.example/#invite=${secret}&fp=${client.network}`,
      `With the terminal client: tlschat-invite:chat.example:8443#${client.network}#${secret}`,
    ],
  );
});
