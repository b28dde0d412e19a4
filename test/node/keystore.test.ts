/**
 * The encrypted keystore: round trips, the on-disk format (checked against an independent
 * decoder written here from the format description), every refusal with its code, file modes,
 * atomic no-clobber creation, static-key rotation and passphrase change.
 */
import { chmod, cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import {
  acceptEnvelope,
  aeadDecrypt,
  aeadEncrypt,
  ARGON2ID_TEST,
  argon2id,
  concat,
  createKeyRecord,
  initCrypto,
  isLiaisonError,
  PairKeyCache,
  toHex,
  utf8,
  Writer,
  X25519PrivateKey,
} from '../../protocol/index.ts';
import type { ErrorCode, LocalIdentity } from '../../protocol/index.ts';
import {
  changePassphrase,
  createKeystore,
  KEYSTORE_FILE,
  MAX_PREVIOUS_DH_KEYS,
  openKeystore,
  rotateStaticKey,
} from '../../node/keystore.ts';
import { alice, identity, payload, seal, T0, TestView } from '../helpers/fixtures.ts';
import { rejectsAsync } from '../helpers/assert.ts';

await initCrypto();

const PASS = 'correct horse battery staple';
const OTHER = 'incorrect horse battery staple';
const FAST = { params: ARGON2ID_TEST };
const posix = process.platform !== 'win32';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'liaison-keystore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function newStore(t: Test): Promise<{ dir: string; file: string; id: LocalIdentity }> {
  const dir = await tempDir(t);
  const id = await createKeystore(dir, PASS, T0, FAST);
  return { dir, file: path.join(dir, KEYSTORE_FILE), id };
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

function secretsOf(id: LocalIdentity): Uint8Array[] {
  return [
    id.signingKey.exportSeed(),
    id.dhKey.exportSecret(),
    ...id.previousDhKeys.map((k) => k.exportSecret()),
  ];
}

function sameIdentity(t: Test, a: LocalIdentity, b: LocalIdentity): void {
  t.equal(toHex(a.nodeId), toHex(b.nodeId), 'node ID');
  t.equal(toHex(a.signingKey.exportSeed()), toHex(b.signingKey.exportSeed()), 'signing seed');
  t.equal(toHex(a.dhKey.exportSecret()), toHex(b.dhKey.exportSecret()), 'static secret');
  t.equal(toHex(a.keyRecord.bytes), toHex(b.keyRecord.bytes), 'key record');
  t.same(
    a.previousDhKeys.map((k) => toHex(k.exportSecret())),
    b.previousDhKeys.map((k) => toHex(k.exportSecret())),
    'previous static secrets',
  );
}

// --- an independent reading of the format, from its description ---

interface FileJson {
  format: unknown;
  version: unknown;
  kdf: { alg: unknown; opsLimit: number; memLimit: number; salt: string };
  cipher: unknown;
  nonce: string;
  ciphertext: string;
}

async function readJson(file: string): Promise<FileJson> {
  return JSON.parse(await readFile(file, 'utf8')) as FileJson;
}

async function writeJson(file: string, json: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(json), { mode: 0o600 });
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));

/** The associated data, spelled out literally: fixed key order, no whitespace. */
function adOf(f: FileJson): Uint8Array {
  return utf8(
    `{"format":"liaison-keystore","version":1,"kdf":{"alg":"argon2id13","opsLimit":${f.kdf.opsLimit},` +
      `"memLimit":${f.kdf.memLimit},"salt":"${f.kdf.salt}"},"cipher":"xchacha20poly1305-ietf"}`,
  );
}

function keyOf(f: FileJson, passphrase: string): Uint8Array {
  return argon2id(utf8(passphrase), unb64(f.kdf.salt), f.kdf);
}

function decryptFile(f: FileJson, passphrase: string): Uint8Array | null {
  return aeadDecrypt(keyOf(f, passphrase), unb64(f.nonce), adOf(f), unb64(f.ciphertext));
}

/** Replaces the ciphertext with a valid encryption of `plaintext` under PASS. */
function withPlaintext(f: FileJson, plaintext: Uint8Array): FileJson {
  const ct = aeadEncrypt(keyOf(f, PASS), unb64(f.nonce), adOf(f), plaintext);
  return { ...f, ciphertext: b64(ct) };
}

interface PlainParts {
  type?: number;
  version?: number;
  seed: Uint8Array;
  dh: Uint8Array;
  record: Uint8Array;
  previous: Uint8Array[];
  count?: number;
  createdAt: number;
}

function encodePlain(p: PlainParts): Uint8Array {
  const w = new Writer()
    .u8(p.type ?? 0x10)
    .u8(p.version ?? 1)
    .raw(p.seed)
    .raw(p.dh)
    .u16(p.record.length)
    .raw(p.record)
    .u8(p.count ?? p.previous.length);
  for (const k of p.previous) w.raw(k);
  return w.u64(p.createdAt).finish();
}

function partsOf(id: LocalIdentity, createdAt = T0): PlainParts {
  const [seed, dh, ...previous] = secretsOf(id);
  return { seed: seed!, dh: dh!, record: id.keyRecord.bytes, previous, createdAt };
}

// --- tests ---

t.test('create then open gives back the same identity', async (t) => {
  const { dir, file, id } = await newStore(t);
  t.equal(id.keyRecord.serial, 1);
  t.equal(id.keyRecord.issuedAt, T0);
  t.equal(id.previousDhKeys.length, 0);
  sameIdentity(t, await openKeystore(dir, PASS), id);
  t.same(await readdir(dir), [KEYSTORE_FILE], 'no temporary file left behind');
  if (posix) t.equal(await mode(file), 0o600, 'mode 0600');
});

t.test('the file follows the documented format', async (t) => {
  const { file, id } = await newStore(t);
  const f = await readJson(file);
  t.same(Object.keys(f), ['format', 'version', 'kdf', 'cipher', 'nonce', 'ciphertext']);
  t.same(Object.keys(f.kdf), ['alg', 'opsLimit', 'memLimit', 'salt']);
  t.equal(f.format, 'liaison-keystore');
  t.equal(f.version, 1);
  t.equal(f.cipher, 'xchacha20poly1305-ietf');
  t.same(
    { alg: f.kdf.alg, opsLimit: f.kdf.opsLimit, memLimit: f.kdf.memLimit },
    { alg: 'argon2id13', ...ARGON2ID_TEST },
  );
  t.equal(unb64(f.kdf.salt).length, 16);
  t.equal(unb64(f.nonce).length, 24);
  const plain = decryptFile(f, PASS);
  t.ok(plain, 'decrypts with the literal associated data');
  t.equal(toHex(plain!), toHex(encodePlain(partsOf(id))), 'plaintext layout');
});

t.test('each write draws a fresh salt and nonce', async (t) => {
  const { dir, file } = await newStore(t);
  const before = await readJson(file);
  await changePassphrase(dir, PASS, PASS, FAST);
  const after = await readJson(file);
  t.not(after.kdf.salt, before.kdf.salt);
  t.not(after.nonce, before.nonce);
});

t.test('a wrong passphrase opens nothing and changes nothing', async (t) => {
  const { dir, file } = await newStore(t);
  const bytes = await readFile(file);
  await rejectsAsync(t, openKeystore(dir, OTHER), 'LIAISON_ERR_KEYSTORE_PASSPHRASE', 'open');
  await rejectsAsync(t, openKeystore(dir, ''), 'LIAISON_ERR_KEYSTORE_PASSPHRASE', 'empty');
  await rejectsAsync(
    t,
    rotateStaticKey(dir, OTHER, T0 + 1, FAST),
    'LIAISON_ERR_KEYSTORE_PASSPHRASE',
    'rotate',
  );
  await rejectsAsync(
    t,
    changePassphrase(dir, OTHER, 'a brand new passphrase', FAST),
    'LIAISON_ERR_KEYSTORE_PASSPHRASE',
    'change',
  );
  t.ok((await readFile(file)).equals(bytes), 'file unchanged');
  try {
    await openKeystore(dir, OTHER);
  } catch (err) {
    t.notMatch(String(err), OTHER, 'the passphrase is not echoed');
  }
});

t.test('a keystore readable or writable by others is refused', { skip: !posix }, async (t) => {
  const { dir, file } = await newStore(t);
  for (const m of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660]) {
    await chmod(file, m);
    await rejectsAsync(
      t,
      openKeystore(dir, PASS),
      'LIAISON_ERR_KEYSTORE_PERMISSIONS',
      m.toString(8),
    );
  }
  await chmod(file, 0o400);
  t.ok(await openKeystore(dir, PASS), 'owner-only modes are fine');
});

t.test('tampering is detected with the right code', async (t) => {
  const { dir, file } = await newStore(t);
  const good = await readJson(file);
  const flip = (text: string, at = 0): string => {
    const bytes = unb64(text);
    bytes[at] = bytes[at]! ^ 1;
    return b64(bytes);
  };
  const kdf = (over: Record<string, unknown>) => ({ ...good, kdf: { ...good.kdf, ...over } });
  const cases: [string, unknown, ErrorCode][] = [
    // Fields the AEAD authenticates: a change fails the tag.
    ['salt flipped', kdf({ salt: flip(good.kdf.salt) }), 'LIAISON_ERR_KEYSTORE_PASSPHRASE'],
    ['nonce flipped', { ...good, nonce: flip(good.nonce) }, 'LIAISON_ERR_KEYSTORE_PASSPHRASE'],
    [
      'ciphertext flipped',
      { ...good, ciphertext: flip(good.ciphertext, 40) },
      'LIAISON_ERR_KEYSTORE_PASSPHRASE',
    ],
    [
      'tag flipped',
      { ...good, ciphertext: flip(good.ciphertext, unb64(good.ciphertext).length - 1) },
      'LIAISON_ERR_KEYSTORE_PASSPHRASE',
    ],
    ['opsLimit changed', kdf({ opsLimit: 2 }), 'LIAISON_ERR_KEYSTORE_PASSPHRASE'],
    ['memLimit changed', kdf({ memLimit: 16384 }), 'LIAISON_ERR_KEYSTORE_PASSPHRASE'],
    // Structure: refused before any derivation.
    ['version 2', { ...good, version: 2 }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['version 0', { ...good, version: 0 }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['version as text', { ...good, version: '1' }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['other format', { ...good, format: 'other' }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['other cipher', { ...good, cipher: 'aes-256-gcm' }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['other kdf', kdf({ alg: 'argon2i13' }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['opsLimit 0', kdf({ opsLimit: 0 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['opsLimit fractional', kdf({ opsLimit: 1.5 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['opsLimit as text', kdf({ opsLimit: '1' }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['opsLimit huge', kdf({ opsLimit: 2 ** 32 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['memLimit below floor', kdf({ memLimit: 4096 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['memLimit negative', kdf({ memLimit: -8192 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['salt short', kdf({ salt: b64(new Uint8Array(15)) }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['salt long', kdf({ salt: b64(new Uint8Array(17)) }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['salt not base64', kdf({ salt: '!'.repeat(24) }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    [
      'salt unpadded',
      kdf({ salt: good.kdf.salt.replace(/=+$/, '') }),
      'LIAISON_ERR_KEYSTORE_CORRUPT',
    ],
    [
      'nonce short',
      { ...good, nonce: b64(unb64(good.nonce).subarray(1)) },
      'LIAISON_ERR_KEYSTORE_CORRUPT',
    ],
    ['nonce missing', { ...good, nonce: undefined }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    [
      'ciphertext truncated',
      { ...good, ciphertext: b64(unb64(good.ciphertext).subarray(0, 100)) },
      'LIAISON_ERR_KEYSTORE_CORRUPT',
    ],
    ['ciphertext empty', { ...good, ciphertext: '' }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    [
      'ciphertext too long',
      { ...good, ciphertext: b64(new Uint8Array(4096)) },
      'LIAISON_ERR_KEYSTORE_CORRUPT',
    ],
    ['extra field', { ...good, hint: 'x' }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['extra kdf field', kdf({ parallelism: 1 }), 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['kdf not an object', { ...good, kdf: [1] }, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['array', [good], 'LIAISON_ERR_KEYSTORE_CORRUPT'],
    ['null', null, 'LIAISON_ERR_KEYSTORE_CORRUPT'],
  ];
  for (const [label, json, code] of cases) {
    await writeJson(file, json);
    await rejectsAsync(t, openKeystore(dir, PASS), code, label);
  }
  for (const [label, text] of [
    ['empty file', ''],
    ['not JSON', '{"format":'],
    ['binary', '\u0000\u0001\u0002'],
    ['too large', JSON.stringify(good) + ' '.repeat(65 * 1024)],
  ]) {
    await writeFile(file, text!, { mode: 0o600 });
    await rejectsAsync(t, openKeystore(dir, PASS), 'LIAISON_ERR_KEYSTORE_CORRUPT', label!);
  }
  await writeJson(file, good);
  t.ok(await openKeystore(dir, PASS), 'the untouched file still opens');
});

t.test('absurd KDF costs are refused before any derivation', async (t) => {
  const { dir, file } = await newStore(t);
  const good = await readJson(file);
  // 2^40 is beyond libsodium (the wrapper would say ARGUMENT); 2^31 and just over 1 GiB are
  // within it, and deriving would allocate that much and answer PASSPHRASE, not CORRUPT.
  for (const memLimit of [2 ** 40, 2 ** 31, 2 ** 30 + 1024]) {
    await writeJson(file, { ...good, kdf: { ...good.kdf, memLimit } });
    const start = performance.now();
    await rejectsAsync(t, openKeystore(dir, PASS), 'LIAISON_ERR_KEYSTORE_CORRUPT', `${memLimit}`);
    t.ok(performance.now() - start < 1000, 'refused at once');
  }
});

t.test('a plaintext that authenticates but is malformed is corrupt', async (t) => {
  const { dir, file, id } = await newStore(t);
  const good = await readJson(file);
  const base = partsOf(id);
  const other = identity(7);
  const extra = X25519PrivateKey.generate().exportSecret();
  const foreignRecord = createKeyRecord(
    id.signingKey,
    id.nodeId,
    X25519PrivateKey.generate().publicKey,
    1,
    T0,
  ).bytes;
  const badSig = Uint8Array.from(id.keyRecord.bytes);
  badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 1;
  const cases: [string, Uint8Array][] = [
    ['wrong type', encodePlain({ ...base, type: 0x11 })],
    ['wrong version', encodePlain({ ...base, version: 2 })],
    ['truncated', encodePlain(base).subarray(0, 200)],
    ['trailing byte', concat(encodePlain(base), new Uint8Array(1))],
    ['too many previous keys', encodePlain({ ...base, previous: Array(9).fill(extra) })],
    ['count beyond the keys', encodePlain({ ...base, previous: [extra], count: 2 })],
    ['record certifies another static key', encodePlain({ ...base, record: foreignRecord })],
    ['record of another node', encodePlain({ ...base, record: other.keyRecord.bytes })],
    ['record signature broken', encodePlain({ ...base, record: badSig })],
    ['record truncated', encodePlain({ ...base, record: id.keyRecord.bytes.subarray(1) })],
    ['static secret of another node', encodePlain({ ...base, dh: other.dhKey.exportSecret() })],
    ['seed of another node', encodePlain({ ...base, seed: other.signingKey.exportSeed() })],
  ];
  for (const [label, plain] of cases) {
    await writeJson(file, withPlaintext(good, plain));
    await rejectsAsync(t, openKeystore(dir, PASS), 'LIAISON_ERR_KEYSTORE_CORRUPT', label);
  }
  await writeJson(file, withPlaintext(good, encodePlain({ ...base, previous: [extra] })));
  const opened = await openKeystore(dir, PASS);
  t.equal(toHex(opened.previousDhKeys[0]!.exportSecret()), toHex(extra), 'a valid one opens');
});

t.test('a missing keystore says so', async (t) => {
  const dir = await tempDir(t);
  await rejectsAsync(t, openKeystore(dir, PASS), 'LIAISON_ERR_KEYSTORE_MISSING', 'empty dir');
  await rejectsAsync(
    t,
    openKeystore(path.join(dir, 'nope'), PASS),
    'LIAISON_ERR_KEYSTORE_MISSING',
    'no dir',
  );
  await rejectsAsync(
    t,
    rotateStaticKey(dir, PASS, T0, FAST),
    'LIAISON_ERR_KEYSTORE_MISSING',
    'rotate',
  );
});

t.test('an existing keystore is never overwritten', async (t) => {
  const { dir, file } = await newStore(t);
  const bytes = await readFile(file);
  await rejectsAsync(
    t,
    createKeystore(dir, PASS, T0, FAST),
    'LIAISON_ERR_KEYSTORE_EXISTS',
    'again',
  );
  t.ok((await readFile(file)).equals(bytes), 'file unchanged');

  const race = await tempDir(t);
  const results = await Promise.allSettled([
    createKeystore(race, PASS, T0, FAST),
    createKeystore(race, PASS, T0, FAST),
  ]);
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one create wins');
  const lost = results.find((r) => r.status === 'rejected');
  t.ok(lost && isLiaisonError(lost.reason, 'LIAISON_ERR_KEYSTORE_EXISTS'), 'the other: EXISTS');
  t.same(await readdir(race), [KEYSTORE_FILE], 'no temporary file left behind');
  const winner = results.find((r) => r.status === 'fulfilled');
  if (winner?.status === 'fulfilled') sameIdentity(t, await openKeystore(race, PASS), winner.value);
});

t.test('a short or empty passphrase is refused', async (t) => {
  const dir = await tempDir(t);
  for (const p of ['', 'short', 'elevenchars', '😀'.repeat(11)]) {
    try {
      await createKeystore(dir, p, T0, FAST);
      t.fail(`accepted ${JSON.stringify(p)}`);
    } catch (err) {
      t.ok(isLiaisonError(err, 'LIAISON_ERR_ARGUMENT'), `refused ${p.length} units`);
      if (isLiaisonError(err)) t.equal(err.detail?.field, 'passphrase');
    }
  }
  await rejectsAsync(
    t,
    createKeystore(dir, 'ab\ud800cdefghijkl', T0, FAST),
    'LIAISON_ERR_ARGUMENT',
    'lone surrogate',
  );
  t.same(await readdir(dir), [], 'nothing written');
  t.ok(await createKeystore(dir, 'δ'.repeat(12), T0, FAST), '12 code points are enough');
  t.ok(await openKeystore(dir, 'δ'.repeat(12)));
});

t.test('bad arguments are refused before anything is written', async (t) => {
  const dir = await tempDir(t);
  await rejectsAsync(t, createKeystore(dir, PASS, -1, FAST), 'LIAISON_ERR_ARGUMENT', 'now < 0');
  await rejectsAsync(t, createKeystore(dir, PASS, 1.5, FAST), 'LIAISON_ERR_ARGUMENT', 'now 1.5');
  await rejectsAsync(
    t,
    createKeystore(dir, PASS, T0, { params: { opsLimit: 1, memLimit: 2 ** 31 } }),
    'LIAISON_ERR_ARGUMENT',
    'params above the ceiling',
  );
  await rejectsAsync(
    t,
    createKeystore(dir, PASS, T0, { params: { opsLimit: 0, memLimit: 8192 } }),
    'LIAISON_ERR_ARGUMENT',
    'params below the floor',
  );
  t.same(await readdir(dir), [], 'nothing written');
});

t.test('rotating the static key', async (t) => {
  const { dir, file, id: old } = await newStore(t);
  const toOld = seal(alice, {}, [old]);
  const rotated = await rotateStaticKey(dir, PASS, T0 + 5000, FAST);
  if (posix) t.equal(await mode(file), 0o600, 'mode 0600 after rotation');
  t.same(await readdir(dir), [KEYSTORE_FILE], 'no temporary file left behind');

  t.equal(rotated.keyRecord.serial, 2, 'serial incremented');
  t.equal(rotated.keyRecord.issuedAt, T0 + 5000);
  t.equal(toHex(rotated.nodeId), toHex(old.nodeId), 'same node');
  t.equal(toHex(rotated.keyRecord.nodeId), toHex(old.nodeId));
  t.equal(
    toHex(rotated.keyRecord.identityKey.bytes),
    toHex(old.signingKey.publicKey.bytes),
    'certified by the same identity key',
  );
  t.equal(toHex(rotated.keyRecord.dhKey.bytes), toHex(rotated.dhKey.publicKey.bytes));
  t.not(toHex(rotated.dhKey.exportSecret()), toHex(old.dhKey.exportSecret()), 'a new key');
  t.same(
    rotated.previousDhKeys.map((k) => toHex(k.exportSecret())),
    [toHex(old.dhKey.exportSecret())],
    'old key kept',
  );
  const reopened = await openKeystore(dir, PASS);
  sameIdentity(t, reopened, rotated);

  const toNew = seal(alice, {}, [rotated]);
  const accept = (bytes: Uint8Array, me: LocalIdentity) =>
    acceptEnvelope(bytes, me, new TestView(alice), T0 + 1000, new PairKeyCache(), alice.nodeId);
  for (const me of [rotated, reopened]) {
    t.equal(accept(toOld.bytes, me).payload.subject, payload.subject, 'sealed to the old key');
    t.equal(accept(toNew.bytes, me).payload.subject, payload.subject, 'sealed to the new key');
  }
  t.throws(
    () => accept(toOld.bytes, { ...rotated, previousDhKeys: [] }),
    { code: 'LIAISON_ERR_RECIPIENT_KEY_UNKNOWN' },
    'it is the kept key that opens the old envelope',
  );
});

t.test('previous static keys are capped, newest first', async (t) => {
  const { dir } = await newStore(t);
  const currents: string[] = [];
  let id = await openKeystore(dir, PASS);
  for (let i = 0; i < MAX_PREVIOUS_DH_KEYS + 3; i++) {
    currents.unshift(toHex(id.dhKey.exportSecret()));
    id = await rotateStaticKey(dir, PASS, T0 + i + 1, FAST);
  }
  t.equal(id.keyRecord.serial, MAX_PREVIOUS_DH_KEYS + 4);
  const kept = (await openKeystore(dir, PASS)).previousDhKeys.map((k) => toHex(k.exportSecret()));
  t.same(kept, currents.slice(0, MAX_PREVIOUS_DH_KEYS));
});

t.test('changing the passphrase', async (t) => {
  const { dir, file, id } = await newStore(t);
  const next = 'a brand new passphrase';
  await rejectsAsync(
    t,
    changePassphrase(dir, PASS, 'too short', FAST),
    'LIAISON_ERR_ARGUMENT',
    'short new passphrase',
  );
  await changePassphrase(dir, PASS, next, FAST);
  if (posix) t.equal(await mode(file), 0o600, 'mode 0600 after the change');
  await rejectsAsync(t, openKeystore(dir, PASS), 'LIAISON_ERR_KEYSTORE_PASSPHRASE', 'old');
  sameIdentity(t, await openKeystore(dir, next), id);
  t.same(await readdir(dir), [KEYSTORE_FILE], 'no temporary file left behind');
});

t.test('a stolen copy of the data directory yields no key bytes', async (t) => {
  const { dir } = await newStore(t);
  const rotated = await rotateStaticKey(dir, PASS, T0 + 1, FAST);
  const stolen = await tempDir(t);
  await cp(dir, stolen, { recursive: true });
  const bytes = await readFile(path.join(stolen, KEYSTORE_FILE));
  const text = bytes.toString('latin1');
  for (const [i, secret] of secretsOf(rotated).entries()) {
    const buf = Buffer.from(secret);
    t.equal(bytes.indexOf(buf), -1, `secret ${i}: raw bytes absent`);
    t.notOk(text.includes(toHex(secret)), `secret ${i}: hex absent`);
    t.notOk(text.includes(buf.toString('base64').slice(0, 40)), `secret ${i}: base64 absent`);
  }
  for (const guess of ['', 'password1234', OTHER]) {
    await rejectsAsync(t, openKeystore(stolen, guess), 'LIAISON_ERR_KEYSTORE_PASSPHRASE', 'guess');
  }
});
