// Alert codes (docs/PROTOCOL.md section 18) and ProtocolError, the one error that carries one:
// every failure of the channel ends as a specific alert, sent to the peer or received from it.

/** @enum {number} */
export const AlertLevel = Object.freeze({ warning: 1, fatal: 2 });

/** TLS 1.3's codes where the meaning is the same; tlschat's own from 200 on. @enum {number} */
export const AlertDescription = Object.freeze({
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_unknown: 46,
  illegal_parameter: 47,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  user_canceled: 90,
  truncated: 200,
  key_exhausted: 201,
  handshake_timeout: 202,
  too_many_records: 203,
  server_busy: 204,
});

const NAMES = new Map(Object.entries(AlertDescription).map(([name, code]) => [code, name]));

/**
 * @param {number} code
 * @returns {boolean} whether the code is one section 18 defines
 */
export function isKnownAlert(code) {
  return NAMES.has(code);
}

/**
 * @param {number} code
 * @returns {string} the alert's name, or `unknown_alert_CODE`
 */
export function alertName(code) {
  return NAMES.get(code) ?? `unknown_alert_${code}`;
}

/**
 * A fatal protocol failure: the alert, why, and which side raised it. `sender` is the role
 * ("client" or "server") whose check failed and who sent the alert; `received` is true when the
 * alert came from the peer rather than from a local check.
 */
export class ProtocolError extends Error {
  /**
   * @param {number} alert an AlertDescription code
   * @param {string} reason
   * @param {string} [sender]
   * @param {boolean} [received]
   */
  constructor(alert, reason, sender = "", received = false) {
    super(reason);
    this.name = "ProtocolError";
    this.alert = alert;
    this.reason = reason;
    this.sender = sender;
    this.received = received;
  }

  /** @returns {string} the alert's name */
  get alertName() {
    return alertName(this.alert);
  }

  /** @returns {string} */
  toString() {
    const origin = this.sender ? `${this.sender} ` : "";
    return `${this.alertName} (${origin}alert ${this.received ? "received" : "raised"}): ${this.reason}`;
  }
}
