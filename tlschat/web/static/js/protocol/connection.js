// What a connection does besides its handshake (docs/PROTOCOL.md sections 4, 5, 15-20): records,
// the transcript, alerts, application messages, KeyUpdate, idle records, closure, the handshake
// deadline. ClientConnection (client_connection.js) adds the client's handshake.
//
// Sans-IO: feed received bytes to receiveData(), act on the events it resolves to, and write what
// dataToSend() resolves to. Time only enters through the `now` arguments (seconds). WebCrypto is
// asynchronous, so every method that touches keys returns a promise; calls are run one after the
// other in the order they were made, whatever the caller awaits. A failure caused by the peer (or
// by a bug here) never rejects: it queues the fatal alert, closes, and is reported as a
// connection_failed event. Only misuse by the application (sending before connected) throws.

import { AlertDescription, AlertLevel, ProtocolError, isKnownAlert } from "./alerts.js";
import { MAX_MESSAGE_LIMIT, MessageReader } from "./app_messages.js";
import { concat } from "./bytes.js";
import { connectionClosed, connectionFailed, dataReceived, keyUpdated } from "./events.js";
import { sha256 } from "./keyschedule.js";
import {
  HandshakeReassembler,
  HandshakeType,
  encodeHandshake,
  handshakeTypeName,
} from "./messages.js";
import { RecordWriter } from "./record_writer.js";
import {
  ContentType,
  DirectionKeys,
  KEY_UPDATE_LIMIT,
  MAX_PLAINTEXT,
  RecordReader,
} from "./records.js";

export const DEFAULT_HANDSHAKE_TIMEOUT = 10;
/** tlschat's server and client both set 65536 (section 22); the channel allows up to 2^24 - 1. */
export const DEFAULT_MAX_MESSAGE = 65536;
export const DEFAULT_MAX_IDLE_RECORDS = 64;

/** @enum {string} */
export const State = Object.freeze({
  START: "START",
  WAIT_SERVER_HELLO: "WAIT_SERVER_HELLO",
  WAIT_SERVER_CERTIFICATE: "WAIT_SERVER_CERTIFICATE",
  WAIT_SERVER_CERTIFICATE_VERIFY: "WAIT_SERVER_CERTIFICATE_VERIFY",
  WAIT_TRUST: "WAIT_TRUST",
  WAIT_SERVER_FINISHED: "WAIT_SERVER_FINISHED",
  CONNECTED: "CONNECTED",
  CLOSED: "CLOSED",
});

/**
 * @param {string} what
 * @param {string} state
 * @returns {ProtocolError}
 */
function unexpected(what, state) {
  return new ProtocolError(AlertDescription.unexpected_message, `${what} in state ${state}`);
}

/**
 * @typedef {object} ChannelLimits
 * @property {number} [handshakeTimeout] seconds from the connection's creation (section 20)
 * @property {number} [keyUpdateAfter] records this side protects under one key, 1 to 2^24
 * @property {number} [maxMessage] longest application message accepted and sent
 * @property {number} [maxIdleRecords] records without data accepted in a row (section 17)
 */

export class Connection {
  /** "client" or "server": who raised an alert this side sends (`ProtocolError.sender`). */
  role = "";
  peerRole = "";

  /**
   * @param {ChannelLimits} limits
   * @param {number} now seconds
   */
  constructor(limits, now) {
    this.handshakeTimeout = limits.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    this.keyUpdateAfter = limits.keyUpdateAfter ?? KEY_UPDATE_LIMIT;
    this.maxMessage = limits.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.maxIdleRecords = limits.maxIdleRecords ?? DEFAULT_MAX_IDLE_RECORDS;
    if (
      !(
        Number.isInteger(this.keyUpdateAfter) &&
        this.keyUpdateAfter >= 1 &&
        this.keyUpdateAfter <= KEY_UPDATE_LIMIT
      )
    ) {
      throw new RangeError(`keyUpdateAfter must be in [1, ${KEY_UPDATE_LIMIT}]`);
    }
    if (
      !(
        Number.isInteger(this.maxMessage) &&
        this.maxMessage >= 0 &&
        this.maxMessage <= MAX_MESSAGE_LIMIT
      )
    ) {
      throw new RangeError("maxMessage must fit the 3-byte application message length");
    }
    if (!(this.handshakeTimeout > 0) || !(this.maxIdleRecords >= 0)) {
      throw new RangeError("handshakeTimeout must be positive and maxIdleRecords >= 0");
    }
    /** @type {string} */
    this.state = State.START;
    /** @type {number | null} */
    this.deadline = now + this.handshakeTimeout;
    this.closeNotifyReceived = false;
    this.closeNotifySent = false;
    /** @type {ProtocolError | null} */
    this.error = null;
    this._records = new RecordReader();
    this._handshake = new HandshakeReassembler();
    /** @type {Uint8Array[]} handshake messages as on the wire, in order (section 10) */
    this._transcript = [];
    this._transcriptBefore = new Uint8Array(0);
    this._writer = new RecordWriter(this.maxMessage);
    this._received = new MessageReader(this.maxMessage);
    this._idleRecords = 0;
    /** @type {import("./events.js").ConnectionEvent[]} */
    this._events = [];
    /** @type {Promise<unknown>} */
    this._queue = Promise.resolve();
  }

  /** @returns {boolean} */
  get isConnected() {
    return this.state === State.CONNECTED;
  }

  /** @returns {number} how many KeyUpdates the peer has sent */
  get readGeneration() {
    return this._records.readKeys?.generation ?? 0;
  }

  /** @returns {number} how many KeyUpdates this side has sent */
  get writeGeneration() {
    return this._writer.generation;
  }

  /**
   * Everything queued, with the application messages sent since the last call sealed together
   * into as few records as they fit. Should sealing fail, `error` says why.
   * @returns {Promise<Uint8Array>}
   */
  dataToSend() {
    return this._serialize(async () => {
      await this._guarded(() => this._writer.sealMessages());
      return this._writer.take();
    });
  }

  /**
   * Process received bytes.
   * @param {Uint8Array} data
   * @returns {Promise<import("./events.js").ConnectionEvent[]>} the events they complete
   */
  receiveData(data) {
    return this._serialize(async () => {
      if (this.state === State.CLOSED) {
        if (data.length && this.closeNotifyReceived) {
          this.error = new ProtocolError(
            AlertDescription.unexpected_message,
            "data after close_notify",
            this.role,
          );
          return [connectionFailed(this.error)];
        }
        return [];
      }
      this._records.feed(data);
      return this._guarded(() => this._processRecords());
    });
  }

  /**
   * The transport reached end of stream: truncation unless either side had closed.
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  receiveEof() {
    return this._serialize(async () => {
      if (this.closeNotifyReceived || this.closeNotifySent || this.error !== null) {
        this.state = State.CLOSED;
        return [];
      }
      this.closeNotifySent = true; // the transport is gone: no alert can be written
      return this._guarded(async () => {
        throw new ProtocolError(
          AlertDescription.truncated,
          "connection ended without close_notify",
        );
      });
    });
  }

  /**
   * Fail the handshake if its deadline has passed.
   * @param {number} now seconds
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  handleTimer(now) {
    return this._serialize(async () => {
      if (this.deadline === null || now < this.deadline || this.state === State.CLOSED) return [];
      return this._guarded(async () => {
        throw new ProtocolError(
          AlertDescription.handshake_timeout,
          "handshake did not finish in time",
        );
      });
    });
  }

  /**
   * Queue one application message; dataToSend() seals it. Throws if not connected, or after
   * close(), or if the message is longer than maxMessage.
   * @param {Uint8Array} data
   */
  sendData(data) {
    if (this.state !== State.CONNECTED || this.closeNotifySent) {
      throw new Error(`cannot send application data in state ${this.state}`);
    }
    this._writer.messages.write(data);
  }

  /**
   * Send KeyUpdate and switch to the next write key (section 15); rejects if not connected.
   * @param {boolean} [requestPeer] ask the peer to update its key too
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  updateKeys(requestPeer = false) {
    return this._serialize(async () => {
      if (this.state !== State.CONNECTED || this.closeNotifySent) {
        throw new Error(`cannot update keys in state ${this.state}`);
      }
      return this._guarded(async () => {
        await this._writer.updateKeys(requestPeer);
      });
    });
  }

  /**
   * End the connection from above (the application failed): send `alert` and close.
   * @param {number} alert
   * @param {string} reason
   * @returns {Promise<ProtocolError>}
   */
  abort(alert, reason) {
    return this._serialize(async () => {
      const error = new ProtocolError(alert, reason, this.role);
      await this._fail(error);
      return error;
    });
  }

  /**
   * Send close_notify (section 19). Before CONNECTED it also closes at once; after, the peer's
   * close_notify is still read (half-close).
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  close() {
    return this._serialize(async () => {
      if (this.closeNotifySent || (this.state === State.CLOSED && this.error !== null)) return [];
      return this._guarded(async () => {
        await this._sendAlert(AlertLevel.warning, AlertDescription.close_notify);
        this.closeNotifySent = true;
        if (this.closeNotifyReceived || this.state !== State.CONNECTED) this.state = State.CLOSED;
      });
    });
  }

  // ----- machinery -----

  /**
   * Run `fn` after every call made before it has finished.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  _serialize(fn) {
    const run = this._queue.then(fn);
    this._queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Run one step; a failure sends its alert, closes, and becomes a connection_failed event. An
   * exception that is no ProtocolError is a bug here, reported as internal_error.
   * @param {() => Promise<void>} step
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  async _guarded(step) {
    this._events = [];
    try {
      await step();
    } catch (caught) {
      const error =
        caught instanceof ProtocolError
          ? caught
          : new ProtocolError(
              AlertDescription.internal_error,
              caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught),
            );
      await this._fail(error);
      this._events.push(connectionFailed(error));
    }
    return this._events;
  }

  /** @param {ProtocolError} error */
  async _fail(error) {
    if (!error.sender) error.sender = error.received ? this.peerRole : this.role;
    this.error = error;
    if (!error.received && !this.closeNotifySent && this.state !== State.CLOSED) {
      this.closeNotifySent = true;
      try {
        await this._sendAlert(AlertLevel.fatal, error.alert);
      } catch {
        // WebCrypto could not seal it: there is no alert to send, the connection ends anyway.
      }
    }
    this.state = State.CLOSED;
    this.deadline = null;
  }

  /**
   * @param {number} level
   * @param {number} description
   */
  _sendAlert(level, description) {
    return this._writer.send(ContentType.alert, Uint8Array.of(level, description));
  }

  /**
   * Add a handshake message to the transcript and send it, split at 16384 bytes.
   * @param {import("./messages.js").HandshakeMessage} message
   */
  async _sendHandshake(message) {
    const raw = encodeHandshake(message);
    this._transcript.push(raw);
    for (let start = 0; start < raw.length; start += MAX_PLAINTEXT) {
      await this._writer.send(ContentType.handshake, raw.subarray(start, start + MAX_PLAINTEXT));
    }
  }

  /** @returns {Promise<Uint8Array>} SHA-256 of the transcript so far */
  _transcriptHash() {
    return sha256(concat(...this._transcript));
  }

  async _processRecords() {
    while (this.state !== State.CLOSED) {
      const record = await this._records.next();
      if (record === null) break;
      if (this.state === State.WAIT_TRUST && record.contentType !== ContentType.alert) {
        // The server sends nothing until our Finished, but it may time out or fail while the
        // user decides on its fingerprint: its alert must still be read.
        throw unexpected("record before the client's identity was sent", this.state);
      }
      if (record.contentType === ContentType.alert) {
        await this._handleAlert(record.content);
      } else if (record.contentType === ContentType.handshake) {
        await this._handleHandshakeRecord(record.content);
      } else {
        this._handleApplicationData(record.content);
      }
    }
  }

  _countIdleRecord() {
    this._idleRecords += 1;
    if (this._idleRecords > this.maxIdleRecords) {
      throw new ProtocolError(
        AlertDescription.too_many_records,
        `more than ${this.maxIdleRecords} records in a row without data`,
      );
    }
  }

  /** @param {Uint8Array} content */
  async _handleAlert(content) {
    if (content.length !== 2) {
      throw new ProtocolError(AlertDescription.decode_error, `alert of ${content.length} bytes`);
    }
    const [level, code] = content;
    if (level !== AlertLevel.warning && level !== AlertLevel.fatal) {
      throw new ProtocolError(AlertDescription.illegal_parameter, `alert level ${level}`);
    }
    if (this._handshake.pending) {
      throw unexpected("alert inside a split handshake message", this.state);
    }
    if (code === AlertDescription.close_notify) {
      this.closeNotifyReceived = true;
      this._events.push(connectionClosed());
      if (!this.closeNotifySent) {
        await this._sendAlert(AlertLevel.warning, AlertDescription.close_notify);
        this.closeNotifySent = true;
      }
      this.state = State.CLOSED;
      this.deadline = null;
      if (this._records.pending) {
        throw new ProtocolError(AlertDescription.unexpected_message, "data after close_notify");
      }
      return;
    }
    if (level === AlertLevel.warning && code === AlertDescription.user_canceled) {
      this._countIdleRecord();
      return;
    }
    const description = isKnownAlert(code) ? code : AlertDescription.internal_error;
    throw new ProtocolError(
      description,
      `peer sent alert ${code} (level ${level})`,
      this.peerRole,
      true,
    );
  }

  /** @param {Uint8Array} content */
  _handleApplicationData(content) {
    if (this.state !== State.CONNECTED) throw unexpected("application data", this.state);
    if (!content.length) {
      this._countIdleRecord();
      return;
    }
    this._idleRecords = 0;
    for (const message of this._received.feed(content)) this._events.push(dataReceived(message));
  }

  /** @param {Uint8Array} content */
  async _handleHandshakeRecord(content) {
    if (!content.length) {
      throw new ProtocolError(AlertDescription.unexpected_message, "empty handshake record");
    }
    const messages = this._handshake.feed(content);
    for (const [index, { message, raw }] of messages.entries()) {
      const keysBefore = this._records.readKeys;
      const generationBefore = this.readGeneration;
      await this._handleHandshake(message, raw);
      const keysChanged =
        keysBefore !== this._records.readKeys || generationBefore !== this.readGeneration;
      const last = index === messages.length - 1 && !this._handshake.pending;
      if (keysChanged && !last) {
        throw new ProtocolError(
          AlertDescription.unexpected_message,
          "handshake data after a key change in the same record",
        );
      }
    }
  }

  /**
   * @param {import("./messages.js").HandshakeMessage} message
   * @param {Uint8Array} raw its wire bytes
   */
  async _handleHandshake(message, raw) {
    if (message.msgType === HandshakeType.key_update) {
      await this._handleKeyUpdate(message.requestUpdate);
      return;
    }
    const handler = this._handlerFor(this.state, message.msgType);
    if (handler === undefined) throw unexpected(handshakeTypeName(message.msgType), this.state);
    this._transcriptBefore = await this._transcriptHash();
    this._transcript.push(raw);
    await handler(message);
  }

  /** @param {boolean} requestUpdate */
  async _handleKeyUpdate(requestUpdate) {
    if (this.state !== State.CONNECTED) throw unexpected("KeyUpdate", this.state);
    this._countIdleRecord();
    await /** @type {DirectionKeys} */ (this._records.readKeys).update();
    this._events.push(keyUpdated("read", this.readGeneration));
    if (requestUpdate && !this.closeNotifySent) {
      await this._writer.updateKeys(false);
      this._events.push(keyUpdated("write", this.writeGeneration));
    }
  }

  /**
   * The handler of a handshake message in a state, if that message is expected there.
   * @param {string} state
   * @param {number} msgType
   * @returns {((message: any) => Promise<void>) | undefined}
   */
  _handlerFor(state, msgType) {
    throw new Error(`no handshake handlers for ${state} and ${msgType}`);
  }
}
