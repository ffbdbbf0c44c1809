// The browser's end-to-end layer (libolm, js/e2e/) against the terminal client's (vodozemac,
// tlschat.chat.client.crypto), both ways, through web/support/e2e_python.py: each checks the
// other's signed device keys and one-time keys, Olm payloads go both ways (the first a pre-key
// message from each side), a private message's AES-GCM text opens on the other side, Megolm
// lines of each are decrypted by the other, and a SAS verification runs to ✓✓ on both sides.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { toBase64 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { b64decode } from "../../tlschat/web/static/js/e2e/codec.js";
import { ClientCrypto } from "../../tlschat/web/static/js/e2e/crypto.js";
import {
  PRIVATE,
  ROOM_KEY,
  privateKeyFields,
  roomKeyFields,
} from "../../tlschat/web/static/js/e2e/payloads.js";
import {
  newPrivateKey,
  openPrivate,
  sealPrivate,
} from "../../tlschat/web/static/js/e2e/private.js";
import { Verifications } from "../../tlschat/web/static/js/e2e/verification.js";
import { nodeOlm } from "../support/olm_node.mjs";
import { toHex } from "../support/worked_example.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NETWORK = `SHA256:${"N".repeat(43)}`;
const NOW = 1_767_225_600;
const ANSWER_TIMEOUT_MS = 30_000;

/** The Python side: one JSON command out, one JSON answer back, in order. */
class Python {
  constructor() {
    this.process = spawn(`${ROOT}.venv/bin/python`, ["web/support/e2e_python.py"], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.stderr = "";
    this.process.stderr.on("data", (chunk) => (this.stderr += chunk));
    /** @type {((line: string) => void)[]} */
    this.waiting = [];
    createInterface({ input: this.process.stdout }).on("line", (line) =>
      this.waiting.shift()?.(line),
    );
  }

  /** @param {Record<string, unknown>} command @returns {Promise<any>} */
  ask(command) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no answer to ${command.op}: ${this.stderr}`)),
        ANSWER_TIMEOUT_MS,
      );
      this.waiting.push((line) => {
        clearTimeout(timer);
        const answer = JSON.parse(line);
        if ("error" in answer) reject(new Error(`Python refused ${command.op}: ${answer.error}`));
        else resolve(answer.ok);
      });
      this.process.stdin.write(`${JSON.stringify(command)}\n`);
    });
  }

  stop() {
    this.process.stdin.end();
  }
}

/** @type {Python} */
let python;
/** @type {ClientCrypto} */
let browser;
/** @type {any} the Python device's `start` answer */
let terminal;

before(async () => {
  python = new Python();
  browser = await ClientCrypto.open(await nodeOlm(), await ClientIdentity.generate(), {});
  terminal = await python.ask({ op: "start" });
  // Each learns the other's device from a `keys` frame, as the server would answer it.
  const learnt = await browser.directory.receiveKeys({
    type: "keys",
    fingerprint: terminal.fingerprint,
    devices: [terminal.device_keys],
  });
  assert.deepEqual(
    [learnt.rejected, learnt.devices.length],
    [0, 1],
    "vodozemac's device keys verify here",
  );
  const back = await python.ask({
    op: "keys",
    frame: {
      type: "keys",
      fingerprint: browser.fingerprint,
      devices: [browser.deviceKeysFields()],
    },
  });
  assert.deepEqual(
    back,
    { devices: [browser.deviceId], rejected: 0 },
    "the browser's device keys verify there",
  );
});

after(() => python.stop());

/** @returns {import("../../tlschat/web/static/js/e2e/device.js").DeviceKeys} */
const terminalDevice = () => browser.directory.devices(terminal.fingerprint)[0];

test("Olm: the browser starts a session from a vodozemac one-time key; payloads go both ways", async () => {
  const device = terminalDevice();
  browser.directory.claim([device]);
  const claimed = {
    type: "claimed",
    keys: [
      {
        fingerprint: terminal.fingerprint,
        device: device.deviceId,
        one_time_key: terminal.one_time_keys[0],
      },
    ],
  };
  assert.deepEqual(
    browser.directory.receiveClaimed(claimed),
    [],
    "vodozemac's one-time key signature verifies",
  );
  const key = newPrivateKey();
  const item = browser.encryptFor(device, PRIVATE, privateKeyFields(key));
  assert.equal(item.type, 0);
  const opened = await python.ask({
    op: "decrypt",
    fingerprint: browser.fingerprint,
    device: browser.deviceId,
    type: item.type,
    body: item.body,
  });
  assert.deepEqual([opened.kind, toHex(b64decode(opened.fields.key))], [PRIVATE, toHex(key)]);

  const sealed = await sealPrivate(key, new TextEncoder().encode("canary from the browser"));
  const open = await python.ask({ op: "open_private", key: toHex(key), ct: toBase64(sealed) });
  assert.equal(Buffer.from(open.plaintext, "hex").toString(), "canary from the browser");

  const reply = await python.ask({
    op: "encrypt",
    fingerprint: browser.fingerprint,
    device: browser.deviceId,
    kind: ROOM_KEY,
    fields: roomKeyFields(NETWORK, "#x", "s", "k"),
  });
  assert.equal(reply.type, 1, "vodozemac answers on the session the browser started");
  const payload = browser.decryptFrom(device, reply.type, reply.body);
  assert.deepEqual(
    [payload.kind, payload.envelope.sender, payload.fields.room],
    [ROOM_KEY, terminal.fingerprint, "#x"],
  );
});

test("Olm: vodozemac starts a session from a libolm one-time key", async () => {
  const otherBrowser = await ClientCrypto.open(
    await nodeOlm(),
    await ClientIdentity.generate(),
    {},
  );
  await python.ask({
    op: "keys",
    frame: {
      type: "keys",
      fingerprint: otherBrowser.fingerprint,
      devices: [otherBrowser.deviceKeysFields()],
    },
  });
  const [oneTimeKey] = otherBrowser.helloKeys();
  const failed = await python.ask({
    op: "claimed",
    fingerprint: otherBrowser.fingerprint,
    frame: {
      type: "claimed",
      keys: [
        {
          fingerprint: otherBrowser.fingerprint,
          device: otherBrowser.deviceId,
          one_time_key: oneTimeKey,
        },
      ],
    },
  });
  assert.deepEqual(failed, { failed: [] }, "libolm's one-time key signature verifies in vodozemac");
  const item = await python.ask({
    op: "encrypt",
    fingerprint: otherBrowser.fingerprint,
    device: otherBrowser.deviceId,
    kind: PRIVATE,
    fields: { key: "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8" },
  });
  assert.equal(item.type, 0);
  await otherBrowser.directory.receiveKeys({
    type: "keys",
    fingerprint: terminal.fingerprint,
    devices: [terminal.device_keys],
  });
  const sender = otherBrowser.directory.devices(terminal.fingerprint)[0];
  const payload = otherBrowser.decryptFrom(sender, item.type, item.body);
  assert.equal(payload.kind, PRIVATE);
  const plain = await python.ask({
    op: "seal_private",
    key: "40".repeat(32),
    plaintext: toHex(new TextEncoder().encode("from the terminal")),
  });
  const opened = await openPrivate(new Uint8Array(32).fill(0x40), b64decode(plain.ct));
  assert.equal(new TextDecoder().decode(opened), "from the terminal");
});

test("Megolm: the browser's room lines decrypt in vodozemac, and the terminal's here", async () => {
  const device = terminalDevice();
  const { sender } = browser.rooms.sender(NETWORK, "#room", NOW);
  const key = sender.roomKey();
  const binary = new Uint8Array([0, 64, 0, 1, 255, 0, 10, 13]);
  const line = sender.encrypt(binary, NOW);
  await python.ask({
    op: "room_import",
    fingerprint: browser.fingerprint,
    device: browser.deviceId,
    network: NETWORK,
    room: "#room",
    session: key.sessionId,
    key: key.sessionKey,
  });
  const decrypted = await python.ask({
    op: "room_decrypt",
    network: NETWORK,
    room: "#room",
    sender: browser.fingerprint,
    session: line.sessionId,
    ct: line.ciphertext,
  });
  assert.deepEqual([decrypted.plaintext, decrypted.index], [toHex(binary), 0]);

  const theirs = await python.ask({
    op: "room_send",
    network: NETWORK,
    room: "#room",
    plaintext: "00ff00ee",
    now: NOW,
  });
  const owner = { fingerprint: terminal.fingerprint, curve25519: device.curve25519 };
  browser.rooms.importShared(browser.roomKeys, owner, {
    network: NETWORK,
    room: "#room",
    sessionId: theirs.session,
    sessionKey: theirs.key,
  });
  const plain = browser.rooms.decrypt(browser.roomKeys, NETWORK, "#room", terminal.fingerprint, {
    session: theirs.session,
    ct: theirs.ct,
  });
  assert.deepEqual([toHex(plain.plaintext), plain.messageIndex], ["00ff00ee", 0]);
});

test("SAS: a browser and a terminal device compare the same emoji and verify each other", async () => {
  const device = terminalDevice();
  const js = new Verifications(browser.olm, browser.ownKeys);
  /** @type {string[]} */
  const jsNotices = [];
  /** @type {string[]} */
  const pyNotices = [];
  const outcome = {
    js: /** @type {string | null} */ (null),
    py: /** @type {string | null} */ (null),
  };
  /** @param {any} step from Python: payloads for the browser's device */
  const fromPython = async (step) => {
    pyNotices.push(...step.notices);
    if (step.verified) outcome.py = step.verified;
    for (const [, payload] of step.send)
      await toPython(await js.receive(device, "terminal", payload, NOW));
  };
  /** @param {import("../../tlschat/web/static/js/e2e/verification.js").VerificationStep} step */
  const toPython = async (step) => {
    jsNotices.push(...step.notices);
    if (step.verified) outcome.js = step.verified;
    for (const [, payload] of step.send)
      await fromPython(
        await python.ask({
          op: "verify_receive",
          fingerprint: browser.fingerprint,
          device: browser.deviceId,
          nick: "browser",
          payload,
          now: NOW,
        }),
      );
  };
  await fromPython(
    await python.ask({
      op: "verify_start",
      nick: "browser",
      fingerprint: browser.fingerprint,
      now: NOW,
    }),
  );
  assert.ok(jsNotices.some((text) => text.includes("wants to verify you")));
  await toPython(await js.answer(true, NOW));
  const jsEmoji = jsNotices.filter((text) => text.startsWith("  "));
  const pyEmoji = pyNotices.filter((text) => text.startsWith("  "));
  assert.equal(jsEmoji.length, 2);
  assert.deepEqual(jsEmoji, pyEmoji, "the same seven emoji and three numbers on both sides");
  await toPython(await js.answer(true, NOW));
  await fromPython(await python.ask({ op: "verify_answer", yes: true, now: NOW }));
  assert.deepEqual(outcome, { js: terminal.fingerprint, py: browser.fingerprint });
});
