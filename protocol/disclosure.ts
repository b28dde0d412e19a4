/**
 * Disclosure packages (docs/audit.md §Disclosure): what an auditor receives when an admin
 * discloses one message's content key to them, and the offline check that the disclosed
 * plaintext is exactly what the sender signed:
 *
 *   1. the sender's identity key hashes to the sender's node ID (so it is that node's key);
 *   2. the envelope names that sender and carries a valid signature by that key;
 *   3. the content key matches the key commitment inside the signed header, and opens the
 *      payload (XChaCha20-Poly1305 authenticates it).
 *
 * Nothing else is trusted: not the node that produced the package, nor its transport.
 */
import { equalBytes } from './bytes.ts';
import { Ed25519PublicKey } from './crypto.ts';
import { decodeEnvelope, decryptWithDisclosedKey, verifyEnvelopeSignature } from './envelope.ts';
import { LiaisonError } from './errors.ts';
import { messageIdToText, nodeIdFromText, nodeIdToText } from './ids.ts';
import { deriveNodeId } from './keys.ts';
import { fromStrictBase64 } from './note.ts';
import type { Payload } from './payload.ts';

export const DISCLOSURE_FORMAT = 'liaison-disclosure/1';

export interface VerifiedDisclosure {
  readonly sender: string;
  readonly messageId: string;
  /** Hex: the hash both nodes' audit logs and the receipts name. */
  readonly envelopeHash: string;
  readonly createdAt: number;
  readonly payload: Payload;
}

function bad(field: string, why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_BUNDLE_INVALID', `${field}: ${why}`, { field });
}

/**
 * @throws LIAISON_ERR_BUNDLE_INVALID (malformed package), LIAISON_ERR_NODE_ID_MISMATCH,
 *   LIAISON_ERR_NOT_FROM_SENDER, LIAISON_ERR_SIGNATURE_INVALID,
 *   LIAISON_ERR_KEY_COMMITMENT_MISMATCH, LIAISON_ERR_PAYLOAD_DECRYPT_FAILED, LIAISON_ERR_DECODE_*
 */
export function verifyDisclosure(pkg: unknown): VerifiedDisclosure {
  if (typeof pkg !== 'object' || pkg === null) throw bad('disclosure', 'not an object');
  const p = pkg as Record<string, unknown>;
  if (p.format !== DISCLOSURE_FORMAT) throw bad('format', `expected ${DISCLOSURE_FORMAT}`);
  const bytes = (field: string): Uint8Array => {
    const v = p[field];
    const b = typeof v === 'string' ? fromStrictBase64(v) : undefined;
    if (b === undefined) throw bad(field, 'not canonical base64');
    return b;
  };
  if (typeof p.sender !== 'string') throw bad('sender', 'not a node ID');
  const sender = nodeIdFromText(p.sender);
  const key = Ed25519PublicKey.fromBytes(bytes('senderIdentityKey'), 'senderIdentityKey');
  if (!equalBytes(deriveNodeId(key), sender))
    throw new LiaisonError('LIAISON_ERR_NODE_ID_MISMATCH', "the key is not the sender's");
  const env = decodeEnvelope(bytes('envelope'));
  if (!equalBytes(env.header.senderNodeId, sender))
    throw new LiaisonError('LIAISON_ERR_NOT_FROM_SENDER', 'the envelope names another sender');
  verifyEnvelopeSignature(env, key);
  const payload = decryptWithDisclosedKey(env, bytes('contentKey'));
  return {
    sender: nodeIdToText(sender),
    messageId: messageIdToText(env.header.messageId),
    envelopeHash: Buffer.from(env.envelopeHash).toString('hex'),
    createdAt: env.header.createdAt,
    payload,
  };
}
