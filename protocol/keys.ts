/**
 * Node identities (docs/protocol.md §3): node IDs derived from the genesis identity key, and
 * human fingerprints read out over the phone when two authorities pair.
 */
import { concat } from './bytes.ts';
import { blake2b256, blake2b512 } from './crypto.ts';
import { Ed25519PrivateKey, X25519PrivateKey } from './crypto.ts';
import type { Ed25519PublicKey } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { asNodeId } from './ids.ts';
import type { NodeId } from './ids.ts';
import { createKeyRecord } from './key-record.ts';
import type { KeyRecord } from './key-record.ts';

/** Digit groups in a fingerprint, and digits per group. 8 x 5 digits carry ~132.9 bits. */
export const FINGERPRINT_GROUPS = 8;
export const FINGERPRINT_GROUP_DIGITS = 5;

/**
 * NodeId = BLAKE2b-256(tag("liaison/v1/node-id") || genesis identity public key).
 * The genesis key is the node's first identity key; the ID survives identity-key rotation.
 */
export function deriveNodeId(genesisKey: Ed25519PublicKey): NodeId {
  return asNodeId(blake2b256(concat(DOMAIN.NODE_ID, genesisKey.bytes)));
}

/**
 * Fingerprint of an identity key: d = BLAKE2b-512(tag("liaison/v1/fingerprint") || key); for
 * i in 0..7, the 5-byte big-endian integer d[5i..5i+5] mod 100000, zero-padded to 5 digits;
 * groups joined by single spaces. The bias of a 40-bit value mod 10^5 is below 2^-23.
 */
export function fingerprint(key: Ed25519PublicKey): string {
  const d = blake2b512(concat(DOMAIN.FINGERPRINT, key.bytes));
  const groups: string[] = [];
  for (let i = 0; i < FINGERPRINT_GROUPS; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + d[5 * i + j]!;
    groups.push(String(v % 10 ** FINGERPRINT_GROUP_DIGITS).padStart(FINGERPRINT_GROUP_DIGITS, '0'));
  }
  return groups.join(' ');
}

/** What a node needs to seal and open envelopes as itself. */
export interface LocalIdentity {
  readonly nodeId: NodeId;
  /** The current identity (signing) key. */
  readonly signingKey: Ed25519PrivateKey;
  /** The current static DH key, certified by `keyRecord`. */
  readonly dhKey: X25519PrivateKey;
  readonly keyRecord: KeyRecord;
  /**
   * Earlier static DH keys still accepted for opening (an envelope sealed by a peer that had not
   * yet learned of a rotation). Newest first.
   */
  readonly previousDhKeys: readonly X25519PrivateKey[];
}

/**
 * Builds a node's first identity from secret material (drawn fresh by `liaison init`, fixed in
 * test vectors): the node ID is derived from the signing key, and a key record with serial 1
 * certifies the static key.
 */
export function createLocalIdentity(
  signingSeed: Uint8Array,
  dhSecret: Uint8Array,
  issuedAt: number,
): LocalIdentity {
  const signingKey = Ed25519PrivateKey.fromSeed(signingSeed);
  const dhKey = X25519PrivateKey.fromBytes(dhSecret);
  const nodeId = deriveNodeId(signingKey.publicKey);
  const keyRecord = createKeyRecord(signingKey, nodeId, dhKey.publicKey, 1, issuedAt);
  return { nodeId, signingKey, dhKey, keyRecord, previousDhKeys: [] };
}
