/**
 * Node-level defaults and limits (docs/operations.md lists each with its configuration key).
 * Protocol limits that are part of the wire format live in protocol/limits.ts.
 */

export const DEFAULT_PEER_PORT = 7800;
export const DEFAULT_API_PORT = 7801;
/** The peer port faces other authorities; the API stays on loopback unless an operator says so. */
export const DEFAULT_PEER_HOST = '0.0.0.0';
export const DEFAULT_API_HOST = '127.0.0.1';

/** A handshake (first message to READY) must finish within this time. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections still in their handshake, across all peers; more are refused at once. */
export const MAX_PENDING_HANDSHAKES = 64;
/** Keepalive: a PING after this much silence from us; the link is dead after IDLE_TIMEOUT_MS of silence from the peer. */
export const KEEPALIVE_INTERVAL_MS = 15_000;
export const IDLE_TIMEOUT_MS = 45_000;
/** Reconnect backoff: full jitter over base * 2^attempt, capped; reset once a link stays up. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 60_000;
export const RECONNECT_RESET_AFTER_MS = 30_000;
/** Per-peer inbound frame rate (token bucket): sustained rate and burst. */
export const MAX_FRAMES_PER_SECOND = 5_000;
export const FRAME_BURST = 10_000;
/** Bytes queued for sending on one link before the sender is told to back off. */
export const MAX_LINK_SEND_QUEUE_BYTES = 16 * 1024 * 1024;
/**
 * Both directions rekey (Noise §11.3) each time their nonce reaches a multiple of this. Nonces
 * advance in lockstep on an ordered link, so no signalling is needed.
 */
export const REKEY_INTERVAL_MESSAGES = 65_536;

/** Invitations: default and longest validity. */
export const DEFAULT_INVITATION_TTL_MS = 24 * 60 * 60 * 1000;
export const MAX_INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * A new checkpoint of the audit log is signed this often when the log has grown (and on demand).
 * Peers cosign each one, so this is also how stale a witnessed view of the log can be.
 */
export const CHECKPOINT_INTERVAL_MS = 60_000;
/** An add-checkpoint request unanswered this long is abandoned and sent again later. */
export const WITNESS_TIMEOUT_MS = 30_000;
/** Equivocation evidence kept per peer: enough to prove it, bounded against a flood. */
export const MAX_EVIDENCE_PER_PEER = 16;
/** How long an export waits for peers to cosign the checkpoint it ends with. */
export const EXPORT_COSIGN_WAIT_MS = 3_000;
