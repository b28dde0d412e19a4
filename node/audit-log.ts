/**
 * The node's audit log (docs/audit.md): an append-only table of canonical entries
 * (protocol/audit-entry.ts), the leaves of an RFC 6962 Merkle tree (protocol/merkle.ts).
 *
 * Every append runs inside the transaction of the change it records, so the log and the state it
 * describes never disagree: either both commit or neither does. The same append stores the
 * tree hashes the new leaf completes (level 0 is the entry's own leaf_hash column, levels 1 and up
 * are audit_tree rows), so a tree hash or a proof for any size is O(log² n) reads and the tree is
 * never recomputed.
 */
import type Database from 'better-sqlite3';
import {
  auditLeafHash,
  consistencyProof,
  encodeAuditEntry,
  inclusionProof,
  LiaisonError,
  storedHashesForAppend,
  treeHash,
} from '../protocol/index.ts';
import type { AuditFields, AuditKind, StoredHashReader } from '../protocol/index.ts';

export interface AuditRow {
  readonly index: number;
  readonly at: number;
  readonly kind: string;
  readonly entry: Uint8Array;
  readonly leafHash: Uint8Array;
}

/**
 * Records of the witnessing itself. A checkpoint is issued on the timer only when the log holds
 * something else since the last one; otherwise recording a cosignature would make a new
 * checkpoint, whose cosignature would make another, for ever.
 */
export const WITNESSING_KINDS: ReadonlySet<string> = new Set([
  'cosignature-received',
  'checkpoint-cosigned',
]);

export class AuditLog {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #size: Database.Statement;
  readonly #range: Database.Statement;
  readonly #leaf: Database.Statement;
  readonly #node: Database.Statement;
  readonly #insertNode: Database.Statement;
  readonly #substantiveSince: Database.Statement;
  readonly read: StoredHashReader;

  constructor(db: Database.Database) {
    this.#db = db;
    // Indexes are 0-based and dense: the next one is computed inside the writer's transaction.
    this.#insert = db
      .prepare(
        `INSERT INTO audit_log (idx, at, kind, entry, leaf_hash)
         VALUES ((SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log), ?, ?, ?, ?) RETURNING idx`,
      )
      .safeIntegers(false);
    this.#size = db
      .prepare('SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM audit_log')
      .safeIntegers(false);
    this.#range = db
      .prepare(
        'SELECT idx, at, kind, entry, leaf_hash FROM audit_log WHERE idx >= ? ORDER BY idx LIMIT ?',
      )
      .safeIntegers(false);
    this.#leaf = db.prepare('SELECT leaf_hash FROM audit_log WHERE idx = ?').pluck();
    this.#node = db.prepare('SELECT hash FROM audit_tree WHERE level = ? AND idx = ?').pluck();
    this.#insertNode = db.prepare('INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)');
    // A range scan from `from` on the primary key: cost grows with the entries since the last
    // checkpoint, not with the log.
    this.#substantiveSince = db
      .prepare(
        `SELECT 1 FROM audit_log WHERE idx >= ? AND kind NOT IN (${[...WITNESSING_KINDS]
          .map(() => '?')
          .join(', ')}) LIMIT 1`,
      )
      .pluck();
    this.read = (level, index) => {
      const h = (level === 0 ? this.#leaf.get(index) : this.#node.get(level, index)) as
        Buffer | undefined;
      if (h === undefined) {
        // The tree table and the log disagree: the database was edited or damaged.
        throw new LiaisonError(
          'LIAISON_ERR_STORE_SCHEMA',
          `audit tree hash ${level}/${index} missing`,
        );
      }
      return new Uint8Array(h.buffer, h.byteOffset, h.length);
    };
  }

  /** Appends one entry; must be called inside the transaction that makes the change. */
  append<K extends AuditKind>(kind: K, time: number, fields: AuditFields<K>): number {
    if (!this.#db.inTransaction)
      throw new Error(
        'audit append outside a transaction: the change and its record must commit together',
      );
    const entry = encodeAuditEntry({ kind, time, fields });
    const leaf = auditLeafHash(entry);
    const row = this.#insert.get(time, kind, entry, leaf) as { idx: number };
    for (const h of storedHashesForAppend(row.idx, leaf, this.read)) {
      if (h.level > 0) this.#insertNode.run(h.level, h.index, h.hash);
    }
    return row.idx;
  }

  size(): number {
    return (this.#size.get() as { n: number }).n;
  }

  /** Whether an entry other than a witnessing record has index `from` or above. */
  hasSubstantiveSince(from: number): boolean {
    return this.#substantiveSince.get(from, ...WITNESSING_KINDS) !== undefined;
  }

  entries(from: number, limit: number): AuditRow[] {
    return (this.#range.all(from, limit) as Record<string, unknown>[]).map((r) => ({
      index: r.idx as number,
      at: r.at as number,
      kind: r.kind as string,
      entry: new Uint8Array(r.entry as Buffer),
      leafHash: new Uint8Array(r.leaf_hash as Buffer),
    }));
  }

  treeHash(size: number): Uint8Array {
    return treeHash(size, this.read);
  }

  inclusionProof(index: number, size: number): Uint8Array[] {
    return inclusionProof(index, size, this.read);
  }

  consistencyProof(from: number, to: number): Uint8Array[] {
    return consistencyProof(from, to, this.read);
  }
}
