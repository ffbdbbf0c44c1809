// docs/PROTOCOL.md section 24, "End to end", reproduced by the browser's end-to-end code: every
// value that follows from the example's inputs (the device ids, the signed device keys, the
// sealed lines, the private message's AES-GCM ciphertext, the Olm payloads, the frames around
// the ciphertexts), and the one vodozemac ciphertext a holder of the document's data can open:
// the Megolm line, decrypted with the room key the document shows. The Olm ciphertexts come from
// vodozemac session states (tests/data/test_only_e2e.json) that libolm cannot read, so they are
// checked for their shape only. The values are read from the document when the tests run.

import assert from "node:assert/strict";
import { test } from "node:test";

import { toBase64 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { signedBytes } from "../../tlschat/web/static/js/protocol/envelope.js";
import { encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import { PeerIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { b64decode, b64encode } from "../../tlschat/web/static/js/e2e/codec.js";
import { deviceIdOf, deviceKeysSignedBytes } from "../../tlschat/web/static/js/e2e/device.js";
import { DeviceDirectory } from "../../tlschat/web/static/js/e2e/directory.js";
import {
  deviceKeysFields,
  encryptedSayFrame,
  openSealedLine,
  parseEncryptedSay,
  parseOlmItem,
  sealLine,
} from "../../tlschat/web/static/js/e2e/frames.js";
import {
  encodePayload,
  parsePayload,
  parsePrivateKey,
  parseRoomKey,
  privateKeyFields,
  roomKeyFields,
} from "../../tlschat/web/static/js/e2e/payloads.js";
import { openPrivate, sealPrivate } from "../../tlschat/web/static/js/e2e/private.js";
import { nodeOlm } from "../support/olm_node.mjs";
import { countingEntropy, exampleClientIdentity, toHex } from "../support/worked_example.mjs";
import { readE2eExample } from "../support/worked_example_e2e.mjs";

const doc = readE2eExample();
const checked = new Set();
const value = (/** @type {string} */ name) => {
  checked.add(name);
  const found = doc.values.get(name);
  assert.ok(found !== undefined, `${name} is not in the End to end part`);
  return found.value;
};
const [hello, keys, claimed, privatePayload, privateSay, roomKeyPayload, toDevice, roomSay] =
  doc.json;
const [privateBody, roomBody] = doc.bodies;

/** The lines alice signed: the private one, then the room one, with the say frames' fields. */
async function aliceLines() {
  const alice = await exampleClientIdentity();
  const sign = async (/** @type {Record<string, any>} */ say, /** @type {string} */ body) => {
    const fields = {
      network: say.network,
      target: say.target,
      sender: alice.fingerprint,
      counter: say.counter,
      timestampMs: say.ts,
      body,
    };
    return { ...fields, signature: await alice.sign(signedBytes(fields)) };
  };
  return {
    alice,
    privateLine: await sign(privateSay, privateBody),
    roomLine: await sign(roomSay, roomBody),
  };
}

test("the document's JSON lines are what the End to end part says, in order", () => {
  assert.deepEqual(
    doc.json.map((frame) => frame.type),
    ["hello", "keys", "claimed", "private", "say", "room_key", "to_device", "say"],
  );
  assert.deepEqual(doc.bodies, ["hello, bob", "hello, encrypted room"]);
});

test("device ids: base32 of SHA-256 over the context and each Curve25519 key", async () => {
  assert.equal(await deviceIdOf(hello.device_keys.curve25519), doc.facts.get("alice's device"));
  assert.equal(hello.device_keys.device, doc.facts.get("alice's device"));
  const [bob] = keys.devices;
  assert.equal(await deviceIdOf(bob.curve25519), doc.facts.get("bob's device"));
  assert.equal(bob.device, doc.facts.get("bob's device"));
});

test("alice's device keys: the bytes her identity key signs, the signature, the hello", async () => {
  const { alice } = await aliceLines();
  const entry = hello.device_keys;
  assert.equal(entry.fingerprint, alice.fingerprint);
  const bytes = deviceKeysSignedBytes(
    entry.fingerprint,
    entry.device,
    entry.curve25519,
    entry.ed25519,
  );
  assert.equal(toHex(bytes), toHex(value("device_keys_bytes")));
  // Ed25519 signatures are deterministic: the browser's WebCrypto signs the same bytes alike.
  const signature = await alice.sign(bytes);
  assert.equal(toBase64(signature), entry.sig);
  const own = {
    user: entry.fingerprint,
    deviceId: entry.device,
    curve25519: entry.curve25519,
    ed25519: entry.ed25519,
    signature,
  };
  const frame = {
    type: "hello",
    nick: "alice",
    device_keys: { ...deviceKeysFields(own), key: toBase64(alice.spki) },
  };
  assert.equal(encodeFrame(frame).length, doc.jsonText[0].length);
  assert.equal(new TextDecoder().decode(encodeFrame(frame)), doc.jsonText[0]);
});

test("bob's directory entry and claimed one-time key verify in the browser", async () => {
  const olm = await nodeOlm();
  const alice = await exampleClientIdentity();
  const directory = new DeviceDirectory(olm, alice, hello.device_keys.device);
  assert.equal(keys.fingerprint, doc.facts.get("bob's key fingerprint"));
  const bobKey = await PeerIdentity.fromSpki(b64decode(keys.devices[0].key));
  assert.equal(bobKey.fingerprint, keys.fingerprint, "the entry's key is bob's");
  const answer = await directory.receiveKeys(keys);
  assert.deepEqual(
    [answer.rejected, answer.devices.map((d) => d.deviceId)],
    [0, [doc.facts.get("bob's device")]],
  );
  directory.claim(answer.devices);
  assert.deepEqual(
    directory.receiveClaimed(claimed),
    [],
    "vodozemac's signature verifies in libolm",
  );
  assert.ok(directory.hasClaimed(answer.devices[0]));

  const forged = structuredClone(keys);
  forged.devices[0].ed25519 = hello.device_keys.ed25519;
  const refused = await new DeviceDirectory(olm, alice, hello.device_keys.device).receiveKeys(
    forged,
  );
  assert.deepEqual(
    [refused.rejected, refused.devices],
    [1, []],
    "a key its user did not sign is dropped",
  );
});

test("the private message: sealed line, counted key and nonce, AES-256-GCM, Olm payload, say", async () => {
  const { privateLine } = await aliceLines();
  const sealed = sealLine(privateLine);
  assert.equal(toHex(sealed), toHex(value("sealed_line")));
  const entropy = countingEntropy(0x40);
  const key = entropy(32);
  const nonce = entropy(12);
  assert.equal(toHex(key), toHex(value("private_key")));
  assert.equal(toHex(nonce), toHex(value("private_nonce")));
  const ct = await sealPrivate(key, sealed, nonce);
  assert.equal(toHex(ct), toHex(value("private_ct")));
  assert.equal(toHex(await openPrivate(key, ct)), toHex(sealed));
  assert.deepEqual(openSealedLine(sealed), privateLine);

  const envelope = {
    sender: hello.device_keys.fingerprint,
    senderDevice: hello.device_keys.device,
    recipient: keys.fingerprint,
    recipientDevice: keys.devices[0].device,
  };
  const payload = encodePayload("private", envelope, privateKeyFields(key));
  assert.equal(payload, doc.jsonText[3]);
  assert.equal(toHex(parsePrivateKey(parsePayload(payload))), toHex(key));

  // The document writes `ct` unpadded (vodozemac's form); the clients send it padded, and
  // both read either.
  const outer = parseEncryptedSay(privateSay);
  assert.equal(outer.private?.ct, b64encode(ct));
  const [item] = /** @type {any} */ (outer.private).keys;
  assert.deepEqual(
    [item.fingerprint, item.device, item.type],
    [keys.fingerprint, keys.devices[0].device, 0],
  );
  const frame = encryptedSayFrame(privateLine, {
    private: { ct: b64encode(ct), keys: privateSay.olm_private.keys },
  });
  assert.equal(new TextDecoder().decode(encodeFrame(frame)), doc.jsonText[4]);
});

test("the room line: its room key's payload, the to_device frame, and vodozemac's Megolm line decrypted here", async () => {
  const olm = await nodeOlm();
  const { roomLine } = await aliceLines();
  const envelope = {
    sender: hello.device_keys.fingerprint,
    senderDevice: hello.device_keys.device,
    recipient: keys.fingerprint,
    recipientDevice: keys.devices[0].device,
  };
  const shared = parseRoomKey(parsePayload(doc.jsonText[5]));
  assert.deepEqual([shared.network, shared.room], [roomSay.network, roomSay.target]);
  const fields = roomKeyFields(shared.network, shared.room, shared.sessionId, shared.sessionKey);
  assert.equal(encodePayload("room_key", envelope, fields), doc.jsonText[5]);

  const [item] = toDevice.messages.map(parseOlmItem);
  assert.deepEqual(
    [item.fingerprint, item.device, item.type],
    [keys.fingerprint, keys.devices[0].device, 0],
  );

  const inbound = new olm.InboundGroupSession();
  inbound.create(shared.sessionKey);
  const outer = parseEncryptedSay(roomSay);
  assert.equal(inbound.session_id(), outer.megolm?.session);
  const { plaintext, messageIndex } = olm.groupDecrypt(
    inbound,
    /** @type {any} */ (outer.megolm).ct,
  );
  assert.equal(messageIndex, 0);
  assert.equal(
    toHex(plaintext),
    toHex(sealLine(roomLine)),
    "vodozemac's ciphertext of alice's sealed line",
  );
  assert.deepEqual(openSealedLine(plaintext), roomLine);
  const frame = encryptedSayFrame(roomLine, { megolm: roomSay.megolm });
  assert.equal(new TextDecoder().decode(encodeFrame(frame)), doc.jsonText[7]);
  inbound.free();
  assert.equal(b64encode(b64decode(shared.sessionKey)), shared.sessionKey);
});

test("every labelled value of the End to end part was checked", () => {
  assert.deepEqual([...checked].sort(), [...doc.values.keys()].sort());
});
