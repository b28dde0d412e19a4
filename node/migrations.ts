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
import { merkleNodeHash } from '../protocol/merkle.ts';
import type { Clock } from './clock.ts';

export interface Migration {
  /** 1, 2, 3, ... with no gaps; a database records each version it has applied. */
  readonly version: number;
  /** Short kebab-case name, recorded with the version; it must never change once released. */
  readonly name: string;
  /** Runs inside the runner's transaction; must not start its own or change PRAGMA foreign_keys. */
  readonly up: (db: Database, now: number) => void;
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

/**
 * v2: delivery, users and the audit log. Node IDs as text (54 chars), message IDs 16 bytes,
 * hashes 32 bytes; the sealed content key is nonce (24) ‖ XChaCha20-Poly1305(32-byte key) = 72.
 * Rows referring to peers carry the node ID without a foreign key: unpairing a peer must not
 * erase the record of what was exchanged with it.
 */
const V2_DELIVERY_SCHEMA = `
CREATE TABLE users (
  name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
  role TEXT NOT NULL CHECK (role IN ('officer', 'auditor', 'admin')),
  created_at INTEGER NOT NULL CHECK (created_at >= 0)
) STRICT;

CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY CHECK (length(id) = 16),
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  label TEXT NOT NULL,
  created_at INTEGER NOT NULL CHECK (created_at >= 0),
  expires_at INTEGER CHECK (expires_at >= created_at),
  revoked_at INTEGER CHECK (revoked_at >= 0),
  last_used_at INTEGER CHECK (last_used_at >= 0)
) STRICT;

CREATE TABLE messages (
  row_id INTEGER PRIMARY KEY,
  direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
  sender TEXT NOT NULL CHECK (length(sender) = 54),
  message_id BLOB NOT NULL CHECK (length(message_id) = 16),
  kind TEXT NOT NULL CHECK (kind IN ('message', 'ack', 'case-event')),
  priority TEXT NOT NULL CHECK (priority IN ('routine', 'urgent', 'emergency')),
  handling TEXT NOT NULL CHECK (handling IN ('H0', 'H1', 'H2', 'H3')),
  author TEXT NOT NULL,
  created_at INTEGER NOT NULL CHECK (created_at >= 0),
  expires_at INTEGER NOT NULL CHECK (expires_at > created_at),
  ref BLOB CHECK (ref IS NULL OR length(ref) = 16),
  envelope BLOB NOT NULL,
  envelope_hash BLOB NOT NULL CHECK (length(envelope_hash) = 32),
  sealed_key BLOB CHECK (sealed_key IS NULL OR length(sealed_key) = 72),
  log_index INTEGER NOT NULL CHECK (log_index >= 0),
  stored_at INTEGER NOT NULL CHECK (stored_at >= 0),
  mailbox TEXT,
  sequence INTEGER CHECK (sequence >= 1),
  gap_from INTEGER,
  gap_to INTEGER,
  read_at INTEGER,
  read_by TEXT,
  acked_at INTEGER,
  acked_by TEXT,
  UNIQUE (sender, message_id),
  CHECK ((direction = 'in') = (sequence IS NOT NULL AND mailbox IS NOT NULL))
) STRICT;

CREATE INDEX messages_inbox ON messages (direction, row_id);

CREATE TABLE receipts (
  row_id INTEGER PRIMARY KEY,
  direction TEXT NOT NULL CHECK (direction IN ('issued', 'received')),
  peer TEXT NOT NULL CHECK (length(peer) = 54),
  issued_at INTEGER NOT NULL CHECK (issued_at >= 0),
  receipt BLOB NOT NULL,
  receipt_hash BLOB NOT NULL CHECK (length(receipt_hash) = 32),
  log_index INTEGER NOT NULL CHECK (log_index >= 0)
) STRICT;

CREATE TABLE deliveries (
  message_row INTEGER NOT NULL REFERENCES messages(row_id),
  peer TEXT NOT NULL CHECK (length(peer) = 54),
  sequence INTEGER NOT NULL CHECK (sequence >= 1),
  mailbox TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'acknowledged', 'expired', 'rejected')),
  reason TEXT,
  updated_at INTEGER NOT NULL CHECK (updated_at >= 0),
  sent_at INTEGER,
  delivered_at INTEGER,
  acknowledged_at INTEGER,
  receipt_row INTEGER REFERENCES receipts(row_id),
  remote_log_index INTEGER CHECK (remote_log_index >= 0),
  PRIMARY KEY (peer, sequence),
  UNIQUE (message_row, peer)
) STRICT;

CREATE INDEX deliveries_pending ON deliveries (peer, sequence) WHERE status IN ('queued', 'sent');
CREATE INDEX deliveries_open_expiry ON deliveries (status) WHERE status IN ('queued', 'sent');

CREATE TABLE sequences (
  peer TEXT PRIMARY KEY CHECK (length(peer) = 54),
  last_out INTEGER NOT NULL DEFAULT 0 CHECK (last_out >= 0),
  last_in INTEGER NOT NULL DEFAULT 0 CHECK (last_in >= 0)
) STRICT;

CREATE TABLE audit_log (
  idx INTEGER PRIMARY KEY CHECK (idx >= 0),
  at INTEGER NOT NULL CHECK (at >= 0),
  kind TEXT NOT NULL,
  entry BLOB NOT NULL,
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;

CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL CHECK (at >= 0),
  type TEXT NOT NULL,
  data TEXT NOT NULL
) STRICT;
`;

/**
 * v3: the Merkle tree over the audit log, checkpoints, witnessing and disclosures, and the
 * identity key of every peer ever paired (peer_identities outlives unpairing, so that exports can
 * still show whose signatures their receipts and evidence carry). Level-0 tree
 * hashes are audit_log.leaf_hash; audit_tree holds every complete subtree of level 1 and up
 * (protocol/merkle.ts). Notes are C2SP signed-note text.
 */
const V3_AUDIT_TREE_SCHEMA = `
CREATE TABLE audit_tree (
  level INTEGER NOT NULL CHECK (level >= 1),
  idx INTEGER NOT NULL CHECK (idx >= 0),
  hash BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
  size INTEGER PRIMARY KEY CHECK (size >= 0),
  root BLOB NOT NULL CHECK (length(root) = 32),
  issued_at INTEGER NOT NULL CHECK (issued_at >= 0),
  note TEXT NOT NULL
) STRICT;

CREATE TABLE cosignatures (
  size INTEGER NOT NULL REFERENCES checkpoints(size),
  witness TEXT NOT NULL CHECK (length(witness) = 54),
  cosigned_at INTEGER NOT NULL CHECK (cosigned_at >= 0),
  received_at INTEGER NOT NULL CHECK (received_at >= 0),
  line TEXT NOT NULL,
  PRIMARY KEY (size, witness)
) STRICT;

CREATE TABLE witness_progress (
  peer TEXT PRIMARY KEY CHECK (length(peer) = 54),
  size INTEGER NOT NULL CHECK (size >= 0)
) STRICT;

CREATE TABLE witnessed (
  peer TEXT PRIMARY KEY CHECK (length(peer) = 54),
  size INTEGER NOT NULL CHECK (size >= 0),
  root BLOB NOT NULL CHECK (length(root) = 32),
  note TEXT NOT NULL,
  updated_at INTEGER NOT NULL CHECK (updated_at >= 0)
) STRICT;

CREATE TABLE witness_evidence (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  peer TEXT NOT NULL CHECK (length(peer) = 54),
  finding TEXT NOT NULL CHECK (finding IN ('fork', 'inconsistent', 'rollback')),
  detected_at INTEGER NOT NULL CHECK (detected_at >= 0),
  held_note TEXT NOT NULL,
  presented_note TEXT NOT NULL,
  proof TEXT NOT NULL
) STRICT;

CREATE TABLE disclosures (
  id TEXT PRIMARY KEY CHECK (length(id) = 16),
  message_row INTEGER NOT NULL REFERENCES messages(row_id),
  auditor TEXT NOT NULL,
  disclosed_by TEXT NOT NULL,
  justification TEXT NOT NULL,
  created_at INTEGER NOT NULL CHECK (created_at >= 0),
  log_index INTEGER NOT NULL CHECK (log_index >= 0)
) STRICT;

CREATE INDEX receipts_hash ON receipts (receipt_hash);

CREATE TABLE peer_identities (
  node_id TEXT PRIMARY KEY CHECK (length(node_id) = 54),
  name TEXT NOT NULL,
  identity_key BLOB NOT NULL CHECK (length(identity_key) = 32),
  first_paired_at INTEGER NOT NULL CHECK (first_paired_at >= 0)
) STRICT;

INSERT INTO peer_identities (node_id, name, identity_key, first_paired_at)
  SELECT node_id, name, identity_key, paired_at FROM peers;
`;

/**
 * Stores the tree hashes of every audit entry already in the log (a v2 node's, at migration).
 * Rows are read in pages and only the perfect subtrees still open are kept (at most 53 hashes), so a
 * log of any size migrates in constant memory.
 */
export function buildAuditTree(db: Database): void {
  const insert = db.prepare('INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)');
  const page = db
    .prepare('SELECT leaf_hash FROM audit_log WHERE idx >= ? ORDER BY idx LIMIT 10000')
    .raw();
  const open: Uint8Array[] = [];
  let n = 0;
  // Paged, not iterated: better-sqlite3 allows no write while a read is open on the connection.
  for (let rows = page.all(0) as [Buffer][]; rows.length > 0; rows = page.all(n) as [Buffer][])
    for (const [leaf] of rows) {
      let hash: Uint8Array = leaf;
      let index = n;
      let level = 0;
      // Each right child completes its parent: the left sibling is the newest open subtree.
      while (index % 2 === 1) {
        hash = merkleNodeHash(open.pop()!, hash);
        index = (index - 1) / 2;
        level += 1;
        insert.run(level, index, hash);
      }
      open.push(hash);
      n += 1;
    }
}

/** The v1 admin token (meta.api_token_hash, hex) becomes user 'admin''s first token. */
function migrateAdminToken(db: Database, now: number): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'api_token_hash'").get() as
    { value: string } | undefined;
  db.prepare("INSERT INTO users (name, role, created_at) VALUES ('admin', 'admin', ?)").run(now);
  if (row === undefined || !/^[0-9a-f]{64}$/.test(row.value)) return;
  db.prepare(
    `INSERT INTO api_tokens (id, user_name, token_hash, label, created_at)
     VALUES (?, 'admin', ?, 'initial admin token', ?)`,
  ).run(row.value.slice(0, 16), Buffer.from(row.value, 'hex'), now);
  db.prepare("DELETE FROM meta WHERE key = 'api_token_hash'").run();
}

/** Every known migration, in order. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial-schema',
    up: (db) => {
      db.exec(V1_INITIAL_SCHEMA);
    },
  },
  {
    version: 2,
    name: 'delivery-users-audit',
    up: (db, now) => {
      db.exec(V2_DELIVERY_SCHEMA);
      migrateAdminToken(db, now);
    },
  },
  {
    version: 3,
    name: 'audit-tree-checkpoints-witnessing',
    up: (db) => {
      db.exec(V3_AUDIT_TREE_SCHEMA);
      buildAuditTree(db);
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
    const now = clock.now();
    m.up(db, now);
    record.run(m.version, m.name, now);
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
