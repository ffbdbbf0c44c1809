// The real thing, on loopback, for the end-to-end tests: the Python server (`tlschat server`,
// its log kept), a web ChatClient with its device driven over a socket as the page's session.js
// drives it (frames in, lines out, the device's state sealed before anything is sent, `tick` at
// `wakeAt`), and the terminal client (`tlschat client --plain --json`). Every wait is bounded.

import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

import { ChatClient } from "../../tlschat/web/static/js/app/chat_client.js";
import { SeenLedger } from "../../tlschat/web/static/js/app/seen.js";
import { seal } from "../../tlschat/web/static/js/e2e/codec.js";
import { ClientCrypto } from "../../tlschat/web/static/js/e2e/crypto.js";
import { ClientConnection } from "../../tlschat/web/static/js/protocol/client_connection.js";
import { encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import {
  ClientIdentity,
  fingerprintsEqual,
} from "../../tlschat/web/static/js/protocol/identity.js";
import { nodeOlm } from "./olm_node.mjs";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PYTHON = `${ROOT}.venv/bin/python`;
const START_TIMEOUT_MS = 60_000;
export const STEP_TIMEOUT_MS = 30_000;

/** @typedef {import("../../tlschat/web/static/js/app/lines.js").Line} Line */

/**
 * @template T
 * @param {string} what
 * @param {() => T | undefined} find
 * @param {(wake: () => void) => void} subscribe
 * @param {() => string} context
 * @returns {Promise<T>}
 */
function waitUntil(what, find, subscribe, context) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${what} in time; ${context()}`)),
      STEP_TIMEOUT_MS,
    );
    const check = () => {
      const found = find();
      if (found === undefined) subscribe(check);
      else {
        clearTimeout(timer);
        resolve(found);
      }
    };
    check();
  });
}

/** `tlschat server` on a free loopback port with a fresh data dir. */
export class LiveServer {
  /** @param {string} dataDir */
  constructor(dataDir) {
    this.dataDir = dataDir;
    this.log = "";
    this.port = 0;
    this.fingerprint = "";
    this.process = spawn(
      PYTHON,
      ["-m", "tlschat.cli", "server", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir],
      {
        cwd: ROOT,
        env: { ...process.env, PYTHONUNBUFFERED: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const read = (/** @type {Buffer} */ chunk) => (this.log += chunk.toString());
    this.process.stdout.on("data", read);
    this.process.stderr.on("data", read);
  }

  async started() {
    const found = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the server did not start:\n${this.log}`)),
        START_TIMEOUT_MS,
      );
      const check = () => {
        const fingerprint = /\[KEY\] Server fingerprint (SHA256:[A-Za-z0-9+/]{43})/.exec(this.log);
        const listening = /\[LISTENING\] Server on 127\.0\.0\.1:(\d+)/.exec(this.log);
        if (fingerprint && listening) {
          clearTimeout(timer);
          resolve([fingerprint[1], Number(listening[1])]);
        } else if (this.process.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`the server exited:\n${this.log}`));
        } else setTimeout(check, 50);
      };
      check();
    });
    [this.fingerprint, this.port] = /** @type {[string, number]} */ (found);
    return this;
  }

  stop() {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.once("exit", () => {
        clearTimeout(force);
        resolve(undefined);
      });
      child.kill("SIGTERM");
    });
  }
}

/** The web client with its device, over a socket, as the page's session drives it. */
export class WebClient {
  /**
   * @param {ChatClient} chat
   * @param {import("node:net").Socket} socket
   * @param {string} pinned
   * @param {CryptoKey} vaultKey
   */
  constructor(chat, socket, pinned, vaultKey) {
    this.chat = chat;
    this.socket = socket;
    this.pinned = pinned;
    this.vaultKey = vaultKey;
    this.connection = new ClientConnection({ identity: chat.identity }, Date.now() / 1000);
    /** @type {Line[]} */
    this.lines = [];
    /** @type {Record<string, string>} the device's states as the vault would keep them */
    this.kept = {};
    /** @type {(() => void)[]} */
    this.waiters = [];
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.queue = Promise.resolve();
    socket.on("data", (chunk) =>
      this.run(() => this.handle(this.connection.receiveData(new Uint8Array(chunk)))),
    );
  }

  /**
   * @param {string} nick
   * @param {number} port
   * @param {string} fingerprint the server key to pin
   */
  static async connect(nick, port, fingerprint) {
    const identity = await ClientIdentity.generate();
    const crypto = await ClientCrypto.open(await nodeOlm(), identity, {});
    const chat = new ChatClient(identity, nick, "http://127.0.0.1", crypto);
    const socket = createConnection({ host: "127.0.0.1", port });
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const vaultKey = await globalThis.crypto.subtle.generateKey(
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
    const client = new WebClient(chat, socket, fingerprint, vaultKey);
    client.run(() => client.handle(client.connection.startHandshake()));
    return client;
  }

  /** One step at a time, in order, as session.js runs them. @param {() => Promise<void>} step */
  run(step) {
    this.queue = this.queue.then(step).catch((problem) => {
      this.lines.push(/** @type {any} */ ({ kind: "error", text: `internal error: ${problem}` }));
    });
  }

  /** @param {Promise<import("../../tlschat/web/static/js/protocol/events.js").ConnectionEvent[]>} pending */
  async handle(pending) {
    for (const event of await pending) {
      if (event.type === "server_authenticated") {
        if (fingerprintsEqual(event.identity.fingerprint, this.pinned))
          await this.handle(this.connection.trustServer());
        else await this.connection.rejectServer("not the pinned key");
      } else if (event.type === "handshake_complete") {
        this.chat.useNetwork(event.peer.fingerprint, new SeenLedger());
        this.connection.sendData(encodeFrame(this.chat.helloFrame()));
        await this.flush();
      } else if (event.type === "data_received") {
        await this.show(await this.chat.receive(event.data, Date.now() / 1000));
      }
    }
    await this.flush();
  }

  /** Keep the lines, seal the device's changed states, then send what the client queued. @param {Line[]} lines */
  async show(lines) {
    this.lines.push(...lines);
    for (const [name, state] of Object.entries(this.chat.crypto?.takeDirty() ?? {}))
      this.kept[name] = await seal(this.vaultKey, name, state);
    for (const frame of this.chat.takeOutbox()) this.connection.sendData(encodeFrame(frame));
    clearTimeout(this.timer);
    if (this.chat.wakeAt !== null) {
      const delay = Math.max(0, this.chat.wakeAt - Date.now() / 1000) * 1000;
      this.timer = setTimeout(
        () => this.run(async () => this.show(await this.chat.tick(Date.now() / 1000))),
        delay,
      );
    }
    await this.flush();
    for (const wake of this.waiters.splice(0)) wake();
  }

  async flush() {
    const data = await this.connection.dataToSend();
    if (data.length && !this.socket.destroyed) this.socket.write(data);
  }

  /** What the user typed in buffer `target`. @param {string} text @param {string} [target] */
  input(text, target = "") {
    this.run(async () => this.show(await this.chat.userInput(text, Date.now() / 1000, target)));
  }

  /** @param {string} what @param {(line: Line) => boolean} match @returns {Promise<Line>} */
  line(what, match) {
    return waitUntil(
      what,
      () => this.lines.find(match),
      (wake) => this.waiters.push(wake),
      () =>
        `web lines: ${JSON.stringify(this.lines.map((l) => [l.kind, l.text, l.delivery, l.problem]))}`,
    );
  }

  close() {
    clearTimeout(this.timer);
    this.socket.destroy();
  }
}

/** `tlschat client --plain --json`: lines typed on stdin, JSON lines read from stdout. */
export class TerminalClient {
  /**
   * @param {string} nick
   * @param {number} port
   * @param {string} fingerprint
   * @param {string} home
   */
  constructor(nick, port, fingerprint, home) {
    this.process = spawn(
      PYTHON,
      [
        "-m",
        "tlschat.cli",
        "client",
        "--plain",
        "--json",
        "--quiet",
        "--no-reconnect",
        "--host",
        `127.0.0.1:${port}`,
        "--pin",
        fingerprint,
        "--home",
        home,
        "--nick",
        nick,
        "--key-type",
        "ed25519",
      ],
      {
        cwd: ROOT,
        env: { ...process.env, PYTHONUNBUFFERED: "1" },
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    /** @type {Record<string, any>[]} */
    this.events = [];
    this.stderr = "";
    /** @type {(() => void)[]} */
    this.waiters = [];
    this.process.stderr.on("data", (chunk) => (this.stderr += chunk));
    createInterface({ input: this.process.stdout }).on("line", (line) => {
      try {
        this.events.push(JSON.parse(line));
      } catch {
        this.events.push({ raw: line });
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** @param {string} text */
  send(text) {
    this.process.stdin.write(`${text}\n`);
  }

  /** @param {string} what @param {(event: Record<string, any>) => boolean} match */
  event(what, match) {
    return waitUntil(
      what,
      () => this.events.find(match),
      (wake) => this.waiters.push(wake),
      () => `terminal lines: ${JSON.stringify(this.events)} ${this.stderr}`,
    );
  }

  stop() {
    const child = this.process;
    if (child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.once("exit", () => {
        clearTimeout(force);
        resolve(undefined);
      });
      child.stdin.end();
    });
  }
}
