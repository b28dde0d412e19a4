/**
 * Audit export (docs/audit.md §Export): builds the self-contained bundle an auditor verifies
 * offline (protocol/audit-bundle.ts).
 *
 * An export is itself recorded: a `log-exported` entry naming the range and the SHA-256 of the
 * state snapshot is appended, a checkpoint that ends exactly at that entry is signed, and peers
 * are given a short time to cosign it. The bundle runs from the requested index to that entry, so
 * a bundle cut short loses the record of its own export, and the snapshot of inbox and outbox is
 * bound to the log by its hash.
 */
import type Database from 'better-sqlite3';
import {
  BUNDLE_FORMAT,
  formatState,
  LiaisonError,
  nodeIdFromText,
  originForNode,
  sha256,
  utf8,
} from '../protocol/index.ts';
import type { Bundle, InboxRow, LocalIdentity, MessageId, OutboxRow } from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Checkpoints } from './checkpoints.ts';
import type { Clock } from './clock.ts';
import { EXPORT_COSIGN_WAIT_MS } from './constants.ts';
import type { Store } from './store.ts';
import type { Witnessing } from './witnessing.ts';

/** Entries read from the database per query while building a bundle; the event loop runs between. */
const EXPORT_READ_BATCH = 10_000;

/**
 * Entries in one export. A bundle is built in memory and verified in memory; a larger log is
 * exported in ranges (`from`), each verifiable on its own from its frontier.
 */
export const MAX_EXPORT_ENTRIES = 1_000_000;

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface AuditExportDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly checkpoints: Checkpoints;
  readonly witnessing: Witnessing;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
  /** Every peer ever paired (unpaired ones too): their keys check receipts and evidence. */
  readonly peers: () => readonly { nodeId: string; name: string; identityKey: Uint8Array }[];
  /** Peers with a link up now: the ones asked to cosign the export's checkpoint. */
  readonly connectedPeers: () => readonly string[];
}

function buf(v: unknown): Uint8Array {
  const b = v as Buffer;
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

export class AuditExport {
  readonly #d: AuditExportDeps;
  readonly #s: Record<'inbox' | 'outbox' | 'receipts', Database.Statement>;

  constructor(d: AuditExportDeps) {
    this.#d = d;
    const p = (sql: string) => d.store.database.prepare(sql).safeIntegers(false);
    this.#s = {
      inbox: p(
        `SELECT sender, message_id, envelope_hash, sequence, log_index FROM messages
         WHERE direction = 'in' ORDER BY row_id`,
      ),
      outbox: p(
        `SELECT m.message_id, m.envelope_hash, d.peer, d.status FROM messages m
         JOIN deliveries d ON d.message_row = m.row_id WHERE m.direction = 'out' ORDER BY m.row_id, d.peer`,
      ),
      receipts: p(
        'SELECT receipt FROM receipts WHERE log_index >= ? AND log_index < ? ORDER BY log_index, row_id',
      ),
    };
  }

  /** The inbox and outbox as the bundle's state text. */
  #state(): string {
    const inbox: InboxRow[] = (this.#s.inbox.all() as Record<string, unknown>[]).map((r) => ({
      sender: nodeIdFromText(r.sender as string),
      messageId: buf(r.message_id) as MessageId,
      envelopeHash: buf(r.envelope_hash),
      sequence: r.sequence as number,
      logIndex: r.log_index as number,
    }));
    const outbox: OutboxRow[] = (this.#s.outbox.all() as Record<string, unknown>[]).map((r) => ({
      messageId: buf(r.message_id) as MessageId,
      envelopeHash: buf(r.envelope_hash),
      recipient: nodeIdFromText(r.peer as string),
      status: r.status as string,
    }));
    return formatState(inbox, outbox);
  }

  /**
   * Records the export, signs a checkpoint ending at that record, waits briefly for cosignatures
   * and returns the bundle of entries [from, end].
   * @throws LIAISON_ERR_ARGUMENT when `from` is beyond the log
   */
  async export(from: number, user: string): Promise<Bundle> {
    const { audit, checkpoints, store, clock } = this.#d;
    const size = audit.size();
    if (!Number.isSafeInteger(from) || from < 0 || from > size)
      throw new LiaisonError('LIAISON_ERR_ARGUMENT', `from: the log has ${size} entries`, {
        field: 'from',
      });
    // Refused before anything is recorded: the export record would otherwise name a bundle that
    // was never handed out.
    if (size + 1 - from > MAX_EXPORT_ENTRIES)
      throw new LiaisonError(
        'LIAISON_ERR_ARGUMENT',
        `from: at most ${MAX_EXPORT_ENTRIES} entries per export; export from ${size + 1 - MAX_EXPORT_ENTRIES} or later, and earlier ranges separately`,
        { field: 'from' },
      );
    const state = this.#state();
    const stateHash = sha256(utf8(state));
    let to = 0;
    store.transaction(() => {
      to = audit.size() + 1;
      audit.append('log-exported', clock.now(), { user, from, to, stateHash });
    });
    const checkpoint = checkpoints.issue(true);
    if (checkpoint === null || checkpoint.size !== to)
      throw new LiaisonError(
        'LIAISON_ERR_INTERNAL',
        'export checkpoint does not end at the export',
      );
    await this.#awaitCosignatures(to);
    return await this.#bundle(from, to, state);
  }

  async #awaitCosignatures(size: number): Promise<void> {
    const { witnessing, checkpoints, clock } = this.#d;
    const peers = this.#d.connectedPeers();
    witnessing.pushAll(peers);
    const deadline = clock.now() + EXPORT_COSIGN_WAIT_MS;
    while (clock.now() < deadline) {
      const have = new Set(checkpoints.cosignatures(size).map((c) => c.witness));
      if (peers.every((p) => have.has(p))) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async #bundle(from: number, to: number, state: string): Promise<Bundle> {
    const { audit, checkpoints, witnessing, identity } = this.#d;
    const me = identity();
    const entries: Uint8Array[] = [];
    for (let i = from; i < to; i += EXPORT_READ_BATCH) {
      for (const row of audit.entries(i, Math.min(EXPORT_READ_BATCH, to - i)))
        entries.push(row.entry);
      await yieldToLoop();
    }
    const stored = checkpoints.between(from, to);
    const notes: string[] = [];
    const consistency: { from: number; to: number; proof: Uint8Array[] }[] = [];
    for (let i = 0; i < stored.length; i++) {
      notes.push(checkpoints.cosignedNote(stored[i]!));
      if (i > 0) {
        const [a, b] = [stored[i - 1]!.size, stored[i]!.size];
        consistency.push({ from: a, to: b, proof: audit.consistencyProof(a, b) });
      }
      if (i % 1000 === 999) await yieldToLoop();
    }
    return {
      format: BUNDLE_FORMAT,
      createdAt: this.#d.clock.now(),
      node: {
        nodeId: me.nodeId,
        origin: originForNode(me.nodeId),
        identityKey: me.signingKey.publicKey.bytes,
        rotations: [],
        keyRecords: [me.keyRecord.bytes],
      },
      peers: this.#d.peers().map((p) => ({
        nodeId: nodeIdFromText(p.nodeId),
        name: p.name,
        identityKey: p.identityKey,
      })),
      from,
      to,
      frontier: frontierHashes(from, audit.read),
      entries,
      checkpoints: notes,
      consistency,
      receipts: (this.#s.receipts.all(from, to) as Record<string, unknown>[]).map((r) =>
        Uint8Array.from(buf(r.receipt)),
      ),
      witnessed: witnessing.allHeld().map((w) => ({ peer: nodeIdFromText(w.peer), note: w.note })),
      evidence: witnessing.evidence().map((e) => ({
        peer: nodeIdFromText(e.peer),
        finding: e.finding,
        detectedAt: e.detectedAt,
        heldNote: e.heldNote,
        presentedNote: e.presentedNote,
        proof: e.proof,
      })),
      state,
    };
  }
}

/** Hashes of the perfect subtrees covering [0, size), largest first. */
export function frontierHashes(
  size: number,
  read: (level: number, index: number) => Uint8Array,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (size - start >= width) {
      out.push(Uint8Array.from(read(level, start / width)));
      start += width;
    }
  }
  return out;
}
