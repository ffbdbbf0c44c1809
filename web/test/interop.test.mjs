// The browser protocol code against the real Python server: a handshake with the pinned
// fingerprint over a loopback socket, hello, a join, and a signed line the server confirms.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { ClientConnection } from "../../tlschat/web/static/js/protocol/client_connection.js";
import { Composer, sayFrame } from "../../tlschat/web/static/js/protocol/envelope.js";
import { decodeFrame, encodeFrame } from "../../tlschat/web/static/js/protocol/frames.js";
import {
  ClientIdentity,
  fingerprintsEqual,
} from "../../tlschat/web/static/js/protocol/identity.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PYTHON = join(ROOT, ".venv", "bin", "python");
const START_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 15_000;

/**
 * Start `tlschat server` on a free loopback port with a fresh data dir; resolve once it listens.
 * @param {string} dataDir
 * @returns {Promise<{server: import("node:child_process").ChildProcess, port: number, fingerprint: string}>}
 */
function startServer(dataDir) {
  const server = spawn(
    PYTHON,
    ["-m", "tlschat.cli", "server", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir],
    {
      cwd: ROOT,
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server did not start in time:\n${log}`)),
      START_TIMEOUT_MS,
    );
    const read = (/** @type {Buffer} */ chunk) => {
      log += chunk.toString();
      const fingerprint = /\[KEY\] Server fingerprint (SHA256:[A-Za-z0-9+/]{43})/.exec(log);
      const listening = /\[LISTENING\] Server on 127\.0\.0\.1:(\d+)/.exec(log);
      if (fingerprint && listening) {
        clearTimeout(timer);
        resolve({ server, port: Number(listening[1]), fingerprint: fingerprint[1] });
      }
    };
    server.stdout.on("data", read);
    server.stderr.on("data", read);
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before it listened:\n${log}`));
    });
  });
}

/**
 * @param {import("node:child_process").ChildProcess} server
 * @returns {Promise<void>}
 */
function stopServer(server) {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => server.kill("SIGKILL"), 10_000);
    server.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    server.kill("SIGTERM");
  });
}

/** A ClientConnection over a socket: frames in, frames out, with bounded waits. */
class Session {
  /**
   * @param {import("node:net").Socket} socket
   * @param {ClientConnection} connection
   * @param {string} pinned the server fingerprint the client trusts
   */
  constructor(socket, connection, pinned) {
    this.socket = socket;
    this.connection = connection;
    this.pinned = pinned;
    /** @type {import("../../tlschat/web/static/js/protocol/events.js").ConnectionEvent[]} */
    this.events = [];
    /** @type {import("../../tlschat/web/static/js/protocol/frames.js").Frame[]} */
    this.frames = [];
    /** @type {(() => void)[]} */
    this.waiters = [];
    socket.on("data", (chunk) => this.handle(this.connection.receiveData(new Uint8Array(chunk))));
    socket.on("end", () => this.handle(this.connection.receiveEof()));
  }

  /** @param {Promise<import("../../tlschat/web/static/js/protocol/events.js").ConnectionEvent[]>} pending */
  async handle(pending) {
    for (const event of await pending) {
      this.events.push(event);
      if (event.type === "server_authenticated") {
        // The pin decides, as `tlschat client --pin` does.
        if (fingerprintsEqual(event.identity.fingerprint, this.pinned)) {
          await this.handle(this.connection.trustServer());
        } else await this.connection.rejectServer("the server's key is not the pinned one");
      } else if (event.type === "data_received") {
        this.frames.push(decodeFrame(event.data));
      }
    }
    await this.flush();
    for (const wake of this.waiters.splice(0)) wake();
  }

  async flush() {
    const data = await this.connection.dataToSend();
    if (data.length && !this.socket.destroyed) this.socket.write(data);
  }

  /** @param {import("../../tlschat/web/static/js/protocol/frames.js").Frame} frame */
  async send(frame) {
    this.connection.sendData(encodeFrame(frame));
    await this.flush();
  }

  /**
   * @template T
   * @param {string} what
   * @param {() => T | undefined} find
   * @returns {Promise<T>}
   */
  waitFor(what, find) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no ${what} in time; events: ${JSON.stringify(this.events.map((e) => e.type))}, frames: ${JSON.stringify(this.frames)}`,
            ),
          ),
        STEP_TIMEOUT_MS,
      );
      const check = () => {
        const found = find();
        if (found !== undefined) {
          clearTimeout(timer);
          resolve(found);
        } else if (this.connection.error) {
          clearTimeout(timer);
          reject(this.connection.error);
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /**
   * @param {(frame: import("../../tlschat/web/static/js/protocol/frames.js").Frame) => boolean} match
   * @param {string} what
   */
  frame(match, what) {
    return this.waitFor(what, () => this.frames.find(match));
  }
}

const skip = existsSync(PYTHON)
  ? false
  : `the project's virtualenv python (${PYTHON}) is absent: run 'make setup' to test against the Python server`;

test(
  "the browser client completes a pinned handshake with the Python server, joins a room and sends a signed line",
  { skip, timeout: 120_000 },
  async () => {
    const home = mkdtempSync(join(tmpdir(), "tlschat-web-interop-"));
    const { server, port, fingerprint } = await startServer(join(home, "data"));
    const socket = createConnection({ host: "127.0.0.1", port });
    try {
      await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
      const identity = await ClientIdentity.generate();
      const session = new Session(
        socket,
        new ClientConnection({ identity }, Date.now() / 1000),
        fingerprint,
      );
      await session.handle(session.connection.startHandshake());

      const complete = await session.waitFor("handshake_complete", () =>
        session.events.find((e) => e.type === "handshake_complete"),
      );
      assert.equal(
        complete.type === "handshake_complete" && complete.peer.fingerprint,
        fingerprint,
      );
      assert.equal(complete.type === "handshake_complete" && complete.suite, "AES-GCM-256");

      await session.send({ type: "hello", nick: "webclient" });
      const welcome = await session.frame((f) => f.type === "welcome", "welcome");
      assert.equal(welcome.fingerprint, identity.fingerprint, "the server names the browser's key");

      await session.send({ type: "command", name: "join", args: "#web" });
      await session.frame((f) => f.type === "joined" && f.room === "#web", "joined #web");

      const line = await new Composer(identity, fingerprint).sign(
        "#web",
        "hello from the browser protocol",
        Date.now() / 1000,
      );
      await session.send(sayFrame(line));
      const sent = await session.frame(
        (f) => f.type === "sent" || f.type === "error",
        "the answer to say",
      );
      assert.deepEqual(
        { type: sent.type, target: sent.target, counter: sent.counter },
        { type: "sent", target: "#web", counter: line.counter },
      );

      assert.deepEqual(await session.connection.close(), []);
      await session.flush();
      await session.waitFor("the server's close_notify", () =>
        session.events.find((e) => e.type === "connection_closed"),
      );
      assert.equal(session.connection.error, null);
    } finally {
      socket.destroy();
      await stopServer(server);
      rmSync(home, { recursive: true, force: true });
    }
  },
);
