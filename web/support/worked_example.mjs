// Reads docs/PROTOCOL.md's worked example (section 24, without its end-to-end part) at test time,
// so the tests check the document as it stands, and replays its connection with the browser
// protocol code: the client's entropy and identity key are the example's inputs, and the server's
// records are the document's own bytes.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { fromBase64 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { ClientConnection } from "../../tlschat/web/static/js/protocol/client_connection.js";
import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { CipherSuite } from "../../tlschat/web/static/js/protocol/messages.js";
import { DirectionKeys, KEY_UPDATE_LIMIT } from "../../tlschat/web/static/js/protocol/records.js";

const ROOT = new URL("../../", import.meta.url);

/**
 * @param {Uint8Array} bytes
 * @returns {string} lowercase hex
 */
export function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

/**
 * @param {string} text hex digits; whitespace is ignored
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  const digits = text.replace(/\s+/g, "");
  assert.match(digits, /^(?:[0-9a-f]{2})*$/, "hex");
  return new Uint8Array(Buffer.from(digits, "hex"));
}
const BEGIN = "<!-- worked-example:begin -->";
const END = "<!-- worked-example:end -->";

/**
 * @typedef {{name: string, note: string, value: Uint8Array}} Value
 * @typedef {{number: number, title: string, sender: "client" | "server",
 *            protection: string, keys: string, seq: number, fields: Map<string, Value>}} DocRecord
 */

/**
 * The labelled hex values of every ```text block in `text`: a label line, then indented hex
 * lines; an indented line in parentheses is a note. A declared "(N bytes" is checked.
 * @param {string} text
 * @returns {Map<string, Value>}
 */
export function textBlockValues(text) {
  const values = new Map();
  for (const [, block] of text.matchAll(/```text\n([\s\S]*?)```/g)) {
    /** @type {{name: string, note: string, hex: string} | null} */
    let current = null;
    const flush = () => {
      if (current === null) return;
      assert.ok(!values.has(current.name), `${current.name} listed twice`);
      const value = fromHex(current.hex);
      // "inner plaintext: content (N bytes) || type (1 byte)" declares its parts; others their size.
      const sizes = [...current.note.matchAll(/(\d+) bytes?\b/g)].map((m) => Number(m[1]));
      const declared = current.name.startsWith("inner plaintext")
        ? sizes.reduce((a, b) => a + b, 0)
        : sizes[0];
      if (declared !== undefined) assert.equal(value.length, declared, current.name);
      values.set(current.name, { name: current.name, note: current.note, value });
    };
    for (const line of block.split("\n")) {
      if (!line.trim() || /^\s+\(/.test(line)) continue;
      if (/^\s+[0-9a-f]+$/.test(line)) {
        assert.ok(current, `hex before any label: ${line}`);
        current.hex += line.trim();
        continue;
      }
      assert.ok(!/^\s/.test(line), `unexpected line in a value block: ${line}`);
      flush();
      current = { name: line.replace(/\s*\(.*$/, "").trim(), note: line, hex: "" };
    }
    flush();
  }
  return values;
}

/**
 * @typedef {{facts: Map<string, string>, values: Map<string, Value>, records: DocRecord[],
 *            chat: {values: Map<string, Value>, say: string}}} WorkedExample
 */

/** @type {WorkedExample | undefined} */
let example;

/**
 * The worked example's inputs and outputs, read from the document once.
 * @returns {WorkedExample}
 */
export function readWorkedExample() {
  example ??= parseWorkedExample();
  return example;
}

/** @returns {WorkedExample} */
function parseWorkedExample() {
  const text = readFileSync(new URL("docs/PROTOCOL.md", ROOT), "utf8");
  assert.equal(text.split(BEGIN).length, 2, "one worked example");
  const section = text.split(BEGIN)[1].split(END)[0];
  const [channel] = section.split("\n### End to end");
  const parts = new Map(
    channel
      .split("\n### ")
      .slice(1)
      .map((part) => [part.slice(0, part.indexOf("\n")), part]),
  );
  const part = (/** @type {string} */ title) => {
    const found = parts.get(title);
    assert.ok(found !== undefined, `the worked example has no "${title}"`);
    return found;
  };

  const facts = new Map();
  for (const [, name, value] of channel.matchAll(/^- ([^:\n]+): `([^`]+)`$/gm))
    facts.set(name, value);

  const values = new Map([
    ...textBlockValues(part("Ephemeral keys and randoms")),
    ...textBlockValues(part("Key schedule, transcript hashes, signatures, Finished")),
  ]);

  const records = [];
  const heading =
    /^#### (\d+)\. (.+) \((client|server) → (?:client|server), (plaintext record|protected, (\w+) keys, seq (\d+))\)$/;
  for (const recordText of part("Records").split("\n#### ").slice(1)) {
    const match = heading.exec(`#### ${recordText.slice(0, recordText.indexOf("\n"))}`);
    assert.ok(match, `record heading: ${recordText.slice(0, 80)}`);
    const [, number, title, sender, protection, keys = "", seq = "0"] = match;
    const fields = textBlockValues(recordText);
    records.push({
      number: Number(number),
      title,
      sender: /** @type {"client" | "server"} */ (sender),
      protection,
      keys,
      seq: Number(seq),
      fields,
    });
  }
  assert.deepEqual(
    records.map((r) => r.number),
    records.map((_, i) => i + 1),
    "records numbered in order",
  );

  const chatText = part("A signed chat message");
  const say = /```json\n(.*)\n```/.exec(chatText);
  assert.ok(say, "the say frame");
  return { facts, values, records, chat: { values: textBlockValues(chatText), say: say[1] } };
}

/**
 * @param {Map<string, Value>} map
 * @param {string} name
 * @returns {Uint8Array}
 */
export function valueOf(map, name) {
  const found = map.get(name);
  assert.ok(found !== undefined, `${name} is not in the worked example`);
  return found.value;
}

/**
 * The records grouped into flights: consecutive records of one sender were one write.
 * @param {DocRecord[]} records
 * @returns {{sender: "client" | "server", records: DocRecord[], wire: Uint8Array}[]}
 */
export function flights(records) {
  /** @type {{sender: "client" | "server", records: DocRecord[], wire: Uint8Array}[]} */
  const out = [];
  for (const record of records) {
    const last = out.at(-1);
    if (last && last.sender === record.sender) last.records.push(record);
    else out.push({ sender: record.sender, records: [record], wire: new Uint8Array(0) });
  }
  for (const flight of out)
    flight.wire = Buffer.concat(flight.records.map((r) => valueOf(r.fields, "record on the wire")));
  return out;
}

/**
 * A counting byte stream, the example's entropy: start, start + 1, ... (mod 256).
 * @param {number} start
 * @returns {(n: number) => Uint8Array}
 */
export function countingEntropy(start) {
  let next = start;
  return (n) => {
    const out = new Uint8Array(n).map((_, i) => (next + i) % 256);
    next = (next + n) % 256;
    return out;
  };
}

/**
 * The DER inside a PEM file of the repository.
 * @param {string} path relative to the repository root
 * @returns {Uint8Array}
 */
export function pemDer(path) {
  const pem = readFileSync(new URL(path, ROOT), "utf8");
  return fromBase64(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""));
}

/**
 * The example's client identity: the test-only Ed25519 key in tests/data.
 * @returns {Promise<ClientIdentity>}
 */
export async function exampleClientIdentity() {
  const subtle = globalThis.crypto.subtle;
  const pkcs8 = pemDer("tests/data/test_only_client_ed25519_key.pem");
  const privateKey = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const { x } = await subtle.exportKey("jwk", privateKey);
  const raw = fromBase64(/** @type {string} */ (x).replace(/-/g, "+").replace(/_/g, "/") + "=");
  const publicKey = await subtle.importKey("raw", raw, { name: "Ed25519" }, true, ["verify"]);
  return ClientIdentity.fromKeyPair({ privateKey, publicKey });
}

/**
 * A ClientConnection with the example's inputs. The document's client offered the Python
 * defaults, both suites, so this one offers them too.
 * @param {object} [overrides] more ClientConnection settings
 * @returns {Promise<ClientConnection>}
 */
export async function exampleClient(overrides = {}) {
  return new ClientConnection(
    {
      identity: await exampleClientIdentity(),
      entropy: countingEntropy(0x00),
      cipherSuites: [CipherSuite.AES_256_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256],
      ...overrides,
    },
    0,
  );
}

/**
 * One direction's keys from a traffic secret of the example, at a sequence number.
 * @param {Uint8Array} secret
 * @param {number} seq
 * @returns {Promise<DirectionKeys>}
 */
export async function keysAt(secret, seq) {
  const keys = await DirectionKeys.create(CipherSuite.AES_256_GCM_SHA256, secret, KEY_UPDATE_LIMIT);
  keys.sequence = seq;
  return keys;
}

/**
 * A client of the example brought to `state` by the document's records, its output drained.
 * @param {"WAIT_SERVER_HELLO" | "WAIT_SERVER_CERTIFICATE" | "WAIT_TRUST" | "WAIT_SERVER_FINISHED" | "CONNECTED"} state
 * @param {object} [overrides] more ClientConnection settings
 * @returns {Promise<ClientConnection>}
 */
export async function clientAt(state, overrides = {}) {
  const [, serverFlight, , serverFinished] = flights(readWorkedExample().records);
  const client = await exampleClient(overrides);
  const steps = [
    () => client.startHandshake(),
    () => client.receiveData(valueOf(serverFlight.records[0].fields, "record on the wire")),
    () =>
      client.receiveData(
        serverFlight.wire.subarray(
          valueOf(serverFlight.records[0].fields, "record on the wire").length,
        ),
      ),
    () => client.trustServer(),
    () => client.receiveData(serverFinished.wire),
  ];
  const states = [
    "WAIT_SERVER_HELLO",
    "WAIT_SERVER_CERTIFICATE",
    "WAIT_TRUST",
    "WAIT_SERVER_FINISHED",
    "CONNECTED",
  ];
  for (const step of steps.slice(0, states.indexOf(state) + 1)) {
    const events = await step();
    assert.ok(!events.some((e) => e.type === "connection_failed"), JSON.stringify(events));
  }
  assert.equal(client.state, state);
  await client.dataToSend();
  return client;
}

/**
 * The records in `data`, opened with `keys` when protected (plaintext ones as they are).
 * @param {Uint8Array} data
 * @param {DirectionKeys | null} keys
 * @returns {Promise<{contentType: number, content: Uint8Array}[]>}
 */
export async function readRecords(data, keys) {
  const out = [];
  for (let at = 0; at < data.length; ) {
    const length = (data[at + 3] << 8) | data[at + 4];
    const header = data.subarray(at, at + 5);
    const fragment = data.subarray(at + 5, at + 5 + length);
    out.push(
      header[0] === 23 && keys
        ? await keys.open(header, fragment)
        : { contentType: header[0], content: fragment },
    );
    at += 5 + length;
  }
  return out;
}

/**
 * The example's traffic secret of that name (e.g. "server_handshake").
 * @param {string} name
 * @returns {Uint8Array}
 */
export function secretOf(name) {
  return valueOf(readWorkedExample().values, `${name}_traffic_secret`);
}
