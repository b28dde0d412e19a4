/**
 * Key records (docs/protocol.md §4.1): an identity key certifies the node's static X25519 key.
 * The static key can then rotate without re-pairing: the node publishes a new record with a
 * higher serial. Which certified keys a receiver still accepts is the receiving node's policy
 * (ReceiverView.isCertifiedDhKey); protocol/ only decodes and checks records.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { Ed25519PublicKey, ED25519_SIGNATURE_BYTES, X25519PublicKey } from './crypto.ts';
import type { Ed25519PrivateKey } from './crypto.ts';
import { concat, equalBytes } from './bytes.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';
import { asNodeId, NODE_ID_BYTES } from './ids.ts';
import type { NodeId } from './ids.ts';

export const KEY_RECORD_TYPE = 0x03;
export const KEY_RECORD_VERSION = 1;
/** Encoded size: preamble 2 + node ID 32 + identity 32 + static 32 + serial 4 + time 8 + sig 64. */
export const KEY_RECORD_BYTES = 2 + 32 + 32 + 32 + 4 + 8 + 64;

export interface KeyRecord {
  readonly nodeId: NodeId;
  readonly identityKey: Ed25519PublicKey;
  readonly dhKey: X25519PublicKey;
  /** Starts at 1; each rotation of the static key increments it. */
  readonly serial: number;
  /** Milliseconds since the Unix epoch. */
  readonly issuedAt: number;
  readonly signature: Uint8Array;
  /** The canonical encoding, signature included. */
  readonly bytes: Uint8Array;
}

function encodeBody(
  nodeId: NodeId,
  identityKey: Ed25519PublicKey,
  dhKey: X25519PublicKey,
  serial: number,
  issuedAt: number,
): Uint8Array {
  if (serial < 1)
    throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'key record serial must be >= 1', {
      field: 'serial',
    });
  return new Writer(KEY_RECORD_BYTES)
    .u8(KEY_RECORD_TYPE)
    .u8(KEY_RECORD_VERSION)
    .fixed(nodeId, NODE_ID_BYTES, 'nodeId')
    .fixed(identityKey.bytes, 32, 'identityKey')
    .fixed(dhKey.bytes, 32, 'dhKey')
    .u32(serial, 'serial')
    .u64(issuedAt, 'issuedAt')
    .finish();
}

/** Signs a record certifying `dhKey` for `nodeId` with the identity key `signer`. */
export function createKeyRecord(
  signer: Ed25519PrivateKey,
  nodeId: NodeId,
  dhKey: X25519PublicKey,
  serial: number,
  issuedAt: number,
): KeyRecord {
  X25519PublicKey.fromBytesStrict(dhKey.bytes, 'dhKey');
  const body = encodeBody(nodeId, signer.publicKey, dhKey, serial, issuedAt);
  const signature = signer.sign(concat(DOMAIN.KEY_RECORD, body));
  return {
    nodeId,
    identityKey: signer.publicKey,
    dhKey,
    serial,
    issuedAt,
    signature,
    bytes: concat(body, signature),
  };
}

/**
 * Decodes a key record and checks its self-signature. Whether `identityKey` is the right identity
 * key for `nodeId` is the caller's question (pinned key or verified key history).
 * @throws LIAISON_ERR_DECODE_* on malformed bytes, LIAISON_ERR_KEY_INVALID on a bad identity key,
 *   LIAISON_ERR_KEY_RECORD_INVALID on a bad signature.
 */
export function decodeKeyRecord(bytes: Uint8Array): KeyRecord {
  const r = new Reader(bytes);
  readPreamble(r, KEY_RECORD_TYPE, KEY_RECORD_VERSION, 'keyRecord');
  const nodeId = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, 'keyRecord.nodeId')));
  const identityKey = Ed25519PublicKey.fromBytes(
    r.fixed(32, 'keyRecord.identityKey'),
    'keyRecord.identityKey',
  );
  const dhKey = X25519PublicKey.fromBytesStrict(r.fixed(32, 'keyRecord.dhKey'), 'keyRecord.dhKey');
  const serial = r.u32('keyRecord.serial');
  if (serial < 1)
    throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', 'keyRecord.serial must be >= 1', {
      field: 'keyRecord.serial',
    });
  const issuedAt = r.u64('keyRecord.issuedAt');
  const bodyEnd = r.offset;
  const signature = Uint8Array.from(r.fixed(ED25519_SIGNATURE_BYTES, 'keyRecord.signature'));
  r.end('keyRecord');
  const body = bytes.subarray(0, bodyEnd);
  if (!identityKey.verify(concat(DOMAIN.KEY_RECORD, body), signature)) {
    throw new LiaisonError('LIAISON_ERR_KEY_RECORD_INVALID');
  }
  return { nodeId, identityKey, dhKey, serial, issuedAt, signature, bytes: Uint8Array.from(bytes) };
}

/**
 * Checks that `record` belongs to `nodeId` and is signed by `identityKey` (the key the caller
 * trusts for that node).
 * @throws LIAISON_ERR_KEY_RECORD_INVALID
 */
export function checkKeyRecordFor(
  record: KeyRecord,
  nodeId: NodeId,
  identityKey: Ed25519PublicKey,
): void {
  if (
    !equalBytes(record.nodeId, nodeId) ||
    !equalBytes(record.identityKey.bytes, identityKey.bytes)
  ) {
    throw new LiaisonError(
      'LIAISON_ERR_KEY_RECORD_INVALID',
      'record is for another node or identity key',
    );
  }
}
