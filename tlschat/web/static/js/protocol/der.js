// A minimal DER reader: just enough to walk a peer's X.509 certificate and SubjectPublicKeyInfo
// (docs/PROTOCOL.md section 9). It reads definite lengths of at most 4 bytes, never recurses on
// its own, and bounds every element by the bytes that hold it; anything else is a DerError,
// which the caller turns into bad_certificate. One writer re-encodes an element it read.

import { concat } from "./bytes.js";

/** The bytes are not the DER this reader expects. */
export class DerError extends Error {}

export const Tag = Object.freeze({
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  /** @param {number} n @returns {number} a constructed context-specific tag [n] */
  context: (n) => 0xa0 + n,
});

/**
 * @typedef {{tag: number, contents: Uint8Array, raw: Uint8Array}} Element
 *   `raw` is the whole TLV, `contents` its value
 */

/** Reads the elements of one constructed value (or of a whole encoding) in order. */
export class DerReader {
  /** @param {Uint8Array} data */
  constructor(data) {
    this.data = data;
    this.pos = 0;
  }

  /** @returns {boolean} */
  get done() {
    return this.pos >= this.data.length;
  }

  /** @returns {number | null} the tag of the next element, if there is one */
  peekTag() {
    return this.done ? null : this.data[this.pos];
  }

  /** @returns {Element} */
  next() {
    const start = this.pos;
    if (this.data.length - start < 2) throw new DerError("truncated element");
    const tag = this.data[start];
    if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not expected here");
    let length = this.data[start + 1];
    let offset = start + 2;
    if (length & 0x80) {
      const size = length & 0x7f;
      if (size === 0 || size > 4) throw new DerError("indefinite or oversized length");
      if (this.data.length - offset < size) throw new DerError("truncated length");
      length = 0;
      for (let i = 0; i < size; i++) length = length * 256 + this.data[offset + i];
      offset += size;
    }
    if (length > this.data.length - offset) throw new DerError("element longer than its container");
    this.pos = offset + length;
    return {
      tag,
      contents: this.data.subarray(offset, offset + length),
      raw: this.data.subarray(start, offset + length),
    };
  }

  /**
   * @param {number} tag
   * @returns {Element}
   */
  expect(tag) {
    const element = this.next();
    if (element.tag !== tag) {
      throw new DerError(`tag 0x${element.tag.toString(16)}, expected 0x${tag.toString(16)}`);
    }
    return element;
  }

  /**
   * The next element if it has this tag, else null (an OPTIONAL or DEFAULT field left out).
   * @param {number} tag
   * @returns {Element | null}
   */
  optional(tag) {
    return this.peekTag() === tag ? this.next() : null;
  }

  finish() {
    if (!this.done) throw new DerError("trailing bytes");
  }
}

/**
 * The children of a constructed element.
 * @param {Element} element
 * @returns {DerReader}
 */
export function inside(element) {
  return new DerReader(element.contents);
}

/**
 * An OID's encoded contents as hex: how this module compares them.
 * @param {Element} element
 * @returns {string}
 */
export function oidHex(element) {
  let out = "";
  for (const byte of element.contents) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * A BIT STRING with no unused bits (signatures and keys), as bytes.
 * @param {Element} element
 * @returns {Uint8Array}
 */
export function bitStringBytes(element) {
  if (element.contents.length < 1 || element.contents[0] !== 0) {
    throw new DerError("BIT STRING with unused bits");
  }
  return element.contents.subarray(1);
}

/**
 * One element with a definite length (contents of at most 65535 bytes).
 * @param {number} tag
 * @param {Uint8Array} contents
 * @returns {Uint8Array}
 */
export function derElement(tag, contents) {
  const n = contents.length;
  if (n > 0xffff) throw new RangeError(`DER contents of ${n} bytes`);
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return concat(Uint8Array.of(tag, ...length), contents);
}
