// The to-device payloads of SAS verification (a port of
// tlschat/chat/client/verification_payloads.py). Each is a JSON object with `type` and `flow`
// and the step's fields; Olm carries it with the envelope fields, which these parsers ignore.
// Every field a peer sends is bounded and checked here; a bad one is a FrameError.
//   verify_request {devices: 1 to 8 device ids}   verify_accept {commitment}
//   verify_key {key}   verify_mac {keys, device}   verify_cancel {reason: at most 200 bytes}
// Commitments, keys and MACs are 32 bytes: 43 characters of unpadded base64.

import { b64encode } from "./codec.js";
import { FrameError, fieldStr } from "../protocol/frames.js";
import { DEVICE_ID, KEY_43, MAX_DEVICES_PER_KEY } from "./frames.js";
import { FLOW_ID } from "./sas.js";

export const REQUEST = "verify_request";
export const ACCEPT = "verify_accept";
export const KEY = "verify_key";
export const MAC = "verify_mac";
export const CANCEL = "verify_cancel";
const MAX_REASON = 200;

/**
 * @typedef {{type: "verify_request", flow: string, devices: string[]}
 *   | {type: "verify_accept", flow: string, commitment: string}
 *   | {type: "verify_key", flow: string, key: string}
 *   | {type: "verify_mac", flow: string, macs: import("./sas.js").SasMacs}
 *   | {type: "verify_cancel", flow: string, reason: string}} Step
 */

/** @returns {string} a fresh random flow id (128 bits, URL-safe base64) */
export function newFlowId() {
  return b64encode(crypto.getRandomValues(new Uint8Array(16)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
}

/** @param {Record<string, unknown>} payload @returns {string | null} its flow id if well formed */
export function payloadFlow(payload) {
  const flow = payload.flow;
  return typeof flow === "string" && FLOW_ID.test(flow) ? flow : null;
}

/** @param {Record<string, unknown>} payload */
function flowOf(payload) {
  const flow = payloadFlow(payload);
  if (flow === null) throw new FrameError("'flow' is not a flow id");
  return flow;
}

/** @param {Record<string, unknown>} payload @param {string} name */
function digest(payload, name) {
  const value = fieldStr(/** @type {any} */ (payload), name, 64);
  if (!KEY_43.test(value)) throw new FrameError(`'${name}' is not well formed`);
  return value;
}

/** @param {Record<string, unknown>} payload @returns {string[]} */
function devicesOf(payload) {
  const value = payload.devices;
  if (!Array.isArray(value) || !(value.length > 0 && value.length <= MAX_DEVICES_PER_KEY))
    throw new FrameError(`'devices' must be a list of 1 to ${MAX_DEVICES_PER_KEY} device ids`);
  if (!value.every((item) => typeof item === "string" && DEVICE_ID.test(item)))
    throw new FrameError("'devices' must hold device ids");
  if (new Set(value).size !== value.length) throw new FrameError("'devices' names a device twice");
  return value;
}

/** @type {Readonly<Record<string, (payload: Record<string, unknown>) => Step>>} */
const PARSERS = Object.freeze({
  [REQUEST]: (p) => ({ type: REQUEST, flow: flowOf(p), devices: devicesOf(p) }),
  [ACCEPT]: (p) => ({ type: ACCEPT, flow: flowOf(p), commitment: digest(p, "commitment") }),
  [KEY]: (p) => ({ type: KEY, flow: flowOf(p), key: digest(p, "key") }),
  [MAC]: (p) => ({
    type: MAC,
    flow: flowOf(p),
    macs: { identity: digest(p, "keys"), deviceKeys: digest(p, "device") },
  }),
  // A reason is only ever shown, and the page neutralizes every text it shows (app/lines.js).
  [CANCEL]: (p) => ({
    type: CANCEL,
    flow: flowOf(p),
    reason: fieldStr(/** @type {any} */ (p), "reason", MAX_REASON),
  }),
});

/** @param {Record<string, unknown>} payload (with `type`) @returns {Step} */
export function parseStep(payload) {
  const kind = payload.type;
  const parser =
    typeof kind === "string" && Object.hasOwn(PARSERS, kind) ? PARSERS[kind] : undefined;
  if (parser === undefined) throw new FrameError("not a verification payload");
  return parser(payload);
}

/** @param {string} flow @param {string[]} devices */
export const requestPayload = (flow, devices) => ({ type: REQUEST, flow, devices });
/** @param {string} flow @param {string} commitment */
export const acceptPayload = (flow, commitment) => ({ type: ACCEPT, flow, commitment });
/** @param {string} flow @param {string} key */
export const keyPayload = (flow, key) => ({ type: KEY, flow, key });
/** @param {string} flow @param {import("./sas.js").SasMacs} macs */
export const macPayload = (flow, macs) => ({
  type: MAC,
  flow,
  keys: macs.identity,
  device: macs.deviceKeys,
});
/** @param {string} flow @param {string} reason */
export const cancelPayload = (flow, reason) => ({ type: CANCEL, flow, reason });
