/**
 * The node's SQLite store: paired peers and their certified static keys, pairing invitations,
 * and small metadata.
 *
 * Durability: synchronous=FULL, so a commit is on disk before it returns; the node acknowledges
 * a message only after its commit, and must never acknowledge what a power cut could undo. WAL
 * (file databases only) lets readers proceed during a write and keeps FULL commits to one fsync.
 * Writers from other processes wait up to busy_timeout rather than fail at once. foreign_keys is
 * per connection in SQLite and off by default, so it is switched on here for the cascades.
 *
 * Secrets: an invitation's PSK is overwritten with zeros once used or revoked, with secure_delete
 * on so SQLite zeroes the freed cell. Older copies can survive in WAL frames until a checkpoint
 * overwrites them: this is best effort, not erasure from the disk.
 *
 * Every row read is validated into a typed record (habit 3 of STYLE.md): a row that does not fit
 * (a corrupted file, a hand edit) fails with LIAISON_ERR_STORE_SCHEMA naming table and column.
 */
import Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import {
  abytes,
  equalBytes,
  FINGERPRINT_GROUP_DIGITS,
  FINGERPRINT_GROUPS,
  KEY_RECORD_BYTES,
  LiaisonError,
  nodeIdFromText,
} from '../protocol/index.ts';
import type { Clock } from './clock.ts';
import { migrate, MIGRATIONS } from './migrations.ts';

/** Ed25519 identity keys and X25519 static keys. */
const PUBLIC_KEY_BYTES = 32;
/** The one-time IKpsk2 pre-shared key carried by an invitation. */
export const INVITATION_SECRET_BYTES = 32;
/** How long a connection waits for another process's write lock before failing. */
export const BUSY_TIMEOUT_MS = 5000;

export const PEER_STATUSES = ['paired', 'blocked'] as const;
export type PeerStatus = (typeof PEER_STATUSES)[number];

export interface PeerRecord {
  /** Text form of the node ID, 'ln' + 52 base32 characters. */
  readonly nodeId: string;
  readonly name: string;
  readonly identityKey: Uint8Array;
  /** The static X25519 key of the newest key record received. */
  readonly dhKey: Uint8Array;
  readonly keyRecord: Uint8Array;
  readonly keyRecordSerial: number;
  readonly fingerprint: string;
  /** Where to dial the peer; null for a peer that only dials us. */
  readonly address: string | null;
  readonly status: PeerStatus;
  readonly pairedAt: number;
  readonly lastSeen: number | null;
  /** Set exactly when status is 'blocked'. */
  readonly blockedAt: number | null;
}

/** One certified static key of a peer, as received. */
export interface PeerDhKeyRecord {
  readonly nodeId: string;
  readonly serial: number;
  readonly dhKey: Uint8Array;
  readonly keyRecord: Uint8Array;
  readonly receivedAt: number;
}

export interface InvitationRecord {
  readonly id: string;
  /** The one-time PSK; all zeros once the invitation is used or revoked. */
  readonly secret: Uint8Array;
  readonly label: string;
  readonly createdAt: number;
  /** Usable while now < expiresAt. */
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly usedBy: string | null;
  readonly revokedAt: number | null;
}

// ---------------------------------------------------------------------------------------------
// Row validation: the database is a boundary like the wire.

const FINGERPRINT_PATTERN = new RegExp(
  `^\\d{${FINGERPRINT_GROUP_DIGITS}}( \\d{${FINGERPRINT_GROUP_DIGITS}}){${FINGERPRINT_GROUPS - 1}}$`,
);

/** Reads typed columns out of one row of `table`, naming table and column on failure. */
class RowReader {
  private readonly row: Readonly<Record<string, unknown>>;

  constructor(
    private readonly table: string,
    row: unknown,
  ) {
    if (typeof row !== 'object' || row === null) throw this.bad('*', 'is not a row');
    this.row = row as Record<string, unknown>;
  }

  bad(column: string, why: string): LiaisonError {
    return new LiaisonError('LIAISON_ERR_STORE_SCHEMA', `${this.table}.${column} ${why}`, {
      table: this.table,
      column,
    });
  }

  isNull(column: string): boolean {
    return this.row[column] === null;
  }

  text(column: string, minLength = 0): string {
    const v = this.row[column];
    if (typeof v !== 'string' || v.length < minLength) throw this.bad(column, 'is not valid text');
    return v;
  }

  textOrNull(column: string): string | null {
    return this.isNull(column) ? null : this.text(column);
  }

  /** Integers arrive as bigint (safe-integer mode) so that precision loss is detected here. */
  int(column: string, min = 0): number {
    const v = this.row[column];
    const n = typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
      throw this.bad(column, `is not an integer >= ${min}`);
    }
    return n;
  }

  intOrNull(column: string): number | null {
    return this.isNull(column) ? null : this.int(column);
  }

  /** A copy as a plain Uint8Array, so callers may wipe it without touching anything shared. */
  blob(column: string, length: number): Uint8Array {
    const v = this.row[column];
    if (!(v instanceof Uint8Array) || v.length !== length) {
      throw this.bad(column, `is not a ${length}-byte blob`);
    }
    return new Uint8Array(v);
  }

  nodeId(column: string): string {
    const v = this.text(column);
    try {
      nodeIdFromText(v);
    } catch {
      throw this.bad(column, 'is not a node ID');
    }
    return v;
  }

  status(column: string): PeerStatus {
    const v = this.text(column);
    const s = PEER_STATUSES.find((k) => k === v);
    if (s === undefined) throw this.bad(column, 'is not a peer status');
    return s;
  }

  fingerprint(column: string): string {
    const v = this.text(column);
    if (!FINGERPRINT_PATTERN.test(v)) throw this.bad(column, 'is not a fingerprint');
    return v;
  }
}

function peerFromRow(row: unknown): PeerRecord {
  const r = new RowReader('peers', row);
  const peer: PeerRecord = {
    nodeId: r.nodeId('node_id'),
    name: r.text('name', 1),
    identityKey: r.blob('identity_key', PUBLIC_KEY_BYTES),
    dhKey: r.blob('dh_key', PUBLIC_KEY_BYTES),
    keyRecord: r.blob('key_record', KEY_RECORD_BYTES),
    keyRecordSerial: r.int('key_record_serial', 1),
    fingerprint: r.fingerprint('fingerprint'),
    address: r.textOrNull('address'),
    status: r.status('status'),
    pairedAt: r.int('paired_at'),
    lastSeen: r.intOrNull('last_seen'),
    blockedAt: r.intOrNull('blocked_at'),
  };
  if ((peer.status === 'blocked') !== (peer.blockedAt !== null)) {
    throw r.bad('blocked_at', 'disagrees with status');
  }
  return peer;
}

function dhKeyFromRow(row: unknown): PeerDhKeyRecord {
  const r = new RowReader('peer_dh_keys', row);
  return {
    nodeId: r.nodeId('node_id'),
    serial: r.int('serial', 1),
    dhKey: r.blob('dh_key', PUBLIC_KEY_BYTES),
    keyRecord: r.blob('key_record', KEY_RECORD_BYTES),
    receivedAt: r.int('received_at'),
  };
}

function invitationFromRow(row: unknown): InvitationRecord {
  const r = new RowReader('invitations', row);
  const inv: InvitationRecord = {
    id: r.text('id', 1),
    secret: r.blob('secret', INVITATION_SECRET_BYTES),
    label: r.text('label'),
    createdAt: r.int('created_at'),
    expiresAt: r.int('expires_at'),
    usedAt: r.intOrNull('used_at'),
    usedBy: r.textOrNull('used_by'),
    revokedAt: r.intOrNull('revoked_at'),
  };
  if ((inv.usedAt === null) !== (inv.usedBy === null)) {
    throw r.bad('used_by', 'disagrees with used_at');
  }
  return inv;
}

// ---------------------------------------------------------------------------------------------
// Argument checks: a bad write fails with a Liaison code, not a raw SQLite constraint error.

function argument(ok: boolean, field: string, why: string): void {
  if (!ok) throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${field} ${why}`, { field });
}

function checkTime(value: number | null, field: string): void {
  argument(value === null || (Number.isSafeInteger(value) && value >= 0), field, 'is not a time');
}

function checkSerial(serial: number): void {
  argument(Number.isSafeInteger(serial) && serial >= 1, 'serial', 'must be an integer >= 1');
}

function checkKeyRecord(serial: number, dhKey: Uint8Array, keyRecord: Uint8Array): void {
  checkSerial(serial);
  abytes(dhKey, PUBLIC_KEY_BYTES, 'dhKey');
  abytes(keyRecord, KEY_RECORD_BYTES, 'keyRecord');
}

/** @throws LIAISON_ERR_NODE_ID_INVALID, LIAISON_ERR_ARGUMENT */
function checkPeer(p: PeerRecord): void {
  nodeIdFromText(p.nodeId);
  argument(p.name.length > 0, 'name', 'must not be empty');
  abytes(p.identityKey, PUBLIC_KEY_BYTES, 'identityKey');
  checkKeyRecord(p.keyRecordSerial, p.dhKey, p.keyRecord);
  argument(FINGERPRINT_PATTERN.test(p.fingerprint), 'fingerprint', 'is malformed');
  argument(PEER_STATUSES.includes(p.status), 'status', 'is not a peer status');
  argument((p.status === 'blocked') === (p.blockedAt !== null), 'blockedAt', 'disagrees');
  checkTime(p.pairedAt, 'pairedAt');
  checkTime(p.lastSeen, 'lastSeen');
  checkTime(p.blockedAt, 'blockedAt');
}

/** @throws LIAISON_ERR_ARGUMENT */
function checkInvitation(inv: InvitationRecord): void {
  argument(inv.id.length > 0, 'id', 'must not be empty');
  abytes(inv.secret, INVITATION_SECRET_BYTES, 'secret');
  checkTime(inv.createdAt, 'createdAt');
  checkTime(inv.expiresAt, 'expiresAt');
  argument(inv.expiresAt >= inv.createdAt, 'expiresAt', 'is before createdAt');
  checkTime(inv.usedAt, 'usedAt');
  checkTime(inv.revokedAt, 'revokedAt');
  argument((inv.usedAt === null) === (inv.usedBy === null), 'usedBy', 'disagrees with usedAt');
  argument(inv.usedAt === null || inv.revokedAt === null, 'revokedAt', 'set on a used invitation');
}

function notFound(what: string, id: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_NOT_FOUND', `${what} ${id}`, { [what]: id });
}

// ---------------------------------------------------------------------------------------------
// Statements, prepared once per connection.

type Stmt<P extends unknown[] = unknown[]> = Statement<P, unknown>;

const PEER_COLUMNS = `node_id, name, identity_key, dh_key, key_record, key_record_serial,
  fingerprint, address, status, paired_at, last_seen, blocked_at`;
const INVITATION_COLUMNS = `id, secret, label, created_at, expires_at, used_at, used_by,
  revoked_at`;
const DH_KEY_COLUMNS = 'node_id, serial, dh_key, key_record, received_at';

function prepareStatements(db: Database.Database) {
  const p = <P extends unknown[]>(sql: string): Stmt<P> => db.prepare<P, unknown>(sql);
  return {
    schemaVersion: p<[]>('SELECT coalesce(max(version), 0) AS version FROM schema_migrations'),
    insertPeer: p<[PeerParams]>(
      `INSERT INTO peers (${PEER_COLUMNS}) VALUES (@node_id, @name, @identity_key, @dh_key,
        @key_record, @key_record_serial, @fingerprint, @address, @status, @paired_at,
        @last_seen, @blocked_at)`,
    ),
    getPeer: p<[string]>(`SELECT ${PEER_COLUMNS} FROM peers WHERE node_id = ?`),
    listPeers: p<[]>(`SELECT ${PEER_COLUMNS} FROM peers ORDER BY name, node_id`),
    // Blocking again keeps the first blocked_at: it records when the peer was cut off.
    blockPeer: p<[number, string]>(
      `UPDATE peers SET status = 'blocked', blocked_at = coalesce(blocked_at, ?)
        WHERE node_id = ?`,
    ),
    unblockPeer: p<[string]>(
      `UPDATE peers SET status = 'paired', blocked_at = NULL WHERE node_id = ?`,
    ),
    touchPeer: p<[number, string]>('UPDATE peers SET last_seen = ? WHERE node_id = ?'),
    setPeerAddress: p<[string | null, string]>('UPDATE peers SET address = ? WHERE node_id = ?'),
    removePeer: p<[string]>('DELETE FROM peers WHERE node_id = ?'),
    rememberIdentity: p<[string, string, Uint8Array, number]>(
      `INSERT INTO peer_identities (node_id, name, identity_key, first_paired_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (node_id) DO NOTHING`,
    ),
    peerIdentities: p<[]>(
      'SELECT node_id, name, identity_key FROM peer_identities ORDER BY node_id',
    ),
    setPeerKey: p<[Uint8Array, Uint8Array, number, string]>(
      'UPDATE peers SET dh_key = ?, key_record = ?, key_record_serial = ? WHERE node_id = ?',
    ),
    insertDhKey: p<[string, number, Uint8Array, Uint8Array, number]>(
      `INSERT INTO peer_dh_keys (${DH_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?)`,
    ),
    getDhKey: p<[string, number]>(
      `SELECT ${DH_KEY_COLUMNS} FROM peer_dh_keys WHERE node_id = ? AND serial = ?`,
    ),
    listDhKeys: p<[string]>(
      `SELECT ${DH_KEY_COLUMNS} FROM peer_dh_keys WHERE node_id = ? ORDER BY serial`,
    ),
    insertInvitation: p<[InvitationParams]>(
      `INSERT INTO invitations (${INVITATION_COLUMNS}) VALUES (@id, @secret, @label,
        @created_at, @expires_at, @used_at, @used_by, @revoked_at)`,
    ),
    getInvitation: p<[string]>(`SELECT ${INVITATION_COLUMNS} FROM invitations WHERE id = ?`),
    listInvitations: p<[]>(
      `SELECT ${INVITATION_COLUMNS} FROM invitations ORDER BY created_at DESC, id DESC`,
    ),
    usableInvitations: p<[number]>(
      `SELECT ${INVITATION_COLUMNS} FROM invitations
        WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > ?
        ORDER BY created_at DESC, id DESC`,
    ),
    // The guards repeat the checks made in the transaction: the row changes only if usable.
    useInvitation: p<[number, string, string, number]>(
      `UPDATE invitations SET used_at = ?, used_by = ?, secret = zeroblob(32)
        WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?`,
    ),
    revokeInvitation: p<[number, string]>(
      `UPDATE invitations SET revoked_at = ?, secret = zeroblob(32)
        WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL`,
    ),
    getMeta: p<[string]>('SELECT value FROM meta WHERE key = ?'),
    setMeta: p<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

interface PeerParams {
  node_id: string;
  name: string;
  identity_key: Uint8Array;
  dh_key: Uint8Array;
  key_record: Uint8Array;
  key_record_serial: number;
  fingerprint: string;
  address: string | null;
  status: PeerStatus;
  paired_at: number;
  last_seen: number | null;
  blocked_at: number | null;
}

interface InvitationParams {
  id: string;
  secret: Uint8Array;
  label: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
  revoked_at: number | null;
}

function peerParams(p: PeerRecord): PeerParams {
  return {
    node_id: p.nodeId,
    name: p.name,
    identity_key: p.identityKey,
    dh_key: p.dhKey,
    key_record: p.keyRecord,
    key_record_serial: p.keyRecordSerial,
    fingerprint: p.fingerprint,
    address: p.address,
    status: p.status,
    paired_at: p.pairedAt,
    last_seen: p.lastSeen,
    blocked_at: p.blockedAt,
  };
}

function invitationParams(inv: InvitationRecord): InvitationParams {
  return {
    id: inv.id,
    secret: inv.secret,
    label: inv.label,
    created_at: inv.createdAt,
    expires_at: inv.expiresAt,
    used_at: inv.usedAt,
    used_by: inv.usedBy,
    revoked_at: inv.revokedAt,
  };
}

function configure(db: Database.Database): void {
  // busy_timeout first, so that switching to WAL waits for another process's lock.
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  if (!db.memory) db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('secure_delete = ON');
  // Integers come back as bigint; RowReader turns them into numbers only when exact.
  db.defaultSafeIntegers(true);
}

// ---------------------------------------------------------------------------------------------

export class Store {
  readonly #db: Database.Database;
  readonly #clock: Clock;
  readonly #s: Statements;

  private constructor(db: Database.Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#s = prepareStatements(db);
  }

  /**
   * Opens (creating if needed) the database at `path` (':memory:' for tests) and migrates it to
   * the latest schema.
   * @throws LIAISON_ERR_STORE_SCHEMA if the database is newer than this software or a migration
   *   fails.
   */
  static open(path: string, clock: Clock): Store {
    const db = new Database(path);
    try {
      configure(db);
      migrate(db, MIGRATIONS, clock);
      return new Store(db, clock);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  close(): void {
    this.#db.close();
  }

  /**
   * The connection, for the other repositories of node/ (messages, users, audit log, events):
   * they share it so that one transaction can span them all.
   */
  get database(): Database.Database {
    return this.#db;
  }

  /**
   * Runs `fn` in an immediate transaction (the write lock is taken at BEGIN, so a read-then-write
   * cannot be overtaken by another writer). Nested calls become savepoints. `fn` must be
   * synchronous: the transaction commits when it returns.
   */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /**
   * A transaction whose commit is not fsync'd (WAL with synchronous=NORMAL): it survives a crash
   * of the process but maybe not of the machine. Only for state that is safe to lose, because
   * it is recomputed or repeated (a delivery's 'sent' mark: lost, the envelope is sent again
   * and the recipient dedupes it). The next full commit makes it durable too.
   */
  relaxedTransaction<T>(fn: () => T): T {
    if (this.#db.inTransaction || this.#db.memory) return this.transaction(fn);
    this.#db.pragma('synchronous = NORMAL');
    try {
      return this.transaction(fn);
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }

  schemaVersion(): number {
    return new RowReader('schema_migrations', this.#s.schemaVersion.get()).int('version');
  }

  // --- peers ---------------------------------------------------------------------------------

  /**
   * Pairs a peer; its key record also becomes the first entry of its key history.
   * @throws LIAISON_ERR_CONFLICT if the node is already known; LIAISON_ERR_ARGUMENT or
   *   LIAISON_ERR_NODE_ID_INVALID for a malformed record.
   */
  addPeer(p: PeerRecord): void {
    checkPeer(p);
    this.transaction(() => {
      if (this.#s.getPeer.get(p.nodeId) !== undefined) {
        throw new LiaisonError('LIAISON_ERR_CONFLICT', `peer ${p.nodeId} already exists`, {
          peer: p.nodeId,
        });
      }
      this.#s.insertPeer.run(peerParams(p));
      this.#s.rememberIdentity.run(p.nodeId, p.name, p.identityKey, p.pairedAt);
      const { nodeId, keyRecordSerial, dhKey, keyRecord, pairedAt } = p;
      this.#s.insertDhKey.run(nodeId, keyRecordSerial, dhKey, keyRecord, pairedAt);
    });
  }

  /**
   * Every peer ever paired, with the identity key pinned then: kept after unpairing, for exports
   * and disclosures about past exchanges. (A node ID is derived from its identity key, so these
   * are checkable by anyone.)
   */
  peerIdentities(): { nodeId: string; name: string; identityKey: Uint8Array }[] {
    return (this.#s.peerIdentities.all() as Record<string, unknown>[]).map((r) => ({
      nodeId: r.node_id as string,
      name: r.name as string,
      identityKey: new Uint8Array(r.identity_key as Buffer),
    }));
  }

  getPeer(nodeId: string): PeerRecord | null {
    const row = this.#s.getPeer.get(nodeId);
    return row === undefined ? null : peerFromRow(row);
  }

  /** All peers, by name then node ID. */
  listPeers(): PeerRecord[] {
    return this.#s.listPeers.all().map(peerFromRow);
  }

  /**
   * Blocking stamps blocked_at with the clock (keeping an earlier stamp); pairing clears it.
   * @throws LIAISON_ERR_NOT_FOUND
   */
  setPeerStatus(nodeId: string, status: PeerStatus): void {
    argument(PEER_STATUSES.includes(status), 'status', 'is not a peer status');
    const info =
      status === 'blocked'
        ? this.#s.blockPeer.run(this.#clock.now(), nodeId)
        : this.#s.unblockPeer.run(nodeId);
    if (info.changes === 0) throw notFound('peer', nodeId);
  }

  /** @throws LIAISON_ERR_NOT_FOUND */
  touchPeer(nodeId: string, lastSeen: number): void {
    checkTime(lastSeen, 'lastSeen');
    if (this.#s.touchPeer.run(lastSeen, nodeId).changes === 0) throw notFound('peer', nodeId);
  }

  /** @throws LIAISON_ERR_NOT_FOUND */
  setPeerAddress(nodeId: string, address: string | null): void {
    if (this.#s.setPeerAddress.run(address, nodeId).changes === 0) throw notFound('peer', nodeId);
  }

  /** Unpairs: deletes the peer and, by cascade, its key history. @throws LIAISON_ERR_NOT_FOUND */
  removePeer(nodeId: string): void {
    if (this.#s.removePeer.run(nodeId).changes === 0) throw notFound('peer', nodeId);
  }

  /**
   * Records a certified static key of the peer (the caller has verified the record). A record
   * with a higher serial than the current one becomes current; an older one is kept as history.
   * The same record twice is a no-op.
   * @throws LIAISON_ERR_CONFLICT if a different record with this serial is already known: the
   *   peer signed two keys under one serial (equivocation). LIAISON_ERR_NOT_FOUND if the peer is
   *   unknown.
   */
  addPeerDhKey(nodeId: string, serial: number, dhKey: Uint8Array, keyRecord: Uint8Array): void {
    checkKeyRecord(serial, dhKey, keyRecord);
    this.transaction(() => {
      const peer = this.getPeer(nodeId);
      if (peer === null) throw notFound('peer', nodeId);
      const known = this.#s.getDhKey.get(nodeId, serial);
      if (known !== undefined) {
        const k = dhKeyFromRow(known);
        if (equalBytes(k.dhKey, dhKey) && equalBytes(k.keyRecord, keyRecord)) return;
        throw new LiaisonError('LIAISON_ERR_CONFLICT', `peer ${nodeId} key serial ${serial}`, {
          peer: nodeId,
          serial,
        });
      }
      this.#s.insertDhKey.run(nodeId, serial, dhKey, keyRecord, this.#clock.now());
      if (serial > peer.keyRecordSerial) this.#s.setPeerKey.run(dhKey, keyRecord, serial, nodeId);
    });
  }

  /** The peer's key history, oldest serial first; empty for an unknown peer. */
  peerDhKeys(nodeId: string): PeerDhKeyRecord[] {
    return this.#s.listDhKeys.all(nodeId).map(dhKeyFromRow);
  }

  // --- invitations ---------------------------------------------------------------------------

  /** @throws LIAISON_ERR_CONFLICT if the ID exists; LIAISON_ERR_ARGUMENT for a malformed record. */
  addInvitation(inv: InvitationRecord): void {
    checkInvitation(inv);
    this.transaction(() => {
      if (this.#s.getInvitation.get(inv.id) !== undefined) {
        throw new LiaisonError('LIAISON_ERR_CONFLICT', `invitation ${inv.id} already exists`, {
          invitation: inv.id,
        });
      }
      this.#s.insertInvitation.run(invitationParams(inv));
    });
  }

  getInvitation(id: string): InvitationRecord | null {
    const row = this.#s.getInvitation.get(id);
    return row === undefined ? null : invitationFromRow(row);
  }

  /** All invitations, newest first. */
  listInvitations(): InvitationRecord[] {
    return this.#s.listInvitations.all().map(invitationFromRow);
  }

  /**
   * Revokes and wipes the secret; revoking twice is a no-op.
   * @throws LIAISON_ERR_NOT_FOUND; LIAISON_ERR_CONFLICT if the invitation was already used.
   */
  revokeInvitation(id: string): void {
    this.transaction(() => {
      const inv = this.getInvitation(id);
      if (inv === null) throw notFound('invitation', id);
      if (inv.usedAt !== null) {
        throw new LiaisonError('LIAISON_ERR_CONFLICT', `invitation ${id} was already used`, {
          invitation: id,
        });
      }
      if (inv.revokedAt === null) this.#s.revokeInvitation.run(this.#clock.now(), id);
    });
  }

  /**
   * Consumes an invitation: marks it used by `usedBy` at `now` and wipes its secret, atomically,
   * only if it is unused, unrevoked and unexpired. Returns the updated record (secret zeroed).
   * @throws LIAISON_ERR_NOT_FOUND; LIAISON_ERR_INVITATION_USED (used or revoked);
   *   LIAISON_ERR_INVITATION_EXPIRED (now >= expiresAt).
   */
  useInvitation(id: string, usedBy: string, now: number): InvitationRecord {
    argument(usedBy.length > 0, 'usedBy', 'must not be empty');
    checkTime(now, 'now');
    return this.transaction(() => {
      const inv = this.getInvitation(id);
      if (inv === null) throw notFound('invitation', id);
      inv.secret.fill(0);
      const detail = { invitation: id };
      if (inv.usedAt !== null || inv.revokedAt !== null) {
        throw new LiaisonError('LIAISON_ERR_INVITATION_USED', id, detail);
      }
      if (now >= inv.expiresAt)
        throw new LiaisonError('LIAISON_ERR_INVITATION_EXPIRED', id, detail);
      if (this.#s.useInvitation.run(now, usedBy, id, now).changes !== 1) {
        throw new LiaisonError('LIAISON_ERR_INVITATION_USED', id, detail);
      }
      return { ...inv, usedAt: now, usedBy };
    });
  }

  /** Invitations a responder may still accept (their secrets are tried for IKpsk2), newest first. */
  usableInvitations(now: number): InvitationRecord[] {
    return this.#s.usableInvitations.all(now).map(invitationFromRow);
  }

  // --- meta ----------------------------------------------------------------------------------

  getMeta(key: string): string | null {
    const row = this.#s.getMeta.get(key);
    return row === undefined ? null : new RowReader('meta', row).text('value');
  }

  setMeta(key: string, value: string): void {
    this.#s.setMeta.run(key, value);
  }
}
