// `/verify NICK`: SAS verification between this device and a device of another user, as a state
// machine over the payloads of verification_payloads.js (a port of
// tlschat/chat/client/verification.py, whose doc tells the flow as the users see it). Pure but
// for WebCrypto's SHA-256 (the commitment): time is passed in.
//
// A request goes to every device of the other user; the device whose user answers yes first
// wins and the others are told "accepted on another device". The accepter commits to its SAS
// key, the requester sends its key, the accepter reveals its key (checked against the
// commitment); both show seven emoji and three numbers; each side that says yes sends its MACs,
// and a side whose user said yes holding valid MACs from the other marks that user verified.
// One flow at a time; a flow ends after 10 minutes. Anything malformed, out of order or failing
// a check cancels the flow both ways and says so; requests that cross go on with the one of the
// smaller fingerprint.

import { FrameError } from "../protocol/frames.js";
import { FlowSteps } from "./verification_steps.js";
import { ACCEPTER, SasCommitmentMismatch, SasMacMismatch, SasVerification } from "./sas.js";
import {
  ACCEPT,
  CANCEL,
  KEY,
  MAC,
  REQUEST,
  cancelPayload,
  keyPayload,
  newFlowId,
  parseStep,
  payloadFlow,
  requestPayload,
} from "./verification_payloads.js";
import {
  ANSWER,
  FLOW_TIMEOUT,
  Stage,
  describe,
  isPeer,
  lostTheRace,
  peers,
  requestRefusal,
  requireSas,
  sameFlow,
  startRefusal,
} from "./verification_flow.js";

export { Stage };

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("./verification_flow.js").Flow} Flow */
/** @typedef {import("./verification_flow.js").VerificationStep} VerificationStep */

export class Verifications extends FlowSteps {
  /** @returns {boolean} our user has a question to answer with /verify yes or /verify no */
  get waitingForAnswer() {
    return this.flow !== null && [Stage.INCOMING, Stage.COMPARING].includes(this.flow.stage);
  }

  // --- what our user does --------------------------------------------------------------------

  /**
   * `/verify NICK`: a request to every device of the peer (their verified device keys).
   * @param {string} nick
   * @param {DeviceKeys[]} devices
   * @param {number} now
   * @returns {VerificationStep}
   */
  start(nick, devices, now) {
    const out = this._expire(now);
    const refusal = startRefusal(this.own, this.flow, nick, devices);
    if (refusal !== null) {
      out.notices.push(refusal);
      return out;
    }
    /** @type {Flow} */
    const flow = {
      flow: newFlowId(),
      nick,
      user: devices[0].user,
      stage: Stage.REQUESTED,
      started: now,
      requested: devices,
      sas: null,
      theirMacs: false,
    };
    const payload = requestPayload(
      flow.flow,
      devices.map((d) => d.deviceId),
    );
    for (const device of devices) out.send.push([device, payload]);
    this.flow = flow;
    const count = devices.length === 1 ? "its device" : `its ${devices.length} devices`;
    out.notices.push(
      `Asked ${nick} (${flow.user}, ${count}) to verify; waiting for them to accept (/verify no to stop).`,
    );
    return out;
  }

  /**
   * `/verify yes` or `/verify no`.
   * @param {boolean} matches
   * @param {number} now
   * @returns {Promise<VerificationStep>}
   */
  async answer(matches, now) {
    const out = this._expire(now);
    const flow = this.flow;
    if (flow === null) out.notices.push("There is no verification to answer.");
    else if (!matches) this._refuse(flow, out);
    else if (flow.stage === Stage.INCOMING) await this._accept(flow, out);
    else if (flow.stage === Stage.COMPARING) this._confirm(flow, out);
    else if (flow.stage === Stage.CONFIRMED)
      out.notices.push(`You said yes; waiting for ${flow.nick} to answer.`);
    else out.notices.push(`Nothing to compare yet: waiting for ${flow.nick}'s device.`);
    return out;
  }

  /** Ends a flow that has run for FLOW_TIMEOUT seconds. @param {number} now */
  tick(now) {
    return this._expire(now);
  }

  // --- what the other device sends -----------------------------------------------------------

  /**
   * A verification payload from `sender` (device keys the caller verified).
   * @param {DeviceKeys} sender
   * @param {string} senderNick
   * @param {Record<string, unknown>} payload with its `type`
   * @param {number} now
   * @returns {Promise<VerificationStep>}
   */
  async receive(sender, senderNick, payload, now) {
    const out = this._expire(now);
    const flow = this.flow;
    const flowId = payloadFlow(payload);
    if (flow !== null && flowId !== null && sameFlow(flowId, flow.flow))
      await this._inFlow(flow, sender, payload, out);
    else if (flow !== null && flowId === null && isPeer(flow, sender))
      this._abort(flow, out, `a malformed ${describe(payload)}`);
    else if (flowId !== null)
      await this._outsideFlow(sender, senderNick || sender.user, flowId, payload, now, out);
    return out;
  }

  /**
   * @param {Flow} flow
   * @param {DeviceKeys} sender
   * @param {Record<string, unknown>} payload
   * @param {VerificationStep} out
   */
  async _inFlow(flow, sender, payload, out) {
    if (lostTheRace(flow, sender)) return;
    if (!isPeer(flow, sender)) {
      this._abort(flow, out, "a device not in this verification used its id", { also: sender });
      return;
    }
    let step;
    try {
      step = parseStep(payload);
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      this._abort(flow, out, `a malformed ${describe(payload)} (${problem.message})`);
      return;
    }
    try {
      await this._dispatch(flow, sender, step, out);
    } catch (problem) {
      if (problem instanceof SasCommitmentMismatch) {
        this._abort(flow, out, "their key is not the one they committed to", {
          reason: "the key did not match its commitment",
          alarm: true,
        });
      } else if (problem instanceof SasMacMismatch) {
        this._abort(flow, out, "their keys are not the ones the server showed", {
          reason: "the MACs did not match the keys",
          alarm: true,
        });
      } else if (problem instanceof Error && !(problem instanceof TypeError)) {
        this._abort(flow, out, `the SAS refused a step (${problem.message})`);
      } else throw problem;
    }
  }

  /**
   * @param {Flow} flow
   * @param {DeviceKeys} sender
   * @param {import("./verification_payloads.js").Step} step
   * @param {VerificationStep} out
   */
  async _dispatch(flow, sender, step, out) {
    if (step.type === CANCEL) return this._peerCancelled(flow, sender, step.reason, out);
    if (flow.stage === Stage.REQUESTED && step.type === ACCEPT)
      return this._accepted(flow, sender, step.commitment, out);
    if (flow.stage === Stage.ACCEPTED && step.type === KEY) {
      const sas = requireSas(flow);
      await sas.receivePublicKey(step.key);
      out.send.push([sender, keyPayload(flow.flow, sas.publicKey)]);
      return this._compare(flow, out);
    }
    if (flow.stage === Stage.KEY_SENT && step.type === KEY) {
      await requireSas(flow).receivePublicKey(step.key);
      return this._compare(flow, out);
    }
    if (
      (flow.stage === Stage.COMPARING || flow.stage === Stage.CONFIRMED) &&
      step.type === MAC &&
      !flow.theirMacs
    ) {
      requireSas(flow).receiveMac(step.macs);
      flow.theirMacs = true;
      if (flow.stage === Stage.CONFIRMED) this._verified(flow, out);
      else out.notices.push(`${flow.nick} has answered. Your answer: ${ANSWER}`);
      return undefined;
    }
    return this._abort(flow, out, `an unexpected ${step.type} while ${flow.stage}`);
  }

  /**
   * @param {DeviceKeys} sender
   * @param {string} nick
   * @param {string} flowId
   * @param {Record<string, unknown>} payload
   * @param {number} now
   * @param {VerificationStep} out
   */
  async _outsideFlow(sender, nick, flowId, payload, now, out) {
    if (payload.type === CANCEL) return; // never answered, so two devices never loop
    if (payload.type !== REQUEST) {
      out.send.push([sender, cancelPayload(flowId, "no such verification")]);
      return;
    }
    let request;
    try {
      request = parseStep(payload);
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      out.send.push([sender, cancelPayload(flowId, "a malformed request")]);
      out.notices.push(
        `${nick} sent a malformed verification request (${problem.message}): refused.`,
      );
      return;
    }
    const devices = /** @type {{devices: string[]}} */ (request).devices;
    const refusal = requestRefusal(this.own, sender, devices);
    if (refusal !== null) {
      out.send.push([sender, cancelPayload(flowId, refusal)]);
      out.notices.push(`A verification request from ${nick} was refused: ${refusal}.`);
      return;
    }
    const current = this.flow;
    const crossed =
      current !== null && current.stage === Stage.REQUESTED && current.user === sender.user;
    if (current !== null && crossed && this.own.user < sender.user) {
      // They drop their request and accept ours (the branch below, on their side).
      out.send.push([sender, cancelPayload(flowId, "requests crossed; ours goes on")]);
      return;
    }
    if (current !== null && !crossed) {
      out.send.push([sender, cancelPayload(flowId, "busy with another verification")]);
      out.notices.push(
        `${nick} asked to verify you, but you are verifying ${current.nick}: refused.`,
      );
      return;
    }
    if (current !== null) {
      for (const device of peers(current))
        out.send.push([device, cancelPayload(current.flow, "requests crossed")]);
      out.notices.push(`You and ${nick} asked at the same time: going on with theirs.`);
    }
    let sas;
    try {
      sas = new SasVerification(this.olm, this.own, sender, flowId, ACCEPTER);
    } catch {
      this.flow = null;
      out.send.push([sender, cancelPayload(flowId, "unusable device keys")]);
      return;
    }
    /** @type {Flow} */
    const flow = {
      flow: flowId,
      nick,
      user: sender.user,
      stage: Stage.INCOMING,
      started: now,
      requested: [],
      sas,
      theirMacs: false,
    };
    this.flow = flow;
    if (crossed) await this._accept(flow, out);
    else
      out.notices.push(
        `${nick} (${sender.user}) wants to verify you: /verify yes to start, /verify no to refuse.`,
      );
  }
}
