/**
 * Acceptance rules for a received envelope, as pure functions (docs/protocol.md §7).
 *
 * The receiving node supplies what it knows (pinned keys, certified static keys, replay state)
 * and the current time; these functions decide. Checks run in a fixed, documented order so that
 * every implementation gives the same error code for the same input:
 *
 *   1. structure (decodeEnvelope)             LIAISON_ERR_DECODE_*
 *   2. delivered by its sender's own link     LIAISON_ERR_NOT_FROM_SENDER
 *      sender is a paired peer, key pinned    LIAISON_ERR_SENDER_KEY_MISMATCH
 *   3. signature                              LIAISON_ERR_SIGNATURE_INVALID
 *   4. this node is a recipient               LIAISON_ERR_NOT_A_RECIPIENT
 *   5. lifetime, clock skew, expiry           LIAISON_ERR_ENVELOPE_LIFETIME / _FROM_FUTURE / _EXPIRED
 *   6. sender static key certified            LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED
 *   7. message ID not seen before             LIAISON_ERR_REPLAY
 *   8. sequence above the last one accepted   LIAISON_ERR_SEQUENCE_REPLAY
 *   9. open: wrap, commitment, payload        LIAISON_ERR_RECIPIENT_KEY_UNKNOWN / _UNWRAP_FAILED /
 *                                             _KEY_COMMITMENT_MISMATCH / _PAYLOAD_DECRYPT_FAILED
 *
 * Before step 3 only the sender's node ID and identity key are read (to find the pinned key), so
 * any other forged field never earns a more specific error than "signature invalid".
 */
import { equalBytes } from './bytes.ts';
import type { Ed25519PublicKey } from './crypto.ts';
import {
  decodeEnvelope,
  openEnvelope,
  recipientIndex,
  verifyEnvelopeSignature,
} from './envelope.ts';
import type { Envelope, EnvelopeHeader, OpenedEnvelope } from './envelope.ts';
import { LiaisonError } from './errors.ts';
import type { MessageId, NodeId } from './ids.ts';
import type { LocalIdentity } from './keys.ts';
import type { PairKeyCache } from './key-wrap.ts';
import { MAX_CLOCK_SKEW_MS, MAX_ENVELOPE_LIFETIME_MS } from './limits.ts';

/** @throws LIAISON_ERR_ENVELOPE_LIFETIME */
export function checkLifetime(h: EnvelopeHeader): void {
  if (h.expiresAt <= h.createdAt || h.expiresAt - h.createdAt > MAX_ENVELOPE_LIFETIME_MS) {
    throw new LiaisonError('LIAISON_ERR_ENVELOPE_LIFETIME');
  }
}

/**
 * An envelope is valid at `now` iff createdAt <= now + MAX_CLOCK_SKEW_MS and now < expiresAt.
 * @throws LIAISON_ERR_ENVELOPE_FROM_FUTURE, LIAISON_ERR_ENVELOPE_EXPIRED
 */
export function checkTimes(h: EnvelopeHeader, now: number, skewMs = MAX_CLOCK_SKEW_MS): void {
  if (!Number.isSafeInteger(now) || now < 0) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'now must be a time in milliseconds', {
      field: 'now',
    });
  }
  if (h.createdAt > now + skewMs) throw new LiaisonError('LIAISON_ERR_ENVELOPE_FROM_FUTURE');
  if (now >= h.expiresAt) throw new LiaisonError('LIAISON_ERR_ENVELOPE_EXPIRED');
}

export type SequenceVerdict =
  | { readonly kind: 'next' }
  /** Accepted, but envelopes last+1 .. sequence-1 never arrived (expired, refused or lost). */
  | { readonly kind: 'gap'; readonly missingFrom: number; readonly missingTo: number };

/**
 * Per (sender, recipient node) sequence rule. `last` is the highest sequence accepted so far
 * (0 before the first envelope).
 * @throws LIAISON_ERR_SEQUENCE_REPLAY when sequence <= last
 */
export function checkSequence(last: number, sequence: number): SequenceVerdict {
  if (sequence <= last)
    throw new LiaisonError('LIAISON_ERR_SEQUENCE_REPLAY', `sequence ${sequence} <= ${last}`);
  if (sequence === last + 1) return { kind: 'next' };
  return { kind: 'gap', missingFrom: last + 1, missingTo: sequence - 1 };
}

/** What the receiving node knows about its peers and its past, as read-only questions. */
export interface ReceiverView {
  /** The identity key pinned for a paired, unblocked peer; null for anyone else. */
  pinnedIdentityKey(nodeId: NodeId): Ed25519PublicKey | null;
  /** Whether `dhKey` is a static key the peer certified with a valid key record. */
  isCertifiedDhKey(nodeId: NodeId, dhKey: Uint8Array): boolean;
  /** Whether this message ID was already accepted from this sender. */
  hasSeen(sender: NodeId, messageId: MessageId): boolean;
  /** Highest sequence accepted from `sender` for this node, 0 if none. */
  lastSequence(sender: NodeId): number;
}

export interface Accepted extends OpenedEnvelope {
  readonly sequence: SequenceVerdict;
}

/**
 * Runs every acceptance check, in the documented order, on raw envelope bytes received from a
 * peer. On success the caller stores the envelope and advances its replay state; on failure
 * nothing about the envelope may be stored except the error code and hashes.
 */
export function acceptEnvelope(
  bytes: Uint8Array,
  me: LocalIdentity,
  view: ReceiverView,
  now: number,
  pairKeys: PairKeyCache,
  from: NodeId,
): Accepted {
  const env = decodeEnvelope(bytes);
  return acceptDecoded(env, me, view, now, pairKeys, from);
}

/**
 * acceptEnvelope for an already-decoded envelope (steps 2 to 9). `from` is the peer whose
 * authenticated link delivered the envelope: envelopes travel only from their sender, never
 * relayed, so a co-recipient cannot inject a genuine envelope out of order (and so make the
 * sender's next one fail the sequence rule) nor probe whom this node is paired with.
 */
export function acceptDecoded(
  env: Envelope,
  me: LocalIdentity,
  view: ReceiverView,
  now: number,
  pairKeys: PairKeyCache,
  from: NodeId,
): Accepted {
  const h = env.header;
  if (!equalBytes(from, h.senderNodeId)) throw new LiaisonError('LIAISON_ERR_NOT_FROM_SENDER');
  const pinned = view.pinnedIdentityKey(h.senderNodeId);
  if (pinned === null)
    throw new LiaisonError('LIAISON_ERR_SENDER_KEY_MISMATCH', 'sender is not a paired peer');
  verifyEnvelopeSignature(env, pinned);
  const index = recipientIndex(h, me.nodeId);
  if (index < 0) throw new LiaisonError('LIAISON_ERR_NOT_A_RECIPIENT');
  checkLifetime(h);
  checkTimes(h, now);
  if (!view.isCertifiedDhKey(h.senderNodeId, h.senderDhKey))
    throw new LiaisonError('LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED');
  if (view.hasSeen(h.senderNodeId, h.messageId)) throw new LiaisonError('LIAISON_ERR_REPLAY');
  const sequence = checkSequence(view.lastSequence(h.senderNodeId), h.recipients[index]!.sequence);
  const opened = openEnvelope(env, me, pairKeys, index);
  // Spelled out rather than spread: copying an object by spread costs more than the rest of this
  // function.
  return {
    envelope: opened.envelope,
    payload: opened.payload,
    contentKey: opened.contentKey,
    recipientIndex: opened.recipientIndex,
    sequence,
  };
}
