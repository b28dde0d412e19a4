/**
 * The node's audit log (docs/audit.md): an append-only table of canonical entries
 * (protocol/audit-entry.ts) with their RFC 6962 leaf hashes. Every append runs inside the
 * transaction of the change it records, so the log and the state it describes never disagree:
 * either both commit or neither does.
 */
import type Database from 'better-sqlite3';
import { auditLeafHash, encodeAuditEntry } from '../protocol/index.ts';
import type { AuditFields, AuditKind } from '../protocol/index.ts';

export interface AuditRow {
  readonly index: number;
  readonly at: number;
  readonly kind: string;
  readonly entry: Uint8Array;
  readonly leafHash: Uint8Array;
}

export class AuditLog {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #size: Database.Statement;
  readonly #range: Database.Statement;

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
  }

  /** Appends one entry; must be called inside the transaction that makes the change. */
  append<K extends AuditKind>(kind: K, time: number, fields: AuditFields<K>): number {
    if (!this.#db.inTransaction)
      throw new Error(
        'audit append outside a transaction: the change and its record must commit together',
      );
    const entry = encodeAuditEntry({ kind, time, fields });
    const row = this.#insert.get(time, kind, entry, auditLeafHash(entry)) as { idx: number };
    return row.idx;
  }

  size(): number {
    return (this.#size.get() as { n: number }).n;
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
}
