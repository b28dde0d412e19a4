/**
 * The audit export bundle (docs/audit.md §Bundle format): one JSON document that lets an auditor
 * check a node's log offline, with nothing but the bundle and the node's pinned identity key.
 *
 * Binary values are standard padded base64; node IDs are their `ln…` text; notes are their exact
 * text. Parsing validates every field's type, size and encoding into typed values and refuses
 * anything else with LIAISON_ERR_BUNDLE_INVALID naming the field; it checks no signature and no
 * hash (that is the verifier's job, protocol/audit-verify.ts, which reports findings instead of
 * throwing).
 */
import { fromStrictBase64 } from './note.ts';
import { ED25519_PUBLIC_KEY_BYTES, HASH_BYTES } from './crypto.ts';
import { LiaisonError } from './errors.ts';
import { messageIdFromText, messageIdToText, nodeIdFromText, nodeIdToText } from './ids.ts';
import type { MessageId, NodeId } from './ids.ts';
import { MAX_PROOF_HASHES, MAX_TREE_SIZE } from './merkle.ts';

export const BUNDLE_FORMAT = 'liaison-audit-bundle/1';

/** Entries in one bundle: a year of a busy node's log; larger logs are exported in ranges. */
export const MAX_BUNDLE_ENTRIES = 10_000_000;
/** Checkpoints, receipts, peers and state rows in one bundle. */
export const MAX_BUNDLE_ITEMS = 10_000_000;

export interface BundleNode {
  readonly nodeId: NodeId;
  readonly origin: string;
  /** The Ed25519 identity key that signs checkpoints, receipts and envelopes. */
  readonly identityKey: Uint8Array;
  /** Identity-key rotations (protocol/key-rotation.ts), oldest first; usually none. */
  readonly rotations: readonly Uint8Array[];
  /** The node's static-key records (protocol/key-record.ts), oldest first. */
  readonly keyRecords: readonly Uint8Array[];
}

export interface BundlePeer {
  readonly nodeId: NodeId;
  readonly name: string;
  readonly identityKey: Uint8Array;
}

export interface BundleConsistency {
  readonly from: number;
  readonly to: number;
  readonly proof: readonly Uint8Array[];
}

/** A peer's checkpoint this node holds as its witness (the newest it cosigned). */
export interface BundleWitnessed {
  readonly peer: NodeId;
  readonly note: string;
}

export interface BundleEvidence {
  readonly peer: NodeId;
  readonly finding: 'fork' | 'inconsistent' | 'rollback';
  readonly detectedAt: number;
  /** The checkpoint held before, and the contradicting one, as signed notes. */
  readonly heldNote: string;
  readonly presentedNote: string;
  readonly proof: readonly Uint8Array[];
}

export interface InboxRow {
  readonly sender: NodeId;
  readonly messageId: MessageId;
  readonly envelopeHash: Uint8Array;
  readonly sequence: number;
  readonly logIndex: number;
}

export interface OutboxRow {
  readonly messageId: MessageId;
  readonly envelopeHash: Uint8Array;
  readonly recipient: NodeId;
  readonly status: string;
}

export interface Bundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly createdAt: number;
  readonly node: BundleNode;
  readonly peers: readonly BundlePeer[];
  /** Entries [from, to). */
  readonly from: number;
  readonly to: number;
  /** Hashes of the perfect subtrees covering [0, from), largest first (MerkleFrontier). */
  readonly frontier: readonly Uint8Array[];
  readonly entries: readonly Uint8Array[];
  /** Signed checkpoints with every cosignature line, ascending by size, sizes within [from, to]. */
  readonly checkpoints: readonly string[];
  /** Consistency proofs between consecutive checkpoints. */
  readonly consistency: readonly BundleConsistency[];
  /** Signed receipts named by receipt-issued and receipt-received entries in range. */
  readonly receipts: readonly Uint8Array[];
  readonly witnessed: readonly BundleWitnessed[];
  readonly evidence: readonly BundleEvidence[];
  /**
   * The state snapshot: one line per inbox or outbox row (docs/audit.md). Its SHA-256 is the
   * `stateHash` of the bundle's own `log-exported` entry, so the snapshot is bound to the log.
   */
  readonly state: string;
}

function bad(field: string, why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_BUNDLE_INVALID', `${field}: ${why}`, { field });
}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'not an object');
  return v as Json;
}
function arr(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw bad(field, 'not an array');
  if (v.length > max) throw bad(field, `more than ${max} items`);
  return v;
}
function int(v: unknown, field: string, max = MAX_TREE_SIZE): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw bad(field, 'not a non-negative integer');
  return v;
}
function str(v: unknown, field: string, max = 1 << 20): string {
  if (typeof v !== 'string' || v.length > max) throw bad(field, 'not a string');
  return v;
}
function b64(v: unknown, field: string, length?: number, max = 1 << 24): Uint8Array {
  const s = str(v, field, Math.ceil(max / 3) * 4 + 4);
  const bytes = fromStrictBase64(s);
  if (bytes === undefined) throw bad(field, 'not canonical base64');
  if (length !== undefined && bytes.length !== length) throw bad(field, `not ${length} bytes`);
  return bytes;
}
function nodeId(v: unknown, field: string): NodeId {
  try {
    return nodeIdFromText(str(v, field, 64));
  } catch {
    throw bad(field, 'not a node ID');
  }
}
function messageId(v: unknown, field: string): MessageId {
  try {
    return messageIdFromText(str(v, field, 64));
  } catch {
    throw bad(field, 'not a message ID');
  }
}
function hashes(v: unknown, field: string, max = MAX_PROOF_HASHES): Uint8Array[] {
  return arr(v, field, max).map((h, i) => b64(h, `${field}[${i}]`, HASH_BYTES));
}

const FINDINGS = new Set(['fork', 'inconsistent', 'rollback']);

/**
 * Parses a bundle from its JSON text (or an already parsed value).
 * @throws LIAISON_ERR_BUNDLE_INVALID naming the first bad field.
 */
export function parseBundle(input: string | unknown): Bundle {
  let doc: unknown = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch {
      throw bad('bundle', 'not JSON');
    }
  }
  const d = obj(doc, 'bundle');
  if (d.format !== BUNDLE_FORMAT) throw bad('format', `expected ${BUNDLE_FORMAT}`);
  const n = obj(d.node, 'node');
  const node: BundleNode = {
    nodeId: nodeId(n.nodeId, 'node.nodeId'),
    origin: str(n.origin, 'node.origin', 255),
    identityKey: b64(n.identityKey, 'node.identityKey', ED25519_PUBLIC_KEY_BYTES),
    rotations: arr(n.rotations, 'node.rotations', 1024).map((r, i) =>
      b64(r, `node.rotations[${i}]`, undefined, 4096),
    ),
    keyRecords: arr(n.keyRecords, 'node.keyRecords', 1024).map((r, i) =>
      b64(r, `node.keyRecords[${i}]`, undefined, 4096),
    ),
  };
  const peers = arr(d.peers, 'peers', MAX_BUNDLE_ITEMS).map((p, i) => {
    const o = obj(p, `peers[${i}]`);
    return {
      nodeId: nodeId(o.nodeId, `peers[${i}].nodeId`),
      name: str(o.name, `peers[${i}].name`, 1024),
      identityKey: b64(o.identityKey, `peers[${i}].identityKey`, ED25519_PUBLIC_KEY_BYTES),
    };
  });
  const from = int(d.from, 'from');
  const to = int(d.to, 'to');
  if (from > to) throw bad('from', 'after to');
  const entries = arr(d.entries, 'entries', MAX_BUNDLE_ENTRIES).map((e, i) =>
    b64(e, `entries[${i}]`, undefined, 4096),
  );
  const checkpoints = arr(d.checkpoints, 'checkpoints', MAX_BUNDLE_ITEMS).map((c, i) =>
    str(c, `checkpoints[${i}]`, 64 * 1024),
  );
  const consistency = arr(d.consistency, 'consistency', MAX_BUNDLE_ITEMS).map((c, i) => {
    const o = obj(c, `consistency[${i}]`);
    return {
      from: int(o.from, `consistency[${i}].from`),
      to: int(o.to, `consistency[${i}].to`),
      proof: hashes(o.proof, `consistency[${i}].proof`),
    };
  });
  const receipts = arr(d.receipts, 'receipts', MAX_BUNDLE_ITEMS).map((r, i) =>
    b64(r, `receipts[${i}]`, undefined, 128 * 1024),
  );
  const witnessed = arr(d.witnessed, 'witnessed', MAX_BUNDLE_ITEMS).map((w, i) => {
    const o = obj(w, `witnessed[${i}]`);
    return {
      peer: nodeId(o.peer, `witnessed[${i}].peer`),
      note: str(o.note, `witnessed[${i}].note`, 64 * 1024),
    };
  });
  const evidence = arr(d.evidence, 'evidence', MAX_BUNDLE_ITEMS).map((e, i) => {
    const o = obj(e, `evidence[${i}]`);
    const finding = str(o.finding, `evidence[${i}].finding`, 32);
    if (!FINDINGS.has(finding)) throw bad(`evidence[${i}].finding`, 'unknown finding');
    return {
      peer: nodeId(o.peer, `evidence[${i}].peer`),
      finding: finding as BundleEvidence['finding'],
      detectedAt: int(o.detectedAt, `evidence[${i}].detectedAt`),
      heldNote: str(o.heldNote, `evidence[${i}].heldNote`, 64 * 1024),
      presentedNote: str(o.presentedNote, `evidence[${i}].presentedNote`, 64 * 1024),
      proof: hashes(o.proof, `evidence[${i}].proof`),
    };
  });
  return {
    format: BUNDLE_FORMAT,
    createdAt: int(d.createdAt, 'createdAt'),
    node,
    peers,
    from,
    to,
    frontier: hashes(d.frontier, 'frontier', 64),
    entries,
    checkpoints,
    consistency,
    receipts,
    witnessed,
    evidence,
    state: str(d.state, 'state', 1 << 30),
  };
}

const enc = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');

/** Entries per piece of serializeBundleChunks. */
const CHUNK_ENTRIES = 10_000;

/** The bundle as JSON text, fields in the documented order. */
export function serializeBundle(b: Bundle): string {
  return [...serializeBundleChunks(b)].join('');
}

/**
 * The same JSON text in pieces, so that a node can stream a large bundle without building one
 * string (V8 caps a string at about 512 MiB) and without holding its event loop for long.
 */
export function* serializeBundleChunks(b: Bundle): Generator<string> {
  const json = JSON.stringify;
  yield `{"format":${json(b.format)},"createdAt":${b.createdAt},"node":${json({
    nodeId: nodeIdToText(b.node.nodeId),
    origin: b.node.origin,
    identityKey: enc(b.node.identityKey),
    rotations: b.node.rotations.map(enc),
    keyRecords: b.node.keyRecords.map(enc),
  })},"peers":${json(
    b.peers.map((p) => ({
      nodeId: nodeIdToText(p.nodeId),
      name: p.name,
      identityKey: enc(p.identityKey),
    })),
  )},"from":${b.from},"to":${b.to},"frontier":${json(b.frontier.map(enc))},"entries":[`;
  for (let i = 0; i < b.entries.length; i += CHUNK_ENTRIES) {
    const part = b.entries.slice(i, i + CHUNK_ENTRIES).map((e) => `"${enc(e)}"`);
    yield (i === 0 ? '' : ',') + part.join(',');
  }
  yield `],"checkpoints":[`;
  for (let i = 0; i < b.checkpoints.length; i += CHUNK_ENTRIES)
    yield (
      (i === 0 ? '' : ',') +
      b.checkpoints
        .slice(i, i + CHUNK_ENTRIES)
        .map((c) => json(c))
        .join(',')
    );
  yield `],"consistency":[`;
  for (let i = 0; i < b.consistency.length; i += CHUNK_ENTRIES)
    yield (
      (i === 0 ? '' : ',') +
      b.consistency
        .slice(i, i + CHUNK_ENTRIES)
        .map((c) => json({ from: c.from, to: c.to, proof: c.proof.map(enc) }))
        .join(',')
    );
  yield `],"receipts":[`;
  for (let i = 0; i < b.receipts.length; i += CHUNK_ENTRIES)
    yield (
      (i === 0 ? '' : ',') +
      b.receipts
        .slice(i, i + CHUNK_ENTRIES)
        .map((r) => `"${enc(r)}"`)
        .join(',')
    );
  yield `],"witnessed":${json(b.witnessed.map((w) => ({ peer: nodeIdToText(w.peer), note: w.note })))},"evidence":${json(
    b.evidence.map((e) => ({
      peer: nodeIdToText(e.peer),
      finding: e.finding,
      detectedAt: e.detectedAt,
      heldNote: e.heldNote,
      presentedNote: e.presentedNote,
      proof: e.proof.map(enc),
    })),
  )},"state":${json(b.state)}}`;
}

/**
 * The state snapshot text: `in <sender> <message> <envelope hash hex> <sequence> <log index>`
 * and `out <message> <envelope hash hex> <recipient> <status>` lines, each ending in "\n",
 * sorted bytewise, so that the same state always gives the same text and hash.
 */
export function formatState(inbox: readonly InboxRow[], outbox: readonly OutboxRow[]): string {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const lines = [
    ...inbox.map(
      (r) =>
        `in ${nodeIdToText(r.sender)} ${messageIdToText(r.messageId)} ${hex(r.envelopeHash)} ${r.sequence} ${r.logIndex}`,
    ),
    ...outbox.map(
      (r) =>
        `out ${messageIdToText(r.messageId)} ${hex(r.envelopeHash)} ${nodeIdToText(r.recipient)} ${r.status}`,
    ),
  ];
  lines.sort();
  return lines.map((l) => `${l}\n`).join('');
}

/** @throws LIAISON_ERR_BUNDLE_INVALID naming the bad line. */
export function parseState(text: string): { inbox: InboxRow[]; outbox: OutboxRow[] } {
  const inbox: InboxRow[] = [];
  const outbox: OutboxRow[] = [];
  if (text.length > 0 && !text.endsWith('\n')) throw bad('state', 'must end with a newline');
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const f = line.split(' ');
    const field = `state line ${i + 1}`;
    const hash = (h: string | undefined): Uint8Array => {
      if (h === undefined || !/^[0-9a-f]{64}$/.test(h)) throw bad(field, 'bad envelope hash');
      return new Uint8Array(Buffer.from(h, 'hex'));
    };
    const num = (v: string | undefined): number => {
      if (v === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(v)) throw bad(field, 'bad number');
      return int(Number(v), field);
    };
    if (f[0] === 'in' && f.length === 6) {
      inbox.push({
        sender: nodeId(f[1], field),
        messageId: messageId(f[2], field),
        envelopeHash: hash(f[3]),
        sequence: num(f[4]),
        logIndex: num(f[5]),
      });
    } else if (f[0] === 'out' && f.length === 5 && /^[a-z]{1,16}$/.test(f[4]!)) {
      outbox.push({
        messageId: messageId(f[1], field),
        envelopeHash: hash(f[2]),
        recipient: nodeId(f[3], field),
        status: f[4]!,
      });
    } else {
      throw bad(field, 'expected an "in" or "out" line');
    }
  });
  return { inbox, outbox };
}
