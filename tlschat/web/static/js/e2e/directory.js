// The other devices this device encrypts for: the server's key directory as this browser
// verified it (a port of tlschat/chat/client/crypto_directory.py). An entry of `keys` is used
// only if its `key` is the identity key of the fingerprint it is listed for and that key signed
// it; a one-time key from `claimed` only if the device it is for signed it. The lists are a
// cache: a `keys_changed`, a `stale` refusal or a new connection forgets them.

import { FrameError, fieldBase64 } from "../protocol/frames.js";
import { PeerIdentity, fingerprintsEqual } from "../protocol/identity.js";
import { MAX_KEY_BASE64 } from "../protocol/envelope.js";
import { verifyDeviceKeys, verifyOneTimeKey } from "./device.js";
import {
  MAX_CLAIMS,
  MAX_DEVICES_PER_KEY,
  MAX_QUERY,
  fieldDevice,
  fieldFingerprint,
  fieldList,
  parseDeviceKeys,
  parseOneTimeKey,
} from "./frames.js";
import { deviceRef } from "./rooms.js";

/** @typedef {import("./device.js").DeviceKeys} DeviceKeys */
/** @typedef {import("../protocol/frames.js").Frame} Frame */
/**
 * What a `keys` frame said about one user: the devices that verified, and how many did not.
 * @typedef {{fingerprint: string, devices: DeviceKeys[], rejected: number}} KeysAnswer
 */

/** @param {DeviceKeys} device */
export const refOf = (device) => deviceRef(device.user, device.deviceId);

export class DeviceDirectory {
  /**
   * @param {import("./olm.js").OlmLibrary} olm
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} ownDevice
   */
  constructor(olm, identity, ownDevice) {
    this.olm = olm;
    this.identity = identity;
    this.ownDevice = ownDevice;
    /** @type {Map<string, DeviceKeys[]>} verified lists by fingerprint, our own device left out */
    this.lists = new Map();
    /** @type {Map<string, number>} users asked about and not answered, with when */
    this.querying = new Map();
    /** @type {Set<string>} */
    this.claiming = new Set();
    /** @type {Map<string, import("./device.js").SignedOneTimeKey>} */
    this.claimed = new Map();
    // Devices the server had no usable one-time key for: the line being prepared goes without
    // them; the next line asks again.
    /** @type {Set<string>} */
    this.unreachable = new Set();
  }

  /** @param {string} fingerprint */
  known(fingerprint) {
    return this.lists.has(fingerprint);
  }

  /** @param {string} fingerprint @returns {DeviceKeys[]} */
  devices(fingerprint) {
    return this.lists.get(fingerprint) ?? [];
  }

  /** @param {string} fingerprint @param {string} deviceId @returns {DeviceKeys | null} */
  device(fingerprint, deviceId) {
    return this.devices(fingerprint).find((d) => d.deviceId === deviceId) ?? null;
  }

  /** Ask again before encrypting for `fingerprint`. @param {string} fingerprint */
  forget(fingerprint) {
    this.lists.delete(fingerprint);
    for (const ref of [...this.unreachable])
      if (ref.split(" ")[0] === fingerprint) this.unreachable.delete(ref);
  }

  /** Nothing asked is answered on another connection: every list is asked again. */
  connectionLost() {
    this.lists.clear();
    this.querying.clear();
    this.claiming.clear();
    this.unreachable.clear();
  }

  /**
   * `keys_query` frames for the users not known and not asked about already.
   * @param {string[]} fingerprints
   * @param {number} now
   * @returns {Frame[]}
   */
  query(fingerprints, now) {
    const wanted = [...new Set(fingerprints)].filter(
      (fp) => !this.querying.has(fp) && !this.lists.has(fp),
    );
    for (const fp of wanted) this.querying.set(fp, now);
    /** @type {Frame[]} */
    const frames = [];
    for (let start = 0; start < wanted.length; start += MAX_QUERY)
      frames.push({ type: "keys_query", fingerprints: wanted.slice(start, start + MAX_QUERY) });
    return frames;
  }

  /**
   * A `keys` frame: one user's devices, each checked before it is kept.
   * @param {Frame} frame
   * @returns {Promise<KeysAnswer>}
   */
  async receiveKeys(frame) {
    const fingerprint = fieldFingerprint(frame, "fingerprint");
    this.querying.delete(fingerprint);
    let entries;
    try {
      entries = fieldList(frame, "devices", MAX_DEVICES_PER_KEY);
    } catch (problem) {
      // An unusable answer leaves an empty list: a line for that user is refused, not stuck.
      this.lists.set(fingerprint, []);
      throw problem;
    }
    /** @type {Map<string, DeviceKeys>} */
    const kept = new Map();
    let rejected = 0;
    for (const entry of entries) {
      const keys = await this._checked(fingerprint, entry);
      if (keys === null) rejected += 1;
      else if (keys.deviceId !== this.ownDevice && !kept.has(keys.deviceId))
        kept.set(keys.deviceId, keys);
    }
    const devices = [...kept.values()];
    this.lists.set(fingerprint, devices);
    for (const ref of [...this.claimed.keys()]) {
      const [fp, device] = ref.split(" ");
      if (fp === fingerprint && !kept.has(device)) this.claimed.delete(ref);
    }
    return { fingerprint, devices, rejected };
  }

  /**
   * The entry's device keys if they verify under the identity key of `fingerprint`.
   * @param {string} fingerprint
   * @param {Frame} entry
   * @returns {Promise<DeviceKeys | null>}
   */
  async _checked(fingerprint, entry) {
    const own = fingerprintsEqual(fingerprint, this.identity.fingerprint);
    let keys;
    let owner;
    try {
      keys = parseDeviceKeys(entry);
      // Our own devices are checked against the key we hold, whatever the entry says.
      const spki = own ? this.identity.spki : fieldBase64(entry, "key", MAX_KEY_BASE64);
      owner = await PeerIdentity.fromSpki(spki);
    } catch {
      return null; // malformed, or a key of no accepted type: never used
    }
    if (!fingerprintsEqual(keys.user, fingerprint)) return null;
    return (await verifyDeviceKeys(keys, owner)) ? keys : null;
  }

  /**
   * `keys_claim` frames for the devices not being claimed already.
   * @param {DeviceKeys[]} devices
   * @returns {Frame[]}
   */
  claim(devices) {
    const wanted = [...new Set(devices.map(refOf))].filter((ref) => !this.claiming.has(ref));
    for (const ref of wanted) this.claiming.add(ref);
    /** @type {Frame[]} */
    const frames = [];
    for (let start = 0; start < wanted.length; start += MAX_CLAIMS) {
      frames.push({
        type: "keys_claim",
        devices: wanted.slice(start, start + MAX_CLAIMS).map((ref) => {
          const [fingerprint, device] = ref.split(" ");
          return { fingerprint, device };
        }),
      });
    }
    return frames;
  }

  /**
   * A `claimed` frame: keep each one-time key its device signed.
   * @param {Frame} frame
   * @returns {DeviceKeys[]} the devices asked for that got no usable key
   */
  receiveClaimed(frame) {
    /** @type {DeviceKeys[]} */
    const failed = [];
    for (const entry of fieldList(frame, "keys", MAX_CLAIMS)) {
      const fingerprint = fieldFingerprint(entry, "fingerprint");
      const deviceId = fieldDevice(entry);
      const ref = deviceRef(fingerprint, deviceId);
      if (!this.claiming.has(ref)) continue; // not asked for: a server cannot push keys on us
      this.claiming.delete(ref);
      const device = this.device(fingerprint, deviceId);
      const key = this._claimedKey(device, entry.one_time_key);
      if (key !== null) this.claimed.set(ref, key);
      else if (device !== null) {
        this.unreachable.add(ref);
        failed.push(device);
      }
    }
    return failed;
  }

  /**
   * @param {DeviceKeys | null} device
   * @param {unknown} raw
   * @returns {import("./device.js").SignedOneTimeKey | null}
   */
  _claimedKey(device, raw) {
    if (device === null || raw === null || typeof raw !== "object" || Array.isArray(raw))
      return null;
    let key;
    try {
      key = parseOneTimeKey(/** @type {Frame} */ (raw));
    } catch (problem) {
      if (problem instanceof FrameError) return null;
      throw problem;
    }
    return verifyOneTimeKey(this.olm, device, key) ? key : null;
  }

  /** @param {DeviceKeys} device */
  takeClaimed(device) {
    const key = this.claimed.get(refOf(device)) ?? null;
    this.claimed.delete(refOf(device));
    return key;
  }

  /** @param {DeviceKeys} device */
  hasClaimed(device) {
    return this.claimed.has(refOf(device));
  }

  /** @param {DeviceKeys} device */
  isUnreachable(device) {
    return this.unreachable.has(refOf(device));
  }

  /** @param {DeviceKeys} device */
  isClaiming(device) {
    return this.claiming.has(refOf(device));
  }
}
