// Chat frames (docs/PROTOCOL.md section 22): one compact UTF-8 JSON object with a string `type`
// per application message. Decoding checks the size before parsing and each field's type and
// bound when it is read; a bad frame is a FrameError, shown to the user, never a disconnect.
// JSON numbers are doubles here, so an integer field is exact only up to 2^53 - 1: a larger one
// (the spec allows counters to 2^64 - 1) is refused as a FrameError rather than read wrongly.

import { fromBase64, fromUtf8, utf8 } from "./bytes.js";

export const MAX_FRAME = 65536;

/** A frame that is not valid JSON of the expected shape; the text says what is wrong. */
export class FrameError extends Error {}

/**
 * @typedef {{type: string, [field: string]: unknown}} Frame
 */

/**
 * @param {Frame} frame
 * @returns {Uint8Array} compact JSON, non-ASCII as UTF-8, as tlschat writes frames
 */
export function encodeFrame(frame) {
  return utf8(JSON.stringify(frame));
}

/**
 * @param {Uint8Array} data
 * @returns {Frame}
 */
export function decodeFrame(data) {
  if (data.length > MAX_FRAME) {
    throw new FrameError(`frame of ${data.length} bytes exceeds ${MAX_FRAME}`);
  }
  let frame;
  try {
    frame = JSON.parse(fromUtf8(data));
  } catch {
    throw new FrameError("frame is not UTF-8 JSON");
  }
  if (
    frame === null ||
    typeof frame !== "object" ||
    Array.isArray(frame) ||
    typeof frame.type !== "string"
  ) {
    throw new FrameError("frame is not an object with a string 'type'");
  }
  return frame;
}

/**
 * A string field of at most `maxBytes` UTF-8 bytes.
 * @param {Frame} frame
 * @param {string} name
 * @param {number} maxBytes
 * @returns {string}
 */
export function fieldStr(frame, name, maxBytes) {
  const value = frame[name];
  if (typeof value !== "string") throw new FrameError(`'${name}' must be a string`);
  if (!value.isWellFormed()) throw new FrameError(`'${name}' is not valid Unicode`);
  if (utf8(value).length > maxBytes) {
    throw new FrameError(`'${name}' is longer than ${maxBytes} bytes`);
  }
  return value;
}

/**
 * An integer field in [0, maximum], exact (so at most 2^53 - 1).
 * @param {Frame} frame
 * @param {string} name
 * @param {number} maximum
 * @returns {number}
 */
export function fieldInt(frame, name, maximum) {
  const value = frame[name];
  const limit = Math.min(maximum, Number.MAX_SAFE_INTEGER);
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > limit) {
    throw new FrameError(`'${name}' must be an integer in [0, ${limit}]`);
  }
  return value;
}

/**
 * A standard base64 field (with padding) of at most `maxLength` characters.
 * @param {Frame} frame
 * @param {string} name
 * @param {number} maxLength
 * @returns {Uint8Array}
 */
export function fieldBase64(frame, name, maxLength) {
  const text = fieldStr(frame, name, maxLength);
  try {
    return fromBase64(text);
  } catch {
    throw new FrameError(`'${name}' is not base64`);
  }
}
