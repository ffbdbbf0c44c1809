// Member lists and history pages (docs/PROTOCOL.md section 22): joins and leaves one by one or in
// presence batches, a nick that comes with another key flagged, large rooms' lazy lists kept by
// watching the room shown, and older lines fetched a page at a time.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { startOfHistory } from "../../tlschat/web/static/js/app/chat_history.js";
import { NOW, connect, joined, newClient, relayed, sentFrames } from "../support/chat_fixture.mjs";

const fp = (/** @type {string} */ c) => `SHA256:${c.repeat(43)}`;
const change = (/** @type {string} */ type, /** @type {string} */ nick, key = fp(nick[0])) => ({
  type,
  nick,
  fingerprint: key,
  away: "",
});

test("joins and leaves keep the list; a nick with another key than before is flagged", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  const [joinLine] = await client.handle({ ...change("join", "bob"), room: "#general" }, NOW);
  assert.equal(joinLine.text, "bob joined #general");
  assert.deepEqual(
    await client.handle({ ...change("join", "bob"), room: "#general" }, NOW),
    [],
    "listed already",
  );
  const [leaveLine] = await client.handle(
    { ...change("leave", "bob"), room: "#general", reason: "quit" },
    NOW,
  );
  assert.equal(leaveLine.text, "bob left #general (quit)");
  assert.equal(client.members.get("#general")?.has("bob"), false);
  const [impostor] = await client.handle(
    { ...change("join", "Bob", fp("x")), room: "#general" },
    NOW,
  );
  assert.equal(impostor.keyChanged, true);
  assert.match(impostor.text, /\[WARNING: not the key Bob had before; now SHA256:x+\]/);
});

test("a presence batch: a few shown one by one, more as one summary, warnings still loud", async () => {
  const { client } = await newClient();
  await connect(client, NOW, [{ nick: "zed", fingerprint: fp("z") }]);
  const few = await client.handle(
    {
      type: "presence",
      room: "#general",
      changes: [change("join", "bob"), change("leave", "zed")],
    },
    NOW,
  );
  assert.deepEqual(
    few.map((l) => l.text),
    ["bob joined #general", "zed left #general"],
  );
  const many = ["c", "d", "e", "f"].map((n) => change("join", n));
  many.push(
    change("join", "bob", fp("q")),
    { type: "join" },
    change("join", "alice", client.identity.fingerprint),
  );
  const lines = await client.handle({ type: "presence", room: "#general", changes: many }, NOW);
  assert.deepEqual(
    lines.map((l) => [l.kind, l.text.replace(/SHA256:q+/, "Q")]),
    [
      ["presence", "5 joined #general"],
      ["join", "bob joined #general [WARNING: not the key bob had before; now Q]"],
      ["error", "ignored 1 malformed joins or leaves of #general"],
    ],
  );
  assert.equal(client.members.get("#general")?.size, 6, "alice, bob and c to f; zed left");
});

test("a large room: lazy joined, the members fetched by watching it, counts kept", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  await client.handle(joined("#big", [], { member_count: 5000, lazy: true }), NOW);
  assert.equal(client.memberCount("#big"), 5000);
  sentFrames(client);
  await client.watchOnly("#big", NOW);
  assert.deepEqual(sentFrames(client), [{ type: "command", name: "watch", args: "#big" }]);
  const listed = [{ nick: "bob", fingerprint: fp("b"), away: "" }];
  assert.deepEqual(
    await client.handle(
      { type: "members", room: "#big", member_count: 5001, members: listed },
      NOW,
    ),
    [],
  );
  assert.equal(client.memberCount("#big"), 5001);
  await client.handle({ ...change("join", "carol"), room: "#big" }, NOW);
  assert.equal(client.memberCount("#big"), 5002, "a watcher hears every arrival");
  await client.watchOnly("#general", NOW);
  assert.deepEqual(sentFrames(client), [{ type: "command", name: "unwatch", args: "#big" }]);
  assert.deepEqual(
    await client.handle(
      { type: "notice", text: "no longer watching who comes and goes in #big" },
      NOW,
    ),
    [],
  );
  await client.handle({ ...change("leave", "bob"), room: "#big" }, NOW);
  assert.equal(client.memberCount("#big"), 5001);
});

test("older lines: one page asked at a time, the answer above, the start of history said", async () => {
  const { client } = await newClient();
  const bob = await ClientIdentity.generate();
  await connect(client, NOW);
  const lines = [];
  for (let i = 0; i < 3; i++)
    lines.push(await relayed(bob, "bob", "#general", `l${i}`, NOW - 300 + i));
  await client.handle(
    { type: "history", room: "#general", messages: lines.slice(1), older: true },
    NOW,
  );
  sentFrames(client);
  assert.ok(client.hasOlder("#general"));
  await client.userInput("/more", NOW);
  const before = `${bob.fingerprint}:${lines[1].counter}`;
  assert.deepEqual(sentFrames(client), [
    { type: "command", name: "history", args: `#general ${before}` },
  ]);
  assert.equal(
    (await client.userInput("/more", NOW))[0].text,
    "Still loading earlier lines of #general…",
  );
  const unasked = await client.handle(
    { type: "history", room: "#general", messages: [], before: "x:1" },
    NOW,
  );
  assert.match(unasked[0].text, /did not ask for \(before x:1\)/);
  const page = await client.handle(
    { type: "history", room: "#general", messages: [lines[0]], before },
    NOW,
  );
  assert.deepEqual(
    page.map((l) => [l.kind, l.text, l.earlier]),
    [
      ["page", "1 earlier line of #general:", true],
      ["message", "l0", true],
      ["page", startOfHistory("#general"), true],
    ],
  );
  assert.equal(page[1].verified, true);
  assert.ok(!client.hasOlder("#general"));
  assert.match((await client.userInput("/more", NOW))[0].text, /that is the start of its history/);
});

test("parting a room forgets it and moves to another", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  await client.userInput("/join team", NOW);
  const me = [{ nick: "alice", fingerprint: client.identity.fingerprint }];
  await client.handle(joined("#team", me), NOW);
  assert.equal(client.room, "#team", "a /join typed moves the user there");
  await client.userInput("/part", NOW);
  assert.deepEqual(sentFrames(client).at(-1), { type: "command", name: "part", args: "#team" });
  const [left] = await client.handle({ type: "parted", room: "#team" }, NOW);
  assert.equal(left.text, "You left #team; now talking in #general");
  assert.deepEqual(client.rooms, ["#general"]);
});
