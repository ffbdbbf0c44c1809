// What the browser keeps for this origin: the identity key pair in IndexedDB (the CryptoKey
// objects themselves, which structured clone stores without ever exposing the private key's
// bytes: it is made non-extractable), and in localStorage the nick, the server key pinned for
// this origin (localStorage is the origin's own, so one pin per server origin), and the ledger
// of lines shown per network. Browser-only glue, the one module that touches storage.

import { ClientIdentity } from "../protocol/identity.js";
import { SeenLedger } from "./seen.js";

const DATABASE = "tlschat";
const KEYS = "keys";
const IDENTITY = "identity";
const NICK = "tlschat.nick";
const PIN = "tlschat.pin";
const SEEN = "tlschat.seen.";

/** @returns {Promise<IDBDatabase>} */
function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(KEYS);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * This browser's identity: the key pair stored for this origin, or a new Ed25519 one whose
 * private key WebCrypto never lets out. Two tabs opening at once both make one, and the first
 * stored wins for both: the check and the store happen in one transaction.
 * @returns {Promise<ClientIdentity>}
 */
export async function loadIdentity() {
  const fresh = /** @type {CryptoKeyPair} */ (
    await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])
  );
  const database = await openDatabase();
  try {
    const pair = await new Promise((resolve, reject) => {
      const transaction = database.transaction(KEYS, "readwrite");
      const keys = transaction.objectStore(KEYS);
      const found = keys.get(IDENTITY);
      found.onsuccess = () => {
        if (found.result) resolve(found.result);
        else keys.add(fresh, IDENTITY).onsuccess = () => resolve(fresh);
      };
      transaction.onerror = () => reject(transaction.error);
    });
    return ClientIdentity.fromKeyPair(/** @type {CryptoKeyPair} */ (pair));
  } finally {
    database.close();
  }
}

/** @returns {string} the nick chosen before, or "" */
export function loadNick() {
  return localStorage.getItem(NICK) ?? "";
}

/** @param {string} nick */
export function saveNick(nick) {
  localStorage.setItem(NICK, nick);
}

/** @returns {string} the server key pinned for this origin, or "" */
export function loadPin() {
  return localStorage.getItem(PIN) ?? "";
}

/** @param {string} fingerprint */
export function savePin(fingerprint) {
  localStorage.setItem(PIN, fingerprint);
}

/**
 * What this browser showed on `network` (an empty ledger the first time). A damaged entry starts
 * a ledger whose horizon is now: every line signed before is then "not new", so nothing lost
 * lets a replay pass as new.
 * @param {string} network
 * @param {number} nowMs
 * @returns {SeenLedger}
 */
export function loadLedger(network, nowMs) {
  const text = localStorage.getItem(SEEN + network);
  if (text !== null) {
    try {
      return SeenLedger.fromJSON(JSON.parse(text), nowMs);
    } catch {
      // Damaged: start again from now, below.
    }
  }
  const ledger = new SeenLedger();
  ledger.horizonMs = text === null ? 0 : nowMs;
  return ledger;
}

/**
 * @param {string} network
 * @param {SeenLedger} ledger
 * @returns {boolean} whether it was stored (a full quota keeps it in memory only, this page)
 */
export function saveLedger(network, ledger) {
  try {
    localStorage.setItem(SEEN + network, JSON.stringify(ledger));
    ledger.dirty = false;
    return true;
  } catch {
    return false;
  }
}
