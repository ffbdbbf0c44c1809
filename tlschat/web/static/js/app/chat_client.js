// The web client's chat logic, whole (a port of chat/client/receiving.py): what the server
// sends, checked and turned into lines to show, through one table of small frame handlers.
// Pure: the glue hands it decoded frames (`receive`) and typed lines (`userInput`), shows the
// lines they resolve to, sends what `takeOutbox` returns, and calls `tick` at `wakeAt`. Every
// call is async (signatures are WebCrypto's) and the glue makes them one at a time.

import { FrameError, decodeFrame, fieldInt, fieldStr } from "../protocol/frames.js";
import { fingerprintsEqual } from "../protocol/identity.js";
import { REPLAYED_COUNTER } from "./chat_base.js";
import { CLIENT_COMMANDS, HELP_TITLE, commandName } from "./chat_commands.js";
import { ClientInbox } from "./chat_inbox.js";
import { inviteLink } from "./invite_link.js";
import { error, makeLine, notice } from "./lines.js";
import { RunFeed } from "./runs.js";

const MAX_RETRY_AFTER = 3600;
const MAX_SECONDS = 1e11;

/** @typedef {import("./lines.js").Line} Line */
/** @typedef {import("../protocol/frames.js").Frame} Frame */

/**
 * @param {unknown} value
 * @param {number} low
 * @param {number} high
 * @returns {number | null} `value` if it is a number in [low, high]
 */
function numberIn(value, low, high) {
  return typeof value === "number" && value >= low && value <= high ? value : null;
}

export class ChatClient extends ClientInbox {
  /**
   * @param {import("../protocol/identity.js").ClientIdentity} identity
   * @param {string} nick the nick to ask for
   * @param {string} [origin] the page's origin, for the links of invitations made here
   * @param {import("../e2e/crypto.js").ClientCrypto | null} [crypto] this browser's device
   */
  constructor(identity, nick, origin = "", crypto = null) {
    super(identity, nick, crypto);
    this.origin = origin;
    this.operator = false;
    this.runs = new RunFeed();
  }

  prepareReconnect() {
    super.prepareReconnect();
    this.runs = new RunFeed(); // a run is one connection's
  }

  /**
   * One application message from the server.
   * @param {Uint8Array} data
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async receive(data, now) {
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      return error(`malformed frame from server: ${problem.message}`, now);
    }
    return this.handle(frame, now);
  }

  /**
   * One frame from the server: the lines to show. A run is acted on once whole.
   * @param {Frame} frame
   * @param {number} now
   * @returns {Promise<Line[]>}
   */
  async handle(frame, now) {
    let fed;
    try {
      fed = this.runs.feed(frame);
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      return error(`malformed '${frame.type}' frame from server: ${problem.message}`, now);
    }
    const lines = fed.dropped ? error(fed.dropped, now) : [];
    if (fed.frame === null) return lines;
    return [...lines, ...(await this._actOn(fed.frame, now))];
  }

  /** @param {Frame} frame @param {number} now @returns {Promise<Line[]>} */
  async _actOn(frame, now) {
    const handler = Object.hasOwn(FRAME_HANDLERS, frame.type)
      ? FRAME_HANDLERS[frame.type]
      : undefined;
    if (handler === undefined) return error(`unknown frame type '${frame.type}' from server`, now);
    let lines;
    try {
      lines = await handler(this, frame, now);
    } catch (problem) {
      if (!(problem instanceof FrameError)) throw problem;
      return error(`malformed '${frame.type}' frame from server: ${problem.message}`, now);
    }
    this._hold(lines);
    return lines;
  }

  /** @param {Frame} frame @param {number} now */
  async _onWelcome(frame, now) {
    this.nick = fieldStr(frame, "nick", 64);
    const server = fieldStr(frame, "server", 256);
    const rate = numberIn(frame.rate, 0.001, 1e6);
    const burst = numberIn(frame.burst, 1, 1e6);
    if (rate !== null && burst !== null) this.queue.setPace(rate, Math.floor(burst));
    const workRate = numberIn(frame.work_rate, 0.001, 1e6);
    const workBurst = numberIn(frame.work_burst, 1, 1e6);
    if (workRate !== null && workBurst !== null)
      this.queue.setWorkPace(workRate, Math.floor(workBurst));
    for (const room of this._rejoin)
      this.outbox.push({ type: "command", name: "join", args: room });
    this._awaitingRejoin = new Set(this._rejoin);
    this._rejoin = [];
    this._welcomed = true;
    this.operator = frame.operator === true;
    const role = this.operator ? " (operator)" : "";
    return [
      ...notice(`Welcome to ${server}, ${this.nick}${role}`, now),
      ...(await this._rejoined(now)),
    ];
  }

  /** @param {Frame} frame @param {number} now */
  async _onNick(frame, now) {
    const old = fieldStr(frame, "old", 64);
    const nick = fieldStr(frame, "new", 64);
    const fingerprint = fieldStr(frame, "fingerprint", 64);
    this._learn(nick, fingerprint);
    for (const present of this.members.values()) {
      const member = present.get(old.toLowerCase());
      if (member !== undefined) {
        present.delete(old.toLowerCase());
        present.set(nick.toLowerCase(), { ...member, nick });
      }
    }
    if (fingerprintsEqual(fingerprint, this.identity.fingerprint)) {
      this.nick = nick;
      return notice(`You are now known as ${nick}`, now);
    }
    return [makeLine("nick", now, `${old} is now known as ${nick}`, { nick, fingerprint })];
  }

  /**
   * A notice; in a cluster, one may say that delivery stopped or works again.
   * @param {Frame} frame
   * @param {number} now
   */
  async _onNotice(frame, now) {
    if (typeof frame.degraded === "boolean") this.degraded = frame.degraded;
    const text = fieldStr(frame, "text", 8192);
    return this._quietAnswer(text) ? [] : notice(text, now);
  }

  /**
   * An error; one naming a counter is the outcome of that message.
   * @param {Frame} frame
   * @param {number} now
   */
  async _onError(frame, now) {
    const text = fieldStr(frame, "text", 8192);
    if (typeof frame.counter === "number") {
      const item = this.queue.inFlight.get(frame.counter);
      if (item === undefined) return error(text, now);
      const rebuilt = await this._rebuildStale(frame, text, now);
      if (rebuilt !== null) return rebuilt;
      const retryAfter = numberIn(frame.retry_after, 0, MAX_RETRY_AFTER);
      if (retryAfter !== null) {
        // Flood control: it goes again, in its place, after the wait.
        this.queue.throttle(frame.counter, retryAfter, now);
        return this.tick(now);
      }
      this.queue.settle(frame.counter);
      if (text.includes(REPLAYED_COUNTER) && item.throttled && !item.resent) {
        // Never recorded, overtaken by a line of another session of this key: signed anew.
        item.frame = null;
        this.queue.requeue(item);
        return this.tick(now);
      }
      // Only `sent` proves delivery: the server acknowledges again a line it committed before
      // a lost connection, so a refusal is one.
      return [this._refuse(item, text, now), ...(await this.tick(now))];
    }
    this._pageRefused(text);
    if (this._quietAnswer(text)) return [];
    this.joinsAsked.clear();
    if (this._awaitingRejoin.size) {
      // A rejoin was refused (a ban, say): wait no longer.
      this._awaitingRejoin.clear();
      this.rejoining.clear();
      return [...error(text, now), ...(await this._rejoined(now))];
    }
    return error(text, now);
  }

  /**
   * The server stored and relayed the message: delivered.
   * @param {Frame} frame
   * @param {number} now
   */
  async _onSent(frame, now) {
    fieldStr(frame, "target", 256);
    const item = this.queue.settle(fieldInt(frame, "counter", Number.MAX_SAFE_INTEGER));
    if (item === null) return [];
    return [...this._deliver(item), ...(await this.tick(now))];
  }

  /** @param {Frame} frame @param {number} now */
  async _onMotd(frame, now) {
    const text = fieldStr(frame, "text", 8192);
    return text
      .replace(/\r\n/g, "\n")
      .split("\n")
      .map((part) => makeLine("motd", now, part, { room: this.room }));
  }

  /** @param {Frame} frame @param {number} now */
  async _onInfo(frame, now) {
    const title = fieldStr(frame, "title", 256);
    let texts = Array.isArray(frame.lines)
      ? frame.lines.filter((row) => typeof row === "string")
      : [];
    // /help listed the client's own commands already, with the client's syntax.
    if (title === HELP_TITLE)
      texts = texts.filter((text) => !Object.hasOwn(CLIENT_COMMANDS, commandName(text)));
    return [
      makeLine("info", now, `${title}:`),
      ...texts.map((text) => makeLine("info", now, `  ${text}`)),
    ];
  }

  /** @param {Frame} frame @param {number} now */
  async _onTopic(frame, now) {
    const room = fieldStr(frame, "room", 64);
    const topic = fieldStr(frame, "topic", 1024);
    const by = fieldStr(frame, "by", 64);
    this.topics.set(room, topic);
    return [makeLine("topic", now, `${by} set the topic of ${room}: ${topic}`, { nick: by, room })];
  }

  /** @param {Frame} frame @param {number} now */
  async _onWhois(frame, now) {
    const query = fieldStr(frame, "query", 64);
    // The answer a /msg waited for: the queued line is signed now, or refused.
    const lookedUp =
      Boolean(this._resolving) && query.toLowerCase() === this._resolving.toLowerCase();
    if (lookedUp) this._resolving = "";
    if (frame.found === false) {
      if (!lookedUp) return error(`no such nick: ${query}`, now);
      const refused = this.queue
        .unresolved(query)
        .map((item) => this._refuse(item, `no such nick: ${query}`, now));
      return [...refused, ...(await this.tick(now))];
    }
    const fingerprint = fieldStr(frame, "fingerprint", 64);
    const nick = fieldStr(frame, "nick", 64);
    this._learn(nick, fingerprint);
    if (lookedUp) {
      this._learn(query, fingerprint);
      return this.tick(now);
    }
    const texts = [`${nick} is ${fingerprint}`];
    if (frame.online === true) {
      const since = seconds(frame, "connected_since");
      const rooms = Array.isArray(frame.rooms)
        ? frame.rooms.filter((r) => typeof r === "string")
        : [];
      texts.push(
        `  online since ${new Date(since * 1000).toLocaleString()}, idle ${Math.floor(seconds(frame, "idle"))} s`,
      );
      texts.push(`  rooms: ${rooms.join(", ") || "-"}`);
      if (typeof frame.away === "string" && frame.away) texts.push(`  away: ${frame.away}`);
      if (frame.operator === true) texts.push("  is an operator");
    } else {
      texts.push("  offline");
    }
    return texts.map((text) => makeLine("info", now, text, { nick, fingerprint }));
  }

  /** Someone went away or came back: only the member lists change. @param {Frame} frame */
  async _onAway(frame) {
    const nick = fieldStr(frame, "nick", 64);
    const away = fieldStr(frame, "away", 256);
    for (const present of this.members.values()) {
      const member = present.get(nick.toLowerCase());
      if (member !== undefined) present.set(nick.toLowerCase(), { ...member, away });
    }
    return [];
  }

  async _onPing() {
    this.outbox.push({ type: "pong" });
    return [];
  }

  /** @param {Frame} frame @param {number} now */
  async _onBye(frame, now) {
    this.dismissed = fieldStr(frame, "reason", 1024);
    return error(`Disconnected by the server: ${this.dismissed}`, now);
  }

  /** @param {Frame} frame @param {number} now */
  async _onMessage(frame, now) {
    const line = await this._messageLine(frame, now);
    return line === null ? [] : [line];
  }

  /** A room became end-to-end encrypted. @param {Frame} frame @param {number} now */
  async _onEncrypted(frame, now) {
    const room = fieldStr(frame, "room", 64);
    const by = fieldStr(frame, "by", 64);
    this._roomIsEncrypted(room);
    let text = `${room} is now end-to-end encrypted (by ${by})`;
    if (this.crypto === null) text += "; this page cannot take part: it has no device keys";
    return [makeLine("notice", now, text, { nick: by, room })];
  }

  /**
   * The invitation an operator made here: the link a new user opens in a browser (pinned to
   * the key this page verified in its handshake, never one the server merely names), and the
   * terminal client's string when the operator named the server's address.
   * @param {Frame} frame
   * @param {number} now
   */
  async _onInvitation(frame, now) {
    const id = fieldStr(frame, "id", 16);
    const secret = fieldStr(frame, "secret", 64);
    if (!/^[0-9a-f]{8}$/.test(id) || !/^[A-Za-z0-9_-]{22,64}$/.test(secret)) {
      throw new FrameError("not an invitation's id and secret");
    }
    const validFor = fieldInt(frame, "valid_for", 10 * 365 * 86400);
    const days = Math.max(1, Math.round(validFor / 86400));
    const lines = notice(
      `Invitation ${id}: one new key may join with it, once, within ${days} day${days === 1 ? "" : "s"}.` +
        ` In a browser: ${inviteLink(this.origin, secret, this.network)}`,
      now,
    );
    if (typeof frame.address === "string") {
      const address = fieldStr(frame, "address", 300);
      lines.push(
        ...notice(
          `With the terminal client: tlschat-invite:${address}#${this.network}#${secret}`,
          now,
        ),
      );
    }
    return lines;
  }
}

/**
 * A time or duration from the server (0 if absent); anything else is a malformed frame.
 * @param {Frame} frame
 * @param {string} name
 */
function seconds(frame, name) {
  const value = frame[name] ?? 0;
  if (typeof value !== "number" || !(Math.abs(value) <= MAX_SECONDS)) {
    throw new FrameError(`'${name}' must be a number of seconds`);
  }
  return value;
}

/** @typedef {(client: ChatClient, frame: Frame, now: number) => Promise<Line[]>} FrameHandler */
/** @type {Readonly<Record<string, FrameHandler>>} */
const FRAME_HANDLERS = Object.freeze({
  welcome: (c, f, n) => c._onWelcome(f, n),
  joined: (c, f, n) => c._onJoined(f, n),
  parted: (c, f, n) => c._onParted(f, n),
  members: (c, f, n) => c._onMembers(f, n),
  join: (c, f, n) => c._onPresence(f, n),
  leave: (c, f, n) => c._onPresence(f, n),
  presence: (c, f, n) => c._onPresenceBatch(f, n),
  nick: (c, f, n) => c._onNick(f, n),
  notice: (c, f, n) => c._onNotice(f, n),
  motd: (c, f, n) => c._onMotd(f, n),
  error: (c, f, n) => c._onError(f, n),
  sent: (c, f, n) => c._onSent(f, n),
  info: (c, f, n) => c._onInfo(f, n),
  topic: (c, f, n) => c._onTopic(f, n),
  whois: (c, f, n) => c._onWhois(f, n),
  bye: (c, f, n) => c._onBye(f, n),
  history: (c, f, n) => c._onHistory(f, n),
  message: (c, f, n) => c._onMessage(f, n),
  away: (c, f) => c._onAway(f),
  ping: (c) => c._onPing(),
  pong: async () => [],
  encrypted: (c, f, n) => c._onEncrypted(f, n),
  keys: (c, f, n) => c._onKeys(f, n),
  claimed: (c, f, n) => c._onClaimed(f, n),
  keys_changed: (c, f) => c._onKeysChanged(f),
  keys_uploaded: (c, f, n) => c._onKeysUploaded(f, n),
  device_messages: (c, f, n) => c._onDeviceMessages(f, n),
  search: (c, f, n) => c._onSearch(f, n),
  invitation: (c, f, n) => c._onInvitation(f, n),
});
