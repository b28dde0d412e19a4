/**
 * Pairing (docs/operations.md §Pairing): invitations and pinned peers, backed by the store. This
 * is the link layer's PeerDirectory, and the service behind the API's invitation and peer routes.
 */
import {
  equalBytes,
  encodeInvitation,
  fingerprint,
  fromHex,
  LiaisonError,
  nodeIdToText,
  randomBytes,
  toHex,
  INVITATION_ID_BYTES,
  INVITATION_SECRET_BYTES,
} from '../protocol/index.ts';
import type { Hello, Invitation, KeyRecord } from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import { DEFAULT_INVITATION_TTL_MS, MAX_INVITATION_TTL_MS } from './constants.ts';
import type { PeerPort } from './delivery.ts';
import type { KnownPeer, PeerDirectory } from './link/link-manager.ts';
import type { LinkSelf } from './link/handshake.ts';
import type { InvitationRecord, PeerRecord, Store } from './store.ts';

export interface CreatedInvitation {
  readonly id: string;
  readonly text: string;
  readonly expiresAt: number;
}

/** Pairing changes, recorded in the audit log inside the transaction that makes them. */
export type PeerChange = 'paired' | 'unpaired' | 'blocked' | 'unblocked';
export type PeerChangeRecorder = (
  nodeId: string,
  change: PeerChange,
  by: string,
  now: number,
) => void;

export class Pairing implements PeerDirectory, PeerPort {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly self: () => LinkSelf,
    private readonly record: PeerChangeRecorder = () => undefined,
  ) {}

  /**
   * A one-time invitation for another authority to pair with this node.
   * @throws LIAISON_ERR_CONFLICT when this node has no public address to be dialed at,
   *   LIAISON_ERR_ARGUMENT for a TTL out of range.
   */
  createInvitation(label: string, ttlMs: number = DEFAULT_INVITATION_TTL_MS): CreatedInvitation {
    const me = this.self();
    if (me.address === null)
      throw new LiaisonError(
        'LIAISON_ERR_CONFLICT',
        'this node has no publicAddress, so nobody can dial it to pair',
      );
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 60_000 || ttlMs > MAX_INVITATION_TTL_MS) {
      throw new LiaisonError(
        'LIAISON_ERR_ARGUMENT',
        `ttl must be between 1 minute and ${MAX_INVITATION_TTL_MS / 3_600_000} hours`,
        { field: 'ttlSeconds' },
      );
    }
    const now = this.clock.now();
    const id = randomBytes(INVITATION_ID_BYTES);
    const secret = randomBytes(INVITATION_SECRET_BYTES);
    const expiresAt = now + ttlMs;
    this.store.addInvitation({
      id: toHex(id),
      secret,
      label,
      createdAt: now,
      expiresAt,
      usedAt: null,
      usedBy: null,
      revokedAt: null,
    });
    const inv: Invitation = {
      id,
      secret,
      expiresAt,
      inviter: {
        nodeId: me.identity.nodeId,
        identityKey: me.identity.signingKey.publicKey,
        rotations: me.rotations,
        keyRecord: me.identity.keyRecord,
        name: me.name,
      },
      address: me.address,
    };
    return { id: toHex(id), text: encodeInvitation(inv), expiresAt };
  }

  listInvitations(): InvitationRecord[] {
    return this.store.listInvitations();
  }

  revokeInvitation(id: string): void {
    this.store.revokeInvitation(id);
  }

  peers(): PeerRecord[] {
    return this.store.listPeers();
  }

  peer(nodeId: string): PeerRecord | null {
    return this.store.getPeer(nodeId);
  }

  // --- PeerDirectory -----------------------------------------------------------------------

  get(nodeId: string): KnownPeer | null {
    const p = this.store.getPeer(nodeId);
    return p === null ? null : known(p);
  }

  // --- delivery's PeerPort -------------------------------------------------------------------

  /** Identity and current static key of a paired, unblocked peer; null for anyone else. */
  paired(nodeId: string): { identityKey: Uint8Array; dhKey: Uint8Array } | null {
    const p = this.store.getPeer(nodeId);
    return p === null || p.status !== 'paired'
      ? null
      : { identityKey: p.identityKey, dhKey: p.dhKey };
  }

  /** Whether `dhKey` is a static key the peer certified with a key record we hold. */
  isCertifiedDhKey(nodeId: string, dhKey: Uint8Array): boolean {
    return this.store.peerDhKeys(nodeId).some((k) => equalBytes(k.dhKey, dhKey));
  }

  list(): KnownPeer[] {
    return this.store.listPeers().map(known);
  }

  invitationSecret(id: Uint8Array): Uint8Array {
    const inv = this.store.getInvitation(toHex(id));
    if (inv === null)
      throw new LiaisonError('LIAISON_ERR_INVITATION_INVALID', 'unknown invitation');
    if (inv.usedAt !== null || inv.revokedAt !== null)
      throw new LiaisonError('LIAISON_ERR_INVITATION_USED');
    if (this.clock.now() >= inv.expiresAt) throw new LiaisonError('LIAISON_ERR_INVITATION_EXPIRED');
    return inv.secret;
  }

  pairedByInvitation(invitationId: Uint8Array, hello: Hello, now: number): void {
    const nodeId = nodeIdToText(hello.identity.nodeId);
    this.store.transaction(() => {
      this.store.useInvitation(toHex(invitationId), nodeId, now);
      this.#pin(hello, null, now);
    });
  }

  pairedWithInviter(invitation: Invitation, hello: Hello, now: number): void {
    this.store.transaction(() => this.#pin(hello, invitation.address, now));
  }

  /** Pins the peer of a verified hello (a re-pairing with the same identity refreshes it). */
  #pin(hello: Hello, address: string | null, now: number): void {
    const id = hello.identity;
    const nodeId = nodeIdToText(id.nodeId);
    const existing = this.store.getPeer(nodeId);
    if (existing !== null) {
      if (!equalBytes(existing.identityKey, id.identityKey.bytes))
        throw new LiaisonError('LIAISON_ERR_CONFLICT', 'paired with another identity key');
      if (existing.status === 'blocked') throw new LiaisonError('LIAISON_ERR_PEER_BLOCKED');
      if (id.keyRecord.serial > existing.keyRecordSerial) this.peerKeyRecord(nodeId, id.keyRecord);
      const dialBack = address ?? hello.address;
      if (dialBack !== null && dialBack !== existing.address)
        this.store.setPeerAddress(nodeId, dialBack);
      return;
    }
    this.record(
      nodeId,
      'paired',
      address === null ? 'invitation-used' : 'invitation-accepted',
      now,
    );
    this.store.addPeer({
      nodeId,
      name: id.name,
      identityKey: id.identityKey.bytes,
      dhKey: id.keyRecord.dhKey.bytes,
      keyRecord: id.keyRecord.bytes,
      keyRecordSerial: id.keyRecord.serial,
      fingerprint: fingerprint(id.identityKey),
      address: address ?? hello.address,
      status: 'paired',
      pairedAt: now,
      lastSeen: now,
      blockedAt: null,
    });
  }

  peerKeyRecord(nodeId: string, record: KeyRecord): void {
    this.store.addPeerDhKey(nodeId, record.serial, record.dhKey.bytes, record.bytes);
  }

  peerAddress(nodeId: string, address: string): void {
    this.store.setPeerAddress(nodeId, address);
  }

  touch(nodeId: string, now: number): void {
    if (this.store.getPeer(nodeId) !== null) this.store.touchPeer(nodeId, now);
  }

  // --- operator actions ----------------------------------------------------------------------

  unpair(nodeId: string, by: string): void {
    this.store.transaction(() => this.#unpair(nodeId, by));
  }

  #unpair(nodeId: string, by: string): void {
    const p = this.store.getPeer(nodeId);
    if (p === null) throw new LiaisonError('LIAISON_ERR_NOT_FOUND', nodeId);
    // Forgetting a blocked peer would lift the block (it could pair again with any invitation).
    if (p.status === 'blocked')
      throw new LiaisonError(
        'LIAISON_ERR_CONFLICT',
        'the peer is blocked; unblock it first to unpair',
      );
    this.store.removePeer(nodeId);
    this.record(nodeId, 'unpaired', by, this.clock.now());
  }

  block(nodeId: string, by: string): void {
    this.store.transaction(() => {
      const p = this.store.getPeer(nodeId);
      if (p === null) throw new LiaisonError('LIAISON_ERR_NOT_FOUND', nodeId);
      if (p.status === 'blocked') throw new LiaisonError('LIAISON_ERR_CONFLICT', 'already blocked');
      this.store.setPeerStatus(nodeId, 'blocked');
      this.record(nodeId, 'blocked', by, this.clock.now());
    });
  }

  unblock(nodeId: string, by: string): void {
    this.store.transaction(() => {
      const p = this.store.getPeer(nodeId);
      if (p === null) throw new LiaisonError('LIAISON_ERR_NOT_FOUND', nodeId);
      if (p.status !== 'blocked') throw new LiaisonError('LIAISON_ERR_CONFLICT', 'not blocked');
      this.store.setPeerStatus(nodeId, 'paired');
      this.record(nodeId, 'unblocked', by, this.clock.now());
    });
  }
}

function known(p: PeerRecord): KnownPeer {
  return {
    nodeId: p.nodeId,
    status: p.status,
    identityKey: p.identityKey,
    dhKey: p.dhKey,
    keyRecordSerial: p.keyRecordSerial,
    address: p.address,
  };
}

/** Invitation IDs travel as hex in the API. */
export function invitationIdFromHex(id: string): Uint8Array {
  return fromHex(id, 'invitationId');
}
