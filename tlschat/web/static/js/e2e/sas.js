// SAS verification of another device (a port of tlschat/e2e/sas.py; docs/PROTOCOL.md section
// 23, "Verification"): both users compare 7 emoji (or three 4-digit numbers), then each device
// MACs its user's identity fingerprint and its device keys for the other. The accepter commits
// to its ephemeral key before it sees the starter's, so a man in the middle gets one try at
// making the strings match (2^-42 with emoji). libolm's SAS does the key agreement, the HKDF of
// the SAS bytes and the MACs (its `calculate_mac_fixed_base64`, vodozemac's `calculate_mac`).
//
// Strings (fields never hold "|"):
//   SAS bytes info: TLSCHAT_V1_SAS|starter user|starter device|starter key|accepter user|
//                   accepter device|accepter key|flow
//   MAC info:       TLSCHAT_V1_SAS_MAC|sender user|sender device|receiver user|receiver device|
//                   flow|identity or device_keys
//   commitment:     unpadded base64 of SHA-256("tlschat v1 sas commitment" || 0x00 || u8 len ||
//                   flow || u8 32 || the accepter's key)

import { Writer, constantTimeEqual, utf8 } from "../protocol/bytes.js";
import { sha256 } from "../protocol/keyschedule.js";
import { b64encode } from "./codec.js";
import { rawKey } from "./device.js";
import { SAS_EMOJI } from "./sas_emoji.js";

export const FLOW_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SAS_INFO_PREFIX = "TLSCHAT_V1_SAS|";
const MAC_INFO_PREFIX = "TLSCHAT_V1_SAS_MAC|";
const COMMITMENT_CONTEXT = utf8("tlschat v1 sas commitment\0");
export const STARTER = "starter";
export const ACCEPTER = "accepter";

/** A verification refused; it is cancelled. */
export class SasError extends Error {}
/** A step out of order, or after the verification was cancelled. */
export class SasStateError extends SasError {}
/** The accepter's key is not the one it committed to. */
export class SasCommitmentMismatch extends SasError {}
/** The other device's MACs are not of the keys held for it: not the device verified. */
export class SasMacMismatch extends SasError {}

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {{identity: string, deviceKeys: string}} SasMacs */

/** @param {DeviceKeys} keys @returns {string} */
export const deviceKeysMacInput = (keys) => `${keys.deviceId}|${keys.curve25519}|${keys.ed25519}`;

/**
 * @param {string} flow
 * @param {string} accepterKey
 * @returns {Promise<string>}
 */
export async function sasCommitment(flow, accepterKey) {
  const payload = new Writer()
    .fixed(COMMITMENT_CONTEXT)
    .vector(1, utf8(flow))
    .vector(1, rawKey(accepterKey))
    .bytes();
  return b64encode(await sha256(payload));
}

/** @param {string} value @param {string} what */
function checkField(value, what) {
  if (!/^[\x20-\x7e]*$/.test(value) || value.includes("|"))
    throw new RangeError(`${what} must be ASCII without '|'`);
}

export class SasVerification {
  /**
   * One device's side of a SAS verification with `theirs` (the device keys held for the other
   * device, verified against the identity believed to be theirs).
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {DeviceKeys} ours
   * @param {DeviceKeys} theirs
   * @param {string} flow
   * @param {string} role STARTER or ACCEPTER
   */
  constructor(olm, ours, theirs, flow, role) {
    if (!FLOW_ID.test(flow)) throw new RangeError("not a flow id");
    for (const keys of [ours, theirs]) {
      checkField(keys.user, "a user fingerprint");
      checkField(keys.deviceId, "a device id");
    }
    this.ours = ours;
    this.theirs = theirs;
    this.flow = flow;
    this.role = role;
    this._sas = new olm.SAS();
    /** @type {string} */
    this._ourKey = this._sas.get_pubkey();
    /** @type {string | null} */
    this._theirCommitment = null;
    this._established = false;
    /** @type {[string, string][]} */
    this._emoji = [];
    /** @type {number[]} */
    this._decimals = [];
    this._confirmed = false;
    this._theirMacsVerified = false;
    this.cancelled = false;
  }

  /** @returns {Promise<string>} the accepter's commitment to its key */
  commitment() {
    this._require(this.role === ACCEPTER, "only the accepter commits");
    return sasCommitment(this.flow, this._ourKey);
  }

  /** @returns {string} our ephemeral key, once the protocol lets it out */
  get publicKey() {
    if (this.role === STARTER)
      this._require(this._theirCommitment !== null, "no commitment received yet");
    else this._require(this._established, "the starter's key comes first");
    return this._ourKey;
  }

  /** @returns {boolean} our user confirmed, and the other device's MACs verified */
  get verified() {
    return !this.cancelled && this._confirmed && this._theirMacsVerified;
  }

  cancel() {
    this.cancelled = true;
  }

  /** @param {string} commitment */
  receiveCommitment(commitment) {
    this._requireReceived(this.role === STARTER, "only the starter gets a commitment");
    this._requireReceived(this._theirCommitment === null, "a second commitment");
    this._theirCommitment = commitment;
  }

  /** @param {string} theirKey */
  async receivePublicKey(theirKey) {
    this._requireReceived(!this._established, "a second public key");
    try {
      rawKey(theirKey);
    } catch {
      this.cancel();
      throw new SasError("not a Curve25519 public key");
    }
    let info;
    if (this.role === STARTER) {
      await this._checkCommitment(theirKey);
      info = sasInfo(this.ours, this._ourKey, this.theirs, theirKey, this.flow);
    } else {
      info = sasInfo(this.theirs, theirKey, this.ours, this._ourKey, this.flow);
    }
    try {
      this._sas.set_their_key(theirKey);
    } catch {
      this.cancel();
      throw new SasError("the key does not agree");
    }
    const bytes = this._sas.generate_bytes(info, 6);
    this._established = true;
    this._emoji = emojiIndices(bytes).map((index) => [...SAS_EMOJI[index]]);
    this._decimals = decimals(bytes);
  }

  /** @param {string} theirKey */
  async _checkCommitment(theirKey) {
    if (this._theirCommitment === null) {
      this.cancel();
      throw new SasStateError("a public key before the commitment");
    }
    const expected = await sasCommitment(this.flow, theirKey);
    if (
      !this._theirCommitment.isWellFormed() ||
      !constantTimeEqual(utf8(expected), utf8(this._theirCommitment))
    ) {
      this.cancel();
      throw new SasCommitmentMismatch("the key is not the one committed to");
    }
  }

  /** @returns {[string, string][]} the seven emoji with their names */
  emoji() {
    this._require(this._established, "no keys exchanged yet");
    return this._emoji;
  }

  /** @returns {number[]} the three numbers */
  decimals() {
    this._require(this._established, "no keys exchanged yet");
    return this._decimals;
  }

  /** @returns {SasMacs} our user said they match: the MACs of our keys, to send */
  confirm() {
    this._requireEstablished();
    this._confirmed = true;
    return {
      identity: this._mac(this.ours.user, macInfo(this.ours, this.theirs, this.flow, "identity")),
      deviceKeys: this._mac(
        deviceKeysMacInput(this.ours),
        macInfo(this.ours, this.theirs, this.flow, "device_keys"),
      ),
    };
  }

  /** Check the other device's MACs against the keys held for it. @param {SasMacs} macs */
  receiveMac(macs) {
    this._requireEstablished();
    const identity = this._mac(
      this.theirs.user,
      macInfo(this.theirs, this.ours, this.flow, "identity"),
    );
    const keys = this._mac(
      deviceKeysMacInput(this.theirs),
      macInfo(this.theirs, this.ours, this.flow, "device_keys"),
    );
    const good = [same(identity, macs.identity), same(keys, macs.deviceKeys)];
    if (!good.every(Boolean)) {
      this.cancel();
      throw new SasMacMismatch("the MACs are not of the keys held for that device");
    }
    this._theirMacsVerified = true;
  }

  /** @param {string} input @param {string} info */
  _mac(input, info) {
    return this._sas.calculate_mac_fixed_base64(input, info);
  }

  _requireEstablished() {
    this._require(!this.cancelled, "the verification was cancelled");
    if (!this._established) throw new SasStateError("no keys exchanged yet");
  }

  /** @param {boolean} condition @param {string} reason */
  _require(condition, reason) {
    if (this.cancelled) throw new SasStateError("the verification was cancelled");
    if (!condition) throw new SasStateError(reason);
  }

  /** As `_require`, for a message from the other device: out of order cancels. */
  _requireReceived(/** @type {boolean} */ condition, /** @type {string} */ reason) {
    if (this.cancelled) throw new SasStateError("the verification was cancelled");
    if (!condition) {
      this.cancel();
      throw new SasStateError(reason);
    }
  }

  free() {
    this._sas.free();
  }
}

/**
 * @param {DeviceKeys} starter
 * @param {string} starterKey
 * @param {DeviceKeys} accepter
 * @param {string} accepterKey
 * @param {string} flow
 */
const sasInfo = (starter, starterKey, accepter, accepterKey, flow) =>
  SAS_INFO_PREFIX +
  [
    starter.user,
    starter.deviceId,
    starterKey,
    accepter.user,
    accepter.deviceId,
    accepterKey,
    flow,
  ].join("|");

/** @param {DeviceKeys} sender @param {DeviceKeys} receiver @param {string} flow @param {string} what */
const macInfo = (sender, receiver, flow, what) =>
  MAC_INFO_PREFIX +
  [sender.user, sender.deviceId, receiver.user, receiver.deviceId, flow, what].join("|");

/** @param {string} a @param {string} b */
const same = (a, b) => a.isWellFormed() && b.isWellFormed() && constantTimeEqual(utf8(a), utf8(b));

/**
 * The seven 6-bit numbers of the first 42 of the 48 SAS bits (vodozemac's, and Matrix's).
 * @param {Uint8Array} bytes
 * @returns {number[]}
 */
export function emojiIndices(bytes) {
  let bits = 0n;
  for (const byte of bytes.subarray(0, 6)) bits = (bits << 8n) | BigInt(byte);
  return [42, 36, 30, 24, 18, 12, 6].map((shift) => Number((bits >> BigInt(shift)) & 63n));
}

/**
 * The three 13-bit numbers of the first 39 SAS bits, each plus 1000.
 * @param {Uint8Array} b
 * @returns {number[]}
 */
export function decimals(b) {
  return [
    ((b[0] << 5) | (b[1] >> 3)) + 1000,
    (((b[1] & 0x7) << 10) | (b[2] << 2) | (b[3] >> 6)) + 1000,
    (((b[3] & 0x3f) << 7) | (b[4] >> 1)) + 1000,
  ];
}
