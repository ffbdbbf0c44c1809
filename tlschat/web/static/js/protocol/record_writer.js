// The write side of the record layer (docs/PROTOCOL.md sections 4, 15, 16): records protected
// with the current write keys (plaintext before there are any), the application messages queued
// since the last write sealed together ahead of anything sent after them (one AEAD operation for
// a burst), and the KeyUpdate a sender owes before its key passes its limit.

import { MessageWriter } from "./app_messages.js";
import { concat } from "./bytes.js";
import { HandshakeType, encodeHandshake } from "./messages.js";
import { ContentType, MAX_PLAINTEXT, plaintextRecord } from "./records.js";

export class RecordWriter {
  /** @param {number} maxMessage the longest application message the writer takes */
  constructor(maxMessage) {
    /** @type {import("./records.js").DirectionKeys | null} */
    this.keys = null;
    // Application messages queued but not yet sealed: sealMessages() seals them together.
    this.messages = new MessageWriter(maxMessage);
    /** @type {Uint8Array[]} */
    this.records = [];
  }

  /** @returns {number} how many KeyUpdates this side has sent */
  get generation() {
    return this.keys?.generation ?? 0;
  }

  /**
   * The records written so far; the writer then holds none. Messages still queued stay queued.
   * @returns {Uint8Array}
   */
  take() {
    const data = concat(...this.records);
    this.records = [];
    return data;
  }

  /** Seal the queued application messages, filling records to 16384 bytes. */
  async sealMessages() {
    while (this.messages.length) {
      await this.protect(ContentType.application_data, this.messages.take(MAX_PLAINTEXT));
    }
  }

  /**
   * One record, after the application messages queued before it.
   * @param {number} contentType
   * @param {Uint8Array} content at most 16384 bytes
   */
  async send(contentType, content) {
    await this.sealMessages();
    await this.protect(contentType, content);
  }

  /**
   * KeyUpdate (after the queued messages) under the current key, then the next key (section 15).
   * @param {boolean} requestPeer ask the peer to update its own
   */
  async updateKeys(requestPeer) {
    await this.sealMessages();
    await this.keyUpdate(requestPeer);
  }

  /**
   * @param {number} contentType
   * @param {Uint8Array} content
   */
  async protect(contentType, content) {
    const keys = this.keys;
    if (keys === null) {
      this.records.push(plaintextRecord(contentType, content));
      return;
    }
    // Past the key's limit only an alert may still go out under it.
    if (keys.needsUpdate && contentType !== ContentType.alert) await this.keyUpdate(false);
    this.records.push(await keys.seal(contentType, content));
  }

  /** @param {boolean} requestPeer */
  async keyUpdate(requestPeer) {
    const keys = /** @type {import("./records.js").DirectionKeys} */ (this.keys);
    const message = encodeHandshake({
      msgType: HandshakeType.key_update,
      requestUpdate: requestPeer,
    });
    this.records.push(await keys.seal(ContentType.handshake, message));
    await keys.update();
  }
}
