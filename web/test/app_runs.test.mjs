// Runs (docs/PROTOCOL.md section 22, "Runs"): a reply over several frames is put together in part
// order and acted on once whole; a run that breaks is dropped with one error text.

import assert from "node:assert/strict";
import { test } from "node:test";

import { FrameError } from "../../tlschat/web/static/js/protocol/frames.js";
import { MAX_RUN_PARTS, RunFeed } from "../../tlschat/web/static/js/app/runs.js";

test("a run is whole once its last part came; a reply that fits one frame passes as it is", () => {
  const feed = new RunFeed();
  const single = { type: "info", title: "t", lines: ["a"] };
  assert.deepEqual(feed.feed(single), { frame: single, dropped: "" });
  assert.deepEqual(
    feed.feed({ type: "history", room: "#a", messages: [1], older: true, part: 0, more: true }),
    {
      frame: null,
      dropped: "",
    },
  );
  assert.equal(feed.open, "history");
  assert.deepEqual(
    feed.feed({ type: "history", room: "#a", messages: [2], part: 1, more: true }).frame,
    null,
  );
  assert.deepEqual(
    feed.feed({ type: "history", room: "#a", messages: [3], part: 2, more: false }),
    {
      frame: { type: "history", room: "#a", messages: [1, 2, 3], older: true },
      dropped: "",
    },
  );
  assert.equal(feed.open, "");
});

test("joined continues with members frames", () => {
  const feed = new RunFeed();
  feed.feed({ type: "joined", room: "#a", topic: "", members: [{ n: 1 }], part: 0, more: true });
  const { frame } = feed.feed({
    type: "members",
    room: "#a",
    members: [{ n: 2 }],
    part: 1,
    more: false,
  });
  assert.deepEqual(frame, { type: "joined", room: "#a", topic: "", members: [{ n: 1 }, { n: 2 }] });
});

test("a run that breaks is dropped: another frame inside it, a part out of order, a renamed run", () => {
  const feed = new RunFeed();
  const start = () => feed.feed({ type: "presence", room: "#a", changes: [], part: 0, more: true });
  start();
  const interrupted = feed.feed({ type: "notice", text: "hi" });
  assert.deepEqual(
    interrupted.frame,
    { type: "notice", text: "hi" },
    "the breaking frame is acted on",
  );
  assert.match(
    interrupted.dropped,
    /unfinished 'presence' reply .* a 'notice' frame came in the middle/,
  );
  start();
  const skipped = feed.feed({ type: "presence", room: "#a", changes: [], part: 2, more: false });
  assert.deepEqual(skipped.frame, null);
  assert.match(skipped.dropped, /part 2 of a 'presence' run out of order/);
  start();
  assert.match(
    feed.feed({ type: "presence", room: "#b", changes: [], part: 1, more: false }).dropped,
    /out of order/,
  );
  start();
  assert.match(
    feed.feed({ type: "presence", room: "#a", changes: "x", part: 1, more: false }).dropped,
    /'changes' must be a list/,
  );
  assert.equal(feed.open, "");
});

test("a first part that is not part 0, or a position that is not one, is a FrameError", () => {
  const feed = new RunFeed();
  assert.throws(
    () => feed.feed({ type: "info", title: "t", lines: [], part: 1, more: true }),
    FrameError,
  );
  assert.throws(
    () => feed.feed({ type: "info", title: "t", lines: [], part: 0, more: "yes" }),
    FrameError,
  );
  assert.throws(
    () => feed.feed({ type: "info", title: "t", lines: [], part: MAX_RUN_PARTS, more: true }),
    FrameError,
  );
  assert.throws(
    () => feed.feed({ type: "info", title: "t", lines: null, part: 0, more: true }),
    FrameError,
  );
});

test("at most 400 frames: the 401st part drops the run", () => {
  const feed = new RunFeed();
  feed.feed({ type: "info", title: "t", lines: ["0"], part: 0, more: true });
  for (let part = 1; part < MAX_RUN_PARTS; part++) {
    assert.equal(
      feed.feed({ type: "info", title: "t", lines: [String(part)], part, more: true }).dropped,
      "",
    );
  }
  const past = feed.feed({
    type: "info",
    title: "t",
    lines: ["x"],
    part: MAX_RUN_PARTS,
    more: false,
  });
  assert.match(past.dropped, /'part' must be an integer from 0 to 399/);
  assert.equal(feed.open, "");
});
