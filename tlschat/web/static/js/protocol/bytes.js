// Byte helpers for the wire encoding (docs/PROTOCOL.md section 2): hex and base64, UTF-8 that
// refuses what it cannot encode faithfully, a bounded reader whose every read checks the length
// left first (a violation is decode_error), a writer, a byte queue for stream reassembly, and a
// constant-time comparison for values an attacker may probe.

import { AlertDescription, ProtocolError } from "./alerts.js";

/**
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concat(...parts) {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Standard base64 with padding (the chat frames' encoding of binary fields).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict standard base64 with padding; anything else is a RangeError.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromBase64(text) {
  if (!BASE64.test(text)) throw new RangeError("not base64");
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * UTF-8 of a well-formed string. TextEncoder would silently turn a lone surrogate into U+FFFD,
 * so that signed bytes would differ from what the string says: refused instead.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  if (!text.isWellFormed()) throw new RangeError("string holds a lone surrogate");
  return encoder.encode(text);
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} the text; a TypeError if the bytes are not UTF-8
 */
export function fromUtf8(bytes) {
  return strictDecoder.decode(bytes);
}

/**
 * Compare without an early exit, so the time taken does not tell where two values differ.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * @param {number} value
 * @param {number} size bytes, at most 6 (a JavaScript number is exact up to 2^53)
 * @returns {Uint8Array} big-endian
 */
export function uint(value, size) {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 2 ** (8 * size)) {
    throw new RangeError(`${value} does not fit ${size} bytes`);
  }
  const out = new Uint8Array(size);
  for (let i = size - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/** A decode_error: the peer's bytes do not have the shape the spec gives them. */
export class DecodeError extends ProtocolError {
  /** @param {string} reason */
  constructor(reason) {
    super(AlertDescription.decode_error, reason);
  }
}

/** Reads a body field by field; every read is bounded by what is left. */
export class Reader {
  /** @param {Uint8Array} data */
  constructor(data) {
    this.data = data;
    this.pos = 0;
  }

  /** @returns {number} */
  get remaining() {
    return this.data.length - this.pos;
  }

  /**
   * @param {number} n
   * @returns {Uint8Array}
   */
  fixed(n) {
    if (n > this.remaining) throw new DecodeError(`need ${n} bytes, ${this.remaining} left`);
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * @param {number} size bytes (1 to 4)
   * @returns {number}
   */
  uint(size) {
    let value = 0;
    for (const byte of this.fixed(size)) value = value * 256 + byte;
    return value;
  }

  /** @returns {number} */
  u8() {
    return this.uint(1);
  }

  /** @returns {number} */
  u16() {
    return this.uint(2);
  }

  /**
   * A length-prefixed value whose length must lie in [minimum, maximum].
   * @param {number} lengthSize
   * @param {number} minimum
   * @param {number} maximum
   * @param {string} what
   * @returns {Uint8Array}
   */
  vector(lengthSize, minimum, maximum, what) {
    const length = this.uint(lengthSize);
    if (length < minimum || length > maximum) {
      throw new DecodeError(`${what}: length ${length} outside [${minimum}, ${maximum}]`);
    }
    return this.fixed(length);
  }

  /**
   * A u8-length list of u16 values, between minimum and maximum entries.
   * @param {number} minimum
   * @param {number} maximum
   * @param {string} what
   * @returns {number[]}
   */
  u16List(minimum, maximum, what) {
    const raw = this.vector(1, 2 * minimum, 2 * maximum, what);
    if (raw.length % 2) throw new DecodeError(`${what}: odd length ${raw.length}`);
    const values = [];
    for (let i = 0; i < raw.length; i += 2) values.push(raw[i] * 256 + raw[i + 1]);
    return values;
  }

  /** @param {string} what */
  finish(what) {
    if (this.remaining) throw new DecodeError(`${what}: ${this.remaining} trailing bytes`);
  }
}

/** Builds a body field by field. */
export class Writer {
  constructor() {
    /** @type {Uint8Array[]} */
    this.parts = [];
  }

  /**
   * @param {number} value
   * @param {number} size
   * @returns {Writer}
   */
  uint(value, size) {
    this.parts.push(uint(value, size));
    return this;
  }

  /**
   * A u64 from a safe integer (counters and times stay below 2^53 until the year 2255).
   * @param {number} value
   * @returns {Writer}
   */
  u64(value) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${value} is not a safe u64`);
    }
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    this.parts.push(out);
    return this;
  }

  /**
   * @param {Uint8Array} data
   * @returns {Writer}
   */
  fixed(data) {
    this.parts.push(data);
    return this;
  }

  /**
   * @param {number} lengthSize
   * @param {Uint8Array} data
   * @returns {Writer}
   */
  vector(lengthSize, data) {
    return this.uint(data.length, lengthSize).fixed(data);
  }

  /**
   * @param {number[]} values
   * @returns {Writer}
   */
  u16List(values) {
    return this.vector(1, concat(...values.map((v) => uint(v, 2))));
  }

  /** @returns {Uint8Array} */
  bytes() {
    return concat(...this.parts);
  }
}

/**
 * Bytes received but not yet consumed, kept as the chunks they came in so that a long stream
 * arriving in small pieces is not copied over and over.
 */
export class ByteQueue {
  constructor() {
    /** @type {Uint8Array[]} */
    this.chunks = [];
    this.length = 0;
  }

  /** @param {Uint8Array} data */
  push(data) {
    if (data.length) {
      this.chunks.push(data);
      this.length += data.length;
    }
  }

  /**
   * The first n bytes (n at most length), left in the queue.
   * @param {number} n
   * @returns {Uint8Array}
   */
  peek(n) {
    const out = new Uint8Array(n);
    let filled = 0;
    for (const chunk of this.chunks) {
      if (filled === n) break;
      const part = chunk.subarray(0, n - filled);
      out.set(part, filled);
      filled += part.length;
    }
    return out;
  }

  /**
   * Remove and return the first n bytes (n at most length).
   * @param {number} n
   * @returns {Uint8Array}
   */
  take(n) {
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const head = this.chunks[0];
      if (head.length <= left) {
        this.chunks.shift();
        left -= head.length;
      } else {
        this.chunks[0] = head.subarray(left);
        left = 0;
      }
    }
    this.length -= n;
    return out;
  }
}
