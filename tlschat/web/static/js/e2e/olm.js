// The Olm library: libolm built to WebAssembly (npm's @towns-protocol/olm, its browser build
// vendored in /vendor/olm/ by web/scripts/vendor.mjs), wire-compatible with the vodozemac the
// terminal client uses. Loaded once per page; the wasm is fetched beside the module, which the
// page's CSP allows ('wasm-unsafe-eval', nothing inline).
//
// The library's JavaScript binding passes plaintexts as UTF-8 strings, and cuts what it decrypts
// at the first zero byte. A sealed chat line (section 23) is binary, so Megolm lines go through
// libolm's own C functions here (`groupEncrypt`, `groupDecrypt`), on bytes: the same calls the
// binding makes, with the buffers handled as bytes. No cryptography is done in this module.

import Olm from "../../vendor/olm/olm.web.mjs";

/** An error libolm reported ("OLM.BAD_MESSAGE_MAC", ...), or a binding call it refused. */
export class OlmLibraryError extends Error {}

/**
 * @typedef {{
 *   _malloc: (n: number) => number, _free: (p: number) => void, HEAPU8: Uint8Array,
 *   UTF8ToString: (p: number) => string, _olm_error: () => number,
 *   [name: string]: any,
 * }} OlmModule the Emscripten module: libolm's exported C functions and its memory
 */

export class OlmLibrary {
  /**
   * @param {any} exports the binding's classes (Account, Session, SAS, ...)
   * @param {OlmModule} module
   */
  constructor(exports, module) {
    this.Account = exports.Account;
    this.Session = exports.Session;
    this.Utility = exports.Utility;
    this.InboundGroupSession = exports.InboundGroupSession;
    this.OutboundGroupSession = exports.OutboundGroupSession;
    this.SAS = exports.SAS;
    /** @type {[number, number, number]} */
    this.version = exports.get_library_version();
    this._module = module;
    this._error = module._olm_error();
  }

  /**
   * Megolm-encrypt `plaintext` (any bytes) with an outbound group session.
   * @param {{ptr: number}} session an OutboundGroupSession
   * @param {Uint8Array} plaintext
   * @returns {string} the message, unpadded base64
   */
  groupEncrypt(session, plaintext) {
    const m = this._module;
    const length = plaintext.length;
    const messageLength = this._checked(
      m._olm_group_encrypt_message_length(session.ptr, length),
      m._olm_outbound_group_session_last_error,
      session,
    );
    const input = m._malloc(length + 1);
    const output = m._malloc(messageLength + 1);
    try {
      m.HEAPU8.set(plaintext, input);
      const written = this._checked(
        m._olm_group_encrypt(session.ptr, input, length, output, messageLength),
        m._olm_outbound_group_session_last_error,
        session,
      );
      return ascii(m.HEAPU8.subarray(output, output + written));
    } finally {
      m.HEAPU8.fill(0, input, input + length + 1);
      m._free(input);
      m._free(output);
    }
  }

  /**
   * Megolm-decrypt a message (unpadded base64) with an inbound group session.
   * @param {{ptr: number}} session an InboundGroupSession
   * @param {string} message
   * @returns {{plaintext: Uint8Array, messageIndex: number}}
   */
  groupDecrypt(session, message) {
    if (!/^[A-Za-z0-9+/]+$/.test(message)) throw new OlmLibraryError("OLM.INVALID_BASE64");
    const m = this._module;
    const length = message.length;
    const input = m._malloc(length);
    const index = m._malloc(4);
    let output = 0;
    let maximum = 0;
    try {
      // libolm decodes the base64 in place: each call gets a fresh copy.
      writeAscii(m, message, input);
      maximum = this._checked(
        m._olm_group_decrypt_max_plaintext_length(session.ptr, input, length),
        m._olm_inbound_group_session_last_error,
        session,
      );
      output = m._malloc(maximum + 1);
      writeAscii(m, message, input);
      const written = this._checked(
        m._olm_group_decrypt(session.ptr, input, length, output, maximum, index),
        m._olm_inbound_group_session_last_error,
        session,
      );
      const plaintext = m.HEAPU8.slice(output, output + written);
      const messageIndex = new DataView(m.HEAPU8.buffer).getUint32(index, true);
      return { plaintext, messageIndex };
    } finally {
      if (output) {
        m.HEAPU8.fill(0, output, output + maximum + 1);
        m._free(output);
      }
      m._free(input);
      m._free(index);
    }
  }

  /**
   * @param {number} result what a libolm call returned
   * @param {(ptr: number) => number} lastError the object's last-error function
   * @param {{ptr: number}} object
   * @returns {number} `result`, unless it is libolm's error value
   */
  _checked(result, lastError, object) {
    if (result !== this._error) return result;
    throw new OlmLibraryError(`OLM.${this._module.UTF8ToString(lastError(object.ptr))}`);
  }
}

const decoder = new TextDecoder();

/** @param {Uint8Array} bytes libolm's base64 output @returns {string} */
function ascii(bytes) {
  return decoder.decode(bytes);
}

/** @param {OlmModule} m @param {string} text @param {number} at */
function writeAscii(m, text, at) {
  const heap = m.HEAPU8;
  for (let i = 0; i < text.length; i++) heap[at + i] = text.charCodeAt(i);
}

/** @type {Promise<OlmLibrary> | null} */
let loading = null;

/**
 * The library, loaded on first use (the page's one copy).
 * @param {{wasmBinary?: Uint8Array}} [options] Emscripten's; where there is no fetch of the
 *   module's own URL (Node's tests), the wasm's bytes
 * @returns {Promise<OlmLibrary>}
 */
export function loadOlm(options = {}) {
  loading ??= (async () => {
    /** @type {any} */
    const module = { ...options };
    const exports = await Olm.initAsync(module);
    return new OlmLibrary(exports, module);
  })();
  return loading;
}
