// The pieces of a SAS verification flow that need no state of their own (a part of the port of
// tlschat/chat/client/verification.py): its stages, the shape of a flow and of what each step
// asks of the caller, how devices and flow ids compare, and when a flow may not start.

import { constantTimeEqual, utf8 } from "../protocol/bytes.js";
import { MAX_DEVICES_PER_KEY } from "./frames.js";
import { SasStateError } from "./sas.js";
import { NICK } from "./verified.js";
import { ACCEPT, CANCEL, KEY, MAC, REQUEST } from "./verification_payloads.js";

export const FLOW_TIMEOUT = 600;
export const ANSWER = "/verify yes or /verify no";
export const PROMPT = `Do they match? ${ANSWER}`;

/** The stages of a flow, from this device's side. */
export const Stage = Object.freeze({
  REQUESTED: "requested", // we asked; waiting for one of their devices to accept
  INCOMING: "incoming", // they asked; waiting for our user to accept or refuse
  ACCEPTED: "accepted", // we accepted (commitment sent); waiting for their key
  KEY_SENT: "key sent", // their device accepted and we sent our key; waiting for theirs
  COMPARING: "comparing", // emoji shown; waiting for our user (their MACs may be in already)
  CONFIRMED: "confirmed", // our user said yes and our MACs went out; waiting for theirs
});

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("./sas.js").SasVerification} SasVerification */
/**
 * What one call asks of the caller: payloads to send (each to one device), lines to show, and
 * the outcome of a flow that ended (`verified`: the fingerprint, with `nick`).
 * @typedef {{send: [DeviceKeys, Record<string, unknown>][], notices: string[],
 *            verified: string | null, failed: string | null, nick: string}} VerificationStep
 * @typedef {{flow: string, nick: string, user: string, stage: string, started: number,
 *            requested: DeviceKeys[], sas: SasVerification | null, theirMacs: boolean}} Flow
 */

/** @param {DeviceKeys} a @param {DeviceKeys} b the same device with the same keys */
export const sameDevice = (a, b) =>
  a.user === b.user &&
  a.deviceId === b.deviceId &&
  a.curve25519 === b.curve25519 &&
  a.ed25519 === b.ed25519;

/** @param {string} a @param {string} b flow ids, compared in constant time */
export const sameFlow = (a, b) => constantTimeEqual(utf8(a), utf8(b));

/** @returns {VerificationStep} */
export const newStep = () => ({ send: [], notices: [], verified: null, failed: null, nick: "" });

/** @param {Flow} flow @returns {DeviceKeys[]} the devices a cancel goes to */
export const peers = (flow) => (flow.sas !== null ? [flow.sas.theirs] : flow.requested);

/** @param {Flow} flow @param {DeviceKeys} sender */
export const isPeer = (flow, sender) => peers(flow).some((device) => sameDevice(sender, device));

/** @param {Flow} flow @param {DeviceKeys} sender a device the request went to that lost the race */
export function lostTheRace(flow, sender) {
  if (flow.sas === null || sameDevice(sender, flow.sas.theirs)) return false;
  return flow.requested.some((device) => sameDevice(sender, device));
}

/** @param {Flow} flow */
export const nickOf = (flow) => (NICK.test(flow.nick) ? flow.nick : "");

/** @param {Flow} flow */
export function requireSas(flow) {
  if (flow.sas === null) throw new SasStateError("no SAS in this stage");
  return flow.sas;
}

/**
 * Why `/verify NICK` cannot start, or null.
 * @param {DeviceKeys} own
 * @param {Flow | null} current
 * @param {string} nick
 * @param {DeviceKeys[]} devices
 * @returns {string | null}
 */
export function startRefusal(own, current, nick, devices) {
  if (current !== null)
    return `You are verifying ${current.nick} already: /verify no ends that first.`;
  if (!devices.length) return `${nick} has no device with end-to-end keys: nothing to verify with.`;
  const users = new Set(devices.map((d) => d.user));
  const ids = new Set(devices.map((d) => d.deviceId));
  if (users.size !== 1 || ids.size !== devices.length || devices.length > MAX_DEVICES_PER_KEY)
    return `The device list the server gave for ${nick} is not valid: not verifying.`;
  if (users.has(own.user)) return "That is you: verify another user.";
  return null;
}

/**
 * Why a request from `sender` naming `devices` is refused, or null.
 * @param {DeviceKeys} own
 * @param {DeviceKeys} sender
 * @param {string[]} devices
 * @returns {string | null}
 */
export function requestRefusal(own, sender, devices) {
  if (sender.user === own.user) return "a user does not verify themselves";
  if (!devices.includes(own.deviceId)) return "the request does not name this device";
  return null;
}

/** @param {Record<string, unknown>} payload */
export function describe(payload) {
  const kind = payload.type;
  return typeof kind === "string" && [REQUEST, ACCEPT, KEY, MAC, CANCEL].includes(kind)
    ? kind
    : "payload";
}
