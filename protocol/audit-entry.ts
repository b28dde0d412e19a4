/**
 * Audit-log entries (docs/protocol.md §14): the leaves of a node's append-only log.
 *
 * An entry records what the node did, never message content: hashes, identifiers, times, the
 * acting user. Each kind has a fixed list of typed fields, encoded in that order, so an auditor's
 * own tool can decode every entry from this table alone:
 *
 *   entry := 0x06 ‖ u8 version (1) ‖ u8 kind ‖ u64 time (ms) ‖ field…
 *
 *   node   32 bytes, a node ID          mid    16 bytes, a message ID
 *   hash   32 bytes                     u64    8 bytes, big-endian
 *   u8     1 byte                       text   u8 length ‖ UTF-8 (at most 255 bytes)
 *
 * The leaf hash is RFC 6962's: SHA-256(0x00 ‖ entry).
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { HASH_BYTES, sha256 } from './crypto.ts';
import { LiaisonError } from './errors.ts';
import {
  asMessageId,
  asNodeId,
  MESSAGE_ID_BYTES,
  messageIdToText,
  NODE_ID_BYTES,
  nodeIdToText,
} from './ids.ts';
import { toHex } from './bytes.ts';
import type { MessageId, NodeId } from './ids.ts';

export const AUDIT_ENTRY_TYPE = 0x06;
export const AUDIT_ENTRY_VERSION = 1;
export const MAX_AUDIT_TEXT_BYTES = 255;
const LEAF_PREFIX = Uint8Array.of(0x00);

type FieldType = 'node' | 'mid' | 'hash' | 'u64' | 'u8' | 'text';

/** Kind name → (code, fields). Codes are never reused; new kinds are appended. */
export const AUDIT_KINDS = {
  /** This node sealed and queued an envelope; one entry names every recipient. */
  'message-sent': {
    code: 1,
    fields: [
      ['messageId', 'mid'],
      ['envelopeHash', 'hash'],
      ['author', 'text'],
      ['recipients', 'u8'],
    ],
  },
  /** One recipient of a sent message, following its message-sent entry. */
  'message-recipient': {
    code: 2,
    fields: [
      ['messageId', 'mid'],
      ['recipient', 'node'],
      ['sequence', 'u64'],
    ],
  },
  /** An envelope passed every acceptance check and is in the inbox. */
  'message-received': {
    code: 3,
    fields: [
      ['sender', 'node'],
      ['messageId', 'mid'],
      ['envelopeHash', 'hash'],
      ['sequence', 'u64'],
    ],
  },
  /** An envelope from a peer was refused; `bytesHash` is SHA-256 of the bytes as received. */
  'envelope-rejected': {
    code: 4,
    fields: [
      ['peer', 'node'],
      ['bytesHash', 'hash'],
      ['code', 'text'],
    ],
  },
  /** A receipt this node signed; `receiptHash` is SHA-256 of its bytes. */
  'receipt-issued': {
    code: 5,
    fields: [
      ['sender', 'node'],
      ['receiptHash', 'hash'],
      ['entries', 'u64'],
    ],
  },
  /** A verified receipt from a recipient. */
  'receipt-received': {
    code: 6,
    fields: [
      ['issuer', 'node'],
      ['receiptHash', 'hash'],
      ['entries', 'u64'],
    ],
  },
  /** A delivery ended without a receipt: expired, rejected by the recipient, or cancelled. */
  'delivery-failed': {
    code: 7,
    fields: [
      ['messageId', 'mid'],
      ['recipient', 'node'],
      ['status', 'text'],
      ['code', 'text'],
    ],
  },
  /** A user read a message's content through the API. */
  'message-consulted': {
    code: 8,
    fields: [
      ['user', 'text'],
      ['sender', 'node'],
      ['messageId', 'mid'],
    ],
  },
  /** A gap in a sender's sequence numbers: envelopes from..to never arrived. */
  'sequence-gap': {
    code: 9,
    fields: [
      ['sender', 'node'],
      ['from', 'u64'],
      ['to', 'u64'],
    ],
  },
  /** Pairing changes: paired, unpaired, blocked, unblocked. */
  'peer-changed': {
    code: 10,
    fields: [
      ['peer', 'node'],
      ['change', 'text'],
      ['user', 'text'],
    ],
  },
  /** This node's static key was rotated to the record of this serial. */
  'key-rotated': {
    code: 11,
    fields: [
      ['serial', 'u64'],
      ['user', 'text'],
    ],
  },
  /** Local accounts: created, removed; `role` is the role at the time. */
  'user-changed': {
    code: 12,
    fields: [
      ['subject', 'text'],
      ['change', 'text'],
      ['role', 'text'],
      ['user', 'text'],
    ],
  },
  /** API tokens: issued, revoked. */
  'token-changed': {
    code: 13,
    fields: [
      ['subject', 'text'],
      ['tokenId', 'text'],
      ['change', 'text'],
      ['user', 'text'],
    ],
  },
  /** A user acknowledged a received message (a signed ack envelope is sent to its sender). */
  'message-acknowledged': {
    code: 14,
    fields: [
      ['user', 'text'],
      ['sender', 'node'],
      ['messageId', 'mid'],
    ],
  },
  /** This node, as a witness, verified and cosigned a peer's checkpoint (§15.5). */
  'checkpoint-cosigned': {
    code: 15,
    fields: [
      ['peer', 'node'],
      ['size', 'u64'],
      ['rootHash', 'hash'],
    ],
  },
  /** A peer's valid cosignature of one of this node's checkpoints; `cosignedAt` is its time (s). */
  'cosignature-received': {
    code: 16,
    fields: [
      ['witness', 'node'],
      ['size', 'u64'],
      ['rootHash', 'hash'],
      ['cosignedAt', 'u64'],
    ],
  },
  /**
   * A peer presented a checkpoint that contradicts one this node holds from it: `fork` (same
   * size, other root), `inconsistent` (no valid consistency proof) or `rollback` (smaller than the
   * one held). `evidenceHash` is SHA-256 of the stored evidence text (docs/audit.md).
   */
  'equivocation-detected': {
    code: 17,
    fields: [
      ['peer', 'node'],
      ['finding', 'text'],
      ['heldSize', 'u64'],
      ['presentedSize', 'u64'],
      ['evidenceHash', 'hash'],
    ],
  },
  /** A user exported entries [from, to) with a state snapshot whose SHA-256 is `stateHash`. */
  'log-exported': {
    code: 18,
    fields: [
      ['user', 'text'],
      ['from', 'u64'],
      ['to', 'u64'],
      ['stateHash', 'hash'],
    ],
  },
  /** An admin disclosed one message's content key to an auditor, with a justification. */
  'content-disclosed': {
    code: 19,
    fields: [
      ['user', 'text'],
      ['auditor', 'text'],
      ['sender', 'node'],
      ['messageId', 'mid'],
      ['justification', 'text'],
    ],
  },
  /** An auditor fetched a disclosure made to them (and with it the content key). */
  'disclosure-consulted': {
    code: 20,
    fields: [
      ['user', 'text'],
      ['sender', 'node'],
      ['messageId', 'mid'],
    ],
  },
  /** A user read audit entries [from, to) through the API. */
  'audit-consulted': {
    code: 21,
    fields: [
      ['user', 'text'],
      ['from', 'u64'],
      ['to', 'u64'],
    ],
  },
  /** The node started with a configuration other than the last one recorded. */
  'config-changed': {
    code: 22,
    fields: [['configHash', 'hash']],
  },
  /**
   * An auditor read message metadata (inbox or outbox listings, a message's metadata or status,
   * the event stream): `request` is the method and URL as received, cut to 255 bytes.
   */
  'metadata-consulted': {
    code: 23,
    fields: [
      ['user', 'text'],
      ['request', 'text'],
    ],
  },
} as const satisfies Record<
  string,
  { code: number; fields: readonly (readonly [string, FieldType])[] }
>;

export type AuditKind = keyof typeof AUDIT_KINDS;
type FieldsOf<K extends AuditKind> = (typeof AUDIT_KINDS)[K]['fields'][number];
type ValueOf<T extends FieldType> = T extends 'node'
  ? NodeId
  : T extends 'mid'
    ? MessageId
    : T extends 'hash'
      ? Uint8Array
      : T extends 'text'
        ? string
        : number;
export type AuditFields<K extends AuditKind> = {
  readonly [F in FieldsOf<K> as F[0]]: ValueOf<F[1]>;
};

export interface AuditEntry<K extends AuditKind = AuditKind> {
  readonly kind: K;
  readonly time: number;
  readonly fields: AuditFields<K>;
}

const KIND_BY_CODE = new Map<number, AuditKind>(
  Object.entries(AUDIT_KINDS).map(([k, v]) => [v.code, k as AuditKind]),
);

type AnyValue = Uint8Array | string | number;

export function encodeAuditEntry<K extends AuditKind>(e: AuditEntry<K>): Uint8Array {
  const spec = AUDIT_KINDS[e.kind];
  const values = e.fields as unknown as Record<string, AnyValue>;
  const w = new Writer(128)
    .u8(AUDIT_ENTRY_TYPE)
    .u8(AUDIT_ENTRY_VERSION)
    .u8(spec.code, 'kind')
    .u64(e.time, 'time');
  for (const [name, type] of spec.fields) {
    const v = values[name];
    if (v === undefined)
      throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', `audit entry: ${name} missing`, {
        field: name,
      });
    switch (type) {
      case 'node':
        w.fixed(v as Uint8Array, NODE_ID_BYTES, name);
        break;
      case 'mid':
        w.fixed(v as Uint8Array, MESSAGE_ID_BYTES, name);
        break;
      case 'hash':
        w.fixed(v as Uint8Array, HASH_BYTES, name);
        break;
      case 'u64':
        w.u64(v as number, name);
        break;
      case 'u8':
        w.u8(v as number, name);
        break;
      case 'text':
        w.text(v as string, 1, MAX_AUDIT_TEXT_BYTES, name);
        break;
    }
  }
  return w.finish();
}

/** @throws LIAISON_ERR_DECODE_* */
export function decodeAuditEntry(bytes: Uint8Array): AuditEntry {
  const r = new Reader(bytes);
  readPreamble(r, AUDIT_ENTRY_TYPE, AUDIT_ENTRY_VERSION, 'audit entry');
  const code = r.u8('kind');
  const kind = KIND_BY_CODE.get(code);
  if (kind === undefined)
    throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', `unknown audit entry kind ${code}`, {
      field: 'kind',
    });
  const time = r.u64('time');
  const fields: Record<string, AnyValue> = {};
  for (const [name, type] of AUDIT_KINDS[kind].fields as readonly (readonly [
    string,
    FieldType,
  ])[]) {
    switch (type) {
      case 'node':
        fields[name] = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, name)));
        break;
      case 'mid':
        fields[name] = asMessageId(Uint8Array.from(r.fixed(MESSAGE_ID_BYTES, name)));
        break;
      case 'hash':
        fields[name] = Uint8Array.from(r.fixed(HASH_BYTES, name));
        break;
      case 'u64':
        fields[name] = r.u64(name);
        break;
      case 'u8':
        fields[name] = r.u8(name);
        break;
      case 'text':
        fields[name] = r.text(1, MAX_AUDIT_TEXT_BYTES, name);
        break;
    }
  }
  r.end('audit entry');
  return { kind, time, fields } as AuditEntry;
}

/** RFC 6962 leaf hash: SHA-256(0x00 ‖ entry). */
export function auditLeafHash(entry: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, entry);
}

/** A JSON-friendly view of an entry's fields: node and message IDs as text, hashes as hex. */
export function auditFieldsToJson(e: AuditEntry): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const values = e.fields as unknown as Record<string, AnyValue>;
  for (const [name, type] of AUDIT_KINDS[e.kind].fields as readonly (readonly [
    string,
    FieldType,
  ])[]) {
    const v = values[name]!;
    if (type === 'node') out[name] = nodeIdToText(v as NodeId);
    else if (type === 'mid') out[name] = messageIdToText(v as MessageId);
    else if (type === 'hash') out[name] = toHex(v as Uint8Array);
    else out[name] = v as string | number;
  }
  return out;
}
