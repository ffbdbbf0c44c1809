// Pairwise Olm sessions between this device and others, by the peer's Curve25519 key (a port of
// tlschat/e2e/olm.py). A peer may have several sessions with us (both sides started one at
// once): encryption uses the one that last worked, decryption tries each. Sessions per peer are
// bounded, since anyone holding our fallback key can start as many as it likes: the least
// recently used goes, and its id is remembered so that a replay of its pre-key message does not
// start it again from the fallback key.
//
// libolm reports a message decrypted before as a bad MAC, where vodozemac says "replay": so the
// digests of the messages decrypted lately are kept, and one seen again is an OlmReplay (a copy
// the server sent again after a lost connection), told apart from a forgery.

import { PICKLE_KEY as PICKLE, verifyOneTimeKey } from "./device.js";

export const MAX_SESSIONS_PER_PEER = 8;
export const MAX_RETIRED_PER_PEER = 64;
export const MAX_REMEMBERED_MESSAGES = 2048;
export const PRE_KEY = 0;
export const NORMAL = 1;

export class OlmError extends Error {}
/** No session with that device, and no one-time key to start one. */
export class NoOlmSession extends OlmError {}
/** A one-time key whose signature is not the claimed device's, or that starts no session. */
export class UntrustedOneTimeKey extends OlmError {}
/** A message that decrypts under no session with its claimed sender. */
export class OlmUndecryptable extends OlmError {}
/** A message decrypted before. */
export class OlmReplay extends OlmUndecryptable {}

/** @typedef {{type: number, body: string}} OlmCiphertext `body`: unpadded base64 */

export class OlmSessions {
  /** @param {import("./device.js").Device} device */
  constructor(device) {
    this.device = device;
    this.olm = device.olm;
    /** @type {Map<string, any[]>} per peer, most recently used first */
    this._sessions = new Map();
    /** @type {Map<string, string[]>} */
    this._retired = new Map();
    /** @type {string[]} digests of the messages decrypted lately, oldest first */
    this._seen = [];
    /** @type {Set<string>} */
    this._seenSet = new Set();
  }

  /** @param {string} peer @returns {boolean} */
  hasSession(peer) {
    return (this._sessions.get(peer)?.length ?? 0) > 0;
  }

  /**
   * Encrypt for `peer` (device keys verified), starting a session from `oneTimeKey` if there is
   * none yet.
   * @param {import("./device.js").DeviceKeys} peer
   * @param {import("./device.js").SignedOneTimeKey | null} oneTimeKey
   * @param {string} plaintext
   * @returns {OlmCiphertext}
   */
  encrypt(peer, oneTimeKey, plaintext) {
    let session = this._sessions.get(peer.curve25519)?.[0];
    if (session === undefined) {
      if (oneTimeKey === null)
        throw new NoOlmSession(`no session with device ${peer.deviceId} and no one-time key`);
      if (!verifyOneTimeKey(this.olm, peer, oneTimeKey))
        throw new UntrustedOneTimeKey(`one-time key not signed by device ${peer.deviceId}`);
      session = new this.olm.Session();
      try {
        session.create_outbound(this.device.account, peer.curve25519, oneTimeKey.key);
      } catch (problem) {
        session.free();
        throw new UntrustedOneTimeKey(`one-time key starts no session: ${problem}`);
      }
      this._keep(peer.curve25519, session);
    }
    const { type, body } = session.encrypt(plaintext);
    return { type, body };
  }

  /**
   * @param {string} sender the Curve25519 key of the device Olm says sent it
   * @param {OlmCiphertext} message
   * @returns {string} the plaintext
   */
  decrypt(sender, message) {
    const digest = this._digest(sender, message);
    if (this._seenSet.has(digest)) throw new OlmReplay("the message was already decrypted");
    const known = [...(this._sessions.get(sender) ?? [])];
    let plaintext;
    if (message.type === PRE_KEY) {
      const matching = known.filter((s) => matches(s, sender, message.body));
      plaintext = matching.length
        ? this._withExisting(sender, message, matching)
        : this._inbound(sender, message);
    } else if (message.type === NORMAL) {
      plaintext = this._withExisting(sender, message, known);
    } else {
      throw new OlmUndecryptable("not an Olm message type");
    }
    this._remember(digest);
    return plaintext;
  }

  /** @param {string} sender @param {OlmCiphertext} message @returns {string} */
  _inbound(sender, message) {
    const session = new this.olm.Session();
    let plaintext;
    try {
      session.create_inbound_from(this.device.account, sender, message.body);
      if (this._retired.get(sender)?.includes(session.session_id()))
        throw new OlmReplay("a pre-key message of a session already retired");
      plaintext = session.decrypt(message.type, message.body);
    } catch (problem) {
      session.free();
      if (problem instanceof OlmReplay) throw problem;
      throw new OlmUndecryptable(`starts no session: ${problem}`);
    }
    // The one-time key it used is spent (a fallback key stays: libolm keeps it).
    this.device.account.remove_one_time_keys(session);
    this._keep(sender, session);
    return plaintext;
  }

  /**
   * @param {string} sender
   * @param {OlmCiphertext} message
   * @param {any[]} sessions
   * @returns {string}
   */
  _withExisting(sender, message, sessions) {
    for (const session of sessions) {
      let plaintext;
      try {
        plaintext = session.decrypt(message.type, message.body);
      } catch {
        continue;
      }
      this._keep(sender, session);
      return plaintext;
    }
    throw new OlmUndecryptable("the message decrypts under no session with its sender");
  }

  /** Put `session` first for `peer`, retiring the least recently used beyond the bound. */
  _keep(/** @type {string} */ peer, /** @type {any} */ session) {
    const sessions = (this._sessions.get(peer) ?? []).filter((s) => s !== session);
    sessions.unshift(session);
    const retired = this._retired.get(peer) ?? [];
    for (const old of sessions.splice(MAX_SESSIONS_PER_PEER)) {
      retired.push(old.session_id());
      old.free();
    }
    if (retired.length) this._retired.set(peer, retired.slice(-MAX_RETIRED_PER_PEER));
    this._sessions.set(peer, sessions);
  }

  /** @param {string} sender @param {OlmCiphertext} message @returns {string} */
  _digest(sender, message) {
    const utility = new this.olm.Utility();
    try {
      return utility.sha256(`${sender}|${message.type}|${message.body}`);
    } finally {
      utility.free();
    }
  }

  /** @param {string} digest */
  _remember(digest) {
    this._seen.push(digest);
    this._seenSet.add(digest);
    for (const old of this._seen.splice(
      0,
      Math.max(0, this._seen.length - MAX_REMEMBERED_MESSAGES),
    ))
      this._seenSet.delete(old);
  }

  /** @returns {object} the state to seal: libolm pickles, retired ids, seen digests */
  toState() {
    return {
      sessions: Object.fromEntries(
        [...this._sessions].map(([peer, list]) => [peer, list.map((s) => s.pickle(PICKLE))]),
      ),
      retired: Object.fromEntries(this._retired),
      seen: this._seen,
    };
  }

  /**
   * @param {import("./device.js").Device} device
   * @param {any} state what `toState` gave
   * @returns {OlmSessions}
   */
  static fromState(device, state) {
    const sessions = new OlmSessions(device);
    for (const [peer, pickles] of Object.entries(state.sessions)) {
      sessions._sessions.set(
        peer,
        /** @type {string[]} */ (pickles).map((pickle) => {
          const session = new device.olm.Session();
          session.unpickle(PICKLE, pickle);
          return session;
        }),
      );
    }
    for (const [peer, ids] of Object.entries(state.retired))
      sessions._retired.set(peer, [.../** @type {string[]} */ (ids)]);
    for (const digest of state.seen) sessions._remember(String(digest));
    return sessions;
  }
}

/** @param {any} session @param {string} sender @param {string} body */
function matches(session, sender, body) {
  try {
    return session.matches_inbound_from(sender, body);
  } catch {
    return false;
  }
}
