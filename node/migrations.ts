/**
 * Versioned schema migrations for the node database, and the runner that applies them.
 *
 * A migration is frozen once released: its SQL spells out every constant (sizes, enum values)
 * instead of importing it, so that a later change to a constant cannot rewrite history. Changes
 * to the schema are always a new migration appended to MIGRATIONS.
 *
 * The runner refuses a database written by newer software, or by a different migration history,
 * rather than guess: silently running old code on a newer schema can lose or misread data.
 */
import type { Database } from 'better-sqlite3';
import { LiaisonError } from '../protocol/errors.ts';
import type { Clock } from './clock.ts';

export interface Migration {
  /** 1, 2, 3, ... with no gaps; a database records each version it has applied. */
  readonly version: number;
  /** Short kebab-case name, recorded with the version; it must never change once released. */
  readonly name: string;
  /** Runs inside the runner's transaction; must not start its own or change PRAGMA foreign_keys. */
  readonly up: (db: Database) => void;
}

/**
 * v1: the initial schema. STRICT tables make SQLite reject values of the wrong type; the CHECKs
 * restate the shapes the store validates on read, so a bad write fails at once.
 * Sizes: node ID text 'ln' + 52 base32 = 54 chars; Ed25519 and X25519 public keys 32 bytes; key
 * record 174 bytes (protocol/key-record.ts, format version 1); fingerprint 8 groups of 5 digits
 * joined by spaces = 47 chars; invitation secret (the IKpsk2 PSK) 32 bytes. Times are ms since
 * the Unix epoch.
 */
const V1_INITIAL_SCHEMA = `
CREATE TABLE peers (
  node_id TEXT PRIMARY KEY CHECK (length(node_id) = 54 AND substr(node_id, 1, 2) = 'ln'),
  name TEXT NOT NULL CHECK (length(name) > 0),
  identity_key BLOB NOT NULL CHECK (length(identity_key) = 32),
  dh_key BLOB NOT NULL CHECK (length(dh_key) = 32),
  key_record BLOB NOT NULL CHECK (length(key_record) = 174),
  key_record_serial INTEGER NOT NULL CHECK (key_record_serial >= 1),
  fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 47),
  address TEXT,
  status TEXT NOT NULL CHECK (status IN ('paired', 'blocked')),
  paired_at INTEGER NOT NULL CHECK (paired_at >= 0),
  last_seen INTEGER CHECK (last_seen >= 0),
  blocked_at INTEGER CHECK (blocked_at >= 0),
  CHECK ((status = 'blocked') = (blocked_at IS NOT NULL))
) STRICT;

CREATE TABLE peer_dh_keys (
  node_id TEXT NOT NULL REFERENCES peers(node_id) ON DELETE CASCADE,
  serial INTEGER NOT NULL CHECK (serial >= 1),
  dh_key BLOB NOT NULL CHECK (length(dh_key) = 32),
  key_record BLOB NOT NULL CHECK (length(key_record) = 174),
  received_at INTEGER NOT NULL CHECK (received_at >= 0),
  PRIMARY KEY (node_id, serial)
) STRICT;

CREATE TABLE invitations (
  id TEXT PRIMARY KEY CHECK (length(id) > 0),
  secret BLOB NOT NULL CHECK (length(secret) = 32),
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL CHECK (created_at >= 0),
  expires_at INTEGER NOT NULL CHECK (expires_at >= created_at),
  used_at INTEGER CHECK (used_at >= 0),
  used_by TEXT,
  revoked_at INTEGER CHECK (revoked_at >= 0),
  CHECK ((used_at IS NULL) = (used_by IS NULL)),
  CHECK (used_at IS NULL OR revoked_at IS NULL)
) STRICT;

CREATE INDEX invitations_by_created ON invitations (created_at DESC, id DESC);

CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`;

/** Every known migration, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial-schema',
    up: (db) => {
      db.exec(V1_INITIAL_SCHEMA);
    },
  },
];

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT`;

interface AppliedMigration {
  readonly version: number;
  readonly name: string;
}

function schemaError(message: string, detail?: Record<string, string | number>): LiaisonError {
  return new LiaisonError('LIAISON_ERR_STORE_SCHEMA', message, detail);
}

/** A programming error in the list itself: versions must run 1, 2, 3, ... */
function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1 || m.name.length === 0) {
      throw new LiaisonError('LIAISON_ERR_ARGUMENT', `migration #${i} must have version ${i + 1}`, {
        field: 'migrations',
      });
    }
  });
}

/** schema_migrations rows, validated: they may come from any past or future software. */
function readApplied(db: Database): AppliedMigration[] {
  const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
  return rows.map((row) => {
    const r = row as Record<string, unknown>;
    const version = typeof r.version === 'bigint' ? Number(r.version) : r.version;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      throw schemaError('schema_migrations.version is not a positive integer', {
        table: 'schema_migrations',
        column: 'version',
      });
    }
    if (typeof r.name !== 'string') {
      throw schemaError('schema_migrations.name is not text', {
        table: 'schema_migrations',
        column: 'name',
      });
    }
    return { version, name: r.name };
  });
}

/** Refuses a database that this software's migration list does not fully explain. */
function checkApplied(applied: readonly AppliedMigration[], known: readonly Migration[]): void {
  const newest = applied.at(-1)?.version ?? 0;
  const latest = known.at(-1)?.version ?? 0;
  if (newest > latest) {
    throw schemaError(`database is at version ${newest}, this software knows up to ${latest}`, {
      version: newest,
      known: latest,
    });
  }
  applied.forEach((a, i) => {
    const k = known[i];
    if (k === undefined || k.version !== a.version || k.name !== a.name) {
      throw schemaError(`applied migration ${a.version} (${a.name}) is not in the known history`, {
        version: a.version,
        name: a.name,
      });
    }
  });
}

/** One migration and its bookkeeping row, atomically. Skips it if another process got there. */
function applyOne(db: Database, m: Migration, clock: Clock): void {
  const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
  const record = db.prepare(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );
  const run = db.transaction(() => {
    if (done.get(m.version) !== undefined) return;
    m.up(db);
    record.run(m.version, m.name, clock.now());
  });
  try {
    run.immediate();
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    const e = schemaError(`migration ${m.version} (${m.name}) failed: ${cause}`, {
      version: m.version,
      name: m.name,
    });
    e.cause = err;
    throw e;
  }
}

/**
 * Brings `db` up to the last version in `migrations`, each pending migration in its own immediate
 * transaction together with its schema_migrations row. Returns the resulting schema version.
 *
 * @throws LIAISON_ERR_STORE_SCHEMA if the database is newer than `migrations`, its history is not
 *   a prefix of `migrations`, or a migration fails (that one is rolled back; earlier ones stay).
 * @throws LIAISON_ERR_ARGUMENT if `migrations` is not numbered 1, 2, 3, ...
 */
export function migrate(db: Database, migrations: readonly Migration[], clock: Clock): number {
  checkMigrationList(migrations);
  db.exec(CREATE_MIGRATIONS_TABLE);
  const applied = readApplied(db);
  checkApplied(applied, migrations);
  for (const m of migrations.slice(applied.length)) applyOne(db, m, clock);
  return migrations.at(-1)?.version ?? 0;
}
