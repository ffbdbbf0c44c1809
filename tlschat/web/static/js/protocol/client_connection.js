// The client's side of a connection (docs/PROTOCOL.md sections 1, 7, 10-14): its handshake, and
// the pause while the user decides whether to trust the server's key. After the server's
// CertificateVerify the connection emits server_authenticated and waits; the application checks
// the fingerprint (a pin, or what it stored for this server) and calls trustServer(), which only
// then reveals the client's identity, or rejectServer(), which sends bad_certificate.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { constantTimeEqual, utf8 } from "./bytes.js";
import { identityFromCertificate } from "./certificate.js";
import { Connection, State } from "./connection.js";
import { handshakeComplete, handshakeStep, serverAuthenticated } from "./events.js";
import { verifySignature } from "./identity.js";
import { KeySchedule, finishedVerifyData } from "./keyschedule.js";
import {
  CertificateType,
  CipherSuite,
  HandshakeType,
  RANDOM_LENGTH,
  SUITE_NAMES,
  SignatureScheme,
} from "./messages.js";
import { AEAD_SUITES, DirectionKeys, KEY_UPDATE_LIMIT } from "./records.js";
import { X25519_SHARE_LENGTH, ephemeralKey, sharedSecret } from "./x25519.js";

export const PROTOCOL_VERSION = 0x0004;
/** AES-256-GCM only: ChaCha20-Poly1305 is not in WebCrypto. */
export const DEFAULT_SUITES = Object.freeze([CipherSuite.AES_256_GCM_SHA256]);
export const DEFAULT_SIGNATURE_ALGORITHMS = Object.freeze([
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.ed25519,
]);
const SERVER_SIGNATURE_CONTEXT = utf8("tlschat v1, server CertificateVerify");
const CLIENT_SIGNATURE_CONTEXT = utf8("tlschat v1, client CertificateVerify");

/**
 * What a CertificateVerify signs: 64 spaces, the context, a zero byte, the transcript hash.
 * @param {"server" | "client"} role whose CertificateVerify
 * @param {Uint8Array} transcriptHash
 * @returns {Uint8Array}
 */
export function signedContent(role, transcriptHash) {
  const context = role === "server" ? SERVER_SIGNATURE_CONTEXT : CLIENT_SIGNATURE_CONTEXT;
  const out = new Uint8Array(64 + context.length + 1 + transcriptHash.length).fill(0x20, 0, 64);
  out.set(context, 64);
  out[64 + context.length] = 0;
  out.set(transcriptHash, 64 + context.length + 1);
  return out;
}

/**
 * @param {number} n
 * @returns {Uint8Array}
 */
function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/**
 * @typedef {import("./connection.js").ChannelLimits & {
 *   identity: import("./identity.js").ClientIdentity,
 *   cipherSuites?: readonly number[],
 *   versions?: readonly number[],
 *   signatureAlgorithms?: readonly number[],
 *   entropy?: (n: number) => Uint8Array,
 * }} ClientConfig
 *   `cipherSuites`: offered in order; a suite without an AEAD here is refused if chosen.
 *   `entropy`: where the X25519 private key (32 bytes), then the random (32), come from.
 */

export class ClientConnection extends Connection {
  role = "client";
  peerRole = "server";

  /**
   * @param {ClientConfig} config
   * @param {number} now seconds; the handshake deadline runs from here
   */
  constructor(config, now) {
    super(config, now);
    this.identity = config.identity;
    this.cipherSuites = [...(config.cipherSuites ?? DEFAULT_SUITES)];
    this.versions = [...(config.versions ?? [PROTOCOL_VERSION])];
    this.signatureAlgorithms = [...(config.signatureAlgorithms ?? DEFAULT_SIGNATURE_ALGORITHMS)];
    for (const [name, list, most] of [
      ["cipherSuites", this.cipherSuites, 32],
      ["versions", this.versions, 16],
      ["signatureAlgorithms", this.signatureAlgorithms, 16],
    ]) {
      const fits =
        list.length >= 1 &&
        list.length <= most &&
        list.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff);
      if (!fits) throw new RangeError(`${name} must list 1 to ${most} u16 values`);
    }
    const entropy = config.entropy ?? randomBytes;
    this._ephemeralBytes = entropy(X25519_SHARE_LENGTH);
    this._random = entropy(RANDOM_LENGTH);
    /** @type {CryptoKey | null} */
    this._ephemeral = null;
    /** @type {import("./identity.js").PeerIdentity | null} */
    this.peer = null;
    /** @type {number | null} */
    this.suite = null;
    /** @type {number | null} */
    this.version = null;
    /** @type {KeySchedule | null} */
    this._schedule = null;
    this._clientHandshakeSecret = new Uint8Array(0);
    this._serverHandshakeSecret = new Uint8Array(0);
    this._serverApplicationSecret = new Uint8Array(0);
  }

  /** @returns {string} the negotiated suite's name, once there is one */
  get suiteName() {
    return this.suite === null ? "" : SUITE_NAMES[/** @type {1 | 2} */ (this.suite)];
  }

  /**
   * Queue the ClientHello (step 1). Rejects if the handshake was started already.
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  startHandshake() {
    return this._serialize(async () => {
      if (this.state !== State.START) throw new Error("handshake already started");
      return this._guarded(async () => {
        const { privateKey, publicBytes } = await ephemeralKey(this._ephemeralBytes);
        this._ephemeral = privateKey;
        await this._sendHandshake({
          msgType: HandshakeType.client_hello,
          random: this._random,
          versions: this.versions,
          cipherSuites: this.cipherSuites,
          signatureAlgorithms: this.signatureAlgorithms,
          keyShare: publicBytes,
        });
        this.state = State.WAIT_SERVER_HELLO;
        this._events.push(handshakeStep(1, "ClientHello sent"));
      });
    });
  }

  /**
   * Accept the authenticated server: send the client's identity and Finished (step 5). Rejects
   * unless the connection waits for this decision.
   * @returns {Promise<import("./events.js").ConnectionEvent[]>}
   */
  trustServer() {
    return this._serialize(async () => {
      if (this.state !== State.WAIT_TRUST) {
        throw new Error(`no server to trust in state ${this.state}`);
      }
      const sent = await this._guarded(async () => {
        await this._sendHandshake({
          msgType: HandshakeType.certificate,
          certificateType: CertificateType.raw_public_key,
          data: this.identity.spki,
        });
        const signature = await this.identity.sign(
          signedContent("client", await this._transcriptHash()),
        );
        await this._sendHandshake({
          msgType: HandshakeType.certificate_verify,
          algorithm: this.identity.scheme,
          signature,
        });
        const verifyData = await finishedVerifyData(
          this._clientHandshakeSecret,
          await this._transcriptHash(),
        );
        await this._sendHandshake({ msgType: HandshakeType.finished, verifyData });
        const schedule = /** @type {KeySchedule} */ (this._schedule);
        const [client, server] = await schedule.applicationTrafficSecrets(
          await this._transcriptHash(),
        );
        this._serverApplicationSecret = server;
        // Written right away, so that an alert sent while waiting for the server's Finished is
        // readable by the server, which switches its read key on our Finished.
        this._writer.keys = await DirectionKeys.create(
          /** @type {number} */ (this.suite),
          client,
          this.keyUpdateAfter,
        );
        client.fill(0);
        this.state = State.WAIT_SERVER_FINISHED;
        this._events.push(handshakeStep(5, "Client Finished sent ✅"));
      });
      return this.state === State.CLOSED
        ? sent
        : [...sent, ...(await this._guarded(() => this._processRecords()))];
    });
  }

  /**
   * Refuse the server's identity: send bad_certificate and close.
   * @param {string} reason
   * @returns {Promise<ProtocolError>}
   */
  rejectServer(reason) {
    return this.abort(AlertDescription.bad_certificate, reason);
  }

  /** @override */
  _handlerFor(state, msgType) {
    if (state === State.WAIT_SERVER_HELLO && msgType === HandshakeType.server_hello) {
      return (m) => this._onServerHello(m);
    }
    if (state === State.WAIT_SERVER_CERTIFICATE && msgType === HandshakeType.certificate) {
      return (m) => this._onCertificate(m);
    }
    if (
      state === State.WAIT_SERVER_CERTIFICATE_VERIFY &&
      msgType === HandshakeType.certificate_verify
    ) {
      return (m) => this._onCertificateVerify(m);
    }
    if (state === State.WAIT_SERVER_FINISHED && msgType === HandshakeType.finished) {
      return (m) => this._onFinished(m);
    }
    return undefined;
  }

  /** @param {import("./messages.js").ServerHello} message */
  async _onServerHello(message) {
    const hex = (/** @type {number} */ v) => `0x${v.toString(16).padStart(4, "0")}`;
    if (!this.versions.includes(message.version)) {
      throw new ProtocolError(
        AlertDescription.illegal_parameter,
        `server chose version ${hex(message.version)}, which was not offered`,
      );
    }
    if (!this.cipherSuites.includes(message.cipherSuite)) {
      throw new ProtocolError(
        AlertDescription.illegal_parameter,
        `server chose suite ${hex(message.cipherSuite)}, which was not offered`,
      );
    }
    if (!AEAD_SUITES.includes(message.cipherSuite)) {
      throw new ProtocolError(
        AlertDescription.handshake_failure,
        `server chose suite ${hex(message.cipherSuite)}, which WebCrypto cannot run`,
      );
    }
    const shared = await sharedSecret(/** @type {CryptoKey} */ (this._ephemeral), message.keyShare);
    // Forward secrecy: the ephemeral key is not needed again, so nothing keeps it alive.
    this._ephemeral = null;
    this.version = message.version;
    this.suite = message.cipherSuite;
    this._schedule = await KeySchedule.fromSharedSecret(shared);
    shared.fill(0);
    [this._clientHandshakeSecret, this._serverHandshakeSecret] =
      await this._schedule.handshakeTrafficSecrets(await this._transcriptHash());
    // KeyUpdate is only allowed once connected, so the handshake keys never need one.
    this._writer.keys = await DirectionKeys.create(
      this.suite,
      this._clientHandshakeSecret,
      KEY_UPDATE_LIMIT,
    );
    this._records.readKeys = await DirectionKeys.create(
      this.suite,
      this._serverHandshakeSecret,
      KEY_UPDATE_LIMIT,
    );
    this._records.acceptPlainAlerts = true;
    this.state = State.WAIT_SERVER_CERTIFICATE;
  }

  /** @param {import("./messages.js").Certificate} message */
  async _onCertificate(message) {
    if (message.certificateType !== CertificateType.x509) {
      throw new ProtocolError(
        AlertDescription.unsupported_certificate,
        "server must send an X.509 certificate",
      );
    }
    this.peer = await identityFromCertificate(message.data);
    this.state = State.WAIT_SERVER_CERTIFICATE_VERIFY;
  }

  /** @param {import("./messages.js").CertificateVerify} message */
  async _onCertificateVerify(message) {
    if (!this.signatureAlgorithms.includes(message.algorithm)) {
      throw new ProtocolError(
        AlertDescription.illegal_parameter,
        `signature scheme 0x${message.algorithm.toString(16).padStart(4, "0")} was not offered`,
      );
    }
    const peer = /** @type {import("./identity.js").PeerIdentity} */ (this.peer);
    await verifySignature(
      peer.publicKey,
      message.algorithm,
      signedContent("server", this._transcriptBefore),
      message.signature,
    );
    this.state = State.WAIT_TRUST;
    this._events.push(
      handshakeStep(2, `ServerHello received and verified ✅ | Cipher: ${this.suiteName}`),
      handshakeStep(3, "Shared secret computed"),
      handshakeStep(4, "Session key derived (HKDF)"),
      serverAuthenticated(peer),
    );
  }

  /** @param {import("./messages.js").Finished} message */
  async _onFinished(message) {
    const expected = await finishedVerifyData(this._serverHandshakeSecret, this._transcriptBefore);
    if (!constantTimeEqual(expected, message.verifyData)) {
      throw new ProtocolError(AlertDescription.decrypt_error, "Finished does not verify");
    }
    this._records.readKeys = await DirectionKeys.create(
      /** @type {number} */ (this.suite),
      this._serverApplicationSecret,
      KEY_UPDATE_LIMIT,
    );
    this._events.push(handshakeStep(6, "Server Finished verified ✅"));
    // Only the current traffic secrets are needed from here on; a later memory disclosure
    // should find no handshake or master secret to derive the rest from.
    /** @type {KeySchedule} */ (this._schedule).forget();
    for (const secret of [
      this._clientHandshakeSecret,
      this._serverHandshakeSecret,
      this._serverApplicationSecret,
    ])
      secret.fill(0);
    this.state = State.CONNECTED;
    this.deadline = null;
    this._records.acceptPlainAlerts = false;
    this._events.push(
      handshakeStep(0, "✅ Handshake complete — Secure channel established"),
      handshakeComplete(
        this.suiteName,
        /** @type {number} */ (this.version),
        /** @type {import("./identity.js").PeerIdentity} */ (this.peer),
      ),
    );
  }
}
