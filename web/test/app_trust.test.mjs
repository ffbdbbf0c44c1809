// Trusting the server's key: first contact asks, a pinned key that matches goes on, a changed key
// stops everything with the terminal client's warning, and an invitation link pins the key it
// names (and refuses any other) without asking. Also the link itself, and the reconnect backoff.

import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, describeDelay } from "../../tlschat/web/static/js/app/backoff.js";
import {
  InviteLinkError,
  inviteLink,
  parseInviteFragment,
} from "../../tlschat/web/static/js/app/invite_link.js";
import { decideTrust } from "../../tlschat/web/static/js/app/trust.js";

const KEY = `SHA256:${"A".repeat(42)}+`;
const OTHER = `SHA256:${"B".repeat(42)}/`;
const SECRET = "s3cr3t_s3cr3t-s3cr3t_s3cr3t-0123";
const host = "chat.example:8443";

test("first contact asks; a pinned key that matches goes on without asking", () => {
  assert.deepEqual(decideTrust({ host, presented: KEY, pinned: "", invited: "" }), {
    kind: "ask",
    message: `New server ${host} with key fingerprint ${KEY}`,
  });
  const trusted = decideTrust({ host, presented: KEY, pinned: KEY, invited: "" });
  assert.deepEqual([trusted.kind, trusted.kind === "trust" && trusted.remember], ["trust", false]);
});

test("a changed key is refused with the loud warning, naming both keys", () => {
  const decision = decideTrust({ host, presented: OTHER, pinned: KEY, invited: "" });
  assert.equal(decision.kind, "changed");
  const lines = decision.message.split("\n");
  assert.equal(lines[1], "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @");
  assert.ok(lines.includes(`${OTHER}.`));
  assert.ok(lines.includes(`This browser pinned ${KEY} for ${host}.`));
  assert.equal(lines.at(-1), `Host key for ${host} has changed; refusing to connect.`);
  assert.equal(
    decideTrust({ host, presented: OTHER, pinned: KEY, invited: OTHER }).kind,
    "changed",
    "an invitation does not override a pin",
  );
});

test("an invitation pins its key without asking, and refuses any other", () => {
  const invited = decideTrust({ host, presented: KEY, pinned: "", invited: KEY });
  assert.deepEqual([invited.kind, invited.kind === "trust" && invited.remember], ["trust", true]);
  const wrong = decideTrust({ host, presented: OTHER, pinned: "", invited: KEY });
  assert.equal(wrong.kind, "refused");
  assert.match(wrong.message, /does not match the fingerprint in the invitation/);
});

test("invitation links: read from the fragment, '+' kept, percent-escapes decoded", () => {
  assert.equal(parseInviteFragment(""), null);
  assert.equal(parseInviteFragment("#"), null);
  assert.equal(parseInviteFragment("#room=general"), null, "a fragment about something else");
  assert.deepEqual(parseInviteFragment(`#invite=${SECRET}&fp=${KEY}`), {
    secret: SECRET,
    fingerprint: KEY,
  });
  assert.deepEqual(parseInviteFragment(`fp=${encodeURIComponent(KEY)}&invite=${SECRET}`), {
    secret: SECRET,
    fingerprint: KEY,
  });
  const link = inviteLink("https://chat.example", SECRET, KEY);
  assert.equal(link, `https://chat.example/#invite=${SECRET}&fp=${KEY}`);
  assert.deepEqual(parseInviteFragment(new URL(link).hash), { secret: SECRET, fingerprint: KEY });
});

test("a broken invitation link says what is wrong", () => {
  const refused = (/** @type {string} */ hash, /** @type {RegExp} */ why) =>
    assert.throws(
      () => parseInviteFragment(hash),
      (e) => e instanceof InviteLinkError && why.test(e.message),
    );
  refused(`#invite=${SECRET}`, /fingerprint is SHA256: and 43 base64/);
  refused(`#fp=${KEY}`, /secret is 22 to 64/);
  refused(`#invite=short&fp=${KEY}`, /was the link cut short/);
  refused(`#invite=${SECRET}&fp=${KEY.replace("+", " ")}`, /fingerprint/);
  refused(`#invite=${SECRET}&fp=${KEY}&fp=${OTHER}`, /names 'fp' twice/);
  refused(`#invite=%E0%A4%A&fp=${KEY}`, /not well encoded/);
  refused(`#invite=${"a".repeat(400)}`, /at most 400 characters/);
});

test("backoff: full jitter under a bound that doubles up to 30 s", () => {
  assert.equal(
    backoffDelay(0, () => 0.5),
    0.5,
  );
  assert.equal(
    backoffDelay(3, () => 0.5),
    4,
  );
  assert.equal(
    backoffDelay(10, () => 0.999),
    29.97,
  );
  assert.equal(
    backoffDelay(1000, () => 1),
    30,
  );
  assert.equal(
    backoffDelay(-1, () => 1),
    1,
  );
  assert.deepEqual([0.01, 0.44, 12.4].map(describeDelay), ["now", "in 0.4 s", "in 12 s"]);
});
