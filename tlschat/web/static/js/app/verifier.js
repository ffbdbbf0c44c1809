// What a ✓ promises, checked for each line received (docs/PROTOCOL.md section 21, recipient
// checks; a port of chat/verify.py): its sender's key signed exactly it, for the network the
// page is connected to, for where it is shown (a room joined, or this browser's own key), and,
// for a live line, it is new: never shown before on this network (the ledger, kept across
// reloads) and signed recently. The checks that need no memory are envelope.js's.

import { checkMessage } from "../protocol/envelope.js";
import { SeenLedger } from "./seen.js";

export const REPLAYED = "replayed: shown before";
/** The (sender, counter) pairs shown lately: a replay after a reconnect shows what was missed. */
export const MAX_REMEMBERED_SHOWN = 10_000;

/**
 * @typedef {{verified: boolean, problem: string, duplicate: boolean, late: boolean}} Verdict
 *   `duplicate`: exactly this line was shown in this page already (a re-delivery after a
 *   reconnect). `late`: verified, but signed longer ago than a live line may be: history.
 */

export class Verifier {
  /** @param {string} ownFingerprint */
  constructor(ownFingerprint) {
    this.ownFingerprint = ownFingerprint;
    this.network = "";
    this.ledger = new SeenLedger();
    /** @type {Set<string>} */
    this._shown = new Set();
  }

  /**
   * The connection's server key is `network`; `ledger` is what was shown on it before.
   * @param {string} network
   * @param {SeenLedger} ledger
   */
  useNetwork(network, ledger) {
    if (network !== this.network) {
      this.network = network;
      this.ledger = ledger;
      this._shown.clear();
    }
  }

  /**
   * This client's own line: it comes back only in a history replay, where it is nothing new.
   * @param {import("../protocol/envelope.js").SignedMessage} message
   * @param {number} now seconds
   */
  rememberOwn(message, now) {
    this.ledger.record(
      message.sender,
      message.counter,
      message.timestampMs,
      Math.floor(now * 1000),
    );
    this._remember(message.sender, message.counter);
  }

  /**
   * @param {unknown} sender
   * @param {unknown} counter
   * @returns {boolean}
   */
  wasShown(sender, counter) {
    return (
      typeof sender === "string" &&
      typeof counter === "number" &&
      this._shown.has(`${sender}:${counter}`)
    );
  }

  /**
   * The verdict on a live line (`historyRoom` empty) or a history entry of that room.
   * @param {import("../protocol/envelope.js").SignedMessage} message
   * @param {Uint8Array} keyDer
   * @param {string[]} rooms the rooms joined
   * @param {string} historyRoom
   * @param {number} now seconds
   * @returns {Promise<Verdict>}
   */
  async check(message, keyDer, rooms, historyRoom, now) {
    const nowMs = Math.floor(now * 1000);
    const { verified, problem } = await checkMessage(message, keyDer, {
      network: this.network,
      ownFingerprint: this.ownFingerprint,
      rooms,
      historyRoom,
      now,
    });
    if (!verified) return { verified, problem, duplicate: false, late: false };
    if (this.wasShown(message.sender, message.counter)) {
      return { verified: true, problem: "", duplicate: true, late: false };
    }
    let late = false;
    if (!historyRoom) {
      if (this.ledger.wasShown(message.sender, message.counter)) {
        return { verified: false, problem: REPLAYED, duplicate: false, late: false };
      }
      late = this.ledger.isStale(message.timestampMs, nowMs);
    }
    this.ledger.record(message.sender, message.counter, message.timestampMs, nowMs);
    this._remember(message.sender, message.counter);
    return { verified: true, problem: "", duplicate: false, late };
  }

  /** @param {string} sender @param {number} counter */
  _remember(sender, counter) {
    this._shown.add(`${sender}:${counter}`);
    if (this._shown.size > MAX_REMEMBERED_SHOWN) {
      this._shown.delete(/** @type {string} */ (this._shown.values().next().value));
    }
  }
}
