// A web ChatClient in a known state, and the frames a server would send it: welcome, joined, and
// `message` frames signed with WebCrypto by other identities, as the server relays them.

import { toBase64 } from "../../tlschat/web/static/js/protocol/bytes.js";
import { Composer, sayFrame } from "../../tlschat/web/static/js/protocol/envelope.js";
import { decodeFrame, encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import { ClientIdentity } from "../../tlschat/web/static/js/protocol/identity.js";
import { ChatClient } from "../../tlschat/web/static/js/app/chat_client.js";
import { SeenLedger } from "../../tlschat/web/static/js/app/seen.js";

/** The server key's fingerprint the lines are signed for. */
export const NETWORK = `SHA256:${"N".repeat(43)}`;
/** 2026-01-01T00:00:00Z, in seconds. */
export const NOW = 1_767_225_600;

/**
 * @param {string} [nick]
 * @param {SeenLedger} [ledger]
 * @returns {Promise<{client: ChatClient, identity: ClientIdentity}>}
 */
export async function newClient(nick = "alice", ledger = new SeenLedger()) {
  const identity = await ClientIdentity.generate();
  const client = new ChatClient(identity, nick, "https://chat.example");
  client.useNetwork(NETWORK, ledger);
  return { client, identity };
}

/**
 * @param {ChatClient} client
 * @param {object} [fields] more welcome fields
 */
export function welcome(client, fields = {}) {
  return {
    type: "welcome",
    server: "test server",
    nick: client.wantedNick,
    fingerprint: client.identity.fingerprint,
    operator: false,
    rate: 2,
    burst: 10,
    work_rate: 30,
    work_burst: 300,
    ...fields,
  };
}

/**
 * @param {string} room
 * @param {{nick: string, fingerprint: string}[]} members
 * @param {object} [fields]
 */
export function joined(room, members, fields = {}) {
  return {
    type: "joined",
    room,
    topic: "",
    member_count: members.length,
    members: members.map((m) => ({ away: "", ...m })),
    ...fields,
  };
}

/**
 * The client welcomed and in #general (with `others` there too).
 * @param {ChatClient} client
 * @param {number} now
 * @param {{nick: string, fingerprint: string}[]} [others]
 */
export async function connect(client, now, others = []) {
  const lines = await client.handle(welcome(client), now);
  const me = { nick: client.wantedNick, fingerprint: client.identity.fingerprint };
  lines.push(...(await client.handle(joined("#general", [me, ...others]), now)));
  return lines;
}

/**
 * A line `identity` signed, as the server relays it in a `message` frame (through the codec).
 * @param {ClientIdentity} identity
 * @param {string} nick
 * @param {string} target
 * @param {string} body
 * @param {number} now seconds, when it was signed
 * @param {{network?: string, composer?: Composer}} [options]
 */
export async function relayed(identity, nick, target, body, now, options = {}) {
  const composer = options.composer ?? new Composer(identity, options.network ?? NETWORK);
  const message = await composer.sign(target, body, now);
  const frame = { ...sayFrame(message), type: "message", from: nick, key: toBase64(identity.spki) };
  return decodeFrame(encodeFrame(frame));
}

/**
 * The frames the client queued, decoded as the server would read them.
 * @param {ChatClient} client
 */
export function sentFrames(client) {
  return client.takeOutbox().map((frame) => decodeFrame(encodeFrame(frame)));
}
