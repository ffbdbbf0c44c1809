// The lines a user sends, from typed to delivered or refused: ordered, paced, bounded
// (docs/PROTOCOL.md section 21, "Delivery, exactly once"; a port of chat/delivery.py). Messages
// and server commands wait in one queue, in the order typed, until the connection is ready;
// messages are paced by a bucket that mirrors the server's flood control, commands by one that
// mirrors its work budget, so that a paste arrives whole rather than refused. A sent message
// stays in flight until `sent` or a refusal naming its counter; after a reconnect, and when its
// answer is 20 s late, it goes again first and byte for byte (the server answers a copy as it
// answered the first). Each message gets exactly one outcome.

export const DEFAULT_RATE = 2;
export const DEFAULT_BURST = 10;
export const DEFAULT_WORK_RATE = 30;
export const DEFAULT_WORK_BURST = 300;
/** Lines waiting to be sent; past it a new line is refused at once. */
export const MAX_WAITING = 200;
/** Messages sent and not yet answered; the queue waits while this many are out. */
export const MAX_IN_FLIGHT = 32;
export const ACK_TIMEOUT = 20;
// The pace keeps this far inside the server's limits, so that a message that crossed the
// network a little faster than the one before is still within them.
export const PACE_MARGIN = 0.9;

/** What each server command costs its key's work budget (chat/limits.py: WORK_COSTS). */
const WORK_COSTS = Object.freeze({
  ping: 1,
  join: 10,
  part: 5,
  names: 4,
  search: 4,
  rooms: 4,
  whois: 4,
  help: 4,
  members: 4,
  watch: 4,
  history: 4,
});
const DEFAULT_WORK = 2;

/**
 * @param {string} name
 * @returns {number}
 */
export function workCost(name) {
  return Object.hasOwn(WORK_COSTS, name) ? WORK_COSTS[/** @type {"ping"} */ (name)] : DEFAULT_WORK;
}

/** `burst` at once, then `rate` per second; full when first used. */
export class TokenBucket {
  /**
   * @param {number} rate
   * @param {number} burst
   */
  constructor(rate, burst) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = -1;
    this.updated = 0;
  }

  /**
   * @param {number} now seconds
   * @param {number} [cost]
   * @returns {number} 0 if `cost` tokens were taken, else the seconds until they are there
   */
  take(now, cost = 1) {
    if (this.tokens < 0) [this.tokens, this.updated] = [this.burst, now];
    // A clock that steps back refills nothing.
    const elapsed = Math.max(0, now - this.updated);
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.rate);
    this.updated = Math.max(this.updated, now);
    // Float sums of refills fall a hair short of whole tokens; a billionth is no flood.
    if (this.tokens >= cost - 1e-9) {
      this.tokens = Math.max(0, this.tokens - cost);
      return 0;
    }
    return this.rate > 0 ? (cost - this.tokens) / this.rate : Infinity;
  }
}

/**
 * One line the user sent: a message (`line` set) or a server command (`command` set).
 * @typedef {{
 *   ref: number, text: string, line: import("./lines.js").Line | null,
 *   command: import("../protocol/frames.js").Frame | null, body: string, target: string,
 *   recipient: string, frame: import("../protocol/frames.js").Frame | null, resent: boolean,
 *   throttled: boolean, sentAt: number,
 * }} Outgoing
 *   `target`: '#room' or '@fingerprint'; empty while a /msg waits for its recipient's key.
 *   `frame`: the signed `say`, kept to be sent again byte for byte. `resent`: sent on a
 *   connection lost before its outcome came. `throttled`: refused by flood control (never
 *   recorded by the server, so it may be signed anew if its counter is overtaken).
 */

/**
 * @param {number} ref
 * @param {string} text
 * @param {Partial<Outgoing>} [fields]
 * @returns {Outgoing}
 */
export function outgoing(ref, text, fields = {}) {
  return {
    ref,
    text,
    line: null,
    command: null,
    body: "",
    target: "",
    recipient: "",
    frame: null,
    resent: false,
    throttled: false,
    sentAt: 0,
    ...fields,
  };
}

/** @param {Outgoing} item @returns {number} its signed counter, or -1 before it is signed */
export const counterOf = (item) => (item.frame === null ? -1 : Number(item.frame.counter));

export class DeliveryQueue {
  /**
   * @param {number} [maxWaiting]
   * @param {number} [maxInFlight]
   */
  constructor(maxWaiting = MAX_WAITING, maxInFlight = MAX_IN_FLIGHT) {
    this.maxWaiting = maxWaiting;
    this.maxInFlight = maxInFlight;
    /** @type {Outgoing[]} */
    this.waiting = [];
    /** @type {Map<number, Outgoing>} by counter */
    this.inFlight = new Map();
    this.bucket = new TokenBucket(DEFAULT_RATE * PACE_MARGIN, DEFAULT_BURST - 1);
    this.work = new TokenBucket(DEFAULT_WORK_RATE * PACE_MARGIN, DEFAULT_WORK_BURST * PACE_MARGIN);
    this.pausedUntil = 0;
    // After flood control refused a line, nothing goes out until every line in flight came
    // back (the server refuses them the same way): the refused one goes first again.
    this.draining = false;
    this._refs = 0;
  }

  /** @returns {number} */
  nextRef() {
    this._refs += 1;
    return this._refs;
  }

  /** @returns {number} lines that have no outcome yet */
  get outstanding() {
    return this.waiting.length + this.inFlight.size;
  }

  /**
   * @param {Outgoing} item
   * @returns {boolean} false (and nothing queued) when the queue is full
   */
  add(item) {
    if (this.waiting.length >= this.maxWaiting) return false;
    this.waiting.push(item);
    return true;
  }

  /** The server's flood control, from its `welcome`. @param {number} rate @param {number} burst */
  setPace(rate, burst) {
    this.bucket = new TokenBucket(Math.max(0, rate) * PACE_MARGIN, Math.max(1, burst - 1));
  }

  /** Its work budget for commands. @param {number} rate @param {number} burst */
  setWorkPace(rate, burst) {
    this.work = new TokenBucket(rate * PACE_MARGIN, Math.max(1, burst * PACE_MARGIN));
  }

  /**
   * @param {string} name
   * @param {number} now
   * @returns {number} 0 if the command may go now (its cost is taken), else seconds to wait
   */
  maySendCommand(name, now) {
    return this.work.take(now, Math.min(workCost(name), this.work.burst));
  }

  /** @returns {Outgoing | null} the next line to send: none while draining after a refusal */
  head() {
    if (this.draining && this.inFlight.size) return null;
    this.draining = false;
    return this.waiting[0] ?? null;
  }

  /**
   * @param {number} now
   * @returns {number} 0 if a message may go now (a token is taken), else seconds (or Infinity)
   */
  maySendMessage(now) {
    if (this.inFlight.size >= this.maxInFlight) return Infinity; // an answer wakes it
    if (now < this.pausedUntil) return this.pausedUntil - now;
    return this.bucket.take(now);
  }

  /**
   * `item` left the queue: a command is done with; a message is in flight.
   * @param {Outgoing} item
   * @param {number} now
   */
  sent(item, now) {
    this.waiting.splice(this.waiting.indexOf(item), 1);
    if (item.frame !== null && item.command === null) {
      item.sentAt = now;
      this.inFlight.set(counterOf(item), item);
    }
  }

  /**
   * Once the oldest message in flight has waited `timeout` for its outcome, every message in
   * flight goes back into the queue, in the order typed, to be sent again.
   * @param {number} now
   * @param {number} [timeout]
   */
  requeueOverdue(now, timeout = ACK_TIMEOUT) {
    const due = this.nextOverdue(timeout);
    if (due !== null && due <= now) this._requeueInFlight();
  }

  /** @param {number} [timeout] @returns {number | null} when the messages in flight are due */
  nextOverdue(timeout = ACK_TIMEOUT) {
    if (!this.inFlight.size) return null;
    return Math.min(...[...this.inFlight.values()].map((item) => item.sentAt)) + timeout;
  }

  /**
   * The message with `counter` got its outcome: one in flight, or one waiting to go again
   * because its answer was late (the first copy's answer came after all).
   * @param {number} counter
   * @returns {Outgoing | null}
   */
  settle(counter) {
    const item = this.inFlight.get(counter);
    if (item !== undefined) {
      this.inFlight.delete(counter);
      return item;
    }
    const waiting = this.waiting.find((i) => i.resent && counterOf(i) === counter);
    if (waiting === undefined) return null;
    this.waiting.splice(this.waiting.indexOf(waiting), 1);
    return waiting;
  }

  /**
   * Flood control refused it: again, unchanged and in its place, after the wait.
   * @param {number} counter
   * @param {number} retryAfter seconds
   * @param {number} now
   * @returns {Outgoing | null}
   */
  throttle(counter, retryAfter, now) {
    const item = this.inFlight.get(counter);
    if (item === undefined) return null;
    this.inFlight.delete(counter);
    item.throttled = true;
    this.draining = true;
    this.requeue(item);
    this.pausedUntil = Math.max(this.pausedUntil, now + retryAfter);
    [this.bucket.tokens, this.bucket.updated] = [0, now];
    return item;
  }

  /** Back into the queue in the order it was typed. @param {Outgoing} item */
  requeue(item) {
    const at = this.waiting.findIndex((each) => each.ref > item.ref);
    this.waiting.splice(at === -1 ? this.waiting.length : at, 0, item);
  }

  /** Everything in flight goes out again, first and unchanged, on the next connection. */
  connectionLost() {
    this._requeueInFlight();
    this.pausedUntil = 0;
  }

  _requeueInFlight() {
    for (const item of this.inFlight.values()) {
      item.resent = true;
      this.requeue(item);
    }
    this.inFlight.clear();
    this.draining = false;
  }

  /**
   * Take out the waiting /msg lines to `recipient` whose key was not found.
   * @param {string} recipient
   * @returns {Outgoing[]}
   */
  unresolved(recipient) {
    const folded = recipient.toLowerCase();
    const gone = this.waiting.filter((i) => !i.target && i.recipient.toLowerCase() === folded);
    this.waiting = this.waiting.filter((i) => !gone.includes(i));
    return gone;
  }
}
