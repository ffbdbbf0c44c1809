// The users this user verified (SAS, `/verify`): their identity fingerprints, with the nick each
// had then and when (a port of tlschat/chat/client/verified.py). Kept sealed in IndexedDB with
// the rest of the device's state. A lost entry would show a verified user as unverified, a forged
// one the reverse: a damaged ledger is refused whole, never half read.

import { FINGERPRINT } from "./payloads.js";

export const MAX_ENTRIES = 10_000;
/** A nick, as section 22 bounds it. */
export const NICK = /^[A-Za-z0-9_\-[\]{}|^`]{1,24}$/;

export class DamagedVerifiedKeys extends Error {}

/** @typedef {{nick: string, at: number}} VerifiedUser */

export class VerifiedKeys {
  constructor(maxEntries = MAX_ENTRIES) {
    this.maxEntries = maxEntries;
    /** @type {Map<string, VerifiedUser>} */
    this._entries = new Map();
  }

  get size() {
    return this._entries.size;
  }

  /** @param {string} fingerprint */
  isVerified(fingerprint) {
    return this._entries.has(fingerprint);
  }

  /**
   * The keys verified under `nick` (case-insensitively): a nick now shown with another key is
   * one to warn about.
   * @param {string} nick
   * @returns {string[]}
   */
  fingerprintsFor(nick) {
    const folded = nick.toLowerCase();
    return [...this._entries]
      .filter(([, user]) => user.nick.toLowerCase() === folded)
      .map(([fingerprint]) => fingerprint)
      .sort();
  }

  /**
   * `fingerprint` was verified as `nick` at `now`. When full, the oldest verification is
   * forgotten: that user shows as unverified again, never the reverse.
   * @param {string} fingerprint
   * @param {string} nick
   * @param {number} now
   */
  add(fingerprint, nick, now) {
    check(fingerprint, nick, now);
    this._entries.delete(fingerprint);
    if (this._entries.size >= this.maxEntries) {
      const oldest = [...this._entries].sort(
        (a, b) => a[1].at - b[1].at || (a[0] < b[0] ? -1 : 1),
      )[0];
      this._entries.delete(oldest[0]);
    }
    this._entries.set(fingerprint, { nick, at: now });
  }

  toState() {
    return {
      version: 1,
      verified: [...this._entries]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([fingerprint, user]) => ({ fingerprint, nick: user.nick, at: user.at })),
    };
  }

  /** @param {any} state @returns {VerifiedKeys} */
  static fromState(state) {
    if (
      state === null ||
      typeof state !== "object" ||
      state.version !== 1 ||
      !Array.isArray(state.verified)
    )
      throw new DamagedVerifiedKeys("the verified keys are not version 1");
    if (state.verified.length > MAX_ENTRIES)
      throw new DamagedVerifiedKeys("too many verified keys");
    const ledger = new VerifiedKeys();
    for (const entry of state.verified) {
      const { fingerprint, nick, at } = entry ?? {};
      try {
        check(fingerprint, nick, at);
      } catch (problem) {
        throw new DamagedVerifiedKeys(`a damaged entry: ${/** @type {Error} */ (problem).message}`);
      }
      if (ledger._entries.has(fingerprint)) throw new DamagedVerifiedKeys(`${fingerprint} twice`);
      ledger._entries.set(fingerprint, { nick, at });
    }
    return ledger;
  }
}

/** @param {unknown} fingerprint @param {unknown} nick @param {unknown} at */
function check(fingerprint, nick, at) {
  if (typeof fingerprint !== "string" || !FINGERPRINT.test(fingerprint))
    throw new RangeError("not a fingerprint");
  if (typeof nick !== "string" || (nick && !NICK.test(nick))) throw new RangeError("not a nick");
  if (typeof at !== "number" || !Number.isFinite(at) || at < 0) throw new RangeError("not a time");
}
