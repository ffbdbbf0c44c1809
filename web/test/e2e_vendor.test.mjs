// The Olm library the page loads is the pinned package's own build: tlschat/web/static/vendor/olm/
// holds exactly the files web/scripts/vendor.mjs copies from node_modules (checked byte for byte
// when node_modules is there, as after `make web`), VERSION.json names the version package-lock.json
// pins and the SHA-256 of each vendored file, and that build loads and reports its version.

import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

import { FILES, PACKAGE, SOURCE, TARGET, sha256Hex } from "../scripts/vendor.mjs";
import { nodeOlm } from "../support/olm_node.mjs";

const version = JSON.parse(readFileSync(new URL("VERSION.json", TARGET), "utf8"));
const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8"));
const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

test("VERSION.json names the pinned package and the SHA-256 of each vendored file", () => {
  const pinned = lock.packages[`node_modules/${PACKAGE}`];
  assert.equal(version.package, PACKAGE);
  assert.equal(version.version, pinned.version, "the version package-lock.json pins");
  assert.equal(manifest.dependencies[PACKAGE], pinned.version, "package.json pins it exactly");
  assert.equal(version.license, "Apache-2.0");
  assert.deepEqual(Object.keys(version.sha256).sort(), [...FILES].sort());
  assert.deepEqual(
    readdirSync(TARGET).sort(),
    [...FILES, "VERSION.json"].sort(),
    "nothing else vendored",
  );
  for (const name of FILES)
    assert.equal(sha256Hex(readFileSync(new URL(name, TARGET))), version.sha256[name], name);
});

const installed = existsSync(new URL("package.json", SOURCE));

test(
  "the vendored files are byte-identical to node_modules'",
  {
    skip: installed
      ? false
      : `${PACKAGE} is not installed in web/node_modules (make web installs it)`,
  },
  () => {
    const source = JSON.parse(readFileSync(new URL("package.json", SOURCE), "utf8"));
    assert.equal(source.version, version.version);
    for (const name of FILES)
      assert.ok(
        readFileSync(new URL(name, SOURCE)).equals(readFileSync(new URL(name, TARGET))),
        `${name} differs`,
      );
  },
);

test("the vendored build loads and is libolm 3.2", async () => {
  const olm = await nodeOlm();
  assert.deepEqual(olm.version.slice(0, 2), [3, 2]);
});
