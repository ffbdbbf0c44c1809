// One connection to the server: a WebSocket to `/ws` on the page's own host that carries the
// tlschat byte stream unchanged, in binary messages of any size, and the sans-IO
// ClientConnection that the bytes go through. The link moves bytes both ways and reports what
// the connection says; deciding what to do about it is the session's.

import { State } from "../protocol/connection.js";
import { ClientConnection } from "../protocol/client_connection.js";
import { encodeFrame } from "../protocol/frames.js";

/**
 * @param {Location} where the page's location
 * @returns {string} the WebSocket address on the page's own host: wss on https, ws on http
 */
export function socketUrl(where) {
  return `${where.protocol === "https:" ? "wss:" : "ws:"}//${where.host}/ws`;
}

/**
 * @typedef {{
 *   run: (step: () => Promise<void>) => void,
 *   events: (events: import("../protocol/events.js").ConnectionEvent[]) => Promise<void>,
 *   ended: (opened: boolean) => Promise<void>,
 * }} LinkHandlers
 *   `run`: the session's queue, so that everything the link reports is handled one at a time
 *   and in order; `events`: what the connection made of the bytes; `ended`: the socket closed
 *   (`opened`: it was open at all), after the connection was told of the end of stream.
 */

export class Link {
  /**
   * @param {string} url
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {LinkHandlers} handlers
   * @param {number} now seconds
   */
  constructor(url, identity, handlers, now) {
    this.connection = new ClientConnection({ identity }, now);
    this.handlers = handlers;
    this.opened = false;
    /** The handshake completed on this link: a loss now is a broken chat, not a failed attempt. */
    this.established = false;
    this.closed = false;
    this.socket = new WebSocket(url);
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () =>
      handlers.run(async () => {
        this.opened = true;
        await this._report(await this.connection.startHandshake());
      });
    this.socket.onmessage = (event) =>
      handlers.run(async () => {
        if (!(event.data instanceof ArrayBuffer)) return; // the stream is binary only
        await this._report(await this.connection.receiveData(new Uint8Array(event.data)));
      });
    this.socket.onclose = () =>
      handlers.run(async () => {
        if (this.closed) return;
        this.closed = true;
        if (this.opened) await handlers.events(await this.connection.receiveEof());
        await handlers.ended(this.opened);
      });
  }

  /** @returns {boolean} the secure channel is up */
  get connected() {
    return this.connection.isConnected && !this.closed;
  }

  /** @returns {boolean} the connection waits for trustServer() or rejectServer() */
  get waitsForTrust() {
    return this.connection.state === State.WAIT_TRUST && !this.closed;
  }

  /**
   * Send frames as application messages, sealed together.
   * @param {import("../protocol/frames.js").Frame[]} frames
   */
  async send(frames) {
    if (!this.connected) return;
    for (const frame of frames) this.connection.sendData(encodeFrame(frame));
    await this.flush();
  }

  /** Write what the connection has queued (a handshake flight, sealed messages, an alert). */
  async flush() {
    const data = await this.connection.dataToSend();
    if (data.length && this.socket.readyState === WebSocket.OPEN) this.socket.send(data);
  }

  /** @param {import("../protocol/events.js").ConnectionEvent[]} events */
  async _report(events) {
    await this.flush();
    await this.handlers.events(events);
    await this.flush();
  }

  /** @param {number} now @returns {Promise<void>} fail the handshake once its deadline passed */
  async timer(now) {
    await this._report(await this.connection.handleTimer(now));
  }

  /** @returns {Promise<void>} accept the server's key: the client's identity and Finished go out */
  async trust() {
    await this._report(await this.connection.trustServer());
  }

  /** @param {string} reason refuse the server's key: bad_certificate, and the socket closes */
  async reject(reason) {
    await this.connection.rejectServer(reason);
    await this.flush();
    this.shut();
  }

  /** Close the socket at once; nothing more is reported. */
  shut() {
    this.closed = true;
    this.socket.close();
  }
}
