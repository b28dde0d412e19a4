/**
 * Identity-key rotation (docs/protocol.md §4.2). A rotation record is signed by both the old and
 * the new identity key: the old signature authorises the move, the new one proves the new key is
 * held (no rotation to a key someone else owns). It does not stop a thief of the current key
 * from rotating to a key of the thief's own; what catches that is equivocation (two different
 * rotations with one serial, isRotationEquivocation) and the peers who witnessed the real one. A node's key history is its genesis key followed by a chain
 * of rotation records with serials 1, 2, 3, ...; the node ID stays the hash of the genesis key.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { Ed25519PublicKey, ED25519_SIGNATURE_BYTES } from './crypto.ts';
import type { Ed25519PrivateKey } from './crypto.ts';
import { concat, equalBytes } from './bytes.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';
import { asNodeId, NODE_ID_BYTES } from './ids.ts';
import type { NodeId } from './ids.ts';
import { deriveNodeId } from './keys.ts';
import { MAX_CLOCK_SKEW_MS, MAX_KEY_HISTORY } from './limits.ts';

export const KEY_ROTATION_TYPE = 0x04;
export const KEY_ROTATION_VERSION = 1;
export const KEY_ROTATION_BYTES = 2 + 32 + 4 + 32 + 32 + 8 + 64 + 64;

export interface KeyRotation {
  readonly nodeId: NodeId;
  readonly serial: number;
  readonly oldKey: Ed25519PublicKey;
  readonly newKey: Ed25519PublicKey;
  readonly issuedAt: number;
  readonly oldSignature: Uint8Array;
  readonly newSignature: Uint8Array;
  readonly bytes: Uint8Array;
}

function encodeBody(
  nodeId: NodeId,
  serial: number,
  oldKey: Ed25519PublicKey,
  newKey: Ed25519PublicKey,
  issuedAt: number,
): Uint8Array {
  return new Writer(KEY_ROTATION_BYTES)
    .u8(KEY_ROTATION_TYPE)
    .u8(KEY_ROTATION_VERSION)
    .fixed(nodeId, NODE_ID_BYTES, 'nodeId')
    .u32(serial, 'serial')
    .fixed(oldKey.bytes, 32, 'oldKey')
    .fixed(newKey.bytes, 32, 'newKey')
    .u64(issuedAt, 'issuedAt')
    .finish();
}

export function createKeyRotation(
  nodeId: NodeId,
  serial: number,
  oldSigner: Ed25519PrivateKey,
  newSigner: Ed25519PrivateKey,
  issuedAt: number,
): KeyRotation {
  if (serial < 1)
    throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'rotation serial must be >= 1', {
      field: 'serial',
    });
  if (equalBytes(oldSigner.publicKey.bytes, newSigner.publicKey.bytes)) {
    throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'old and new key are the same', {
      field: 'newKey',
    });
  }
  const body = encodeBody(nodeId, serial, oldSigner.publicKey, newSigner.publicKey, issuedAt);
  const msg = concat(DOMAIN.KEY_ROTATION, body);
  const oldSignature = oldSigner.sign(msg);
  const newSignature = newSigner.sign(msg);
  return {
    nodeId,
    serial,
    oldKey: oldSigner.publicKey,
    newKey: newSigner.publicKey,
    issuedAt,
    oldSignature,
    newSignature,
    bytes: concat(body, oldSignature, newSignature),
  };
}

/**
 * Decodes a rotation record and checks both signatures.
 * @throws LIAISON_ERR_DECODE_* (old key == new key is LIAISON_ERR_DECODE_VALUE),
 *   LIAISON_ERR_KEY_INVALID, LIAISON_ERR_SIGNATURE_INVALID
 */
export function decodeKeyRotation(bytes: Uint8Array): KeyRotation {
  const r = new Reader(bytes);
  readPreamble(r, KEY_ROTATION_TYPE, KEY_ROTATION_VERSION, 'keyRotation');
  const nodeId = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, 'keyRotation.nodeId')));
  const serial = r.u32('keyRotation.serial');
  if (serial < 1)
    throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', 'keyRotation.serial must be >= 1', {
      field: 'keyRotation.serial',
    });
  const oldKey = Ed25519PublicKey.fromBytes(
    r.fixed(32, 'keyRotation.oldKey'),
    'keyRotation.oldKey',
  );
  const newKey = Ed25519PublicKey.fromBytes(
    r.fixed(32, 'keyRotation.newKey'),
    'keyRotation.newKey',
  );
  const issuedAt = r.u64('keyRotation.issuedAt');
  const bodyEnd = r.offset;
  const oldSignature = Uint8Array.from(
    r.fixed(ED25519_SIGNATURE_BYTES, 'keyRotation.oldSignature'),
  );
  const newSignature = Uint8Array.from(
    r.fixed(ED25519_SIGNATURE_BYTES, 'keyRotation.newSignature'),
  );
  r.end('keyRotation');
  if (equalBytes(oldKey.bytes, newKey.bytes)) {
    throw new LiaisonError(
      'LIAISON_ERR_DECODE_VALUE',
      'keyRotation: old and new key are the same',
      { field: 'keyRotation.newKey' },
    );
  }
  const msg = concat(DOMAIN.KEY_ROTATION, bytes.subarray(0, bodyEnd));
  if (!oldKey.verify(msg, oldSignature) || !newKey.verify(msg, newSignature)) {
    throw new LiaisonError('LIAISON_ERR_SIGNATURE_INVALID', 'key rotation');
  }
  return {
    nodeId,
    serial,
    oldKey,
    newKey,
    issuedAt,
    oldSignature,
    newSignature,
    bytes: Uint8Array.from(bytes),
  };
}

/** One identity key and the interval in which it was the node's current key. */
export interface IdentityKeyPeriod {
  readonly key: Ed25519PublicKey;
  /** 0 for the genesis key. */
  readonly from: number;
  /** Exclusive; `null` for the current key. */
  readonly until: number | null;
}

/**
 * Verifies a node's identity key history: the genesis key hashes to `nodeId`, and each rotation
 * (already signature-checked by decodeKeyRotation) has the next serial, names this node, starts
 * from the previous current key, is not dated before the previous rotation, and is not dated
 * beyond `now` plus the clock skew (a future-dated rotation would keep the old key valid).
 * @returns the periods, oldest first; the last one is the current key.
 * @throws LIAISON_ERR_NODE_ID_MISMATCH, LIAISON_ERR_KEY_HISTORY_INVALID
 */
export function verifyKeyHistory(
  nodeId: NodeId,
  genesisKey: Ed25519PublicKey,
  rotations: readonly KeyRotation[],
  now: number,
): IdentityKeyPeriod[] {
  if (!equalBytes(deriveNodeId(genesisKey), nodeId))
    throw new LiaisonError('LIAISON_ERR_NODE_ID_MISMATCH');
  if (rotations.length > MAX_KEY_HISTORY) {
    throw new LiaisonError(
      'LIAISON_ERR_KEY_HISTORY_INVALID',
      `more than ${MAX_KEY_HISTORY} rotations`,
    );
  }
  const periods: { key: Ed25519PublicKey; from: number; until: number | null }[] = [
    { key: genesisKey, from: 0, until: null },
  ];
  let last = 0;
  rotations.forEach((rot, i) => {
    const current = periods[periods.length - 1]!;
    if (!equalBytes(rot.nodeId, nodeId))
      throw new LiaisonError(
        'LIAISON_ERR_KEY_HISTORY_INVALID',
        `rotation ${i + 1} names another node`,
      );
    if (rot.serial !== i + 1)
      throw new LiaisonError(
        'LIAISON_ERR_KEY_HISTORY_INVALID',
        `rotation ${i + 1} has serial ${rot.serial}`,
      );
    if (!equalBytes(rot.oldKey.bytes, current.key.bytes)) {
      throw new LiaisonError(
        'LIAISON_ERR_KEY_HISTORY_INVALID',
        `rotation ${i + 1} does not start from the current key`,
      );
    }
    if (rot.issuedAt < last)
      throw new LiaisonError(
        'LIAISON_ERR_KEY_HISTORY_INVALID',
        `rotation ${i + 1} is dated before its predecessor`,
      );
    if (rot.issuedAt > now + MAX_CLOCK_SKEW_MS)
      throw new LiaisonError(
        'LIAISON_ERR_KEY_HISTORY_INVALID',
        `rotation ${i + 1} is dated in the future`,
      );
    last = rot.issuedAt;
    current.until = rot.issuedAt;
    periods.push({ key: rot.newKey, from: rot.issuedAt, until: null });
  });
  return periods;
}

/**
 * Two validly signed rotations of one node with the same serial but different content are
 * equivocation: self-contained evidence that the node's key was used twice (stolen, or a fork).
 * A receiver that sees this freezes the peer and raises an alert instead of picking one.
 */
export function isRotationEquivocation(a: KeyRotation, b: KeyRotation): boolean {
  return (
    equalBytes(a.nodeId, b.nodeId) &&
    a.serial === b.serial &&
    !equalBytes(
      a.bytes.subarray(0, KEY_ROTATION_BYTES - 128),
      b.bytes.subarray(0, KEY_ROTATION_BYTES - 128),
    )
  );
}
