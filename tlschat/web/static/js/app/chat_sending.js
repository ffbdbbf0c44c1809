// What the user sends: typed lines and commands, queued in order, paced, signed (section 21's
// sender rules, with this browser's key), and each given one outcome (a port of
// chat/client/sending.py). Private lines and lines for end-to-end encrypted rooms wait for what
// encrypting them needs (`_ready`, chat_encrypting.js); a page without a device refuses them
// here, at once and visibly, rather than send them for the server to refuse.

import { Composer, MAX_BODY_BYTES, sayFrame } from "../protocol/envelope.js";
import { MAX_FRAME, encodeFrame } from "../protocol/frames.js";
import { utf8 } from "../protocol/bytes.js";
import { ClientBase } from "./chat_base.js";
import { CLIENT_COMMANDS } from "./chat_commands.js";
import { outgoing } from "./delivery.js";
import { ACTION_PREFIX, DELIVERED, PENDING, REFUSED, error, makeLine } from "./lines.js";

export const NO_DEVICE_FOR_PRIVATE =
  "private messages are end-to-end encrypted, and this page has no device keys";
/** @param {string} room */
export const noDeviceForRoom = (room) =>
  `${room} is end-to-end encrypted, and this page has no device keys`;

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("./delivery.js").Outgoing} Outgoing */

export class ClientSending extends ClientBase {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick
   */
  constructor(identity, nick) {
    super(identity, nick);
    this._composer = new Composer(identity, "");
    /** @type {Set<string>} rooms the user asked to /join: the page moves there when joined */
    this.joinsAsked = new Set();
  }

  /**
   * One line the user typed (it may have several lines): a command, or a message to `target`.
   * @param {string} text
   * @param {number} now seconds
   * @param {string} [target] the room or '@nick' conversation it was typed in (default: the
   *   room the client talks in)
   * @returns {Promise<Line[]>}
   */
  async userInput(text, now, target = "") {
    text = text.replace(/[\r\n]+$/, "");
    if (!text.trim()) return [];
    if (!text.isWellFormed()) return error("not sent: the line is not valid Unicode", now);
    if (text.startsWith("/") && !text.startsWith("//")) {
      const space = text.indexOf(" ");
      const name = (space === -1 ? text.slice(1) : text.slice(1, space)).toLowerCase();
      const args = space === -1 ? "" : text.slice(space + 1).trim();
      const command = Object.hasOwn(CLIENT_COMMANDS, name) ? CLIENT_COMMANDS[name] : undefined;
      if (command !== undefined) {
        if (command.needsArgument && !args) {
          return error(`usage: ${command.usage} — ${command.summary}`, now);
        }
        return command.handler(/** @type {any} */ (this), args, now);
      }
      if (name === "join" && args) this.joinsAsked.add(args.startsWith("#") ? args : `#${args}`);
      return this.sendCommand({ type: "command", name, args }, text, now);
    }
    const body = text.startsWith("//") ? text.slice(1) : text;
    return target.startsWith("@")
      ? this.say(body, now, "", target.slice(1))
      : this.say(body, now, target);
  }

  /**
   * Send what the queue's order and pace allow now; sets wakeAt for the rest.
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async tick(now) {
    /** @type {Line[]} */
    const lines = [];
    this.wakeAt = null;
    this.queue.requeueOverdue(now);
    while (this.ready) {
      const item = this.queue.head();
      if (item === null) break;
      if (item.command !== null) {
        const wait = this.queue.maySendCommand(String(item.command.name ?? ""), now);
        if (wait > 0) {
          this.wakeAt = now + Math.max(wait, 0.001);
          break;
        }
        this.outbox.push(item.command);
        this.queue.sent(item, now);
        continue;
      }
      if (!item.target) {
        if (!this._resolve(item)) break;
        continue;
      }
      if (item.frame === null) {
        const ready = await this._ready(item, now);
        if (ready === false) break;
        if (ready !== true) {
          lines.push(ready); // refused, and out of the queue
          continue;
        }
      }
      const wait = this.queue.maySendMessage(now);
      if (wait > 0) {
        // At least a millisecond on: a float wait can round to `now` itself.
        this.wakeAt = wait === Infinity ? null : now + Math.max(wait, 0.001);
        break;
      }
      lines.push(...(await this._signAndSend(item, now)));
    }
    const resendAt = this.queue.nextOverdue();
    if (resendAt !== null && (this.wakeAt === null || resendAt < this.wakeAt))
      this.wakeAt = resendAt;
    return lines;
  }

  /**
   * A server command waits its turn behind the lines typed before it.
   * @param {import("../protocol/frames.js").Frame} frame
   * @param {string} text as the user typed it
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async sendCommand(frame, text, now) {
    const item = outgoing(this.queue.nextRef(), text, { command: frame });
    const size = encodeFrame(frame).length;
    if (size > MAX_FRAME)
      return [this._refuse(item, `${size} bytes is more than one message carries`, now)];
    if (!this.queue.add(item))
      return [this._refuse(item, "too many lines waiting to be sent", now)];
    return this.tick(now);
  }

  /**
   * Queue a message, shown at once as pending: to `target` (default: the room the client talks
   * in), or privately to the nick `recipient`.
   * @param {string} body
   * @param {number} now
   * @param {string} [target]
   * @param {string} [recipient]
   * @returns {Promise<Line[]>}
   */
  async say(body, now, target = "", recipient = "") {
    target = target || (recipient ? "" : this.room);
    if (!target && !recipient) return error("you are in no room; /join one to talk", now);
    const isAction = body.startsWith(ACTION_PREFIX);
    const ref = this.queue.nextRef();
    const line = makeLine(
      recipient ? "private" : isAction ? "action" : "message",
      now,
      isAction && !recipient ? body.slice(ACTION_PREFIX.length) : body,
      {
        nick: this.nick || this.wantedNick,
        fingerprint: this.identity.fingerprint,
        room: recipient ? `@${recipient}` : target,
        ref,
        delivery: PENDING,
        encrypted: Boolean(recipient) || this._encrypts(target),
      },
    );
    const item = outgoing(ref, body, { line, body, target, recipient });
    if (this.crypto === null && (recipient || target.startsWith("@")))
      return [this._refuse(item, NO_DEVICE_FOR_PRIVATE, now)];
    if (this.crypto === null && this._encrypts(target))
      return [this._refuse(item, noDeviceForRoom(target), now)];
    const size = utf8(body).length;
    if (size > MAX_BODY_BYTES) {
      return [this._refuse(item, `longer than ${MAX_BODY_BYTES} bytes (${size})`, now)];
    }
    if (!this.queue.add(item))
      return [this._refuse(item, "too many lines waiting to be sent", now)];
    return [line, ...(await this.tick(now))];
  }

  /**
   * Whether a line for `target` goes end-to-end encrypted (as far as is known now).
   * @param {string} target
   */
  _encrypts(target) {
    if (target.startsWith("@")) return true;
    return (
      this.encryptedRooms.has(target) ||
      (this.crypto !== null && this.crypto.rooms.isEncrypted(this.network, target))
    );
  }

  /**
   * Whether `item` can be signed and sent now: true; false while what it needs is on its way
   * (the queue waits); or the line refusing it, taken out of the queue. A plain line needs
   * nothing; chat_encrypting.js says what an encrypted one needs.
   * @param {Outgoing} _item
   * @param {number} _now
   * @returns {Promise<boolean | Line>}
   */
  async _ready(_item, _now) {
    return true;
  }

  /**
   * A /msg waits for its recipient's key: ask the server once (`whois`).
   * @param {Outgoing} item
   * @returns {boolean} the key is known now
   */
  _resolve(item) {
    const fingerprint = this.directory.get(item.recipient.toLowerCase());
    if (fingerprint !== undefined) {
      item.target = `@${fingerprint}`;
      return true;
    }
    if (!this._resolving) {
      this._resolving = item.recipient;
      this.outbox.push({ type: "command", name: "whois", args: item.recipient });
    }
    return false;
  }

  /**
   * @param {Outgoing} item
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async _signAndSend(item, now) {
    if (item.frame === null) {
      this._composer.network = this.network;
      const message = await this._composer.sign(item.target, item.body, now);
      this.verifier.rememberOwn(message, now);
      const frame = sayFrame(message);
      // Checked here, not only by the connection, so that a frame too big to send is never
      // kept for re-sending.
      const size = encodeFrame(frame).length;
      if (size > MAX_FRAME) {
        this.queue.waiting.splice(this.queue.waiting.indexOf(item), 1);
        return [this._refuse(item, `${size} bytes is more than one message carries`, now)];
      }
      item.frame = frame;
    }
    this.outbox.push(item.frame);
    this.queue.sent(item, now);
    return [];
  }

  /**
   * `item` will not be delivered: its line says so, and why.
   * @param {Outgoing} item
   * @param {string} reason
   * @param {number} now
   * @returns {Line}
   */
  _refuse(item, reason, now) {
    if (item.line === null)
      return makeLine("error", now, `not sent (${reason}): ${item.text}`, { ref: item.ref });
    return { ...item.line, nick: this.nick || item.line.nick, delivery: REFUSED, problem: reason };
  }

  /** @param {Outgoing} item @returns {Line[]} */
  _deliver(item) {
    if (item.line === null) return [];
    return [{ ...item.line, nick: this.nick || item.line.nick, delivery: DELIVERED }];
  }

  /** @param {number} now @returns {Promise<Line[]>} */
  async _rejoined(now) {
    return this.ready ? this.tick(now) : [];
  }
}
