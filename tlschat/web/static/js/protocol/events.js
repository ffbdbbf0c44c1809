// The events a ClientConnection hands back (the Python client's, plus ConnectionFailed): the
// connection never throws at its caller for what the peer sent; a failure is an event, with the
// alert it sent or received, and the connection is then closed.

/**
 * @typedef {import("./identity.js").PeerIdentity} PeerIdentity
 * @typedef {import("./alerts.js").ProtocolError} ProtocolError
 * @typedef {{type: "handshake_step", step: number, text: string}} HandshakeStep
 *   one of the six numbered steps of section 1 (0: complete), for the trace the user sees
 * @typedef {{type: "server_authenticated", identity: PeerIdentity}} ServerAuthenticated
 *   the server proved it holds this key; the handshake waits for trustServer() or rejectServer()
 * @typedef {{type: "handshake_complete", suite: string, version: number, peer: PeerIdentity}}
 *   HandshakeComplete
 * @typedef {{type: "data_received", data: Uint8Array}} DataReceived one whole application message
 * @typedef {{type: "key_updated", direction: "read" | "write", generation: number}} KeyUpdated
 * @typedef {{type: "connection_closed"}} ConnectionClosed the peer sent close_notify
 * @typedef {{type: "connection_failed", error: ProtocolError}} ConnectionFailed
 *   a fatal alert was sent (or, with error.received, received); the connection is closed
 * @typedef {HandshakeStep | ServerAuthenticated | HandshakeComplete | DataReceived | KeyUpdated
 *   | ConnectionClosed | ConnectionFailed} ConnectionEvent
 */

/**
 * @param {number} step
 * @param {string} text
 * @returns {HandshakeStep}
 */
export const handshakeStep = (step, text) => ({ type: "handshake_step", step, text });

/**
 * @param {PeerIdentity} identity
 * @returns {ServerAuthenticated}
 */
export const serverAuthenticated = (identity) => ({ type: "server_authenticated", identity });

/**
 * @param {string} suite
 * @param {number} version
 * @param {PeerIdentity} peer
 * @returns {HandshakeComplete}
 */
export const handshakeComplete = (suite, version, peer) => ({
  type: "handshake_complete",
  suite,
  version,
  peer,
});

/**
 * @param {Uint8Array} data
 * @returns {DataReceived}
 */
export const dataReceived = (data) => ({ type: "data_received", data });

/**
 * @param {"read" | "write"} direction
 * @param {number} generation
 * @returns {KeyUpdated}
 */
export const keyUpdated = (direction, generation) => ({
  type: "key_updated",
  direction,
  generation,
});

/** @returns {ConnectionClosed} */
export const connectionClosed = () => ({ type: "connection_closed" });

/**
 * @param {ProtocolError} error
 * @returns {ConnectionFailed}
 */
export const connectionFailed = (error) => ({ type: "connection_failed", error });
