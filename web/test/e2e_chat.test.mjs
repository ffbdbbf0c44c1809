// The web chat logic with its device, frame by frame, between two browser clients and a server
// played by the test: what an encrypted line waits for (keys_query, keys_claim), the frames it
// goes out as (to_device before the say, olm_private with a key per device), what the other side
// shows (🔒 ✓; a room line waiting for its key, replaced under the same ref once it comes), the
// inbox acknowledged once handled and a copy of it dropped, and a 'stale' refusal encrypting the
// line anew.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ChatClient } from "../../tlschat/web/static/js/app/chat_client.js";
import { DELIVERED, WAITING_FOR_KEY } from "../../tlschat/web/static/js/app/lines.js";
import { SeenLedger } from "../../tlschat/web/static/js/app/seen.js";
import { ClientCrypto } from "../../tlschat/web/static/js/e2e/crypto.js";
import { toBase64 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { decodeFrame, encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { NETWORK, NOW, joined, welcome } from "../support/chat_fixture.mjs";
import { nodeOlm } from "../support/olm_node.mjs";

/** @typedef {import("../../tlschat/web/static/js/protocol/frames.js").Frame} Frame */

/** A welcomed client with a device, and what its hello told the server. */
async function newUser(/** @type {string} */ nick) {
  const identity = await ClientIdentity.generate();
  const crypto = await ClientCrypto.open(await nodeOlm(), identity, {});
  const client = new ChatClient(identity, nick, "https://chat.example", crypto);
  client.useNetwork(NETWORK, new SeenLedger());
  const hello = client.helloFrame();
  await client.handle(welcome(client), NOW);
  return {
    client,
    identity,
    crypto,
    hello,
    oneTimeKeys: [.../** @type {Frame[]} */ (hello.one_time_keys)],
  };
}

/** @param {ChatClient} client @returns {Frame[]} its outbox, as the server would read it */
const sent = (client) => client.takeOutbox().map((frame) => decodeFrame(encodeFrame(frame)));

/** @param {Awaited<ReturnType<typeof newUser>>} user @returns {Frame} the server's `keys` answer */
const keysOf = (user) => ({
  type: "keys",
  fingerprint: user.identity.fingerprint,
  devices: [user.hello.device_keys],
});

/** @param {Awaited<ReturnType<typeof newUser>>} user @returns {Frame} `keys` for one without devices */
const noDevices = (user) => ({ type: "keys", fingerprint: user.identity.fingerprint, devices: [] });

/**
 * The server's `claimed` answer: one of `user`'s one-time keys.
 * @param {Awaited<ReturnType<typeof newUser>>} user
 */
const claimedOf = (user) => ({
  type: "claimed",
  keys: [
    {
      fingerprint: user.identity.fingerprint,
      device: user.crypto.deviceId,
      one_time_key: user.oneTimeKeys.shift(),
    },
  ],
});

/** @param {Frame} say @param {string} nick @param {ClientIdentity} identity @returns {Frame} */
const relayedSay = (say, nick, identity) => {
  const { type, ...fields } = say;
  return { type: "message", ...fields, from: nick, key: toBase64(identity.spki) };
};

/**
 * The inbox items of `user`'s device in `frames` (to_device, and olm_private keys), as the
 * server pages them.
 * @param {Awaited<ReturnType<typeof newUser>>} user
 * @param {Awaited<ReturnType<typeof newUser>>} from
 * @param {{olm: Frame, message?: Frame}[]} items
 * @param {number} firstId
 */
function inbox(user, from, items, firstId) {
  return {
    type: "device_messages",
    messages: items.map((item, i) => ({
      id: firstId + i,
      ts: NOW * 1000,
      from: from.identity.fingerprint,
      from_device: from.crypto.deviceId,
      ...item,
    })),
    more: false,
  };
}

test("a private line: keys asked, a one-time key claimed, olm_private for each device, read on the other side", async () => {
  const alice = await newUser("alice");
  const bob = await newUser("bob");
  const members = [
    { nick: "alice", fingerprint: alice.identity.fingerprint },
    { nick: "bob", fingerprint: bob.identity.fingerprint },
  ];
  await alice.client.handle(joined("#general", members), NOW);
  await bob.client.handle(joined("#general", members), NOW);
  sent(alice.client);

  const [pending] = await alice.client.userInput("/msg bob the secret plan", NOW);
  assert.deepEqual(
    [pending.kind, pending.encrypted, pending.delivery],
    ["private", true, "pending"],
  );
  const [query] = sent(alice.client);
  assert.deepEqual(query, {
    type: "keys_query",
    fingerprints: [bob.identity.fingerprint, alice.identity.fingerprint],
  });
  await alice.client.handle(keysOf(bob), NOW);
  assert.deepEqual(sent(alice.client), [], "waits for its own list too");
  await alice.client.handle(noDevices(alice), NOW);
  const [claim] = sent(alice.client);
  assert.deepEqual(claim, {
    type: "keys_claim",
    devices: [{ fingerprint: bob.identity.fingerprint, device: bob.crypto.deviceId }],
  });
  await alice.client.handle(claimedOf(bob), NOW);
  const [say] = sent(alice.client);
  assert.equal(say.type, "say");
  assert.ok(!("body" in say) && !("sig" in say), "no text the server can read");
  const keys = /** @type {any} */ (say.olm_private).keys;
  assert.deepEqual(
    keys.map((/** @type {any} */ k) => [k.fingerprint, k.device, k.type]),
    [[bob.identity.fingerprint, bob.crypto.deviceId, 0]],
  );
  const [delivered] = await alice.client.handle(
    { type: "sent", target: say.target, counter: say.counter },
    NOW,
  );
  assert.deepEqual([delivered.delivery, delivered.encrypted], [DELIVERED, true]);

  // The server keeps one inbox item per device: the Olm part and the message without keys.
  const message = relayedSay(say, "alice", alice.identity);
  /** @type {any} */ (message).olm_private = { ct: /** @type {any} */ (say.olm_private).ct };
  const page = inbox(bob, alice, [{ olm: { type: keys[0].type, body: keys[0].body }, message }], 7);
  const lines = await bob.client.handle(page, NOW + 1);
  assert.deepEqual(
    sent(bob.client),
    [{ type: "keys_query", fingerprints: [alice.identity.fingerprint] }],
    "the sender's devices are asked for first",
  );
  assert.deepEqual(lines, []);
  const shown = await bob.client.handle(keysOf(alice), NOW + 1);
  const line = shown.find((l) => l.kind === "private");
  assert.ok(line, JSON.stringify(shown));
  assert.deepEqual(
    [line.text, line.nick, line.verified, line.encrypted, line.problem],
    ["the secret plan", "alice", true, true, ""],
  );
  assert.deepEqual(sent(bob.client), [{ type: "device_ack", upto: 7 }]);

  // The same page again (its acknowledgement lost with a connection): nothing new, acked again.
  const again = await bob.client.handle(page, NOW + 2);
  assert.deepEqual(again, []);
  assert.deepEqual(sent(bob.client), [{ type: "device_ack", upto: 7 }]);
});

test("a room line: its key shared before it, a line waiting for its key replaced once it comes", async () => {
  const alice = await newUser("alice");
  const bob = await newUser("bob");
  const members = [
    { nick: "alice", fingerprint: alice.identity.fingerprint },
    { nick: "bob", fingerprint: bob.identity.fingerprint },
  ];
  await alice.client.handle(joined("#vault", members, { encrypted: true }), NOW);
  await bob.client.handle(joined("#vault", members, { encrypted: true }), NOW);
  sent(alice.client);
  sent(bob.client);

  const [pending] = await alice.client.userInput("meet at noon", NOW, "#vault");
  assert.deepEqual([pending.room, pending.encrypted], ["#vault", true]);
  sent(alice.client);
  await alice.client.handle(keysOf(bob), NOW);
  await alice.client.handle(noDevices(alice), NOW);
  sent(alice.client);
  await alice.client.handle(claimedOf(bob), NOW);
  const [toDevice, say] = sent(alice.client);
  assert.equal(toDevice.type, "to_device", "the room key goes first");
  assert.equal(say.type, "say");
  assert.ok("megolm" in say && !("body" in say));

  // The line comes before its key: shown waiting, with a ref.
  const [waiting] = await bob.client.handle(relayedSay(say, "alice", alice.identity), NOW + 1);
  assert.deepEqual(
    [waiting.text, waiting.encrypted, waiting.verified],
    [WAITING_FOR_KEY, true, null],
  );
  assert.ok(waiting.ref > 0);
  const [item] = /** @type {any[]} */ (toDevice.messages);
  await bob.client.handle(
    inbox(bob, alice, [{ olm: { type: item.type, body: item.body } }], 3),
    NOW + 1,
  );
  assert.deepEqual(sent(bob.client), [
    { type: "keys_query", fingerprints: [alice.identity.fingerprint] },
  ]);
  const shown = await bob.client.handle(keysOf(alice), NOW + 1);
  const line = shown.find((l) => l.ref === waiting.ref);
  assert.ok(line, JSON.stringify(shown));
  assert.deepEqual(
    [line.text, line.nick, line.room, line.verified, line.encrypted],
    ["meet at noon", "alice", "#vault", true, true],
  );
  assert.deepEqual(sent(bob.client), [{ type: "device_ack", upto: 3 }]);

  // The next line needs no key any more: decrypted at once; a copy of it is not shown twice.
  await alice.client.handle({ type: "sent", target: "#vault", counter: say.counter }, NOW);
  await alice.client.userInput("bring the map", NOW + 2, "#vault");
  const [next] = sent(alice.client);
  assert.equal(next.type, "say", "no key to share: it goes alone");
  const [direct] = await bob.client.handle(relayedSay(next, "alice", alice.identity), NOW + 2);
  assert.deepEqual([direct.text, direct.verified, direct.encrypted], ["bring the map", true, true]);
  assert.deepEqual(await bob.client.handle(relayedSay(next, "alice", alice.identity), NOW + 2), []);

  // Bob's own line there goes encrypted too: never a plain `say`.
  const [own] = await bob.client.userInput("on my way", NOW + 3, "#vault");
  assert.equal(own.encrypted, true);
  const frames = sent(bob.client);
  assert.ok(frames.length > 0 && frames.every((f) => f.type !== "say"), JSON.stringify(frames));
});

test("refused as 'stale': the devices are asked again and the line is encrypted and signed anew", async () => {
  const alice = await newUser("alice");
  const bob = await newUser("bob");
  const members = [
    { nick: "alice", fingerprint: alice.identity.fingerprint },
    { nick: "bob", fingerprint: bob.identity.fingerprint },
  ];
  await alice.client.handle(joined("#general", members), NOW);
  sent(alice.client);
  await alice.client.userInput("/msg bob hello", NOW);
  sent(alice.client);
  await alice.client.handle(keysOf(bob), NOW);
  await alice.client.handle(noDevices(alice), NOW);
  sent(alice.client);
  await alice.client.handle(claimedOf(bob), NOW);
  const [first] = sent(alice.client);
  const refusal = {
    type: "error",
    text: "message not sent: the devices of bob changed",
    counter: first.counter,
    stale: [bob.identity.fingerprint],
  };
  const lines = await alice.client.handle(refusal, NOW + 1);
  assert.ok(!lines.some((l) => l.delivery === "refused"), "not refused: encrypted again");
  assert.deepEqual(sent(alice.client), [
    { type: "keys_query", fingerprints: [bob.identity.fingerprint] },
  ]);
  await alice.client.handle(keysOf(bob), NOW + 1);
  const [second] = sent(alice.client);
  assert.equal(second.type, "say");
  assert.ok(Number(second.counter) > Number(first.counter), "signed anew, with a new counter");
  assert.equal(
    /** @type {any} */ (second.olm_private).keys[0].type,
    0,
    "the same Olm session, not yet answered",
  );
});
