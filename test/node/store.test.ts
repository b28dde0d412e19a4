/**
 * The node store against real SQLite files: migrations (fresh, repeated, from every earlier
 * version, refused, failing), durability pragmas, peers and their key history, one-time
 * invitations, and rows corrupted behind the store's back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import type { Test } from 'tap';
import {
  asNodeId,
  auditLeafHash,
  encodeAuditEntry,
  isLiaisonError,
  KEY_RECORD_BYTES,
  MerkleFrontier,
  nodeIdToText,
  toHex,
} from '../../protocol/index.ts';
import type { ErrorCode } from '../../protocol/index.ts';
import { AuditLog } from '../../node/audit-log.ts';
import { ManualClock } from '../../node/clock.ts';
import { migrate, MIGRATIONS } from '../../node/migrations.ts';
import type { Migration } from '../../node/migrations.ts';
import { Store } from '../../node/store.ts';
import type { InvitationRecord, PeerRecord } from '../../node/store.ts';
import { rejects } from '../helpers/assert.ts';

const T0 = 1_767_225_600_000;
const LATEST = MIGRATIONS.at(-1)!.version;

const dir = mkdtempSync(join(tmpdir(), 'liaison-store-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const freshFile = () => join(dir, `db-${++files}.sqlite`);

function openStore(t: Test, file = freshFile(), clock = new ManualClock(T0)) {
  const store = Store.open(file, clock);
  t.teardown(() => store.close());
  return { store, file, clock };
}

/** A second connection, as another process or an operator with the sqlite3 shell would have. */
function raw(t: Test, file: string): Database.Database {
  const db = new Database(file);
  t.teardown(() => db.close());
  return db;
}

/** Asserts a LiaisonError with `code` whose detail includes `detail`. */
function rejectsWith(
  t: Test,
  fn: () => unknown,
  code: ErrorCode,
  detail: Record<string, string | number>,
  label: string,
): void {
  try {
    fn();
    t.fail(`${label}: accepted, expected ${code}`);
  } catch (err) {
    if (!isLiaisonError(err)) throw err;
    t.equal(err.code, code, label);
    t.match(err.detail, detail, `${label}: detail`);
  }
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const nodeIdText = (n: number) => nodeIdToText(asNodeId(bytes(32, n)));
const FINGERPRINT = '12345 67890 13579 24680 11111 22222 33333 44444';

function peer(n: number, over: Partial<PeerRecord> = {}): PeerRecord {
  return {
    nodeId: nodeIdText(n),
    name: `Authority ${n}`,
    identityKey: bytes(32, n),
    dhKey: bytes(32, 100 + n),
    keyRecord: bytes(KEY_RECORD_BYTES, 100 + n),
    keyRecordSerial: 1,
    fingerprint: FINGERPRINT,
    address: `peer${n}.example:7800`,
    status: 'paired',
    pairedAt: T0,
    lastSeen: null,
    blockedAt: null,
    ...over,
  };
}

function invitation(id: string, over: Partial<InvitationRecord> = {}): InvitationRecord {
  return {
    id,
    secret: bytes(32, 7),
    label: `for ${id}`,
    createdAt: T0,
    expiresAt: T0 + 60_000,
    usedAt: null,
    usedBy: null,
    revokedAt: null,
    ...over,
  };
}

const versions = (db: Database.Database) =>
  db
    .prepare('SELECT version FROM schema_migrations ORDER BY version')
    .pluck()
    .all()
    .map((v) => Number(v));

const tableExists = (db: Database.Database, name: string) =>
  db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
  undefined;

// --- migrations --------------------------------------------------------------------------------

t.test('an empty database is migrated to the latest version', async (t) => {
  const { store, file } = openStore(t);
  t.equal(store.schemaVersion(), LATEST);
  const db = raw(t, file);
  t.same(
    versions(db),
    MIGRATIONS.map((m) => m.version),
  );
  t.same(
    db.prepare('SELECT name, applied_at FROM schema_migrations ORDER BY version').all(),
    MIGRATIONS.map((m) => ({ name: m.name, applied_at: T0 })),
  );
  const tables = db.prepare('PRAGMA table_list').all() as { name: string; strict: number }[];
  for (const name of [
    'peers',
    'peer_dh_keys',
    'invitations',
    'meta',
    'schema_migrations',
    'users',
    'api_tokens',
    'messages',
    'deliveries',
    'receipts',
    'sequences',
    'audit_log',
    'events',
  ]) {
    t.equal(tables.find((r) => r.name === name)?.strict, 1, `${name} is STRICT`);
  }
});

t.test('reopening is idempotent and keeps the data', async (t) => {
  const file = freshFile();
  const clock = new ManualClock(T0);
  const first = Store.open(file, clock);
  first.addPeer(peer(1));
  first.close();
  clock.advance(1000);
  const { store } = openStore(t, file, clock);
  t.equal(store.schemaVersion(), LATEST);
  t.equal(store.getPeer(nodeIdText(1))?.name, 'Authority 1');
  const db = raw(t, file);
  t.same(
    db.prepare('SELECT version, applied_at FROM schema_migrations').all(),
    MIGRATIONS.map((m) => ({ version: m.version, applied_at: T0 })),
  );
});

t.test('a database written by newer software is refused, untouched', async (t) => {
  const { store, file } = openStore(t);
  store.close();
  const db = raw(t, file);
  db.prepare("INSERT INTO schema_migrations VALUES (?, 'from-the-future', ?)").run(LATEST + 1, T0);
  rejectsWith(
    t,
    () => Store.open(file, new ManualClock(T0)),
    'LIAISON_ERR_STORE_SCHEMA',
    { version: LATEST + 1, known: LATEST },
    'future version',
  );
  const known = MIGRATIONS.map((m) => m.version);
  t.same(versions(db), [...known, LATEST + 1], 'rows left as they were');
});

t.test('a database with a different migration history is refused', async (t) => {
  const db = raw(t, freshFile());
  const other: Migration[] = [{ version: 1, name: 'someone-elses-schema', up: () => {} }];
  migrate(db, other, new ManualClock(T0));
  rejectsWith(
    t,
    () => migrate(db, MIGRATIONS, new ManualClock(T0)),
    'LIAISON_ERR_STORE_SCHEMA',
    { version: 1, name: 'someone-elses-schema' },
    'not a prefix',
  );
  t.notOk(tableExists(db, 'peers'), 'nothing applied');
});

t.test('a migration list with gaps is a programming error', async (t) => {
  const db = raw(t, freshFile());
  const gap: Migration[] = [{ version: 2, name: 'two', up: () => {} }];
  rejects(t, () => migrate(db, gap, new ManualClock(T0)), 'LIAISON_ERR_ARGUMENT', 'gap');
});

t.test('a failing migration rolls back and leaves the earlier ones', async (t) => {
  const broken: Migration = {
    version: LATEST + 1,
    name: 'broken-step',
    up: (db) => {
      db.exec('CREATE TABLE half_done (x INTEGER) STRICT');
      db.exec('ALTER TABLE no_such_table ADD COLUMN y TEXT');
    },
  };
  const file = freshFile();
  const db = raw(t, file);
  try {
    migrate(db, [...MIGRATIONS, broken], new ManualClock(T0));
    t.fail('accepted');
  } catch (err) {
    t.ok(isLiaisonError(err, 'LIAISON_ERR_STORE_SCHEMA'), 'STORE_SCHEMA');
    t.match(err, { message: /broken-step/, detail: { version: LATEST + 1, name: 'broken-step' } });
  }
  t.notOk(tableExists(db, 'half_done'), 'the failed step left nothing');
  t.same(
    versions(db),
    MIGRATIONS.map((m) => m.version),
    'earlier migrations stay applied',
  );
  const { store } = openStore(t, file);
  t.equal(store.schemaVersion(), LATEST, 'the database is still usable');
});

t.test('every earlier version migrates to the latest', async (t) => {
  for (let n = 0; n < MIGRATIONS.length; n++) {
    const file = freshFile();
    const db = new Database(file);
    t.equal(migrate(db, MIGRATIONS.slice(0, n), new ManualClock(T0)), n, `built at version ${n}`);
    db.close();
    const { store } = openStore(t, file);
    t.equal(store.schemaVersion(), LATEST, `from version ${n}`);
  }
});

t.test('v3 builds the Merkle tree over the audit entries a v2 node wrote', async (t) => {
  const file = freshFile();
  const db = new Database(file);
  migrate(db, MIGRATIONS.slice(0, 2), new ManualClock(T0));
  const insert = db.prepare(
    'INSERT INTO audit_log (idx, at, kind, entry, leaf_hash) VALUES (?, ?, ?, ?, ?)',
  );
  const frontier = new MerkleFrontier();
  const base = (db.prepare('SELECT COUNT(*) FROM audit_log').pluck().get() as number) ?? 0;
  for (let i = 0; i < base; i++) {
    const leaf = db.prepare('SELECT leaf_hash FROM audit_log WHERE idx = ?').pluck().get(i);
    frontier.append(new Uint8Array(leaf as Buffer));
  }
  for (let i = base; i < base + 37; i++) {
    const entry = encodeAuditEntry({
      kind: 'config-changed',
      time: T0 + i,
      fields: { configHash: new Uint8Array(32).fill(i) },
    });
    insert.run(i, T0 + i, 'config-changed', entry, auditLeafHash(entry));
    frontier.append(auditLeafHash(entry));
  }
  db.close();
  const { store } = openStore(t, file);
  const audit = new AuditLog(store.database);
  t.equal(audit.size(), base + 37);
  t.equal(toHex(audit.treeHash(base + 37)), toHex(frontier.root()), 'same root as a fresh tree');
  store.transaction(() =>
    audit.append('config-changed', T0 + 99, { configHash: new Uint8Array(32) }),
  );
  t.equal(audit.treeHash(base + 38).length, 32, 'and appends continue on it');
});

t.test('a later migration applies on top of data written at the current version', async (t) => {
  const { store, file } = openStore(t);
  store.addPeer(peer(1));
  store.close();
  const next: Migration = {
    version: LATEST + 1,
    name: 'add-peer-note',
    up: (db) => {
      db.exec("ALTER TABLE peers ADD COLUMN note TEXT NOT NULL DEFAULT ''");
    },
  };
  const db = raw(t, file);
  t.equal(migrate(db, [...MIGRATIONS, next], new ManualClock(T0 + 5)), LATEST + 1);
  t.same(db.prepare('SELECT note FROM peers').pluck().all(), ['']);
  t.same(
    db
      .prepare('SELECT applied_at FROM schema_migrations WHERE version = ?')
      .pluck()
      .get(LATEST + 1),
    T0 + 5,
  );
});

// --- durability ----------------------------------------------------------------------------------

t.test('file databases use WAL; :memory: works', async (t) => {
  const { file } = openStore(t);
  t.equal(raw(t, file).pragma('journal_mode', { simple: true }), 'wal');
  const { store } = openStore(t, ':memory:');
  t.equal(store.schemaVersion(), LATEST);
  store.setMeta('k', 'v');
  t.equal(store.getMeta('k'), 'v');
});

t.test('transaction commits as a whole or not at all', async (t) => {
  const { store } = openStore(t);
  t.throws(() =>
    store.transaction(() => {
      store.addInvitation(invitation('a'));
      throw new Error('abort');
    }),
  );
  t.equal(store.getInvitation('a'), null, 'rolled back');
  const n = store.transaction(() => {
    store.addInvitation(invitation('b'));
    store.setMeta('k', 'v');
    return 42;
  });
  t.equal(n, 42);
  t.ok(store.getInvitation('b'));
  t.equal(store.getMeta('k'), 'v');
});

// --- peers ---------------------------------------------------------------------------------------

t.test('peers: add, get, list, duplicates and bad input', async (t) => {
  const { store } = openStore(t);
  const p = peer(1);
  store.addPeer(p);
  t.same(store.getPeer(p.nodeId), p);
  t.ok(store.getPeer(p.nodeId)?.identityKey instanceof Uint8Array);
  t.equal(store.getPeer(nodeIdText(9)), null, 'unknown');
  rejects(t, () => store.addPeer(peer(1, { name: 'again' })), 'LIAISON_ERR_CONFLICT', 'dup');

  store.addPeer(peer(2, { name: 'Alpha', address: null }));
  store.addPeer(peer(4, { name: 'Bravo' }));
  store.addPeer(peer(3, { name: 'Bravo' }));
  const order = store.listPeers().map((x) => x.name + ' ' + x.nodeId);
  const bravo = [nodeIdText(3), nodeIdText(4)].sort().map((id) => `Bravo ${id}`);
  t.same(order, [`Alpha ${nodeIdText(2)}`, `Authority 1 ${nodeIdText(1)}`, ...bravo]);
  t.equal(store.getPeer(nodeIdText(2))?.address, null);

  const bad: [string, Partial<PeerRecord>, ErrorCode][] = [
    ['node ID', { nodeId: 'lnnot-a-node-id' }, 'LIAISON_ERR_NODE_ID_INVALID'],
    ['identity key length', { identityKey: bytes(31, 1) }, 'LIAISON_ERR_ARGUMENT'],
    ['dh key length', { dhKey: bytes(33, 1) }, 'LIAISON_ERR_ARGUMENT'],
    ['key record length', { keyRecord: bytes(10, 1) }, 'LIAISON_ERR_ARGUMENT'],
    ['serial 0', { keyRecordSerial: 0 }, 'LIAISON_ERR_ARGUMENT'],
    ['fingerprint', { fingerprint: '1234' }, 'LIAISON_ERR_ARGUMENT'],
    ['blocked without time', { status: 'blocked' }, 'LIAISON_ERR_ARGUMENT'],
    ['paired with blocked time', { blockedAt: T0 }, 'LIAISON_ERR_ARGUMENT'],
    ['empty name', { name: '' }, 'LIAISON_ERR_ARGUMENT'],
    ['fractional time', { pairedAt: 1.5 }, 'LIAISON_ERR_ARGUMENT'],
  ];
  for (const [label, over, code] of bad)
    rejects(t, () => store.addPeer(peer(20, over)), code, label);
  t.equal(store.getPeer(nodeIdText(20)), null, 'no bad peer stored');
});

t.test('peers: status, last seen, address, removal', async (t) => {
  const { store, clock } = openStore(t);
  const id = nodeIdText(1);
  store.addPeer(peer(1));

  clock.advance(10);
  store.setPeerStatus(id, 'blocked');
  t.match(store.getPeer(id), { status: 'blocked', blockedAt: T0 + 10 });
  clock.advance(10);
  store.setPeerStatus(id, 'blocked');
  t.equal(store.getPeer(id)?.blockedAt, T0 + 10, 'blocking again keeps the first time');
  store.setPeerStatus(id, 'paired');
  t.match(store.getPeer(id), { status: 'paired', blockedAt: null });

  store.touchPeer(id, T0 + 99);
  t.equal(store.getPeer(id)?.lastSeen, T0 + 99);
  store.setPeerAddress(id, null);
  t.equal(store.getPeer(id)?.address, null);
  store.setPeerAddress(id, 'new.example:7800');
  t.equal(store.getPeer(id)?.address, 'new.example:7800');

  const unknown = nodeIdText(9);
  rejects(t, () => store.setPeerStatus(unknown, 'blocked'), 'LIAISON_ERR_NOT_FOUND', 'status');
  rejects(t, () => store.touchPeer(unknown, T0), 'LIAISON_ERR_NOT_FOUND', 'touch');
  rejects(t, () => store.setPeerAddress(unknown, null), 'LIAISON_ERR_NOT_FOUND', 'address');
  rejects(t, () => store.removePeer(unknown), 'LIAISON_ERR_NOT_FOUND', 'remove');

  store.removePeer(id);
  t.equal(store.getPeer(id), null);
});

t.test('peer key history: serials, current key, equivocation, cascade', async (t) => {
  const { store, clock, file } = openStore(t);
  const id = nodeIdText(1);
  store.addPeer(peer(1));
  t.same(
    store.peerDhKeys(id).map((k) => [k.serial, k.receivedAt]),
    [[1, T0]],
    'pairing records the first key',
  );

  clock.advance(100);
  store.addPeerDhKey(id, 3, bytes(32, 3), bytes(KEY_RECORD_BYTES, 3));
  t.match(store.getPeer(id), { keyRecordSerial: 3, dhKey: bytes(32, 3) }, 'newer becomes current');
  t.same(store.getPeer(id)?.keyRecord, bytes(KEY_RECORD_BYTES, 3));

  store.addPeerDhKey(id, 2, bytes(32, 2), bytes(KEY_RECORD_BYTES, 2));
  t.equal(store.getPeer(id)?.keyRecordSerial, 3, 'an older serial is history only');
  t.same(store.getPeer(id)?.dhKey, bytes(32, 3));

  store.addPeerDhKey(id, 3, bytes(32, 3), bytes(KEY_RECORD_BYTES, 3));
  t.same(
    store.peerDhKeys(id).map((k) => [k.serial, k.receivedAt]),
    [
      [1, T0],
      [2, T0 + 100],
      [3, T0 + 100],
    ],
    'the same record twice is a no-op',
  );

  rejectsWith(
    t,
    () => store.addPeerDhKey(id, 3, bytes(32, 4), bytes(KEY_RECORD_BYTES, 4)),
    'LIAISON_ERR_CONFLICT',
    { peer: id, serial: 3 },
    'two keys under one serial',
  );
  rejects(
    t,
    () => store.addPeerDhKey(id, 1, bytes(32, 101), bytes(KEY_RECORD_BYTES, 9)),
    'LIAISON_ERR_CONFLICT',
    'same key, different record',
  );
  t.same(store.getPeer(id)?.dhKey, bytes(32, 3), 'current key unchanged by the conflict');
  rejects(
    t,
    () => store.addPeerDhKey(nodeIdText(9), 1, bytes(32, 1), bytes(KEY_RECORD_BYTES, 1)),
    'LIAISON_ERR_NOT_FOUND',
    'unknown peer',
  );
  rejects(
    t,
    () => store.addPeerDhKey(id, 4, bytes(31, 1), bytes(KEY_RECORD_BYTES, 1)),
    'LIAISON_ERR_ARGUMENT',
    'short key',
  );

  store.addPeer(peer(2));
  store.removePeer(id);
  t.same(store.peerDhKeys(id), []);
  const db = raw(t, file);
  const count = db.prepare('SELECT count(*) FROM peer_dh_keys WHERE node_id = ?').pluck();
  t.equal(count.get(id), 0, 'history deleted by cascade');
  t.equal(count.get(nodeIdText(2)), 1, 'other peers untouched');
});

// --- invitations -----------------------------------------------------------------------------

t.test('invitations: add, get, list newest first, duplicates', async (t) => {
  const { store } = openStore(t);
  store.addInvitation(invitation('old'));
  store.addInvitation(invitation('new', { createdAt: T0 + 1, expiresAt: T0 + 2 }));
  t.same(store.getInvitation('old'), invitation('old'));
  t.equal(store.getInvitation('nope'), null);
  t.same(
    store.listInvitations().map((i) => i.id),
    ['new', 'old'],
  );
  rejects(t, () => store.addInvitation(invitation('old')), 'LIAISON_ERR_CONFLICT', 'dup');
  const bad: [string, Partial<InvitationRecord>][] = [
    ['short secret', { secret: bytes(16, 1) }],
    ['expires before created', { expiresAt: T0 - 1 }],
    ['used without user', { usedAt: T0 }],
    ['used and revoked', { usedAt: T0, usedBy: 'x', revokedAt: T0 }],
    ['empty id', { id: '' }],
  ];
  for (const [label, over] of bad) {
    rejects(t, () => store.addInvitation(invitation('bad', over)), 'LIAISON_ERR_ARGUMENT', label);
  }
});

t.test('invitations: one-time use wipes the secret', async (t) => {
  const { store, file } = openStore(t);
  store.addInvitation(invitation('a'));
  const by = nodeIdText(5);
  const used = store.useInvitation('a', by, T0 + 10);
  t.match(used, { id: 'a', usedAt: T0 + 10, usedBy: by, label: 'for a' });
  t.same(used.secret, bytes(32, 0), 'returned secret is zero');
  t.same(store.getInvitation('a')?.secret, bytes(32, 0), 'stored secret is zero');
  const stored = raw(t, file).prepare("SELECT secret FROM invitations WHERE id = 'a'").pluck();
  t.same(new Uint8Array(stored.get() as Buffer), bytes(32, 0), 'zero on disk');
  rejects(t, () => store.useInvitation('a', by, T0 + 11), 'LIAISON_ERR_INVITATION_USED', 'twice');
  t.equal(store.getInvitation('a')?.usedAt, T0 + 10, 'first use kept');
});

t.test('invitations: expiry, revocation, unknown', async (t) => {
  const { store, clock } = openStore(t);
  const by = nodeIdText(5);
  store.addInvitation(invitation('exp'));
  rejects(
    t,
    () => store.useInvitation('exp', by, T0 + 60_000),
    'LIAISON_ERR_INVITATION_EXPIRED',
    'at expiresAt',
  );
  t.equal(store.getInvitation('exp')?.usedAt, null, 'not marked');
  t.same(store.getInvitation('exp')?.secret, bytes(32, 7), 'secret kept for nothing else');

  store.addInvitation(invitation('rev'));
  clock.advance(5);
  store.revokeInvitation('rev');
  t.match(store.getInvitation('rev'), { revokedAt: T0 + 5, secret: bytes(32, 0) });
  clock.advance(5);
  store.revokeInvitation('rev');
  t.equal(store.getInvitation('rev')?.revokedAt, T0 + 5, 'revoking again is a no-op');
  rejects(
    t,
    () => store.useInvitation('rev', by, T0 + 1),
    'LIAISON_ERR_INVITATION_USED',
    'revoked',
  );

  store.addInvitation(invitation('used'));
  store.useInvitation('used', by, T0 + 1);
  rejects(t, () => store.revokeInvitation('used'), 'LIAISON_ERR_CONFLICT', 'revoke used');
  rejects(t, () => store.revokeInvitation('nope'), 'LIAISON_ERR_NOT_FOUND', 'revoke unknown');
  rejects(t, () => store.useInvitation('nope', by, T0), 'LIAISON_ERR_NOT_FOUND', 'use unknown');
});

t.test('usable invitations: unused, unrevoked, unexpired', async (t) => {
  const { store } = openStore(t);
  store.addInvitation(invitation('ok1'));
  store.addInvitation(invitation('ok2', { createdAt: T0 + 1, expiresAt: T0 + 1000 }));
  store.addInvitation(invitation('short', { expiresAt: T0 + 10 }));
  store.addInvitation(invitation('used'));
  store.addInvitation(invitation('revoked'));
  store.useInvitation('used', nodeIdText(5), T0);
  store.revokeInvitation('revoked');
  const ids = (now: number) => store.usableInvitations(now).map((i) => i.id);
  t.same(ids(T0), ['ok2', 'short', 'ok1'], 'newest first, then by ID');
  t.same(ids(T0 + 10), ['ok2', 'ok1'], 'expiry is exclusive');
  t.same(ids(T0 + 1000), ['ok1']);
  t.same(store.usableInvitations(T0)[0]?.secret, bytes(32, 7), 'secrets available');
});

// --- meta ----------------------------------------------------------------------------------------

t.test('meta: get, set, overwrite', async (t) => {
  const { store } = openStore(t);
  t.equal(store.getMeta('k'), null);
  store.setMeta('k', 'one');
  store.setMeta('k', 'two');
  t.equal(store.getMeta('k'), 'two');
});

// --- corruption ------------------------------------------------------------------------------

t.test('rows corrupted behind the store are rejected on read', async (t) => {
  const cases: [string, string, string, string, (s: Store) => unknown][] = [
    [
      'short identity key',
      'peers',
      'identity_key',
      "UPDATE peers SET identity_key = x'00'",
      (s) => s.listPeers(),
    ],
    [
      'unknown status',
      'peers',
      'status',
      "UPDATE peers SET status = 'friend'",
      (s) => s.getPeer(nodeIdText(1)),
    ],
    [
      'bad node ID',
      'peers',
      'node_id',
      "UPDATE peers SET node_id = 'ln' || substr(node_id, 3, 51) || '!'",
      (s) => s.listPeers(),
    ],
    [
      'bad fingerprint',
      'peers',
      'fingerprint',
      "UPDATE peers SET fingerprint = 'abcde abcde abcde abcde abcde abcde abcde abcde'",
      (s) => s.listPeers(),
    ],
    [
      'blocked without time',
      'peers',
      'blocked_at',
      "UPDATE peers SET status = 'blocked'",
      (s) => s.listPeers(),
    ],
    [
      'unsafe integer',
      'peers',
      'paired_at',
      'UPDATE peers SET paired_at = 9007199254740993',
      (s) => s.listPeers(),
    ],
    [
      'short history key',
      'peer_dh_keys',
      'dh_key',
      "UPDATE peer_dh_keys SET dh_key = x'0102'",
      (s) => s.peerDhKeys(nodeIdText(1)),
    ],
    [
      'short secret',
      'invitations',
      'secret',
      "UPDATE invitations SET secret = x'00'",
      (s) => s.usableInvitations(T0),
    ],
    [
      'negative time',
      'invitations',
      'created_at',
      'UPDATE invitations SET created_at = -1',
      (s) => s.getInvitation('a'),
    ],
  ];
  for (const [label, table, column, sql, read] of cases) {
    const { store, file } = openStore(t);
    store.addPeer(peer(1));
    store.addInvitation(invitation('a'));
    const db = raw(t, file);
    db.pragma('ignore_check_constraints = ON');
    db.pragma('foreign_keys = OFF');
    db.exec(sql);
    rejectsWith(t, () => read(store), 'LIAISON_ERR_STORE_SCHEMA', { table, column }, label);
  }
});
