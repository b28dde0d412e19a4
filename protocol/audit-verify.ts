/**
 * The offline verifier of an audit export bundle (docs/audit.md §Verifying a bundle): everything
 * an auditor can establish from one bundle and the node's pinned identity key, with no access to
 * the node.
 *
 * It never throws on bad content: every deviation is a finding with a stable kebab-case code, a
 * severity and the evidence an auditor needs to see it for themselves (indexes, sizes, hashes in
 * hex). A bundle is `ok` when no finding is an error. The checks, in order:
 *
 * 1. identity: the node ID is the hash of the genesis key, rotations chain (protocol/key-rotation.ts),
 *    the current key is the bundle's identity key, and (if given) one key is a pinned one;
 * 2. checkpoints: well formed, this node's origin, signed by a key of its history, ascending,
 *    within the range; every cosignature line by a known peer verifies;
 * 3. entries: one pass appends every leaf hash to a MerkleFrontier started from the bundle's
 *    frontier for [0, from), and compares the root at each checkpoint size with the signed root —
 *    a deleted, inserted, reordered or altered entry changes every later root (RFC 6962 §2.1);
 *    entries past the last checkpoint are not committed to by any signature;
 * 4. consistency proofs between consecutive checkpoints (RFC 9162 §2.1.4);
 * 5. the bundle's own `log-exported` entry ends it and binds the state snapshot by its hash;
 * 6. receipts: signed by their issuer, named by the entries that record them, and a receipt this
 *    node issued names a log index that holds the matching `message-received`;
 * 7. state: every `message-received` has its inbox row and every inbox row its entry;
 * 8. the peers' checkpoints this node holds as witness, and its equivocation evidence: every
 *    item verifies, and every `equivocation-detected` entry in range has its item.
 *
 * Cosignatures are counted per witness; a witness is `pinned` only when the caller gave its key
 * (`pinnedWitnessKeys`): a witness the bundle itself declares proves nothing about who it is.
 *
 * Every pass is linear in the bundle: claims are matched through maps keyed by (peer, size), and
 * a note repeated in the bundle is verified once.
 */
import { equalBytes, toHex } from './bytes.ts';
import { Ed25519PublicKey, sha256 } from './crypto.ts';
import { isLiaisonError, LiaisonError } from './errors.ts';
import { AUDIT_KINDS, auditLeafHash, decodeAuditEntry } from './audit-entry.ts';
import type { AuditEntry, AuditFields, AuditKind } from './audit-entry.ts';
import { parseState } from './audit-bundle.ts';
import type { Bundle, InboxRow, OutboxRow } from './audit-bundle.ts';
import {
  CHECKPOINT_ORIGIN_PREFIX,
  openCheckpoint,
  originForNode,
  parseCheckpoint,
} from './checkpoint.ts';
import type { Checkpoint } from './checkpoint.ts';
import { verifyCosignature } from './cosignature.ts';
import { messageIdToText, nodeIdToText } from './ids.ts';
import type { MessageId, NodeId } from './ids.ts';
import { decodeKeyRotation, verifyKeyHistory } from './key-rotation.ts';
import { MerkleFrontier, verifyConsistency } from './merkle.ts';
import { deriveNodeId } from './keys.ts';
import {
  fromStrictBase64,
  NOTE_KEY_TYPE_COSIGNATURE_V1,
  NOTE_KEY_TYPE_ED25519,
  noteTextBytes,
  parseNote,
  parseVerifierKey,
  signaturesBy,
} from './note.ts';
import type { Note } from './note.ts';
import { decodeReceipt, verifyReceipt } from './receipt.ts';
import { evidenceText } from './witness.ts';
import { utf8 } from './bytes.ts';
import type { Receipt } from './receipt.ts';

/**
 * Findings of one code beyond this many are counted, not listed (a bundle with every entry
 * altered would otherwise give a million findings); a `findings-truncated` finding says how many.
 */
export const MAX_FINDINGS_PER_CODE = 100;

export type Severity = 'error' | 'warning' | 'info';

/** Every finding code verifyBundle reports. Codes are stable: never renamed, never reused. */
export const VERIFY_FINDINGS = {
  'key-history-invalid': 'error',
  'pinned-key-mismatch': 'error',
  'entries-count-mismatch': 'error',
  'entry-malformed': 'error',
  'frontier-invalid': 'error',
  'checkpoint-malformed': 'error',
  'checkpoint-signature-invalid': 'error',
  'checkpoint-origin-mismatch': 'error',
  'checkpoint-order': 'error',
  'checkpoint-out-of-range': 'error',
  'checkpoint-root-mismatch': 'error',
  'consistency-invalid': 'error',
  'consistency-missing': 'warning',
  'cosignature-invalid': 'error',
  'unsigned-tail': 'error',
  'export-record-missing': 'error',
  'export-record-mismatch': 'error',
  'state-malformed': 'error',
  'state-hash-mismatch': 'error',
  'receipt-invalid': 'error',
  'receipt-missing': 'warning',
  'receipt-contradicts-log': 'error',
  'inbox-row-missing': 'error',
  'inbox-row-unlogged': 'error',
  'outbox-row-missing': 'error',
  'peer-equivocation': 'warning',
  'evidence-invalid': 'error',
  'evidence-unlogged': 'warning',
  'evidence-missing': 'error',
  'peer-key-invalid': 'error',
  'witnessed-invalid': 'error',
  'pinned-witness-missing': 'warning',
  'findings-truncated': 'info',
} as const satisfies Record<string, Severity>;

export type VerifyFindingCode = keyof typeof VERIFY_FINDINGS;

export interface Finding<C extends string = VerifyFindingCode> {
  readonly code: C;
  readonly severity: Severity;
  readonly message: string;
  /** JSON-ready values: indexes, sizes, hashes in hex, IDs in their text form. */
  readonly evidence: Record<string, unknown>;
}

export interface WitnessSummary {
  /** The witness's node ID text. */
  readonly witness: string;
  /** Its name in this node's peer list. */
  readonly name: string;
  /** Checkpoints in the bundle it validly cosigned. */
  readonly count: number;
  /** The largest size it cosigned, and that cosignature's time (seconds). */
  readonly latestSize: number;
  readonly latestTime: number;
  /**
   * Its key is one the caller pinned (VerifyOptions.pinnedWitnessKeys). Otherwise only the bundle
   * vouches for it: its identity is not checked, and anyone can be "cosigned" by a key of its own.
   */
  readonly pinned: boolean;
}

export interface Verdict {
  /** No finding of severity error. */
  readonly ok: boolean;
  readonly nodeId: string;
  readonly origin: string;
  readonly range: { readonly from: number; readonly to: number };
  /** Entries present in the bundle. */
  readonly entries: number;
  /** Checkpoints well formed and signed by the node (whatever their root). */
  readonly checkpoints: number;
  readonly receipts: number;
  readonly cosignatures: readonly WitnessSummary[];
  readonly findings: readonly Finding[];
}

/** A pinned identity key: 32 raw bytes, their base64, or a C2SP verifier key (`name+hash+key`). */
export type PinnedKey = Uint8Array | string;

export interface VerifyOptions {
  readonly pinnedIdentityKeys?: readonly PinnedKey[];
  /**
   * Witnesses' keys obtained out of band: 32 raw bytes, their base64, or a C2SP verifier key
   * (`name+hash+key`, cosigner type 0x04 as `liaison audit status` prints it, or Ed25519 0x01).
   */
  readonly pinnedWitnessKeys?: readonly PinnedKey[];
  /** The auditor's clock (ms), for key rotations dated in the future. */
  readonly now: number;
  /** Further tree sizes to compute roots at (audit-cross-check.ts asks for its peers' claims). */
  readonly rootSizes?: readonly number[];
}

/**
 * A pinned key from its text: a verifier key gives its name too, which must be the log's origin.
 * @throws LIAISON_ERR_ARGUMENT when the text is neither form.
 */
export function parsePinnedKey(key: PinnedKey): { name: string | null; key: Uint8Array } {
  if (typeof key !== 'string') {
    if (key.length !== 32)
      throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'a pinned key is 32 bytes', {
        field: 'pinnedIdentityKeys',
      });
    return { name: null, key };
  }
  // Base64 may contain "+" too, so it is tried first; a verifier key is never valid base64.
  const raw = fromStrictBase64(key);
  if (raw !== undefined && raw.length === 32) return { name: null, key: raw };
  try {
    const v = parseVerifierKey(key);
    if (v.type === NOTE_KEY_TYPE_ED25519) return { name: v.name, key: v.publicKey };
  } catch {
    // neither form: refused below
  }
  throw new LiaisonError(
    'LIAISON_ERR_ARGUMENT',
    'a pinned key is base64 of 32 bytes or an Ed25519 verifier key',
    { field: 'pinnedIdentityKeys' },
  );
}

/** A pinned witness: the origin its cosignature lines carry, and its key. */
export interface PinnedWitness {
  readonly origin: string;
  readonly key: Uint8Array;
}

/**
 * A pinned witness key from its text. A raw or base64 key is taken as the witness's first key
 * (its node ID, hence origin, derives from it); a verifier key names the origin itself.
 * @throws LIAISON_ERR_ARGUMENT when the text is none of those forms.
 */
export function parseWitnessKey(key: PinnedKey): PinnedWitness {
  const fail = (): LiaisonError =>
    new LiaisonError(
      'LIAISON_ERR_ARGUMENT',
      'a witness key is base64 of 32 bytes or an Ed25519 or cosigner verifier key',
      { field: 'pinnedWitnessKeys' },
    );
  let raw: Uint8Array | undefined = typeof key === 'string' ? fromStrictBase64(key) : key;
  let name: string | undefined;
  if (typeof key === 'string' && (raw === undefined || raw.length !== 32)) {
    try {
      const v = parseVerifierKey(key);
      if (v.type === NOTE_KEY_TYPE_ED25519 || v.type === NOTE_KEY_TYPE_COSIGNATURE_V1) {
        raw = v.publicKey;
        name = v.name;
      }
    } catch {
      // refused below
    }
  }
  if (raw?.length !== 32) throw fail();
  try {
    const pub = Ed25519PublicKey.fromBytes(raw, 'pinnedWitnessKeys');
    return { origin: name ?? originForNode(deriveNodeId(pub)), key: pub.bytes };
  } catch {
    throw fail();
  }
}

/** The key of maps of claims about a peer's log at one size. */
export function peerSizeKey(peer: Uint8Array, size: number): string {
  return `${hexKey(peer)}:${size}`;
}

/** A message as one log records it. */
export interface LoggedMessage {
  readonly index: number;
  readonly time: number;
  /** The sender of a received message, or the recipient of a sent one. */
  readonly peer: NodeId;
  readonly messageId: MessageId;
  /** For a sent message, from its `message-sent` entry when that is in the bundle. */
  readonly envelopeHash: Uint8Array | undefined;
  readonly sequence: number;
}

export interface HeldReceipt {
  /** Position in bundle.receipts. */
  readonly position: number;
  readonly receipt: Receipt;
  readonly base64: string;
}

export interface FailedDelivery {
  readonly index: number;
  readonly messageId: MessageId;
  readonly recipient: NodeId;
  readonly status: string;
  readonly code: string;
}

export interface CosignedClaim {
  readonly index: number;
  readonly time: number;
  readonly peer: NodeId;
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export interface WitnessedClaim {
  readonly peer: NodeId;
  readonly checkpoint: Checkpoint;
  readonly note: string;
}

/** An evidence item that verifies: the peer signed both contradicting checkpoints. */
export interface ProvenEquivocation {
  /** Position in bundle.evidence. */
  readonly position: number;
  readonly peer: NodeId;
  readonly finding: string;
  readonly detectedAt: number;
  readonly heldSize: number;
  readonly heldRoot: Uint8Array;
  readonly presentedSize: number;
  readonly presentedRoot: Uint8Array;
}

/**
 * What one pass over a bundle established, for audit-cross-check.ts: the messages, receipts and
 * claims about peers, in log order. Nothing here is keyed by text: building keys per entry was a
 * measurable share of verification, and only a cross-check needs them.
 */
export interface BundleFacts {
  readonly bundle: Bundle;
  readonly verdict: Verdict;
  /** Every key the node's history holds, oldest first (the claimed key if the history is bad). */
  readonly keys: readonly Uint8Array[];
  /** One past the last entry present. */
  readonly end: number;
  /** Kind code of each entry present, 0 if malformed. */
  readonly kinds: Uint8Array;
  readonly firstTime: number | undefined;
  /**
   * Time of the bundle's own final log-exported entry, when a checkpoint signed by the node
   * commits to it (its root matches at the end of the bundle); else undefined. Never the bundle's
   * unsigned `createdAt`.
   */
  readonly exportTime: number | undefined;
  /** message-sent entries (`peer` is the node itself). */
  readonly sent: readonly LoggedMessage[];
  /** message-recipient entries (envelope hash from the message-sent just before, if present). */
  readonly recipients: readonly LoggedMessage[];
  /** message-received entries. */
  readonly received: readonly LoggedMessage[];
  readonly receivedAt: ReadonlyMap<number, LoggedMessage>;
  readonly failed: readonly FailedDelivery[];
  /** Receipts that decode and verify. */
  readonly receipts: readonly HeldReceipt[];
  readonly cosigned: readonly CosignedClaim[];
  /** The first checkpoint-cosigned entry of each (peer, size), by peerSizeKey. */
  readonly cosignedAt: ReadonlyMap<string, CosignedClaim>;
  readonly witnessed: readonly WitnessedClaim[];
  /** Evidence items that verify. */
  readonly equivocations: readonly ProvenEquivocation[];
  readonly inbox: readonly InboxRow[] | undefined;
  readonly outbox: readonly OutboxRow[] | undefined;
  /** Roots computed from the entries, by tree size. */
  readonly roots: ReadonlyMap<number, Uint8Array>;
  /** Sizes of the checkpoints that are signed and whose root matches the entries, ascending. */
  readonly checkpointSizes: readonly number[];
}

const KIND = Object.fromEntries(
  Object.entries(AUDIT_KINDS).map(([k, v]) => [k, v.code]),
) as unknown as { readonly [K in AuditKind]: number };
const KIND_NAME = new Map<number, AuditKind>(
  Object.entries(AUDIT_KINDS).map(([k, v]) => [v.code, k as AuditKind]),
);

/** The name of an entry kind code, for evidence. */
export function auditKindName(code: number): string {
  return KIND_NAME.get(code) ?? 'malformed';
}

/** Hex without the per-byte string building of toHex: map keys are made per entry. */
export function hexKey(...parts: readonly Uint8Array[]): string {
  let s = '';
  for (const p of parts) s += Buffer.from(p.buffer, p.byteOffset, p.length).toString('hex');
  return s;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

function errText(err: unknown): string {
  if (isLiaisonError(err)) return err.message ? `${err.code}: ${err.message}` : err.code;
  return String(err);
}

/** Smallest size in `sizes` (ascending) above `index`: the checkpoint that commits to it. */
export function coveringSize(sizes: readonly number[], index: number): number | null {
  let lo = 0;
  let hi = sizes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sizes[mid]! > index) hi = mid;
    else lo = mid + 1;
  }
  return lo < sizes.length ? sizes[lo]! : null;
}

/**
 * Findings in the order found, at most MAX_FINDINGS_PER_CODE of one code; past that, one
 * `findings-truncated` note (made by `truncated`) counts what was left out. A tampered bundle can
 * break every entry; the report must stay readable and bounded.
 */
export class FindingList<F extends { readonly code: string }> {
  readonly list: F[] = [];
  readonly #count = new Map<string, number>();
  readonly #truncated: (suppressed: Record<string, number>) => F;

  constructor(truncated: (suppressed: Record<string, number>) => F) {
    this.#truncated = truncated;
  }

  push(finding: F): void {
    const n = (this.#count.get(finding.code) ?? 0) + 1;
    this.#count.set(finding.code, n);
    if (n <= MAX_FINDINGS_PER_CODE) this.list.push(finding);
  }

  finish(): F[] {
    const suppressed: Record<string, number> = {};
    for (const [code, n] of this.#count)
      if (n > MAX_FINDINGS_PER_CODE) suppressed[code] = n - MAX_FINDINGS_PER_CODE;
    if (Object.keys(suppressed).length > 0) this.list.push(this.#truncated(suppressed));
    return this.list;
  }
}

/** The message of a `findings-truncated` note. */
export const TRUNCATED_MESSAGE = `only the first ${MAX_FINDINGS_PER_CODE} findings of a code are listed`;

class Findings extends FindingList<Finding> {
  constructor() {
    super((suppressed) => ({
      code: 'findings-truncated',
      severity: 'info',
      message: TRUNCATED_MESSAGE,
      evidence: { suppressed },
    }));
  }

  add(code: VerifyFindingCode, message: string, evidence: Record<string, unknown> = {}): void {
    this.push({ code, severity: VERIFY_FINDINGS[code], message, evidence });
  }
}

interface PeerKey {
  readonly nodeId: NodeId;
  readonly text: string;
  readonly name: string;
  readonly origin: string;
  readonly key: Ed25519PublicKey | undefined;
}

interface OpenedNote {
  readonly position: number;
  readonly checkpoint: Checkpoint;
  readonly note: Note;
}

/** Checks a bundle; see the file comment. Pure: no I/O, no clock (`now` is the caller's). */
export function verifyBundle(bundle: Bundle, options: VerifyOptions): Verdict {
  return analyseBundle(bundle, options).verdict;
}

/**
 * verifyBundle, keeping what the pass learned for cross-checking.
 * @throws LIAISON_ERR_ARGUMENT only for a malformed pinned key (an option, not content).
 */
export function analyseBundle(bundle: Bundle, options: VerifyOptions): BundleFacts {
  const f = new Findings();
  const nodeText = nodeIdToText(bundle.node.nodeId);
  const expectedOrigin = originForNode(bundle.node.nodeId);
  const pinned = (options.pinnedIdentityKeys ?? []).map(parsePinnedKey);
  const pinnedWitnesses = (options.pinnedWitnessKeys ?? []).map(parseWitnessKey);

  // 1. Identity.
  const keys = keyHistory(bundle, options.now, f);
  if (bundle.node.origin !== expectedOrigin) {
    f.add('checkpoint-origin-mismatch', 'the bundle names an origin that is not its node ID', {
      origin: bundle.node.origin,
      expected: expectedOrigin,
    });
  }
  if (pinned.length > 0) {
    const hit = pinned.some(
      (p) =>
        (p.name === null || p.name === expectedOrigin) &&
        keys.some((k) => equalBytes(k.bytes, p.key)),
    );
    if (!hit) {
      f.add('pinned-key-mismatch', 'no key of the node matches a pinned key', {
        pinned: pinned.map((p) => (p.name === null ? b64(p.key) : `${p.name} ${b64(p.key)}`)),
        nodeKeys: keys.map((k) => b64(k.bytes)),
      });
    }
  }
  const peers = new Map<string, PeerKey>();
  const peersByOrigin = new Map<string, PeerKey>();
  for (const p of bundle.peers) {
    // A node ID is derived from its identity key (§3), so the bundle cannot vouch for a key: a
    // key that does not derive the peer's ID is refused, and nothing is checked against it.
    let key: Ed25519PublicKey | undefined;
    try {
      key = Ed25519PublicKey.fromBytes(p.identityKey);
      if (!equalBytes(deriveNodeId(key), p.nodeId)) key = undefined;
    } catch {
      key = undefined;
    }
    if (key === undefined)
      f.add('peer-key-invalid', `the key given for peer ${p.name} is not that node's`, {
        peer: nodeIdToText(p.nodeId),
        identityKey: b64(p.identityKey),
      });
    const entry: PeerKey = {
      nodeId: p.nodeId,
      text: nodeIdToText(p.nodeId),
      name: p.name,
      origin: originForNode(p.nodeId),
      key,
    };
    peers.set(hexKey(p.nodeId), entry);
    peersByOrigin.set(entry.origin, entry);
  }

  // 2. Checkpoints.
  const from = bundle.from;
  const n = bundle.entries.length;
  const end = from + n;
  if (n !== bundle.to - from) {
    f.add('entries-count-mismatch', `the bundle declares ${bundle.to - from} entries, has ${n}`, {
      from,
      to: bundle.to,
      present: n,
    });
  }
  const signed: OpenedNote[] = [];
  bundle.checkpoints.forEach((text, position) => {
    const opened = openOwnCheckpoint(text, position, expectedOrigin, keys, f);
    if (opened === undefined) return;
    const size = opened.checkpoint.size;
    const prev = signed[signed.length - 1];
    if (prev !== undefined && size <= prev.checkpoint.size) {
      f.add('checkpoint-order', `checkpoint ${position} is not larger than the one before it`, {
        checkpoint: position,
        size,
        previousSize: prev.checkpoint.size,
      });
      return;
    }
    if (size < from || size > bundle.to || size > end) {
      f.add(
        'checkpoint-out-of-range',
        `checkpoint ${position} (size ${size}) is outside the entries`,
        {
          checkpoint: position,
          size,
          from,
          to: bundle.to,
          present: end,
        },
      );
      return;
    }
    signed.push(opened);
  });
  const witnesses = countCosignatures(signed, peersByOrigin, pinnedWitnesses, f);

  // 3. Entries: one pass, roots at every checkpoint size and every size asked for.
  let frontier: MerkleFrontier | undefined;
  try {
    frontier = MerkleFrontier.fromHashes(from, bundle.frontier);
  } catch (err) {
    f.add('frontier-invalid', `the frontier does not describe ${from} leaves`, {
      from,
      hashes: bundle.frontier.length,
      error: errText(err),
    });
  }
  const wanted = new Set<number>(signed.map((c) => c.checkpoint.size));
  for (const s of options.rootSizes ?? []) if (s >= from && s <= end) wanted.add(s);
  const targets = [...wanted].sort((a, b) => a - b);
  const roots = new Map<number, Uint8Array>();
  let next = 0;
  const takeRoots = (size: number): void => {
    while (next < targets.length && targets[next]! === size) {
      if (frontier !== undefined) roots.set(size, frontier.root());
      next += 1;
    }
  };
  takeRoots(from);

  const kinds = new Uint8Array(n);
  const sent: LoggedMessage[] = [];
  const recipients: LoggedMessage[] = [];
  const received: LoggedMessage[] = [];
  const receivedAt = new Map<number, LoggedMessage>();
  const failed: FailedDelivery[] = [];
  let lastSent: LoggedMessage | undefined;
  const cosigned: CosignedClaim[] = [];
  const cosignedAt = new Map<string, CosignedClaim>();
  const equivocationRefs: { index: number; fields: AuditFields<'equivocation-detected'> }[] = [];
  const receiptRefs: { index: number; entry: AuditEntry<'receipt-issued' | 'receipt-received'> }[] =
    [];
  let firstTime: number | undefined;
  let last: AuditEntry | undefined;

  for (let k = 0; k < n; k++) {
    const bytes = bundle.entries[k]!;
    const index = from + k;
    if (frontier !== undefined) frontier.append(auditLeafHash(bytes));
    takeRoots(index + 1);
    let e: AuditEntry;
    try {
      e = decodeAuditEntry(bytes);
    } catch (err) {
      f.add('entry-malformed', `entry ${index} does not decode`, {
        index,
        entry: b64(bytes),
        error: errText(err),
      });
      last = undefined;
      continue;
    }
    last = e;
    const code = KIND[e.kind];
    kinds[k] = code;
    if (firstTime === undefined) firstTime = e.time;
    switch (e.kind) {
      case 'message-sent': {
        const v = e.fields as AuditFields<'message-sent'>;
        lastSent = {
          index,
          time: e.time,
          peer: bundle.node.nodeId,
          messageId: v.messageId,
          envelopeHash: v.envelopeHash,
          sequence: 0,
        };
        sent.push(lastSent);
        break;
      }
      case 'message-recipient': {
        const v = e.fields as AuditFields<'message-recipient'>;
        recipients.push({
          index,
          time: e.time,
          peer: v.recipient,
          messageId: v.messageId,
          envelopeHash:
            lastSent !== undefined && equalBytes(lastSent.messageId, v.messageId)
              ? lastSent.envelopeHash
              : undefined,
          sequence: v.sequence,
        });
        break;
      }
      case 'message-received': {
        const v = e.fields as AuditFields<'message-received'>;
        const m: LoggedMessage = {
          index,
          time: e.time,
          peer: v.sender,
          messageId: v.messageId,
          envelopeHash: v.envelopeHash,
          sequence: v.sequence,
        };
        received.push(m);
        receivedAt.set(index, m);
        break;
      }
      case 'delivery-failed': {
        const v = e.fields as AuditFields<'delivery-failed'>;
        failed.push({ index, ...v });
        break;
      }
      case 'receipt-issued':
      case 'receipt-received':
        receiptRefs.push({
          index,
          entry: e as AuditEntry<'receipt-issued' | 'receipt-received'>,
        });
        break;
      case 'checkpoint-cosigned': {
        const v = e.fields as AuditFields<'checkpoint-cosigned'>;
        const c = { index, time: e.time, peer: v.peer, size: v.size, rootHash: v.rootHash };
        cosigned.push(c);
        const k = peerSizeKey(v.peer, v.size);
        if (!cosignedAt.has(k)) cosignedAt.set(k, c);
        break;
      }
      case 'equivocation-detected':
        equivocationRefs.push({
          index,
          fields: e.fields as AuditFields<'equivocation-detected'>,
        });
        break;
      default:
        break;
    }
  }

  // Signed roots against computed roots.
  const checkpointSizes: number[] = [];
  for (const c of signed) {
    const computed = roots.get(c.checkpoint.size);
    if (computed === undefined) continue; // frontier-invalid said why
    if (equalBytes(computed, c.checkpoint.rootHash)) {
      checkpointSizes.push(c.checkpoint.size);
      continue;
    }
    f.add(
      'checkpoint-root-mismatch',
      `checkpoint ${c.position} signs a root the entries do not give at size ${c.checkpoint.size}`,
      {
        checkpoint: c.position,
        size: c.checkpoint.size,
        signedRoot: toHex(c.checkpoint.rootHash),
        computedRoot: toHex(computed),
      },
    );
  }
  const lastSigned = signed[signed.length - 1]?.checkpoint.size;
  if (lastSigned === undefined || lastSigned < end) {
    f.add('unsigned-tail', `${end - (lastSigned ?? from)} entries are after the last checkpoint`, {
      lastCheckpointSize: lastSigned ?? null,
      end,
      unsigned: end - (lastSigned ?? from),
    });
  }

  // 4. Consistency proofs between consecutive signed checkpoints.
  checkConsistency(bundle, signed, f);

  // 5. The export record and the state it binds.
  let stateHash: Uint8Array | undefined;
  if (last === undefined || last.kind !== 'log-exported') {
    f.add('export-record-missing', 'the last entry is not the export record', {
      lastIndex: n > 0 ? end - 1 : null,
      kind: n > 0 ? auditKindName(kinds[n - 1]!) : null,
    });
  } else {
    const v = last.fields as AuditFields<'log-exported'>;
    stateHash = v.stateHash;
    if (v.from !== bundle.from || v.to !== bundle.to || v.to !== end) {
      f.add('export-record-mismatch', 'the export record names another range', {
        index: end - 1,
        recordedFrom: v.from,
        recordedTo: v.to,
        bundleFrom: bundle.from,
        bundleTo: bundle.to,
      });
    }
  }
  let inbox: InboxRow[] | undefined;
  let outbox: OutboxRow[] | undefined;
  try {
    ({ inbox, outbox } = parseState(bundle.state));
  } catch (err) {
    f.add('state-malformed', 'the state snapshot does not parse', { error: errText(err) });
  }
  if (stateHash !== undefined) {
    const actual = sha256(noteTextBytes(bundle.state));
    if (!equalBytes(actual, stateHash)) {
      f.add('state-hash-mismatch', 'the state snapshot is not the one the export record binds', {
        index: end - 1,
        recordedHash: toHex(stateHash),
        stateHash: toHex(actual),
      });
    }
  }

  // 6. Receipts.
  const held = checkReceipts(bundle, keys, peers, receiptRefs, receivedAt, end, f);

  // 7. State rows against the log.
  if (inbox !== undefined && outbox !== undefined) {
    checkState(bundle, inbox, outbox, received, receivedAt, recipients, end, f);
  }

  // 8. Witnessing and evidence.
  const witnessed = checkWitnessed(bundle, peers, cosignedAt, f);
  const equivocations = checkEvidence(bundle, peers, equivocationRefs, f);

  const findings = f.finish();
  const verdict: Verdict = {
    ok: !findings.some((x) => x.severity === 'error'),
    nodeId: nodeText,
    origin: bundle.node.origin,
    range: { from: bundle.from, to: bundle.to },
    entries: n,
    checkpoints: signed.length,
    receipts: held.length,
    cosignatures: witnesses,
    findings,
  };
  return {
    bundle,
    verdict,
    keys: keys.map((k) => k.bytes),
    end,
    kinds,
    firstTime,
    // Signed only if the final checkpoint, whose root matched, is at the end of the bundle.
    exportTime:
      last?.kind === 'log-exported' && checkpointSizes[checkpointSizes.length - 1] === end
        ? last.time
        : undefined,
    sent,
    recipients,
    received,
    receivedAt,
    failed,
    receipts: held,
    cosigned,
    cosignedAt,
    witnessed,
    equivocations,
    inbox,
    outbox,
    roots,
    checkpointSizes,
  };
}

function keyHistory(bundle: Bundle, now: number, f: Findings): Ed25519PublicKey[] {
  try {
    const rotations = bundle.node.rotations.map((r) => decodeKeyRotation(r));
    const genesis =
      rotations[0]?.oldKey ?? Ed25519PublicKey.fromBytes(bundle.node.identityKey, 'identityKey');
    const keys = verifyKeyHistory(bundle.node.nodeId, genesis, rotations, now).map((p) => p.key);
    if (!equalBytes(keys[keys.length - 1]!.bytes, bundle.node.identityKey)) {
      f.add('key-history-invalid', 'the identity key is not the last key of the history', {
        identityKey: b64(bundle.node.identityKey),
        lastKey: b64(keys[keys.length - 1]!.bytes),
      });
      keys.push(Ed25519PublicKey.fromBytes(bundle.node.identityKey, 'identityKey'));
    }
    return keys;
  } catch (err) {
    f.add('key-history-invalid', 'the node ID and keys do not form a valid history', {
      nodeId: nodeIdToText(bundle.node.nodeId),
      identityKey: b64(bundle.node.identityKey),
      rotations: bundle.node.rotations.length,
      error: errText(err),
    });
    try {
      return [Ed25519PublicKey.fromBytes(bundle.node.identityKey, 'identityKey')];
    } catch {
      return [];
    }
  }
}

function openOwnCheckpoint(
  text: string,
  position: number,
  origin: string,
  keys: readonly Ed25519PublicKey[],
  f: Findings,
): OpenedNote | undefined {
  let note: Note;
  let checkpoint: Checkpoint;
  try {
    note = parseNote(text);
    checkpoint = parseCheckpoint(note.text);
  } catch (err) {
    f.add('checkpoint-malformed', `checkpoint ${position} is not a well-formed signed note`, {
      checkpoint: position,
      error: errText(err),
    });
    return undefined;
  }
  if (checkpoint.origin !== origin) {
    f.add('checkpoint-origin-mismatch', `checkpoint ${position} is another log's`, {
      checkpoint: position,
      origin: checkpoint.origin,
      expected: origin,
    });
    return undefined;
  }
  const message = noteTextBytes(note.text);
  const ok = keys.some((k) =>
    signaturesBy(note, origin, NOTE_KEY_TYPE_ED25519, k.bytes).some((s) =>
      k.verify(message, s.payload),
    ),
  );
  if (!ok) {
    f.add('checkpoint-signature-invalid', `checkpoint ${position} has no valid node signature`, {
      checkpoint: position,
      size: checkpoint.size,
      signatureLines: note.signatures.map((s) => s.name),
    });
    return undefined;
  }
  return { position, checkpoint, note };
}

interface WitnessKey {
  readonly text: string;
  readonly name: string;
  readonly origin: string;
  readonly key: Ed25519PublicKey;
  readonly pinned: boolean;
}

function countCosignatures(
  signed: readonly OpenedNote[],
  peersByOrigin: ReadonlyMap<string, PeerKey>,
  pinnedWitnesses: readonly PinnedWitness[],
  f: Findings,
): WitnessSummary[] {
  // The keys a cosignature line may be checked under, by origin: each peer's key from the bundle
  // (pinned if the caller pinned that same key), and each pinned key the bundle does not give.
  const candidates = new Map<string, WitnessKey[]>();
  const isPinned = (origin: string, key: Uint8Array): boolean =>
    pinnedWitnesses.some((p) => p.origin === origin && equalBytes(p.key, key));
  for (const peer of peersByOrigin.values()) {
    if (peer.key === undefined) continue;
    candidates.set(peer.origin, [
      { ...peer, key: peer.key, pinned: isPinned(peer.origin, peer.key.bytes) },
    ]);
  }
  for (const p of pinnedWitnesses) {
    const list = candidates.get(p.origin) ?? [];
    if (list.some((c) => equalBytes(c.key.bytes, p.key))) continue;
    const peer = peersByOrigin.get(p.origin);
    list.push({
      text: p.origin.startsWith(CHECKPOINT_ORIGIN_PREFIX)
        ? p.origin.slice(CHECKPOINT_ORIGIN_PREFIX.length)
        : p.origin,
      name: peer?.name ?? '(not a peer of this node)',
      origin: p.origin,
      key: Ed25519PublicKey.fromBytes(p.key),
      pinned: true,
    });
    candidates.set(p.origin, list);
  }

  const tally = new Map<
    string,
    { witness: WitnessKey; count: number; latestSize: number; latestTime: number }
  >();
  for (const c of signed) {
    const seen = new Set<string>();
    for (const sig of c.note.signatures) {
      for (const w of candidates.get(sig.name) ?? []) {
        let time: number | undefined;
        try {
          time = verifyCosignature(sig, c.note.text, w.origin, w.key);
        } catch (err) {
          f.add('cosignature-invalid', `a cosignature by ${w.name} on checkpoint ${c.position}`, {
            checkpoint: c.position,
            size: c.checkpoint.size,
            witness: w.text,
            pinned: w.pinned,
            error: errText(err),
          });
          continue;
        }
        if (time === undefined) continue; // another key under that name
        const id = `${w.text} ${b64(w.key.bytes)}`;
        const t = tally.get(id) ?? { witness: w, count: 0, latestSize: 0, latestTime: 0 };
        if (!seen.has(id)) t.count += 1;
        seen.add(id);
        if (c.checkpoint.size > t.latestSize) {
          t.latestSize = c.checkpoint.size;
          t.latestTime = time;
        } else if (c.checkpoint.size === t.latestSize) {
          t.latestTime = Math.max(t.latestTime, time);
        }
        tally.set(id, t);
      }
    }
  }
  const summaries = [...tally.values()].map((t) => ({
    witness: t.witness.text,
    name: t.witness.name,
    count: t.count,
    latestSize: t.latestSize,
    latestTime: t.latestTime,
    pinned: t.witness.pinned,
  }));
  for (const p of pinnedWitnesses) {
    const hit = [...tally.values()].some(
      (t) => t.witness.origin === p.origin && equalBytes(t.witness.key.bytes, p.key),
    );
    if (hit) continue;
    f.add('pinned-witness-missing', `no checkpoint is cosigned by the pinned witness ${p.origin}`, {
      witness: p.origin.startsWith(CHECKPOINT_ORIGIN_PREFIX)
        ? p.origin.slice(CHECKPOINT_ORIGIN_PREFIX.length)
        : p.origin,
      origin: p.origin,
      key: b64(p.key),
    });
  }
  return summaries;
}

function checkConsistency(bundle: Bundle, signed: readonly OpenedNote[], f: Findings): void {
  const proofs = new Map<string, (typeof bundle.consistency)[number]>();
  for (const c of bundle.consistency) proofs.set(`${c.from} ${c.to}`, c);
  for (let i = 1; i < signed.length; i++) {
    const a = signed[i - 1]!.checkpoint;
    const b = signed[i]!.checkpoint;
    const proof = proofs.get(`${a.size} ${b.size}`);
    if (proof === undefined) {
      f.add('consistency-missing', `no consistency proof from size ${a.size} to ${b.size}`, {
        from: a.size,
        to: b.size,
      });
      continue;
    }
    try {
      verifyConsistency(a.size, b.size, proof.proof, a.rootHash, b.rootHash);
    } catch (err) {
      f.add('consistency-invalid', `the proof from size ${a.size} to ${b.size} does not verify`, {
        from: a.size,
        to: b.size,
        fromRoot: toHex(a.rootHash),
        toRoot: toHex(b.rootHash),
        error: errText(err),
      });
    }
  }
}

function checkReceipts(
  bundle: Bundle,
  keys: readonly Ed25519PublicKey[],
  peers: ReadonlyMap<string, PeerKey>,
  refs: readonly { index: number; entry: AuditEntry<'receipt-issued' | 'receipt-received'> }[],
  receivedAt: ReadonlyMap<number, LoggedMessage>,
  end: number,
  f: Findings,
): HeldReceipt[] {
  const self = bundle.node.nodeId;
  const held: HeldReceipt[] = [];
  const byHash = new Map<string, HeldReceipt>();
  bundle.receipts.forEach((bytes, position) => {
    const base64 = b64(bytes);
    let receipt: Receipt;
    try {
      receipt = decodeReceipt(bytes);
      if (equalBytes(receipt.issuerNodeId, self)) {
        const key = keys.find((k) => equalBytes(k.bytes, receipt.issuerIdentityKey));
        if (key === undefined)
          throw new LiaisonError('LIAISON_ERR_SENDER_KEY_MISMATCH', 'not a key of this node');
        verifyReceipt(receipt, key, receipt.senderNodeId);
      } else {
        const peer = peers.get(hexKey(receipt.issuerNodeId));
        if (peer?.key === undefined)
          throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'issuer is not a peer of this node');
        verifyReceipt(receipt, peer.key, self);
      }
    } catch (err) {
      f.add('receipt-invalid', `receipt ${position} does not verify`, {
        receipt: position,
        base64,
        error: errText(err),
      });
      return;
    }
    const h: HeldReceipt = { position, receipt, base64 };
    held.push(h);
    byHash.set(hexKey(sha256(bytes)), h);
  });

  for (const { index, entry } of refs) {
    const v = entry.fields as AuditFields<'receipt-issued'> & AuditFields<'receipt-received'>;
    const hash = hexKey(v.receiptHash);
    const h = byHash.get(hash);
    if (h === undefined) {
      f.add('receipt-missing', `entry ${index} names a receipt the bundle does not hold`, {
        index,
        kind: entry.kind,
        receiptHash: hash,
      });
      continue;
    }
    const r = h.receipt;
    const issued = entry.kind === 'receipt-issued';
    const matches = issued
      ? equalBytes(r.issuerNodeId, self) && equalBytes(r.senderNodeId, v.sender)
      : equalBytes(r.issuerNodeId, v.issuer) && equalBytes(r.senderNodeId, self);
    if (!matches || r.entries.length !== v.entries) {
      f.add('receipt-invalid', `receipt ${h.position} is not the one entry ${index} records`, {
        index,
        kind: entry.kind,
        receipt: h.position,
        base64: h.base64,
        recordedEntries: v.entries,
        receiptEntries: r.entries.length,
      });
    }
  }

  // A receipt this node signed says where its log recorded each envelope.
  for (const h of held) {
    const r = h.receipt;
    if (!equalBytes(r.issuerNodeId, self)) continue;
    for (const e of r.entries) {
      if (e.logIndex < bundle.from) continue; // before the range: not covered
      const m = receivedAt.get(e.logIndex);
      if (
        m !== undefined &&
        equalBytes(m.peer, r.senderNodeId) &&
        equalBytes(m.messageId, e.messageId) &&
        equalBytes(m.envelopeHash!, e.envelopeHash)
      )
        continue;
      f.add(
        'receipt-contradicts-log',
        `receipt ${h.position} says entry ${e.logIndex} recorded ${messageIdToText(e.messageId)}, it does not`,
        {
          receipt: h.position,
          base64: h.base64,
          issuer: nodeIdToText(r.issuerNodeId),
          logIndex: e.logIndex,
          messageId: messageIdToText(e.messageId),
          envelopeHash: toHex(e.envelopeHash),
          entry:
            e.logIndex >= end
              ? 'beyond the log'
              : m === undefined
                ? 'not a message-received entry'
                : `message-received ${messageIdToText(m.messageId)} ${toHex(m.envelopeHash!)}`,
        },
      );
    }
  }
  return held;
}

function checkState(
  bundle: Bundle,
  inbox: readonly InboxRow[],
  outbox: readonly OutboxRow[],
  received: readonly LoggedMessage[],
  receivedAt: ReadonlyMap<number, LoggedMessage>,
  recipients: readonly LoggedMessage[],
  end: number,
  f: Findings,
): void {
  const rows = new Map<number, InboxRow>();
  for (const row of inbox) {
    if (row.logIndex < bundle.from) continue;
    rows.set(row.logIndex, row);
    const m = receivedAt.get(row.logIndex);
    const same =
      m !== undefined &&
      equalBytes(m.peer, row.sender) &&
      equalBytes(m.messageId, row.messageId) &&
      equalBytes(m.envelopeHash!, row.envelopeHash) &&
      m.sequence === row.sequence;
    if (!same) {
      f.add(
        'inbox-row-unlogged',
        `an inbox row names log index ${row.logIndex}, which does not record it`,
        {
          logIndex: row.logIndex,
          sender: nodeIdToText(row.sender),
          messageId: messageIdToText(row.messageId),
          envelopeHash: toHex(row.envelopeHash),
          entry:
            row.logIndex >= end
              ? 'beyond the log'
              : m === undefined
                ? 'another kind'
                : 'another message',
        },
      );
    }
  }
  for (const m of received) {
    const row = rows.get(m.index);
    if (row !== undefined && equalBytes(row.messageId, m.messageId)) continue;
    f.add('inbox-row-missing', `entry ${m.index} records a message the inbox does not hold`, {
      index: m.index,
      sender: nodeIdToText(m.peer),
      messageId: messageIdToText(m.messageId),
      envelopeHash: toHex(m.envelopeHash!),
      sequence: m.sequence,
    });
  }
  const out = new Set(outbox.map((r) => hexKey(r.messageId, r.recipient)));
  for (const m of recipients) {
    if (out.has(hexKey(m.messageId, m.peer))) continue;
    f.add('outbox-row-missing', `entry ${m.index} records a delivery the outbox does not hold`, {
      index: m.index,
      recipient: nodeIdToText(m.peer),
      messageId: messageIdToText(m.messageId),
    });
  }
}

function openPeerNote(text: string, peer: PeerKey | undefined): Checkpoint {
  if (peer?.key === undefined)
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'not a peer of this node');
  return openCheckpoint(text, peer.origin, peer.key).checkpoint;
}

function checkWitnessed(
  bundle: Bundle,
  peers: ReadonlyMap<string, PeerKey>,
  cosignedAt: ReadonlyMap<string, CosignedClaim>,
  f: Findings,
): WitnessedClaim[] {
  const out: WitnessedClaim[] = [];
  // The same note held twice is verified once: a bundle may repeat one a million times.
  const opened = new Map<string, Checkpoint | Error>();
  bundle.witnessed.forEach((w, position) => {
    const peerHex = hexKey(w.peer);
    const memo = `${peerHex}\n${w.note}`;
    let checkpoint = opened.get(memo);
    if (checkpoint === undefined) {
      try {
        checkpoint = openPeerNote(w.note, peers.get(peerHex));
      } catch (err) {
        checkpoint = err instanceof Error ? err : new Error(String(err));
      }
      opened.set(memo, checkpoint);
    }
    if (checkpoint instanceof Error) {
      f.add('witnessed-invalid', `witnessed checkpoint ${position} does not verify`, {
        witnessed: position,
        peer: nodeIdToText(w.peer),
        error: errText(checkpoint),
      });
      return;
    }
    const logged = cosignedAt.get(peerSizeKey(w.peer, checkpoint.size));
    if (logged !== undefined && !equalBytes(logged.rootHash, checkpoint.rootHash)) {
      f.add(
        'witnessed-invalid',
        `witnessed checkpoint ${position} is not the one the log records`,
        {
          witnessed: position,
          peer: nodeIdToText(w.peer),
          size: checkpoint.size,
          index: logged.index,
          loggedRoot: toHex(logged.rootHash),
          noteRoot: toHex(checkpoint.rootHash),
        },
      );
      return;
    }
    out.push({ peer: w.peer, checkpoint, note: w.note });
  });
  return out;
}

function checkEvidence(
  bundle: Bundle,
  peers: ReadonlyMap<string, PeerKey>,
  logged: readonly { index: number; fields: AuditFields<'equivocation-detected'> }[],
  f: Findings,
): ProvenEquivocation[] {
  // Each piece of evidence is named, by hash, by an equivocation-detected entry of the log, which
  // commits to it: it can be neither added to nor dropped from a bundle unseen. An item the log
  // does not name is `evidence-unlogged`; an entry in range whose item is gone, `evidence-missing`.
  const loggedHashes = new Set(logged.map((e) => hexKey(e.fields.evidenceHash)));
  const heldHashes = new Set<string>();
  const proven: ProvenEquivocation[] = [];
  bundle.evidence.forEach((e, position) => {
    const hash = toHex(sha256(utf8(evidenceText(e.finding, e.heldNote, e.presentedNote, e.proof))));
    heldHashes.add(hash);
    if (!loggedHashes.has(hash) && bundle.from === 0)
      f.add('evidence-unlogged', `evidence ${position} is not named by any entry of the log`, {
        evidence: position,
        evidenceHash: hash,
      });
    const peer = peers.get(hexKey(e.peer));
    const base = { evidence: position, peer: nodeIdToText(e.peer), finding: e.finding };
    let held: Checkpoint;
    let presented: Checkpoint;
    try {
      held = openPeerNote(e.heldNote, peer);
      presented = openPeerNote(e.presentedNote, peer);
    } catch (err) {
      f.add('evidence-invalid', `evidence ${position}: a checkpoint does not verify`, {
        ...base,
        error: errText(err),
      });
      return;
    }
    let holds: boolean;
    switch (e.finding) {
      case 'fork':
        holds = held.size === presented.size && !equalBytes(held.rootHash, presented.rootHash);
        break;
      case 'rollback':
        holds = presented.size < held.size;
        break;
      case 'inconsistent':
        holds = held.size < presented.size;
        if (holds) {
          try {
            verifyConsistency(
              held.size,
              presented.size,
              e.proof,
              held.rootHash,
              presented.rootHash,
            );
            holds = false; // the checkpoints are consistent after all
          } catch {
            // the proof fails: the peer did not show the new tree extends the old
          }
        }
        break;
    }
    const detail = {
      ...base,
      detectedAt: e.detectedAt,
      heldSize: held.size,
      heldRoot: toHex(held.rootHash),
      presentedSize: presented.size,
      presentedRoot: toHex(presented.rootHash),
    };
    if (holds) {
      f.add(
        'peer-equivocation',
        e.finding === 'fork'
          ? `${peer!.name} signed two different trees of the same size: proof of equivocation on its own`
          : e.finding === 'rollback'
            ? `${peer!.name} presented a smaller tree after a larger one (a restored or rewritten log; both notes are its own)`
            : `${peer!.name} presented a tree it could not prove extends the one it signed before (ask it for a valid consistency proof; it has none if its log was rewritten)`,
        detail,
      );
      proven.push({
        position,
        peer: e.peer,
        finding: e.finding,
        detectedAt: e.detectedAt,
        heldSize: held.size,
        heldRoot: held.rootHash,
        presentedSize: presented.size,
        presentedRoot: presented.rootHash,
      });
    } else {
      f.add('evidence-invalid', `evidence ${position} does not show a ${e.finding}`, detail);
    }
  });
  for (const { index, fields } of logged) {
    const hash = toHex(fields.evidenceHash);
    if (heldHashes.has(hash)) continue;
    f.add(
      'evidence-missing',
      `entry ${index} records equivocation evidence the bundle does not hold`,
      {
        index,
        evidenceHash: hash,
        peer: nodeIdToText(fields.peer),
        finding: fields.finding,
        heldSize: fields.heldSize,
        presentedSize: fields.presentedSize,
      },
    );
  }
  return proven;
}
