// The ledger of lines shown on one network, kept across reloads: a counter not above the highest
// shown from its sender is a replay; quiet senders are forgotten; past the bound the horizon rises
// so that the bound never lets a replay pass as new; a damaged ledger is never half read.

import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_SKEW_MS, SeenLedger } from "../../tlschat/web/static/js/app/seen.js";

const NOW_MS = 1_767_225_600_000;

test("a counter at or below the highest shown from its sender was shown", () => {
  const ledger = new SeenLedger();
  ledger.record("bob", 100, NOW_MS, NOW_MS);
  assert.ok(ledger.wasShown("bob", 100));
  assert.ok(ledger.wasShown("bob", 5));
  assert.ok(!ledger.wasShown("bob", 101));
  assert.ok(!ledger.wasShown("carol", 1));
  ledger.record("bob", 50, NOW_MS - 5, NOW_MS);
  assert.ok(!ledger.wasShown("bob", 101), "a lower counter lowers nothing");
});

test("stale: signed more than the skew ago, or at or before the horizon", () => {
  const ledger = new SeenLedger();
  assert.ok(!ledger.isStale(NOW_MS - MAX_SKEW_MS, NOW_MS));
  assert.ok(ledger.isStale(NOW_MS - MAX_SKEW_MS - 1, NOW_MS));
  ledger.horizonMs = NOW_MS;
  assert.ok(ledger.isStale(NOW_MS, NOW_MS));
});

test("kept as JSON across a reload, pruned of the senders quiet for longer than the skew", () => {
  const ledger = new SeenLedger();
  ledger.record("bob", 7, NOW_MS, NOW_MS);
  ledger.record("old", 3, NOW_MS - MAX_SKEW_MS - 10, NOW_MS);
  assert.ok(ledger.dirty);
  const text = JSON.stringify(ledger);
  const restored = SeenLedger.fromJSON(JSON.parse(text), NOW_MS);
  assert.ok(restored.wasShown("bob", 7));
  assert.ok(!restored.wasShown("old", 3), "a replay of its lines is too old to pass as new anyway");
  assert.equal(restored.dirty, false);
});

test("past the bound the oldest sender is forgotten and the horizon rises to its time", () => {
  const ledger = new SeenLedger(2);
  ledger.record("a", 1, NOW_MS - 3, NOW_MS);
  ledger.record("b", 1, NOW_MS - 2, NOW_MS);
  ledger.record("c", 1, NOW_MS - 1, NOW_MS);
  assert.equal(ledger.size, 2);
  assert.ok(!ledger.wasShown("a", 1));
  assert.equal(ledger.horizonMs, NOW_MS - 3);
  assert.ok(ledger.isStale(NOW_MS - 3, NOW_MS), "a's replayed line is not new");
});

test("a damaged ledger is refused whole", () => {
  for (const data of [
    null,
    [],
    { version: 2, horizonMs: 0, senders: [] },
    { version: 1, horizonMs: -1, senders: [] },
    { version: 1, horizonMs: 0, senders: [["bob", "7", 1]] },
    { version: 1, horizonMs: 0, senders: [["bob", 7]] },
    { version: 1, horizonMs: 0, senders: {} },
  ]) {
    assert.throws(() => SeenLedger.fromJSON(data, NOW_MS), TypeError, JSON.stringify(data));
  }
});
