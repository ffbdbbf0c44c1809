// Delivery, exactly once (docs/PROTOCOL.md section 21): lines wait in the order typed until the
// session is welcomed and has rejoined its rooms, go out paced by the server's flood control, and
// after a lost connection the ones in flight go again first and byte for byte, the ones typed
// meanwhile after them; a line whose answer is 20 s late goes again on the same connection.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ACK_TIMEOUT,
  DeliveryQueue,
  TokenBucket,
  outgoing,
} from "../../tlschat/web/static/js/app/delivery.js";
import { DELIVERED, PENDING, REFUSED } from "../../tlschat/web/static/js/app/lines.js";
import { NOW, connect, joined, newClient, sentFrames, welcome } from "../support/chat_fixture.mjs";

test("a paste goes out within the server's burst, the rest paced, in the order typed", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  for (let i = 0; i < 12; i++) await client.userInput(`line ${i}`, NOW);
  const first = sentFrames(client);
  assert.deepEqual(
    first.map((f) => f.body),
    [...Array(9).keys()].map((i) => `line ${i}`),
    "burst 10 less one",
  );
  assert.ok(client.wakeAt !== null && client.wakeAt > NOW, "woken when the next token is there");
  await client.tick(/** @type {number} */ (client.wakeAt));
  assert.deepEqual(
    sentFrames(client).map((f) => f.body),
    ["line 9"],
  );
  const counters = first.map((f) => f.counter);
  assert.deepEqual(
    [...counters].sort((a, b) => a - b),
    counters,
    "counters grow in the order typed",
  );
});

test("lines typed before the welcome wait for it and for the rejoin of every room", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  await client.handle(
    joined("#team", [{ nick: "alice", fingerprint: client.identity.fingerprint }]),
    NOW,
  );
  client.room = "#team";
  client.prepareReconnect();
  const [waiting] = await client.userInput("typed while away", NOW + 1);
  assert.deepEqual([waiting.delivery, waiting.room], [PENDING, "#team"]);
  assert.deepEqual(sentFrames(client), []);
  await client.handle(welcome(client), NOW + 2);
  assert.deepEqual(
    sentFrames(client),
    [{ type: "command", name: "join", args: "#team" }],
    "rejoin first",
  );
  const me = [{ nick: "alice", fingerprint: client.identity.fingerprint }];
  await client.handle(joined("#general", me), NOW + 2);
  assert.deepEqual(sentFrames(client), [], "#team is not back yet");
  await client.handle(joined("#team", me), NOW + 2);
  const [say] = sentFrames(client);
  assert.deepEqual([say.body, say.target], ["typed while away", "#team"]);
  assert.equal(client.room, "#team", "the rejoin keeps the room the user talked in");
});

test("after a lost connection the lines in flight go again first, byte for byte", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  const [a] = await client.userInput("in flight", NOW);
  const [inFlight] = sentFrames(client);
  client.prepareReconnect();
  const [b] = await client.userInput("typed meanwhile", NOW + 1);
  await connect(client, NOW + 5);
  const frames = sentFrames(client);
  assert.deepEqual(frames[0], inFlight, "the same frame: same counter, time and signature");
  assert.equal(frames[1].body, "typed meanwhile");
  const [delivered] = await client.handle(
    { type: "sent", target: "#general", counter: inFlight.counter },
    NOW + 6,
  );
  assert.deepEqual(
    [delivered.ref, delivered.delivery],
    [a.ref, DELIVERED],
    "a copy is acknowledged like the first",
  );
  const replayed = "message rejected: replayed or out-of-order counter";
  const [refused] = await client.handle(
    { type: "error", text: replayed, counter: frames[1].counter },
    NOW + 7,
  );
  assert.deepEqual(
    [refused.ref, refused.delivery],
    [b.ref, REFUSED],
    "only sent counts as delivered",
  );
});

test("a line whose answer is late goes again on the same connection", async () => {
  const { client } = await newClient();
  await connect(client, NOW);
  await client.userInput("hello?", NOW);
  const [say] = sentFrames(client);
  assert.equal(client.wakeAt, NOW + ACK_TIMEOUT);
  await client.tick(NOW + ACK_TIMEOUT - 1);
  assert.deepEqual(sentFrames(client), []);
  await client.tick(NOW + ACK_TIMEOUT);
  assert.deepEqual(sentFrames(client), [say]);
});

test("the queue is bounded: past 200 waiting lines a new one is refused at once", async () => {
  const { client } = await newClient();
  for (let i = 0; i < 200; i++) await client.userInput(`w${i}`, NOW);
  const [refused] = await client.userInput("one too many", NOW);
  assert.deepEqual(
    [refused.delivery, refused.problem],
    [REFUSED, "too many lines waiting to be sent"],
  );
  const [long] = await client.userInput("é".repeat(2049), NOW);
  assert.deepEqual([long.delivery, long.problem], [REFUSED, "longer than 4096 bytes (4098)"]);
});

test("commands are paced by the work budget, each at its cost", async () => {
  const queue = new DeliveryQueue();
  queue.setWorkPace(30, 20);
  assert.equal(queue.maySendCommand("join", NOW), 0);
  assert.ok(queue.maySendCommand("join", NOW) > 0, "18 units: the second join (10) waits");
  assert.equal(queue.maySendCommand("topic", NOW), 0, "a cheaper command still fits");
});

test("a token bucket refills at its rate, and a clock stepping back takes nothing", () => {
  const bucket = new TokenBucket(2, 2);
  assert.equal(bucket.take(100), 0);
  assert.equal(bucket.take(100), 0);
  assert.equal(bucket.take(100), 0.5);
  assert.equal(bucket.take(99), 0.5, "no refill from the past");
  assert.equal(bucket.take(100.5), 0);
});

test("requeued lines go back in the order typed", () => {
  const queue = new DeliveryQueue();
  const items = [1, 2, 3].map((ref) =>
    outgoing(ref, `t${ref}`, { frame: { type: "say", counter: ref * 10 } }),
  );
  for (const item of items) queue.add(item);
  for (const item of items) queue.sent(item, NOW);
  queue.add(outgoing(4, "t4"));
  queue.connectionLost();
  assert.deepEqual(
    queue.waiting.map((i) => i.ref),
    [1, 2, 3, 4],
  );
  assert.ok(queue.waiting.slice(0, 3).every((i) => i.resent));
  assert.equal(queue.settle(20)?.ref, 2, "a late answer settles the copy waiting to go");
});
