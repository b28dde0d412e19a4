/**
 * Shared fixtures for protocol tests: fixed identities, a receiver view over plain maps, and
 * helpers to seal envelopes with defaults that individual tests override.
 */
import {
  createLocalIdentity,
  equalBytes,
  initCrypto,
  PairKeyCache,
  sealEnvelope,
  toHex,
} from '../../protocol/index.ts';
import type {
  Envelope,
  LocalIdentity,
  MessageId,
  NodeId,
  Payload,
  ReceiverView,
  SealParams,
} from '../../protocol/index.ts';

await initCrypto();

export const T0 = 1_767_225_600_000;

export function identity(n: number): LocalIdentity {
  return createLocalIdentity(new Uint8Array(32).fill(n), new Uint8Array(32).fill(n + 100), T0);
}

export const alice = identity(1);
export const bob = identity(2);
export const carol = identity(3);
export const mallory = identity(4);

export const payload: Payload = {
  subject: 'Urgent preservation request',
  body: 'Please preserve subscriber and traffic data.',
  language: 'en',
  caseRef: 'CASE-1',
  form: null,
  attachments: [],
};

export function params(
  overrides: Partial<SealParams> = {},
  to: readonly LocalIdentity[] = [bob],
): SealParams {
  return {
    kind: 'message',
    priority: 'urgent',
    handling: 'H0',
    author: 'duty-officer',
    createdAt: T0,
    expiresAt: T0 + 3_600_000,
    ref: null,
    recipients: to.map((r, i) => ({
      nodeId: r.nodeId,
      dhKey: r.dhKey.publicKey,
      sequence: i + 1,
      mailbox: '24-7',
    })),
    payload,
    ...overrides,
  };
}

export function seal(
  from: LocalIdentity = alice,
  overrides: Partial<SealParams> = {},
  to: readonly LocalIdentity[] = [bob],
): Envelope {
  return sealEnvelope(from, params(overrides, to), { pairKeys: new PairKeyCache() });
}

/** A receiver's knowledge, as mutable maps a test can shape. */
export class TestView implements ReceiverView {
  readonly pinned = new Map<string, LocalIdentity>();
  readonly seen = new Set<string>();
  readonly lastSeq = new Map<string, number>();
  /** Certified static keys per node; defaults to each pinned node's current key. */
  readonly extraDhKeys = new Map<string, Uint8Array[]>();

  constructor(...peers: LocalIdentity[]) {
    for (const p of peers) this.pinned.set(toHex(p.nodeId), p);
  }

  pinnedIdentityKey(nodeId: NodeId) {
    return this.pinned.get(toHex(nodeId))?.signingKey.publicKey ?? null;
  }

  isCertifiedDhKey(nodeId: NodeId, dhKey: Uint8Array): boolean {
    const p = this.pinned.get(toHex(nodeId));
    if (p === undefined) return false;
    return (
      equalBytes(p.keyRecord.dhKey.bytes, dhKey) ||
      (this.extraDhKeys.get(toHex(nodeId)) ?? []).some((k) => equalBytes(k, dhKey))
    );
  }

  hasSeen(sender: NodeId, messageId: MessageId): boolean {
    return this.seen.has(toHex(sender) + toHex(messageId));
  }

  lastSequence(sender: NodeId): number {
    return this.lastSeq.get(toHex(sender)) ?? 0;
  }

  /** Records an accepted envelope as the node's store would. */
  record(env: Envelope, me: LocalIdentity): void {
    this.seen.add(toHex(env.header.senderNodeId) + toHex(env.header.messageId));
    const mine = env.header.recipients.find((r) => equalBytes(r.nodeId, me.nodeId));
    if (mine) this.lastSeq.set(toHex(env.header.senderNodeId), mine.sequence);
  }
}
