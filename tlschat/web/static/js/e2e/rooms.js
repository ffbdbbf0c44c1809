// The encrypted rooms of this device (a port of tlschat/chat/client/crypto_rooms.py): which
// rooms are encrypted, the Megolm session it sends with in each, to which devices that
// session's key went, and whose device each received session came from. A room is named by its
// network and name together (`label`): a key shared for #a on one network decrypts nothing in
// #a on another. A room once known to be encrypted stays so here: a server that later calls it
// plain gets no plaintext from this browser.

import { fingerprintsEqual } from "../protocol/identity.js";
import { RoomSender } from "./megolm.js";
import { MissingRoomKey, RoomKeyMismatch } from "./room_keys.js";

// Sessions whose owners are remembered; past it the oldest are forgotten (their lines then wait
// for a key that will not come).
const MAX_OWNERS = 20_000;

/** @param {string} network @param {string} room @returns {string} */
export const label = (network, room) => `${network} ${room}`;

/**
 * The device a received Megolm session came from: its user and Curve25519 key.
 * @typedef {{fingerprint: string, curve25519: string}} SessionOwner
 */

/** @param {string} user @param {string} device @returns {string} a device's reference */
export const deviceRef = (user, device) => `${user} ${device}`;

export class RoomCrypto {
  /** @param {import("./olm.js").OlmLibrary} olm */
  constructor(olm) {
    this.olm = olm;
    /** @type {Set<string>} */
    this.encrypted = new Set();
    /** @type {Map<string, RoomSender>} */
    this.senders = new Map();
    /** @type {Map<string, Set<string>>} the devices each room's current session went to */
    this.shared = new Map();
    /** @type {Map<string, SessionOwner>} */
    this.owners = new Map();
  }

  /** @param {string} network @param {string} room */
  isEncrypted(network, room) {
    return this.encrypted.has(label(network, room));
  }

  /** @param {string} network @param {string} room @returns {boolean} this is news */
  markEncrypted(network, room) {
    const name = label(network, room);
    if (this.encrypted.has(name)) return false;
    this.encrypted.add(name);
    return true;
  }

  /**
   * The room's outbound session, started or rotated if due; with the new session's key when
   * there is one.
   * @param {string} network
   * @param {string} room
   * @param {number} now
   * @returns {{sender: RoomSender, newKey: import("./megolm.js").RoomKey | null}}
   */
  sender(network, room, now) {
    const name = label(network, room);
    let sender = this.senders.get(name);
    if (sender === undefined) {
      sender = RoomSender.start(this.olm, name, now);
      this.senders.set(name, sender);
    } else if (sender.shouldRotate(now)) {
      sender.rotate(now);
    } else {
      return { sender, newKey: null };
    }
    this.shared.set(name, new Set());
    return { sender, newKey: sender.roomKey() };
  }

  /**
   * Rotate before the next line if the session went to a device no longer in the room.
   * @param {string} network
   * @param {string} room
   * @param {Map<string, Set<string>>} members each member's device ids, as last verified
   */
  checkMembers(network, room, members) {
    const name = label(network, room);
    const sender = this.senders.get(name);
    if (sender === undefined) return;
    for (const ref of this.shared.get(name) ?? []) {
      const [fingerprint, device] = ref.split(" ");
      if (!members.get(fingerprint)?.has(device)) {
        sender.memberLeft();
        return;
      }
    }
  }

  /**
   * A member left: rotate before the next line if they had our key.
   * @param {string} network
   * @param {string} room
   * @param {string} fingerprint
   * @returns {boolean} it will rotate
   */
  memberLeft(network, room, fingerprint) {
    const name = label(network, room);
    const sender = this.senders.get(name);
    const shared = [...(this.shared.get(name) ?? [])];
    if (sender === undefined || !shared.some((ref) => ref.split(" ")[0] === fingerprint))
      return false;
    sender.memberLeft();
    return true;
  }

  /** @param {string} network @param {string} room @param {string[]} refs @returns {string[]} */
  unshared(network, room, refs) {
    const have = this.shared.get(label(network, room)) ?? new Set();
    return refs.filter((ref) => !have.has(ref));
  }

  /** @param {string} network @param {string} room @param {string[]} refs */
  markShared(network, room, refs) {
    const name = label(network, room);
    const have = this.shared.get(name) ?? new Set();
    for (const ref of refs) have.add(ref);
    this.shared.set(name, have);
  }

  /**
   * This device's own new session: its lines decrypt here too.
   * @param {import("./room_keys.js").RoomKeys} keys
   * @param {SessionOwner} owner
   * @param {import("./megolm.js").RoomKey} key
   */
  ownSession(keys, owner, key) {
    keys.importKey(owner.curve25519, key);
    this.owners.set(key.sessionId, owner);
    this._boundOwners();
  }

  /**
   * A `room_key` from `owner`'s device. Throws (MegolmError) for a key bound elsewhere.
   * @param {import("./room_keys.js").RoomKeys} keys
   * @param {SessionOwner} owner
   * @param {import("./payloads.js").SharedRoomKey} shared
   * @returns {boolean} lines waiting for it may decrypt now
   */
  importShared(keys, owner, shared) {
    const held = this.owners.get(shared.sessionId);
    if (
      held !== undefined &&
      (held.fingerprint !== owner.fingerprint || held.curve25519 !== owner.curve25519)
    )
      throw new RoomKeyMismatch("that session's key came from another device before");
    const fresh = keys.importKey(owner.curve25519, {
      room: label(shared.network, shared.room),
      sessionId: shared.sessionId,
      sessionKey: shared.sessionKey,
    });
    this.owners.set(shared.sessionId, owner);
    this._boundOwners();
    return fresh;
  }

  /**
   * The sealed line of a Megolm room line that `sender` (a fingerprint) claims.
   * @param {import("./room_keys.js").RoomKeys} keys
   * @param {string} network
   * @param {string} room
   * @param {string} sender
   * @param {import("./frames.js").MegolmLine} line
   * @returns {import("./room_keys.js").MegolmPlaintext}
   */
  decrypt(keys, network, room, sender, line) {
    const owner = this.owners.get(line.session);
    if (owner === undefined) throw new MissingRoomKey("no key for that session yet");
    if (!fingerprintsEqual(owner.fingerprint, sender))
      throw new RoomKeyMismatch("the line's session belongs to another user's device");
    return keys.decrypt(label(network, room), owner.curve25519, line.session, line.ct);
  }

  _boundOwners() {
    while (this.owners.size > MAX_OWNERS)
      this.owners.delete(/** @type {string} */ (this.owners.keys().next().value));
  }

  toState() {
    return {
      encrypted: [...this.encrypted].sort(),
      senders: Object.fromEntries([...this.senders].map(([name, s]) => [name, s.toState()])),
      shared: Object.fromEntries([...this.shared].map(([name, refs]) => [name, [...refs].sort()])),
      owners: Object.fromEntries(
        [...this.owners].map(([id, o]) => [id, [o.fingerprint, o.curve25519]]),
      ),
    };
  }

  /** @param {import("./olm.js").OlmLibrary} olm @param {any} state */
  static fromState(olm, state) {
    const rooms = new RoomCrypto(olm);
    for (const name of state.encrypted) rooms.encrypted.add(String(name));
    for (const [name, sender] of Object.entries(state.senders))
      rooms.senders.set(name, RoomSender.fromState(olm, sender));
    for (const [name, refs] of Object.entries(state.shared))
      rooms.shared.set(name, new Set(/** @type {string[]} */ (refs).map(String)));
    for (const [id, [fingerprint, curve25519]] of Object.entries(state.owners))
      rooms.owners.set(id, { fingerprint: String(fingerprint), curve25519: String(curve25519) });
    return rooms;
  }
}
