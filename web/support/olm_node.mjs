// The vendored Olm library (tlschat/web/static/vendor/olm/), the very files the page loads,
// loaded under Node for the tests: its browser build draws randomness from `window.crypto` and
// fetches its wasm beside itself, so Node gets a `window` with WebCrypto's `crypto`, and the
// wasm's bytes read from the file.

import { readFileSync } from "node:fs";

import { loadOlm } from "../../tlschat/web/static/js/e2e/olm.js";

const WASM = new URL("../../tlschat/web/static/vendor/olm/olm.wasm", import.meta.url);

/** @returns {Promise<import("../../tlschat/web/static/js/e2e/olm.js").OlmLibrary>} */
export function nodeOlm() {
  globalThis.window ??= /** @type {any} */ ({ crypto: globalThis.crypto });
  return loadOlm({ wasmBinary: readFileSync(WASM) });
}
