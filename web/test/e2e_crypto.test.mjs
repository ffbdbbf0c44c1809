// The browser's end-to-end layer between two browser devices (js/e2e/): device keys and
// one-time keys that verify (and forged ones that do not), Olm both ways with replays refused,
// the envelope checked, Megolm with its replay memory and rotation, states that survive being
// sealed and opened again, and SAS verification to the end, matching and not.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ClientIdentity, PeerIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { UnreadableState, seal, unseal } from "../../tlschat/web/static/js/e2e/codec.js";
import { ClientCrypto, STATES } from "../../tlschat/web/static/js/e2e/crypto.js";
import {
  PICKLE_KEY,
  verifyDeviceKeys,
  verifyOneTimeKey,
} from "../../tlschat/web/static/js/e2e/device.js";
import { parseOneTimeKey } from "../../tlschat/web/static/js/e2e/frames.js";
import { OlmReplay, OlmUndecryptable } from "../../tlschat/web/static/js/e2e/olm_sessions.js";
import { PayloadError, ROOM_KEY, roomKeyFields } from "../../tlschat/web/static/js/e2e/payloads.js";
import {
  MessageIndexReused,
  MissingRoomKey,
  RoomKeyMismatch,
} from "../../tlschat/web/static/js/e2e/room_keys.js";
import { Stage, Verifications } from "../../tlschat/web/static/js/e2e/verification.js";
import { nodeOlm } from "../support/olm_node.mjs";

const NETWORK = `SHA256:${"N".repeat(43)}`;
const NOW = 1_767_225_600;

/** A browser device with its identity, as the page makes it on first start. */
async function newDevice() {
  const olm = await nodeOlm();
  const identity = await ClientIdentity.generate();
  return ClientCrypto.open(olm, identity, {});
}

/**
 * `from` encrypts for `to` after claiming one of `to`'s one-time keys, as the directory would.
 * @param {ClientCrypto} from
 * @param {ClientCrypto} to
 */
function claimFrom(from, to) {
  const [key] = to.helloKeys();
  from.directory.claimed.set(`${to.fingerprint} ${to.deviceId}`, parseOneTimeKey(key));
}

test("a new device: signed device keys, signed one-time keys and a fallback key", async () => {
  const device = await newDevice();
  const owner = await PeerIdentity.fromSpki(device.identity.spki);
  assert.ok(await verifyDeviceKeys(device.ownKeys, owner));
  assert.equal(device.deviceId.length, 16);
  const other = await PeerIdentity.fromSpki((await ClientIdentity.generate()).spki);
  assert.equal(await verifyDeviceKeys(device.ownKeys, other), false, "another user's key");
  const forged = { ...device.ownKeys, curve25519: device.ownKeys.ed25519 };
  assert.equal(await verifyDeviceKeys(forged, owner), false, "keys the signature is not over");

  const keys = device.helloKeys().map(parseOneTimeKey);
  assert.equal(keys.length, 50);
  assert.deepEqual(keys.filter((k) => k.fallback).length, 1, "one fallback key, last");
  assert.ok(keys.at(-1)?.fallback);
  assert.ok(keys.every((key) => verifyOneTimeKey(device.olm, device.ownKeys, key)));
  assert.equal(verifyOneTimeKey(device.olm, device.ownKeys, { ...keys[0], keyId: "other" }), false);
  assert.deepEqual(device.helloKeys(), [], "published once");
  assert.deepEqual(
    Object.keys(device.takeDirty()).sort(),
    [...STATES].sort(),
    "all kept on first start",
  );

  const upload = device.uploadFrame(10, true);
  assert.equal(upload?.type, "keys_upload");
  assert.equal(/** @type {any[]} */ (upload?.one_time_keys).length, 50, "topped up below 25");
  assert.equal(device.uploadFrame(60, true), null);
});

test("Olm both ways: a pre-key message starts the session, replies are normal messages", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  claimFrom(alice, bob);
  const first = alice.encryptFor(bob.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#a", "s", "k"));
  assert.equal(first.type, 0);
  const opened = bob.decryptFrom(alice.ownKeys, first.type, first.body);
  assert.deepEqual(
    [opened.kind, opened.envelope.sender, opened.fields.room],
    [ROOM_KEY, alice.fingerprint, "#a"],
  );
  assert.throws(
    () => bob.decryptFrom(alice.ownKeys, first.type, first.body),
    OlmReplay,
    "a copy is a replay",
  );

  const reply = bob.encryptFor(alice.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#b", "s", "k"));
  assert.equal(reply.type, 1, "bob answers on the session alice started");
  assert.equal(alice.decryptFrom(bob.ownKeys, reply.type, reply.body).fields.room, "#b");
  const again = alice.encryptFor(bob.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#c", "s", "k"));
  assert.equal(bob.decryptFrom(alice.ownKeys, again.type, again.body).fields.room, "#c");

  const carol = await newDevice();
  assert.throws(
    () => carol.decryptFrom(alice.ownKeys, again.type, again.body),
    OlmUndecryptable,
    "for another device",
  );
  const tampered = {
    ...again,
    body: again.body.slice(0, -3) + (again.body.endsWith("AAA") ? "BBB" : "AAA"),
  };
  assert.throws(
    () => bob.decryptFrom(alice.ownKeys, tampered.type, tampered.body),
    OlmUndecryptable,
  );
});

test("an Olm payload naming another sender or recipient than Olm proved is refused", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  const mallory = await newDevice();
  claimFrom(alice, bob);
  const item = alice.encryptFor(bob.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#a", "s", "k"));
  // Bob is told the message is mallory's: the envelope says alice's.
  const claimedSender = { ...mallory.ownKeys, curve25519: alice.ownKeys.curve25519 };
  assert.throws(() => bob.decryptFrom(claimedSender, item.type, item.body), PayloadError);
});

test("Megolm: a room key over Olm, lines decrypted once, a replay and a forgery told apart", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  const { sender, newKey } = alice.rooms.sender(NETWORK, "#r", NOW);
  assert.ok(newKey !== null);
  const key = sender.roomKey();
  const owner = { fingerprint: alice.fingerprint, curve25519: alice.ownKeys.curve25519 };
  const shared = {
    network: NETWORK,
    room: "#r",
    sessionId: key.sessionId,
    sessionKey: key.sessionKey,
  };
  assert.equal(bob.rooms.importShared(bob.roomKeys, owner, shared), true);
  assert.equal(bob.rooms.importShared(bob.roomKeys, owner, shared), false, "nothing new");

  const before = sender.session.pickle(PICKLE_KEY);
  const plaintext = new Uint8Array([0, 1, 2, 0, 255, 128]);
  const line = sender.encrypt(plaintext, NOW);
  const megolm = { session: line.sessionId, ct: line.ciphertext };
  const plain = bob.rooms.decrypt(bob.roomKeys, NETWORK, "#r", alice.fingerprint, megolm);
  assert.deepEqual(
    [[...plain.plaintext], plain.messageIndex, plain.duplicate],
    [[...plaintext], 0, false],
  );
  assert.equal(
    bob.rooms.decrypt(bob.roomKeys, NETWORK, "#r", alice.fingerprint, megolm).duplicate,
    true,
  );
  assert.throws(
    () => bob.rooms.decrypt(bob.roomKeys, NETWORK, "#other", alice.fingerprint, megolm),
    RoomKeyMismatch,
  );
  assert.throws(
    () => bob.rooms.decrypt(bob.roomKeys, NETWORK, "#r", bob.fingerprint, megolm),
    RoomKeyMismatch,
  );

  // Alice's session rolled back (an old state restored): another ciphertext at index 0.
  const rolledBack = new alice.olm.OutboundGroupSession();
  rolledBack.unpickle(PICKLE_KEY, before);
  const forged = {
    session: line.sessionId,
    ct: alice.olm.groupEncrypt(rolledBack, new Uint8Array([9])),
  };
  assert.throws(
    () => bob.rooms.decrypt(bob.roomKeys, NETWORK, "#r", alice.fingerprint, forged),
    MessageIndexReused,
  );

  const carol = await newDevice();
  assert.throws(
    () => carol.rooms.decrypt(carol.roomKeys, NETWORK, "#r", alice.fingerprint, megolm),
    MissingRoomKey,
  );
});

test("Megolm rotation: after a member left, after 100 lines, after 7 days", async () => {
  const alice = await newDevice();
  const first = alice.rooms.sender(NETWORK, "#r", NOW);
  alice.rooms.markShared(NETWORK, "#r", ["SHA256:bob dev"]);
  assert.equal(alice.rooms.sender(NETWORK, "#r", NOW).newKey, null, "kept while nothing changed");
  assert.equal(alice.rooms.memberLeft(NETWORK, "#r", "SHA256:carol"), false, "carol never had it");
  assert.equal(alice.rooms.memberLeft(NETWORK, "#r", "SHA256:bob"), true);
  const second = alice.rooms.sender(NETWORK, "#r", NOW);
  assert.ok(second.newKey !== null && second.newKey.sessionId !== first.newKey?.sessionId);
  assert.deepEqual(
    alice.rooms.unshared(NETWORK, "#r", ["SHA256:bob dev"]),
    ["SHA256:bob dev"],
    "shared anew",
  );

  for (let i = 0; i < 100; i++) second.sender.encrypt(new Uint8Array([i]), NOW);
  assert.throws(() => second.sender.encrypt(new Uint8Array([1]), NOW), /rotate/);
  const third = alice.rooms.sender(NETWORK, "#r", NOW);
  assert.ok(third.newKey !== null);
  assert.ok(alice.rooms.sender(NETWORK, "#r", NOW + 7 * 24 * 3600).newKey !== null, "a week on");

  alice.rooms.markShared(NETWORK, "#r", ["SHA256:dave DEV1"]);
  alice.rooms.checkMembers(NETWORK, "#r", new Map([["SHA256:dave", new Set(["DEV2"])]]));
  assert.ok(
    alice.rooms.sender(NETWORK, "#r", NOW + 8 * 24 * 3600).newKey !== null,
    "a device removed",
  );
});

test("the device's state sealed, stored and opened again goes on where it was", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  claimFrom(alice, bob);
  const first = alice.encryptFor(bob.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#a", "s", "k"));
  bob.decryptFrom(alice.ownKeys, first.type, first.body);
  const { sender } = alice.rooms.sender(NETWORK, "#r", NOW);
  const key = sender.roomKey();
  const shared = {
    network: NETWORK,
    room: "#r",
    sessionId: key.sessionId,
    sessionKey: key.sessionKey,
  };
  bob.rooms.importShared(
    bob.roomKeys,
    { fingerprint: alice.fingerprint, curve25519: alice.ownKeys.curve25519 },
    shared,
  );
  bob.verified.add(alice.fingerprint, "alice", NOW);
  bob.mark(...STATES);

  const vaultKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const sealed = Object.fromEntries(
    await Promise.all(
      Object.entries(bob.takeDirty()).map(async ([name, state]) => [
        name,
        await seal(vaultKey, name, state),
      ]),
    ),
  );
  await assert.rejects(
    unseal(vaultKey, "rooms", sealed.device),
    UnreadableState,
    "a state opens as its own kind only",
  );
  const opened = Object.fromEntries(
    await Promise.all(
      Object.entries(sealed).map(async ([name, text]) => [
        name,
        await unseal(vaultKey, name, text),
      ]),
    ),
  );
  const restored = await ClientCrypto.open(bob.olm, bob.identity, opened);
  assert.equal(restored.deviceId, bob.deviceId);
  assert.ok(restored.verified.isVerified(alice.fingerprint));
  const next = alice.encryptFor(bob.ownKeys, ROOM_KEY, roomKeyFields(NETWORK, "#b", "s", "k"));
  assert.equal(restored.decryptFrom(alice.ownKeys, next.type, next.body).fields.room, "#b");
  assert.throws(
    () => restored.decryptFrom(alice.ownKeys, first.type, first.body),
    OlmReplay,
    "remembered",
  );
  const line = sender.encrypt(new Uint8Array([7]), NOW);
  const plain = restored.rooms.decrypt(restored.roomKeys, NETWORK, "#r", alice.fingerprint, {
    session: line.sessionId,
    ct: line.ciphertext,
  });
  assert.deepEqual([...plain.plaintext], [7]);
});

/**
 * Run a SAS flow between two devices, carrying each payload to its device, until it settles.
 * @param {ClientCrypto} alice
 * @param {ClientCrypto} bob
 * @param {(side: "alice" | "bob", payload: any) => any} [tamper]
 */
async function verify(alice, bob, tamper = (_side, payload) => payload) {
  const sides = {
    alice: new Verifications(alice.olm, alice.ownKeys),
    bob: new Verifications(bob.olm, bob.ownKeys),
  };
  const keysOf = { alice: alice.ownKeys, bob: bob.ownKeys };
  /** @type {string[]} */
  const notices = [];
  /** @type {Record<string, string | null>} */
  const verified = { alice: null, bob: null };
  /** @param {"alice" | "bob"} from @param {import("../../tlschat/web/static/js/e2e/verification.js").VerificationStep} step */
  const carry = async (from, step) => {
    notices.push(...step.notices);
    if (step.verified !== null) verified[from] = step.verified;
    const to = from === "alice" ? "bob" : "alice";
    for (const [, payload] of step.send)
      await carry(to, await sides[to].receive(keysOf[from], from, tamper(to, payload), NOW));
  };
  await carry("alice", sides.alice.start("bob", [bob.ownKeys], NOW));
  assert.equal(sides.bob.flow?.stage, Stage.INCOMING);
  await carry("bob", await sides.bob.answer(true, NOW));
  return { sides, notices, verified, carry };
}

test("SAS: both sides see the same emoji and numbers; yes on both sides verifies both ways", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  const { sides, notices, verified, carry } = await verify(alice, bob);
  assert.equal(sides.alice.flow?.stage, Stage.COMPARING);
  assert.equal(sides.bob.flow?.stage, Stage.COMPARING);
  const shown = notices.filter((text) => text.startsWith("  "));
  assert.equal(shown.length, 4, "emoji and numbers, on each side");
  assert.equal(shown[0], shown[2], "the same emoji");
  assert.equal(shown[1], shown[3], "the same numbers");
  assert.match(shown[1], /^ {2}or the numbers \d{4} \d{4} \d{4}$/);
  await carry("alice", await sides.alice.answer(true, NOW));
  await carry("bob", await sides.bob.answer(true, NOW));
  assert.deepEqual(verified, { alice: bob.fingerprint, bob: alice.fingerprint });
  assert.equal(sides.alice.flow, null);
});

test("SAS: a MAC over other keys than the ones shown cancels, and nothing is verified", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  const forge = (/** @type {string} */ side, /** @type {any} */ payload) =>
    side === "alice" && payload.type === "verify_mac"
      ? { ...payload, device: payload.keys }
      : payload;
  const { sides, notices, verified, carry } = await verify(alice, bob, forge);
  await carry("bob", await sides.bob.answer(true, NOW));
  await carry("alice", await sides.alice.answer(true, NOW));
  assert.deepEqual(verified, { alice: null, bob: null });
  assert.ok(notices.some((text) => text.startsWith("WARNING: someone may be between you and bob")));
  assert.equal(sides.alice.flow, null);
  assert.equal(sides.bob.flow, null, "the cancel reached the other side");
});

test("SAS: a key that is not the one committed to cancels", async () => {
  const alice = await newDevice();
  const bob = await newDevice();
  const other = new alice.olm.SAS();
  const swap = (/** @type {string} */ side, /** @type {any} */ payload) =>
    side === "alice" && payload.type === "verify_key"
      ? { ...payload, key: other.get_pubkey() }
      : payload;
  const { sides, notices, verified } = await verify(alice, bob, swap);
  assert.deepEqual(verified, { alice: null, bob: null });
  assert.ok(notices.some((text) => text.includes("their key is not the one they committed to")));
  assert.equal(sides.alice.flow, null);
  other.free();
});
