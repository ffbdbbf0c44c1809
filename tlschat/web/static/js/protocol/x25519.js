// The ephemeral X25519 exchange (docs/PROTOCOL.md sections 6 and 11). The private key is made from
// 32 bytes of entropy (so a test can fix them, as the worked example does) and kept in WebCrypto,
// non-extractable; its public key is X25519(private, 9), the RFC 7748 base point, computed by
// WebCrypto too, since WebCrypto cannot export the public half of an imported private key.

import { AlertDescription, ProtocolError } from "./alerts.js";
import { concat } from "./bytes.js";

const subtle = globalThis.crypto.subtle;

export const X25519_SHARE_LENGTH = 32;
const X25519 = { name: "X25519" };
// PKCS#8 PrivateKeyInfo for an X25519 key, up to the 32 key bytes (RFC 8410).
const PKCS8_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
);
const BASE_POINT = Uint8Array.of(9, ...new Uint8Array(31));

/**
 * @param {Uint8Array} privateBytes 32 bytes of entropy; zeroed once imported
 * @returns {Promise<{privateKey: CryptoKey, publicBytes: Uint8Array}>}
 */
export async function ephemeralKey(privateBytes) {
  const pkcs8 = concat(PKCS8_PREFIX, privateBytes);
  const privateKey = await subtle.importKey("pkcs8", pkcs8, X25519, false, ["deriveBits"]);
  pkcs8.fill(0);
  privateBytes.fill(0);
  const basePoint = await subtle.importKey("raw", BASE_POINT, X25519, true, []);
  const publicBytes = new Uint8Array(
    await subtle.deriveBits({ name: "X25519", public: basePoint }, privateKey, 256),
  );
  return { privateKey, publicBytes };
}

/**
 * X25519(own private key, the peer's key_share); a share that is not 32 bytes, or a low-order
 * point (an all-zero shared secret), is illegal_parameter.
 * @param {CryptoKey} privateKey
 * @param {Uint8Array} share
 * @returns {Promise<Uint8Array>}
 */
export async function sharedSecret(privateKey, share) {
  if (share.length !== X25519_SHARE_LENGTH) {
    throw new ProtocolError(
      AlertDescription.illegal_parameter,
      `X25519 share of ${share.length} bytes`,
    );
  }
  let shared;
  try {
    const peer = await subtle.importKey("raw", share, X25519, true, []);
    shared = new Uint8Array(
      await subtle.deriveBits({ name: "X25519", public: peer }, privateKey, 256),
    );
  } catch {
    // WebCrypto refuses an all-zero result itself (an OperationError).
    throw new ProtocolError(
      AlertDescription.illegal_parameter,
      "X25519 share is a low-order point",
    );
  }
  if (shared.every((byte) => byte === 0)) {
    throw new ProtocolError(
      AlertDescription.illegal_parameter,
      "X25519 share is a low-order point",
    );
  }
  return shared;
}
