// `/verify` and `/devices` (a port of chat/client/verifying.py): the user's own devices, and SAS
// verification of another user over to-device payloads (e2e/verification.js runs the flow).
// Payloads for another device go Olm-encrypted in `to_device` frames; one for a device there is
// no Olm session with waits for a one-time key (`keys_claim`), and later payloads for that
// device wait behind it, so that each device gets them in order.

import { VERIFIED } from "../e2e/crypto.js";
import { refOf } from "../e2e/directory.js";
import { DEVICE_ID, toDeviceFrames } from "../e2e/frames.js";
import { Stage, Verifications } from "../e2e/verification.js";
import { ClientDecrypting } from "./chat_decrypting.js";
import { NICK_PATTERN, error, makeLine, notice } from "./lines.js";

export const NO_KEYS = "this page has no device keys (end-to-end encryption is off)";
const NOT_CONNECTED = "not connected; try again once connected";

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../e2e/device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("../e2e/verification.js").VerificationStep} VerificationStep */

export class ClientVerifying extends ClientDecrypting {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   * @param {import("../e2e/crypto.js").ClientCrypto | null} crypto
   */
  constructor(identity, nick, crypto) {
    super(identity, nick, crypto);
    this.verifications = crypto === null ? null : new Verifications(crypto.olm, crypto.ownKeys);
    /** @type {[DeviceKeys, Record<string, unknown>][]} payloads waiting for an Olm session */
    this._held = [];
    this._listingDevices = false;
    /** @type {[string, string] | null} a /verify waiting for the device list of (nick, fp) */
    this._verifyAsked = null;
    /** @type {Map<string, string>} the nick each fingerprint had in its flow */
    this._verifyNicks = new Map();
  }

  prepareReconnect() {
    super.prepareReconnect();
    this._listingDevices = false;
    this._verifyAsked = null;
  }

  /** @param {number} now @returns {Promise<Line[]>} */
  async tick(now) {
    const lines = await super.tick(now);
    if (this.verifications === null) return lines;
    return [...this._apply(this.verifications.tick(now), now), ...lines];
  }

  // --- commands ------------------------------------------------------------------------------

  /**
   * `/verify NICK`, `/verify yes`, `/verify no`.
   * @param {string} args
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async verifyCommand(args, now) {
    if (this.crypto === null || this.verifications === null)
      return error(`cannot verify: ${NO_KEYS}`, now);
    const word = args.toLowerCase();
    if (word === "yes" || word === "no")
      return this._apply(await this.verifications.answer(word === "yes", now), now);
    if (!NICK_PATTERN.test(args))
      return error("usage: /verify NICK, then /verify yes or /verify no", now);
    if (!this._welcomed) return error(`cannot verify: ${NOT_CONNECTED}`, now);
    const fingerprint = this.directory.get(args.toLowerCase());
    if (fingerprint === undefined) return error(`unknown nick ${args}; /whois ${args} first`, now);
    if (this.crypto.directory.known(fingerprint))
      return this._startVerification(args, fingerprint, now);
    this._verifyAsked = [args, fingerprint];
    this.outbox.push(...this.crypto.directory.query([fingerprint], now));
    return notice(`Asking the server for the devices of ${args}…`, now);
  }

  /**
   * `/devices` lists this user's devices; `/devices remove ID` removes one.
   * @param {string} args
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async devicesCommand(args, now) {
    if (this.crypto === null) return error(`no devices: ${NO_KEYS}`, now);
    if (!this._welcomed) return error(NOT_CONNECTED, now);
    const words = args.split(/\s+/).filter(Boolean);
    if (!words.length) {
      const own = this.identity.fingerprint;
      this.crypto.directory.forget(own);
      this.outbox.push(...this.crypto.directory.query([own], now));
      this._listingDevices = true;
      return [];
    }
    if (words.length !== 2 || words[0].toLowerCase() !== "remove" || !DEVICE_ID.test(words[1]))
      return error("usage: /devices, or /devices remove DEVICE_ID", now);
    if (words[1] === this.crypto.deviceId)
      return error("that is this device: remove it from another one", now);
    this.outbox.push({ type: "device_remove", device: words[1] });
    return notice(`Asked the server to remove device ${words[1]}`, now);
  }

  /**
   * The question the user has to answer now, for the page's dialog: a request to accept, or
   * emoji and numbers to compare; null when there is none.
   * @returns {{flow: string, stage: "request" | "compare", nick: string, fingerprint: string,
   *            emoji: [string, string][], numbers: number[]} | null}
   */
  verificationPrompt() {
    const flow = this.verifications?.flow;
    if (flow === undefined || flow === null || !this.verifications?.waitingForAnswer) return null;
    const base = { flow: flow.flow, nick: flow.nick, fingerprint: flow.user };
    if (flow.stage === Stage.INCOMING) return { ...base, stage: "request", emoji: [], numbers: [] };
    const sas = /** @type {import("../e2e/sas.js").SasVerification} */ (flow.sas);
    return { ...base, stage: "compare", emoji: sas.emoji(), numbers: sas.decimals() };
  }

  // --- answers -------------------------------------------------------------------------------

  /**
   * A user's device list came: what a /devices or a /verify waited for.
   * @param {import("../e2e/directory.js").KeysAnswer} answer
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _devicesAnswered(answer, now) {
    /** @type {Line[]} */
    const lines = [];
    const crypto = this.crypto;
    if (crypto === null) return lines;
    if (this._listingDevices && answer.fingerprint === this.identity.fingerprint) {
      this._listingDevices = false;
      lines.push(
        makeLine("info", now, "Your devices:"),
        makeLine("info", now, `  ${crypto.deviceId} (this device)`),
      );
      for (const device of answer.devices)
        lines.push(makeLine("info", now, `  ${device.deviceId}`));
      lines.push(makeLine("info", now, "  /devices remove ID removes one"));
    }
    if (this._verifyAsked !== null && this._verifyAsked[1] === answer.fingerprint) {
      const [nick, fingerprint] = this._verifyAsked;
      this._verifyAsked = null;
      lines.push(...this._startVerification(nick, fingerprint, now));
    }
    return lines;
  }

  /** @param {string} nick @param {string} fingerprint @param {number} now @returns {Line[]} */
  _startVerification(nick, fingerprint, now) {
    const crypto = /** @type {import("../e2e/crypto.js").ClientCrypto} */ (this.crypto);
    const verifications = /** @type {Verifications} */ (this.verifications);
    this._verifyNicks.set(fingerprint, nick);
    return this._apply(verifications.start(nick, crypto.directory.devices(fingerprint), now), now);
  }

  /**
   * A `verify_*` payload from `device` (verified keys, checked envelope).
   * @param {DeviceKeys} device
   * @param {string} kind
   * @param {Record<string, unknown>} fields
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _verificationPayload(device, kind, fields, now) {
    if (this.verifications === null) return [];
    const nick = this._nickOf(device.user);
    if (!this._verifyNicks.has(device.user)) this._verifyNicks.set(device.user, nick);
    const step = await this.verifications.receive(device, nick, { ...fields, type: kind }, now);
    return this._apply(step, now);
  }

  /**
   * Show a verification step, keep its outcome, send its payloads.
   * @param {VerificationStep} step
   * @param {number} now
   * @returns {Line[]}
   */
  _apply(step, now) {
    const lines = step.notices.map((text) => makeLine("notice", now, text));
    const crypto = this.crypto;
    if (step.verified !== null && crypto !== null) {
      let nick = this._verifyNicks.get(step.verified) ?? "";
      if (!NICK_PATTERN.test(nick)) nick = this._nickOf(step.verified);
      if (NICK_PATTERN.test(nick)) {
        crypto.verified.add(step.verified, nick, now);
        crypto.mark(VERIFIED);
      } else
        lines.push(...error("the verified key could not be kept: no nick is known for it", now));
    }
    return [...lines, ...this._sendToDevices(step.send, now)];
  }

  // --- to-device payloads --------------------------------------------------------------------

  /**
   * Olm-encrypt each payload for its device and send it, or hold it until there is a session.
   * @param {[DeviceKeys, Record<string, unknown>][]} payloads
   * @param {number} now
   * @returns {Line[]}
   */
  _sendToDevices(payloads, now) {
    const crypto = this.crypto;
    if (crypto === null || !payloads.length) return [];
    const directory = crypto.directory;
    /** @type {Line[]} */
    const lines = [];
    const held = new Set(this._held.map(([device]) => refOf(device)));
    const ready = [];
    /** @type {DeviceKeys[]} */
    const claim = [];
    for (const [device, payload] of payloads) {
      const ref = refOf(device);
      if (held.has(ref) || crypto.needsSession(device)) {
        if (directory.isUnreachable(device)) {
          lines.push(...error(`device ${device.deviceId} cannot be reached: no keys`, now));
          continue;
        }
        this._held.push([device, payload]);
        held.add(ref);
        if (!directory.isClaiming(device) && crypto.needsSession(device)) claim.push(device);
        continue;
      }
      const { type, ...fields } = payload;
      try {
        ready.push(crypto.encryptFor(device, String(type), fields));
      } catch (problem) {
        if (!(problem instanceof Error) || problem instanceof TypeError) throw problem;
        lines.push(...error(`not sent to device ${device.deviceId}: ${problem.message}`, now));
      }
    }
    this.outbox.push(...directory.claim(claim), ...toDeviceFrames(ready));
    return lines;
  }

  /** One-time keys came: what waited for them goes (or is given up), in order. @param {number} now */
  _flushHeld(now) {
    const held = this._held;
    this._held = [];
    return this._sendToDevices(held, now);
  }
}
