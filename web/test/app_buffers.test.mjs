// What the page shows, without a DOM: where each line is filed, unread counts and mentions, the
// delivery state of an own line replacing its earlier state, pages of older lines above, and the
// rows of a buffer with a separator wherever the day changes.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Buffers,
  SERVER_BUFFER,
  localDay,
  paneRows,
} from "../../tlschat/web/static/js/app/buffers.js";
import {
  DELIVERED,
  PENDING,
  isMention,
  makeLine,
  neutralize,
} from "../../tlschat/web/static/js/app/lines.js";
import { NOW } from "../support/chat_fixture.mjs";

const said = (/** @type {string} */ nick, /** @type {string} */ text, fields = {}) =>
  makeLine("message", NOW, text, {
    nick,
    fingerprint: `SHA256:${nick}`,
    room: "#general",
    verified: true,
    ...fields,
  });

test("unread counts and mentions in the buffers not shown; switching clears them", () => {
  const buffers = new Buffers();
  buffers.switch("#general");
  buffers.file(
    [said("bob", "hi", { room: "#team" }), said("bob", "hey alice!", { room: "#team" })],
    "alice",
  );
  const team = buffers.get("#team");
  assert.deepEqual([team.unread, team.mentioned], [2, true]);
  buffers.file([said("bob", "shown where the user is")], "alice");
  assert.equal(buffers.get("#general").unread, 0);
  buffers.file([makeLine("join", NOW, "carol joined #team", { room: "#team" })], "alice");
  assert.equal(team.unread, 2, "joins and leaves are not unread messages");
  buffers.switch("#team");
  assert.deepEqual([team.unread, team.mentioned], [0, false]);
  assert.equal(buffers.get("#general").readUpto, 1, "the buffer left is read up to its end");
});

test("a mention or a private line rings, history never does; own lines never count", () => {
  const buffers = new Buffers();
  buffers.switch("#general");
  const { rings } = buffers.file(
    [
      said("bob", "alice: look", { room: "#team" }),
      said("bob", "malice aforethought", { room: "#team" }),
      said("bob", "alice in history", { room: "#team", history: true }),
      makeLine("private", NOW, "psst", { nick: "bob", fingerprint: "SHA256:bob", verified: true }),
      said("alice", "me, alice", { room: "#team", delivery: PENDING, ref: 1 }),
    ],
    "alice",
  );
  assert.deepEqual(
    rings.map((l) => l.text),
    ["alice: look", "psst"],
  );
  assert.equal(buffers.get("#team").unread, 3);
  assert.ok(buffers.buffers.has("@bob"), "a private line opens the conversation with its sender");
  assert.deepEqual([buffers.get("@bob").unread, buffers.get("@bob").mentioned], [1, true]);
});

test("mentions are the nick as a word, in any case", () => {
  const line = (/** @type {string} */ text) => said("bob", text);
  assert.ok(isMention(line("ALICE, hi"), "alice"));
  assert.ok(isMention(line("hi @alice."), "alice"));
  assert.ok(!isMention(line("alice_bot says"), "alice"), "another nick that starts with it");
  assert.ok(!isMention(line("malice"), "alice"));
  assert.ok(isMention(line("ping [a]!"), "[a]"), "nick characters are matched literally");
  assert.ok(!isMention(said("alice", "alice"), "alice"), "not one's own line");
  assert.ok(!isMention(makeLine("notice", NOW, "alice"), "alice"), "not a notice");
});

test("an own line's later delivery state replaces it where it was filed", () => {
  const buffers = new Buffers();
  buffers.switch("#general");
  const pending = said("alice", "hello", { ref: 7, delivery: PENDING });
  buffers.file([pending], "alice");
  buffers.switch("#team");
  const { touched } = buffers.file([{ ...pending, delivery: DELIVERED }], "alice");
  assert.deepEqual([...touched], ["#general"]);
  assert.deepEqual(
    buffers.get("#general").lines.map((l) => l.delivery),
    [DELIVERED],
  );
  assert.equal(buffers.get("#team").lines.length, 0);
});

test("a page of older lines goes above what is shown, without the lines held already", () => {
  const buffers = new Buffers();
  buffers.switch("#general");
  buffers.file([said("bob", "newest", { id: "b:3" })], "alice");
  buffers.file(
    [
      makeLine("page", NOW, "2 earlier lines of #general:", { room: "#general", earlier: true }),
      said("bob", "old", { id: "b:1", earlier: true, history: true }),
      said("bob", "newest", { id: "b:3", earlier: true, history: true }),
    ],
    "alice",
  );
  assert.deepEqual(
    buffers.get("#general").lines.map((l) => l.text),
    ["2 earlier lines of #general:", "old", "newest"],
  );
});

test("stepping through buffers wraps: server, rooms, then conversations", () => {
  const buffers = new Buffers();
  for (const name of ["@zed", "#b", "#A"]) buffers.get(name);
  assert.deepEqual(buffers.names(), [SERVER_BUFFER, "#A", "#b", "@zed"]);
  buffers.switch("@zed");
  assert.equal(buffers.step(1), SERVER_BUFFER);
  assert.equal(buffers.step(-1), "#b");
  buffers.close("@zed");
  assert.equal(buffers.current, SERVER_BUFFER);
});

test("rows: a day separator before the first line of each day, the read marker where the user left off", () => {
  const day = 86400;
  const buffer = new Buffers().get("#general");
  buffer.lines = [
    said("a", "1"),
    said("a", "2", { timestamp: NOW + 60 }),
    said("a", "3", { timestamp: NOW + day }),
  ];
  const rows = paneRows(buffer, 2);
  assert.deepEqual(
    rows.map((r) => (r.type === "line" ? r.line.text : r.type)),
    ["day", "1", "2", "marker", "day", "3"],
  );
  const [first, , , , second] = rows;
  assert.ok(first.type === "day" && second.type === "day");
  assert.equal(first.key, localDay(NOW));
  assert.notEqual(first.key, second.key);
  assert.deepEqual(
    paneRows(buffer, 0).map((r) => r.type),
    ["day", "line", "line", "day", "line"],
    "no marker above everything",
  );
});

test("text from the network cannot fake lines or reorder what is shown", () => {
  assert.equal(neutralize("a\u0007b\u202ec\u2028d\u0000"), "a\ufffdb\ufffdc\ufffdd\ufffd");
  assert.equal(neutralize("tab\tok, emoji 😀"), "tab\tok, emoji 😀");
  assert.equal(neutralize("lone \ud800 surrogate"), "lone \ufffd surrogate");
});
