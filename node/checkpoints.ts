/**
 * This node's checkpoints (docs/audit.md §Checkpoints): signed C2SP tlog-checkpoint notes of its
 * audit log, issued on a timer when the log has grown and on demand, kept with every cosignature
 * peers return for them.
 *
 * A checkpoint is never an audit entry itself (recording it would change the size it states).
 * Cosignatures are recorded (`cosignature-received`), but a checkpoint is issued on the timer only
 * if the log holds something else since the last one (AuditLog.hasSubstantiveSince), so an idle
 * federation does not sign and cosign for ever.
 */
import type Database from 'better-sqlite3';
import {
  formatNote,
  formatSignatureLine,
  nodeIdFromText,
  originForNode,
  parseNote,
  signCheckpoint,
} from '../protocol/index.ts';
import type { LocalIdentity, NoteSignature } from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Clock } from './clock.ts';
import type { EventLog } from './events.ts';
import type { Store } from './store.ts';

export interface StoredCheckpoint {
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly issuedAt: number;
  /** The signed note with this node's signature only. */
  readonly note: string;
}

export interface StoredCosignature {
  readonly witness: string;
  /** The cosignature's own time, in seconds. */
  readonly cosignedAt: number;
  readonly receivedAt: number;
  /** The signature line, without its newline. */
  readonly line: string;
}

export interface CheckpointsDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly events: EventLog;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
}

function toCheckpoint(r: Record<string, unknown>): StoredCheckpoint {
  const root = r.root as Buffer;
  return {
    size: r.size as number,
    rootHash: new Uint8Array(root.buffer, root.byteOffset, root.length),
    issuedAt: r.issued_at as number,
    note: r.note as string,
  };
}

export class Checkpoints {
  readonly #d: CheckpointsDeps;
  readonly #s: Record<
    'latest' | 'bySize' | 'insert' | 'range' | 'newest' | 'cosignatures' | 'insertCosignature',
    Database.Statement
  >;

  constructor(d: CheckpointsDeps) {
    this.#d = d;
    const db = d.store.database;
    const p = (sql: string) => db.prepare(sql).safeIntegers(false);
    this.#s = {
      latest: p('SELECT size, root, issued_at, note FROM checkpoints ORDER BY size DESC LIMIT 1'),
      bySize: p('SELECT size, root, issued_at, note FROM checkpoints WHERE size = ?'),
      insert: p('INSERT INTO checkpoints (size, root, issued_at, note) VALUES (?, ?, ?, ?)'),
      range: p(
        'SELECT size, root, issued_at, note FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size',
      ),
      newest: p(
        'SELECT size, root, issued_at, note FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size DESC LIMIT ?',
      ),
      cosignatures: p(
        'SELECT witness, cosigned_at, received_at, line FROM cosignatures WHERE size = ? ORDER BY witness',
      ),
      insertCosignature: p(
        `INSERT INTO cosignatures (size, witness, cosigned_at, received_at, line) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (size, witness) DO UPDATE SET cosigned_at = excluded.cosigned_at,
           received_at = excluded.received_at, line = excluded.line
         WHERE excluded.cosigned_at > cosignatures.cosigned_at`,
      ),
    };
  }

  get origin(): string {
    return originForNode(this.#d.identity().nodeId);
  }

  latest(): StoredCheckpoint | null {
    const r = this.#s.latest.get() as Record<string, unknown> | undefined;
    return r === undefined ? null : toCheckpoint(r);
  }

  get(size: number): StoredCheckpoint | null {
    const r = this.#s.bySize.get(size) as Record<string, unknown> | undefined;
    return r === undefined ? null : toCheckpoint(r);
  }

  /** Checkpoints with sizes in [from, to], ascending. */
  between(from: number, to: number): StoredCheckpoint[] {
    return (this.#s.range.all(from, to) as Record<string, unknown>[]).map(toCheckpoint);
  }

  /** The newest `limit` checkpoints with sizes in [from, to], ascending. */
  newestBetween(from: number, to: number, limit: number): StoredCheckpoint[] {
    return (this.#s.newest.all(from, to, limit) as Record<string, unknown>[])
      .map(toCheckpoint)
      .reverse();
  }

  /**
   * Signs a checkpoint of the log as it is now, unless the newest one already states this size.
   * On the timer (`force` false) it also waits until the log holds more than witnessing records.
   * Returns the newest checkpoint afterwards, or null for an empty log.
   */
  issue(force: boolean): StoredCheckpoint | null {
    const { audit, clock, identity } = this.#d;
    const latest = this.latest();
    const size = audit.size();
    if (size === 0) return latest;
    if (latest !== null && latest.size >= size) return latest;
    if (!force && latest !== null && !audit.hasSubstantiveSince(latest.size)) return latest;
    const rootHash = audit.treeHash(size);
    const note = signCheckpoint(
      { origin: this.origin, size, rootHash, extensions: [] },
      identity().signingKey,
    );
    const issuedAt = clock.now();
    this.#d.store.transaction(() => {
      this.#s.insert.run(size, rootHash, issuedAt, note);
      this.#d.events.record('audit.checkpoint', { size });
    });
    return { size, rootHash, issuedAt, note };
  }

  cosignatures(size: number): StoredCosignature[] {
    return (this.#s.cosignatures.all(size) as Record<string, unknown>[]).map((r) => ({
      witness: r.witness as string,
      cosignedAt: r.cosigned_at as number,
      receivedAt: r.received_at as number,
      line: r.line as string,
    }));
  }

  /**
   * Stores a verified cosignature and records it in the log, in one transaction. A witness that
   * cosigns the same checkpoint again only refreshes the stored line.
   */
  addCosignature(
    checkpoint: StoredCheckpoint,
    witness: string,
    sig: NoteSignature,
    cosignedAt: number,
  ): void {
    const now = this.#d.clock.now();
    this.#d.store.transaction(() => {
      const changed = this.#s.insertCosignature.run(
        checkpoint.size,
        witness,
        cosignedAt,
        now,
        formatSignatureLine(sig),
      ).changes;
      if (changed === 0) return;
      this.#d.audit.append('cosignature-received', now, {
        witness: nodeIdFromText(witness),
        size: checkpoint.size,
        rootHash: checkpoint.rootHash,
        cosignedAt,
      });
      this.#d.events.record('audit.cosigned', { size: checkpoint.size, witness });
    });
  }

  /** The checkpoint note with every cosignature it has received appended. */
  cosignedNote(checkpoint: StoredCheckpoint): string {
    const note = parseNote(checkpoint.note);
    const lines = this.cosignatures(checkpoint.size).map((c) => c.line);
    const extra = lines.map((l) => parseNote(`x\n\n${l}\n`).signatures[0]!);
    return formatNote(note.text, [...note.signatures, ...extra]);
  }

  /**
   * Checks the newest checkpoint against the tree as stored now. A mismatch means the database
   * was changed behind the node's back (or damaged): the node cannot repair that, only say so.
   * @returns null when consistent, else a description
   */
  selfCheck(): string | null {
    const latest = this.latest();
    if (latest === null) return null;
    const size = this.#d.audit.size();
    if (size < latest.size)
      return `the log holds ${size} entries but checkpoint ${latest.size} was signed`;
    try {
      const root = this.#d.audit.treeHash(latest.size);
      if (Buffer.compare(Buffer.from(root), Buffer.from(latest.rootHash)) !== 0)
        return `the tree at size ${latest.size} no longer has the signed root`;
    } catch (err) {
      return `the tree at size ${latest.size} cannot be computed: ${(err as Error).message}`;
    }
    return null;
  }
}
