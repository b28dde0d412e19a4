/**
 * The one error registry of Liaison.
 *
 * Every error that leaves a Liaison component carries a stable `code` from this table. Codes never
 * change meaning and are never reused; `docs/errors.md` documents each one, and a test keeps the
 * two in sync (an undocumented code or a stale doc entry fails the build).
 *
 * `status` is the HTTP status the local API answers with when the error reaches a client; it is
 * data here so that the registry stays the single source of truth (protocol/ does no HTTP).
 */

export interface ErrorSpec {
  /** Human-readable default message; callers add the specifics (field, limit, value). */
  readonly message: string;
  readonly status: number;
}

function spec(status: number, message: string): ErrorSpec {
  return { status, message };
}

export const ERRORS = {
  // --- canonical decoding (protocol/codec.ts) ---
  LIAISON_ERR_DECODE_TRUNCATED: spec(400, 'input ends before the structure is complete'),
  LIAISON_ERR_DECODE_TRAILING: spec(400, 'bytes remain after the structure'),
  LIAISON_ERR_DECODE_TYPE: spec(400, 'wrong structure type tag'),
  LIAISON_ERR_DECODE_VERSION: spec(400, 'unsupported structure version'),
  LIAISON_ERR_DECODE_LIMIT: spec(413, 'a length or count exceeds its limit'),
  LIAISON_ERR_DECODE_VALUE: spec(400, 'a field holds a value the format forbids'),
  LIAISON_ERR_DECODE_ORDER: spec(400, 'entries are duplicated or not in canonical order'),
  LIAISON_ERR_DECODE_UTF8: spec(400, 'a text field is not valid UTF-8'),
  LIAISON_ERR_ENCODE_LIMIT: spec(413, 'a value is too large to encode'),
  LIAISON_ERR_ENCODE_VALUE: spec(400, 'a value cannot be encoded in the canonical format'),

  // --- keys and identities ---
  LIAISON_ERR_KEY_INVALID: spec(400, 'a public key is not a valid curve point of prime order'),
  LIAISON_ERR_KEY_LOW_ORDER: spec(400, 'X25519 produced the all-zero shared secret'),
  LIAISON_ERR_NODE_ID_INVALID: spec(400, 'not a valid node ID'),
  LIAISON_ERR_NODE_ID_MISMATCH: spec(400, 'the node ID does not belong to the presented key'),
  LIAISON_ERR_KEY_RECORD_INVALID: spec(
    400,
    'a key record is not validly signed by its identity key',
  ),
  LIAISON_ERR_KEY_HISTORY_INVALID: spec(400, 'a key rotation chain is broken or out of order'),

  // --- envelopes ---
  LIAISON_ERR_SIGNATURE_INVALID: spec(400, 'signature verification failed'),
  LIAISON_ERR_NOT_FROM_SENDER: spec(
    403,
    "the envelope arrived over another peer's link than its sender's",
  ),
  LIAISON_ERR_SENDER_KEY_MISMATCH: spec(403, 'the sender key is not the key pinned for that node'),
  LIAISON_ERR_NOT_A_RECIPIENT: spec(403, 'this node is not among the recipients'),
  LIAISON_ERR_RECIPIENT_KEY_UNKNOWN: spec(
    400,
    'the content key was wrapped for a static key this node does not hold',
  ),
  LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED: spec(
    400,
    'the sender static key is not certified by the sender identity key',
  ),
  LIAISON_ERR_UNWRAP_FAILED: spec(400, 'the content key wrap does not authenticate'),
  LIAISON_ERR_KEY_COMMITMENT_MISMATCH: spec(
    400,
    'the unwrapped content key does not match the signed commitment',
  ),
  LIAISON_ERR_PAYLOAD_DECRYPT_FAILED: spec(
    400,
    'the payload does not authenticate under the content key',
  ),
  LIAISON_ERR_ENVELOPE_EXPIRED: spec(400, 'the envelope has expired'),
  LIAISON_ERR_ENVELOPE_FROM_FUTURE: spec(
    400,
    'the envelope was created beyond the allowed clock skew',
  ),
  LIAISON_ERR_ENVELOPE_LIFETIME: spec(400, 'the envelope lifetime is empty or longer than allowed'),
  LIAISON_ERR_REPLAY: spec(409, 'this message ID was already received from this sender'),
  LIAISON_ERR_SEQUENCE_REPLAY: spec(
    409,
    'the per-recipient sequence number is not above the last one received',
  ),
  LIAISON_ERR_RECEIPT_MISMATCH: spec(
    400,
    'the receipt does not match the envelope it acknowledges',
  ),

  // --- Noise handshake and transport (protocol/noise.ts) ---
  LIAISON_ERR_NOISE_STATE: spec(
    400,
    'Noise message out of turn, or transport used before the handshake completed',
  ),
  LIAISON_ERR_NOISE_MESSAGE_SIZE: spec(
    400,
    'Noise message of the wrong length or over 65535 bytes',
  ),
  LIAISON_ERR_NOISE_DECRYPT: spec(400, 'Noise message does not authenticate'),
  LIAISON_ERR_NOISE_NONCE_EXHAUSTED: spec(
    400,
    'Noise nonce space exhausted; the link must be re-established',
  ),
  LIAISON_ERR_NOISE_CONFIG: spec(
    500,
    'Noise handshake configured without the keys its pattern needs',
  ),

  // --- node: configuration, keystore, storage ---
  LIAISON_ERR_CONFIG_INVALID: spec(400, 'the configuration is invalid'),
  LIAISON_ERR_KEYSTORE_MISSING: spec(404, 'no keystore in the data directory; run liaison init'),
  LIAISON_ERR_KEYSTORE_EXISTS: spec(409, 'a keystore already exists in the data directory'),
  LIAISON_ERR_KEYSTORE_PASSPHRASE: spec(401, 'wrong passphrase for the keystore'),
  LIAISON_ERR_KEYSTORE_CORRUPT: spec(500, 'the keystore file is damaged or not a Liaison keystore'),
  LIAISON_ERR_KEYSTORE_PERMISSIONS: spec(500, 'the keystore file is readable by other users'),
  LIAISON_ERR_STORE_SCHEMA: spec(
    500,
    'the database schema is newer than this software or a migration failed',
  ),
  LIAISON_ERR_NOT_FOUND: spec(404, 'no such object'),
  LIAISON_ERR_CONFLICT: spec(409, 'the request conflicts with the current state'),

  // --- pairing and links ---
  LIAISON_ERR_INVITATION_INVALID: spec(400, 'not a valid invitation'),
  LIAISON_ERR_INVITATION_EXPIRED: spec(410, 'the invitation has expired'),
  LIAISON_ERR_INVITATION_USED: spec(410, 'the invitation was already used or revoked'),
  LIAISON_ERR_PEER_BLOCKED: spec(403, 'the peer is blocked'),
  LIAISON_ERR_PEER_UNKNOWN: spec(403, 'the peer is not paired with this node'),
  LIAISON_ERR_LINK_HELLO_INVALID: spec(400, "the peer's link hello does not match its keys"),
  LIAISON_ERR_LINK_FRAME_INVALID: spec(400, 'the peer sent a malformed or unexpected link frame'),
  LIAISON_ERR_LINK_HANDSHAKE_TIMEOUT: spec(408, 'the link handshake did not complete in time'),
  LIAISON_ERR_LINK_RATE_LIMIT: spec(429, 'the peer exceeded its frame rate limit'),
  LIAISON_ERR_LINK_OVERLOADED: spec(503, 'too many pending handshakes'),
  LIAISON_ERR_LINK_CLOSED: spec(503, 'the link is closed'),

  // --- delivery (protocol/delivery.ts, node/delivery.ts) ---
  LIAISON_ERR_DELIVERY_PROTOCOL: spec(400, 'a malformed or out-of-sequence delivery message'),
  LIAISON_ERR_RECIPIENT_UNKNOWN: spec(400, 'a recipient is not a paired, unblocked peer'),

  // --- audit log, checkpoints and witnessing (protocol/merkle.ts, note.ts, checkpoint.ts, witness.ts) ---
  LIAISON_ERR_AUDIT_PROOF_INVALID: spec(
    422,
    'a Merkle inclusion or consistency proof does not verify',
  ),
  LIAISON_ERR_NOTE_INVALID: spec(400, 'not a well-formed signed note or verifier key'),
  LIAISON_ERR_NOTE_SIGNATURE: spec(403, 'a note has no valid signature by the expected key'),
  LIAISON_ERR_CHECKPOINT_INVALID: spec(400, 'not a well-formed checkpoint for this log'),
  LIAISON_ERR_CHECKPOINT_INCONSISTENT: spec(
    409,
    'the checkpoint contradicts an earlier checkpoint of the same log (equivocation or rollback)',
  ),
  LIAISON_ERR_WITNESS_PROTOCOL: spec(400, 'a malformed witness message'),
  LIAISON_ERR_BUNDLE_INVALID: spec(400, 'not a well-formed audit bundle'),

  // --- local API ---
  LIAISON_ERR_UNAUTHORIZED: spec(401, 'missing, unknown or revoked API token'),
  LIAISON_ERR_FORBIDDEN: spec(403, "the token's role may not do this"),
  LIAISON_ERR_VALIDATION: spec(400, 'the request does not match its schema'),
  LIAISON_ERR_INTERNAL: spec(500, 'internal error; the node log has the details'),
  LIAISON_ERR_BODY_TOO_LARGE: spec(413, 'the request body exceeds the limit'),

  // --- caller mistakes (programming errors or bad API input mapped by the caller) ---
  LIAISON_ERR_ARGUMENT: spec(400, 'invalid argument'),
  LIAISON_ERR_CRYPTO_INTERNAL: spec(
    500,
    'the crypto library failed internally (out of memory, or misuse)',
  ),
  LIAISON_ERR_CRYPTO_NOT_READY: spec(
    500,
    'the crypto library is not initialised; await initCrypto() first',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES: readonly ErrorCode[] = Object.keys(ERRORS) as ErrorCode[];

/**
 * The only error class Liaison throws on purpose. `code` is stable; `message` is for humans and
 * may change. `detail` carries structured context (a field name, a limit) safe to show a client:
 * never key material, never message content.
 */
export class LiaisonError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: Readonly<Record<string, string | number>> | undefined;

  constructor(code: ErrorCode, message?: string, detail?: Record<string, string | number>) {
    const base = ERRORS[code];
    super(message === undefined ? base.message : `${base.message}: ${message}`);
    this.name = 'LiaisonError';
    this.code = code;
    this.status = base.status;
    this.detail = detail;
  }
}

/** Narrowing helper for catch blocks and tests. */
export function isLiaisonError(err: unknown, code?: ErrorCode): err is LiaisonError {
  return err instanceof LiaisonError && (code === undefined || err.code === code);
}
