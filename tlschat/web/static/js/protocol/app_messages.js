// Application messages (docs/PROTOCOL.md section 16): inside application_data records each
// direction's bytes are a stream of `u24 length || payload` messages, which may span records or
// share one. The writer frames what the application sends and hands it out in record-sized
// pieces; the reader reassembles, refusing a length over the bound as soon as its 3 bytes are in.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { ByteQueue, uint } from "./bytes.js";

const LENGTH_BYTES = 3;
/** The most a u24 length can say. */
export const MAX_MESSAGE_LIMIT = 2 ** 24 - 1;

/** Messages queued to be sealed, framed. */
export class MessageWriter {
  /** @param {number} maxMessage */
  constructor(maxMessage) {
    this.maxMessage = maxMessage;
    this.queue = new ByteQueue();
  }

  /** @returns {number} framed bytes waiting to be sealed */
  get length() {
    return this.queue.length;
  }

  /**
   * Frame one message; a RangeError if it is longer than maxMessage.
   * @param {Uint8Array} data copied, so the caller may reuse its buffer
   */
  write(data) {
    if (data.length > this.maxMessage) {
      throw new RangeError(`message of ${data.length} bytes exceeds ${this.maxMessage}`);
    }
    this.queue.push(uint(data.length, LENGTH_BYTES));
    this.queue.push(data.slice());
  }

  /**
   * The next piece of the stream, at most `size` bytes.
   * @param {number} size
   * @returns {Uint8Array}
   */
  take(size) {
    return this.queue.take(Math.min(this.queue.length, size));
  }
}

/** Reassembles the peer's messages from the content of its application_data records. */
export class MessageReader {
  /** @param {number} maxMessage */
  constructor(maxMessage) {
    this.maxMessage = maxMessage;
    this.queue = new ByteQueue();
  }

  /**
   * @param {Uint8Array} content one record's content
   * @returns {Uint8Array[]} the messages it completes
   */
  feed(content) {
    this.queue.push(content);
    const messages = [];
    while (this.queue.length >= LENGTH_BYTES) {
      const [a, b, c] = this.queue.peek(LENGTH_BYTES);
      const length = (a << 16) | (b << 8) | c;
      if (length > this.maxMessage) {
        throw new ProtocolError(
          AlertDescription.record_overflow,
          `application message of ${length} bytes exceeds ${this.maxMessage}`,
        );
      }
      if (this.queue.length < LENGTH_BYTES + length) break;
      messages.push(this.queue.take(LENGTH_BYTES + length).subarray(LENGTH_BYTES));
    }
    return messages;
  }
}
