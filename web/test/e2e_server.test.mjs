// End to end against the real server: the web client with its device (libolm) and the terminal
// client (vodozemac), in separate processes, exchange an encrypted private message and an
// encrypted room line both ways, each shown 🔒 and ✓ on the other side, then verify each other
// with SAS (the same emoji on both sides; ✓✓ after). Every text carries a
// canary that neither the server's log nor any file of its data dir (chat.db and the rest)
// contains afterwards: the server relayed and stored only ciphertext.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { DELIVERED } from "../../tlschat/web/static/js/app/lines.js";
import { LiveServer, PYTHON, TerminalClient, WebClient } from "../support/live.mjs";

const CANARY = `canary-${Math.random().toString(36).slice(2, 12)}`;

/** @param {string} dir @returns {string[]} every file under `dir` */
function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

const skip = existsSync(PYTHON) ? false : `no virtualenv python at ${PYTHON}: run 'make setup'`;

test(
  "the web client and the terminal client talk end-to-end encrypted, privately and in a room, and verify each other",
  { skip, timeout: 180_000 },
  async () => {
    const root = mkdtempSync(join(tmpdir(), "tlschat-web-e2e-"));
    const server = await new LiveServer(join(root, "data")).started();
    /** @type {WebClient | undefined} */
    let web;
    /** @type {TerminalClient | undefined} */
    let term;
    try {
      term = new TerminalClient("term", server.port, server.fingerprint, join(root, "term"));
      await term.event(
        "the terminal's welcome",
        (e) => typeof e.text === "string" && e.text.startsWith("Welcome"),
      );
      web = await WebClient.connect("web", server.port, server.fingerprint);
      await web.line(
        "the web client in #general",
        (l) => l.kind === "joined" && l.room === "#general",
      );
      await term.event("web joining #general", (e) => e.kind === "join" && e.nick === "web");

      // Private, web → terminal: the browser claims a vodozemac one-time key and starts Olm.
      web.input(`/msg term ${CANARY} private from the browser`);
      const delivered = await web.line(
        "the private line delivered",
        (l) => l.kind === "private" && l.delivery === DELIVERED,
      );
      assert.equal(delivered.encrypted, true);
      const got = await term.event(
        "the browser's private line",
        (e) => e.text === `${CANARY} private from the browser`,
      );
      assert.deepEqual(
        [got.kind, got.nick, got.verified, got.encrypted],
        ["private", "web", true, true],
      );

      // Private, terminal → web: through the browser device's inbox.
      term.send(`/msg web ${CANARY} private from the terminal`);
      const inbox = await web.line(
        "the terminal's private line",
        (l) => l.text === `${CANARY} private from the terminal`,
      );
      assert.deepEqual(
        [inbox.kind, inbox.nick, inbox.verified, inbox.encrypted],
        ["private", "term", true, true],
      );

      // A room the browser owns (its first joiner) and makes end-to-end encrypted.
      web.input("/join #vault");
      await web.line("#vault joined", (l) => l.kind === "joined" && l.room === "#vault");
      web.input("/encrypt #vault");
      await web.line("#vault encrypted", (l) =>
        l.text.startsWith("#vault is now end-to-end encrypted"),
      );
      term.send("/join #vault");
      await term.event("the terminal in #vault", (e) => e.kind === "joined" && e.room === "#vault");
      await web.line(
        "term joining #vault",
        (l) => l.kind === "join" && l.room === "#vault" && l.nick === "term",
      );

      web.input(`${CANARY} room line from the browser`, "#vault");
      const roomSent = await web.line(
        "the room line delivered",
        (l) => l.room === "#vault" && l.delivery === DELIVERED,
      );
      assert.equal(roomSent.encrypted, true);
      const roomGot = await term.event(
        "the browser's room line",
        (e) => e.text === `${CANARY} room line from the browser`,
      );
      assert.deepEqual([roomGot.room, roomGot.verified, roomGot.encrypted], ["#vault", true, true]);

      term.send(`${CANARY} room line from the terminal`);
      const roomLine = await web.line(
        "the terminal's room line",
        (l) => l.text === `${CANARY} room line from the terminal`,
      );
      assert.deepEqual(
        [roomLine.room, roomLine.nick, roomLine.verified, roomLine.encrypted],
        ["#vault", "term", true, true],
      );

      // SAS over the server: the browser asks, the terminal accepts, both compare and confirm.
      web.input("/verify term");
      await term.event(
        "the request",
        (e) => typeof e.text === "string" && e.text.includes("wants to verify you"),
      );
      term.send("/verify yes");
      const webNumbers = await web.line("the browser's numbers", (l) =>
        l.text.startsWith("  or the numbers"),
      );
      const termNumbers = await term.event("the terminal's numbers", (e) =>
        String(e.text).startsWith("  or the numbers"),
      );
      assert.equal(webNumbers.text, termNumbers.text, "the same numbers on both sides");
      const webEmoji = web.lines[web.lines.indexOf(webNumbers) - 1].text;
      const termEmoji = term.events[term.events.indexOf(termNumbers) - 1].text;
      assert.equal(webEmoji, termEmoji, "the same seven emoji on both sides");
      web.input("/verify yes");
      term.send("/verify yes");
      await web.line("term verified", (l) => l.text.startsWith("✓✓ term is verified"));
      await term.event("web verified", (e) => String(e.text).startsWith("✓✓ web is verified"));
      term.send(`${CANARY} after verification`);
      const trusted = await web.line(
        "a line of the verified key",
        (l) => l.text === `${CANARY} after verification`,
      );
      assert.deepEqual([trusted.verified, trusted.trusted, trusted.encrypted], [true, true, true]);

      assert.ok(
        !web.lines.some((l) => l.kind === "error"),
        JSON.stringify(web.lines.filter((l) => l.kind === "error")),
      );
      assert.deepEqual(Object.keys(web.kept).sort(), [
        "device",
        "olm_sessions",
        "room_keys",
        "rooms",
        "verified",
      ]);
      assert.ok(!Object.values(web.kept).some((sealed) => sealed.includes(CANARY)));
    } finally {
      web?.close();
      await term?.stop();
      await server.stop();
    }
    try {
      assert.ok(!server.log.includes(CANARY), "the server's log never held a canary");
      const files = filesUnder(join(root, "data"));
      assert.ok(
        files.some((path) => path.endsWith("chat.db")),
        files.join(", "),
      );
      for (const path of files)
        assert.ok(!readFileSync(path).includes(CANARY), `${path} holds a canary`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
);
