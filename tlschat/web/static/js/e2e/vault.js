// Where this browser keeps its device (browser-only glue, the e2e layer's one module that
// touches storage): IndexedDB holds an AES-256-GCM key made non-extractable (structured clone
// stores the CryptoKey without its bytes ever being readable by script), and each state of the
// device sealed under it (codec.js). One tab at a time holds the device: two tabs driving one Olm
// account would each move its ratchets, and their peers would lose them. A second tab chats
// without end-to-end encryption and says why.

import { seal, unseal } from "./codec.js";
import { ClientCrypto, STATES } from "./crypto.js";
import { loadOlm } from "./olm.js";

const DATABASE = "tlschat-e2e";
const STORE = "state";
const VAULT_KEY = "vault-key";
const LOCK = "tlschat-e2e-device";

/** Why this page has no device (another tab holds it, or the browser lacks what it needs). */
export class NoDevice extends Error {}

/** @returns {Promise<IDBDatabase>} */
function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @template T
 * @param {IDBDatabase} database
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore, done: (value: T) => void) => void} work
 * @returns {Promise<T>}
 */
function transact(database, mode, work) {
  return new Promise((resolve, reject) => {
    const transaction = database.transaction(STORE, mode);
    /** @type {T} */
    let result;
    work(transaction.objectStore(STORE), (value) => (result = value));
    transaction.oncomplete = () => resolve(result);
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/** Hold the device for as long as this page lives; false if another tab holds it. */
function holdDevice() {
  if (!("locks" in navigator)) return Promise.resolve(true);
  return new Promise((resolve) => {
    navigator.locks.request(LOCK, { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      // Released when the page goes away.
      return lock === null ? undefined : new Promise(() => {});
    });
  });
}

export class Vault {
  /**
   * @param {IDBDatabase} database
   * @param {CryptoKey} key
   */
  constructor(database, key) {
    this.database = database;
    this.key = key;
  }

  /**
   * The device of this browser, made on first use; NoDevice when this page cannot hold one.
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @returns {Promise<{vault: Vault, crypto: ClientCrypto}>}
   */
  static async openDevice(identity) {
    if (!(await holdDevice())) throw new NoDevice("another tab of this browser holds its device");
    const olm = await loadOlm();
    const database = await openDatabase();
    const fresh = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
      "encrypt",
      "decrypt",
    ]);
    // The first key stored wins: the check and the store are one transaction.
    const key = await transact(database, "readwrite", (store, done) => {
      const found = store.get(VAULT_KEY);
      found.onsuccess = () => {
        if (found.result) done(found.result);
        else store.add(fresh, VAULT_KEY).onsuccess = () => done(fresh);
      };
    });
    const vault = new Vault(database, key);
    return { vault, crypto: await ClientCrypto.open(olm, identity, await vault.load()) };
  }

  /** @returns {Promise<Record<string, any>>} every state kept, opened */
  async load() {
    const sealed = await transact(this.database, "readonly", (store, done) => {
      /** @type {Record<string, string>} */
      const found = {};
      for (const name of STATES) {
        const request = store.get(name);
        request.onsuccess = () => {
          if (typeof request.result === "string") found[name] = request.result;
        };
      }
      done(found); // filled as the requests succeed, before the transaction completes
    });
    /** @type {Record<string, any>} */
    const states = {};
    for (const [name, text] of Object.entries(sealed))
      states[name] = await unseal(this.key, name, text);
    return states;
  }

  /**
   * Seal and keep `states` (what ClientCrypto.takeDirty gave), all in one transaction.
   * @param {Record<string, any>} states
   */
  async save(states) {
    const names = Object.keys(states);
    if (!names.length) return;
    const sealed = await Promise.all(names.map((name) => seal(this.key, name, states[name])));
    await transact(this.database, "readwrite", (store, done) => {
      names.forEach((name, i) => store.put(sealed[i], name));
      done(undefined);
    });
  }
}
