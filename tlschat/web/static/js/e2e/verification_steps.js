// The steps of a SAS verification flow (a part of the port of
// tlschat/chat/client/verification.py): what this device sends and says when it accepts, when
// the other device accepted, when the emoji are to be compared, when its user confirms, and how a
// flow ends (verified, refused, cancelled by either side, or expired). verification.js routes
// each answer and payload to its step.

import { STARTER, SasVerification } from "./sas.js";
import { acceptPayload, cancelPayload, keyPayload, macPayload } from "./verification_payloads.js";
import {
  FLOW_TIMEOUT,
  PROMPT,
  Stage,
  newStep,
  nickOf,
  peers,
  requireSas,
  sameDevice,
} from "./verification_flow.js";

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("./verification_flow.js").Flow} Flow */
/** @typedef {import("./verification_flow.js").VerificationStep} VerificationStep */

export class FlowSteps {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {DeviceKeys} own this device's keys
   */
  constructor(olm, own) {
    this.olm = olm;
    this.own = own;
    /** @type {Flow | null} at most one at a time */
    this.flow = null;
  }

  /** @param {Flow} flow @param {VerificationStep} out */
  async _accept(flow, out) {
    const sas = requireSas(flow);
    out.send.push([sas.theirs, acceptPayload(flow.flow, await sas.commitment())]);
    flow.stage = Stage.ACCEPTED;
    out.notices.push(`Verifying ${flow.nick}: exchanging keys with their device.`);
  }

  /**
   * @param {Flow} flow
   * @param {DeviceKeys} sender
   * @param {string} commitment
   * @param {VerificationStep} out
   */
  _accepted(flow, sender, commitment, out) {
    const sas = new SasVerification(this.olm, this.own, sender, flow.flow, STARTER);
    sas.receiveCommitment(commitment);
    flow.sas = sas;
    flow.stage = Stage.KEY_SENT;
    for (const device of flow.requested)
      if (!sameDevice(device, sender))
        out.send.push([device, cancelPayload(flow.flow, "accepted on another device")]);
    out.send.push([sender, keyPayload(flow.flow, sas.publicKey)]);
    out.notices.push(`${flow.nick} accepted on device ${sender.deviceId}: exchanging keys.`);
  }

  /** @param {Flow} flow @param {VerificationStep} out */
  _compare(flow, out) {
    const sas = requireSas(flow);
    flow.stage = Stage.COMPARING;
    const emoji = sas
      .emoji()
      .map(([picture, name]) => `${picture} ${name}`)
      .join("  ");
    out.notices.push(
      `Verify ${flow.nick}: compare with what ${flow.nick} sees (in person or on a call):`,
      `  ${emoji}`,
      `  or the numbers ${sas.decimals().join(" ")}`,
      PROMPT,
    );
  }

  /** @param {Flow} flow @param {VerificationStep} out */
  _confirm(flow, out) {
    const sas = requireSas(flow);
    out.send.push([sas.theirs, macPayload(flow.flow, sas.confirm())]);
    if (flow.theirMacs) this._verified(flow, out);
    else {
      flow.stage = Stage.CONFIRMED;
      out.notices.push(`You said yes; waiting for ${flow.nick} to answer.`);
    }
  }

  /** @param {Flow} flow @param {VerificationStep} out */
  _verified(flow, out) {
    this._end(flow);
    out.verified = flow.user;
    out.nick = nickOf(flow);
    out.notices.push(
      `✓✓ ${flow.nick} is verified: their key ${flow.user} is the one you compared with.`,
    );
  }

  /** @param {Flow} flow @param {VerificationStep} out */
  _refuse(flow, out) {
    if (flow.stage === Stage.INCOMING) this._abort(flow, out, "you refused", { reason: "refused" });
    else if (flow.stage === Stage.COMPARING) {
      this._abort(flow, out, "you said they do not match", { reason: "the emoji did not match" });
      out.notices.push(
        `If they really differ, someone may be between you and ${flow.nick}: do not trust the key` +
          ` the server shows for ${flow.nick} until a verification succeeds.`,
      );
    } else this._abort(flow, out, "you cancelled it", { reason: "cancelled by the user" });
  }

  /**
   * @param {Flow} flow
   * @param {DeviceKeys} sender
   * @param {string} reason
   * @param {VerificationStep} out
   */
  _peerCancelled(flow, sender, reason, out) {
    for (const device of peers(flow))
      if (!sameDevice(device, sender))
        out.send.push([device, cancelPayload(flow.flow, "cancelled on another device")]);
    this._ended(flow, out, `${flow.nick} cancelled it (${reason})`);
  }

  /**
   * We end the flow: a cancel to each device it is with (and `also`), and why.
   * @param {Flow} flow
   * @param {VerificationStep} out
   * @param {string} why
   * @param {{reason?: string, alarm?: boolean, also?: DeviceKeys}} [options]
   */
  _abort(flow, out, why, options = {}) {
    const payload = cancelPayload(flow.flow, options.reason ?? why);
    for (const device of peers(flow)) out.send.push([device, payload]);
    if (options.also !== undefined) out.send.push([options.also, payload]);
    this._ended(flow, out, why);
    if (options.alarm)
      out.notices.push(
        `WARNING: someone may be between you and ${flow.nick} (a man in the middle): do not trust` +
          ` the key the server shows for ${flow.nick} until a verification succeeds.`,
      );
  }

  /** @param {Flow} flow @param {VerificationStep} out @param {string} why */
  _ended(flow, out, why) {
    this._end(flow);
    out.failed = why;
    out.nick = nickOf(flow);
    out.notices.push(`Verification of ${flow.nick} ended: ${why}. Nothing was verified.`);
  }

  /** @param {Flow} flow */
  _end(flow) {
    flow.sas?.free();
    this.flow = null;
  }

  /** @param {number} now @returns {VerificationStep} */
  _expire(now) {
    const out = newStep();
    const flow = this.flow;
    if (flow !== null && now - flow.started >= FLOW_TIMEOUT)
      this._abort(flow, out, `no answer within ${FLOW_TIMEOUT / 60} minutes`);
    return out;
  }
}
