// Copies the browser build of the pinned Olm library from node_modules into the web client's
// static files (tlschat/web/static/vendor/olm/), with VERSION.json naming the package, its
// version and each file's SHA-256. The copies are committed: the page needs no Node and no
// bundler at run time, and `pip install` users need no Node at all. `make web` runs this after
// `npm ci`; web/test/e2e_vendor.test.mjs checks the copies against node_modules.

import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const PACKAGE = "@towns-protocol/olm";
/** What the browser loads: the ES module build, and the WebAssembly it fetches beside itself. */
export const FILES = Object.freeze(["olm.web.mjs", "olm.wasm"]);
export const SOURCE = new URL(`../node_modules/${PACKAGE}/`, import.meta.url);
export const TARGET = new URL("../../tlschat/web/static/vendor/olm/", import.meta.url);

/** @param {Uint8Array} data @returns {string} */
export const sha256Hex = (data) => createHash("sha256").update(data).digest("hex");

/** @returns {{name: string, version: string, license: string}} the installed package's manifest */
export function installedPackage() {
  return JSON.parse(readFileSync(new URL("package.json", SOURCE), "utf8"));
}

export function vendor() {
  const manifest = installedPackage();
  mkdirSync(TARGET, { recursive: true });
  /** @type {Record<string, string>} */
  const sha256 = {};
  for (const name of FILES) {
    copyFileSync(new URL(name, SOURCE), new URL(name, TARGET));
    // The package ships olm.wasm executable; a served file needs no such bit.
    chmodSync(new URL(name, TARGET), 0o644);
    sha256[name] = sha256Hex(readFileSync(new URL(name, TARGET)));
  }
  const version = {
    package: manifest.name,
    version: manifest.version,
    license: manifest.license,
    note: "copied from node_modules by web/scripts/vendor.mjs (make web); do not edit",
    sha256,
  };
  writeFileSync(new URL("VERSION.json", TARGET), `${JSON.stringify(version, null, 1)}\n`);
  return version;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { package: name, version } = vendor();
  console.log(`vendored ${name} ${version} into ${fileURLToPath(TARGET)}`);
}
