/**
 * The node's keystore: its secret keys, encrypted at rest (DESIGN: "Keys at rest: encrypted with a
 * key derived by Argon2id from an operator passphrase; files 0600. A stolen data directory without
 * the passphrase yields no keys.").
 *
 * `keystore.json` holds the Argon2id parameters and salt, a random 24-byte nonce and the
 * XChaCha20-Poly1305 ciphertext of a canonical binary plaintext (type 0x10, version 1):
 *
 *   signing seed (32) | static secret (32) | key record (u16 length + bytes)
 *   | previous static secrets (u8 count <= MAX_PREVIOUS_DH_KEYS, 32 each, newest first)
 *   | createdAt (u64, ms)
 *
 * The AEAD associated data is the canonical JSON of every field but `nonce` and `ciphertext`, so
 * the format, version, cipher and KDF parameters cannot be swapped or downgraded unnoticed.
 * Writes are atomic (temporary file, fsync, rename, fsync of the directory). Key material never
 * appears in a log line or an error.
 */
import { constants as fsConstants } from 'node:fs';
import { link, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  ARGON2ID_MODERATE,
  ARGON2ID_SALT_BYTES,
  argon2id,
  createKeyRecord,
  createLocalIdentity,
  decodeKeyRecord,
  deriveNodeId,
  ED25519_SEED_BYTES,
  Ed25519PrivateKey,
  equalBytes,
  isLiaisonError,
  KEY_RECORD_BYTES,
  LiaisonError,
  randomBytes,
  Reader,
  readPreamble,
  toHex,
  utf8,
  wipe,
  Writer,
  X25519_KEY_BYTES,
  X25519PrivateKey,
} from '../protocol/index.ts';
import type { Argon2idParams, KeyRecord, LocalIdentity } from '../protocol/index.ts';

export const KEYSTORE_FILE = 'keystore.json';

/** Shortest passphrase accepted when one is set, in Unicode code points. */
export const MIN_PASSPHRASE_CHARS = 12;
/** Retired static keys kept for opening envelopes sealed before a peer learned of a rotation. */
export const MAX_PREVIOUS_DH_KEYS = 8;
/** A keystore is about 1 KiB; anything much larger is not one, and is refused before reading. */
export const MAX_KEYSTORE_FILE_BYTES = 64 * 1024;
/** KDF bounds accepted from a file. The floor is libsodium's minimum. */
export const KDF_MIN_OPS_LIMIT = 1;
export const KDF_MIN_MEM_LIMIT = 8192;
/** Ceilings: a tampered file must not make the node allocate or compute without bound. */
export const KDF_MAX_OPS_LIMIT = 16;
export const KDF_MAX_MEM_LIMIT = 1024 * 1024 * 1024;

const FORMAT = 'liaison-keystore';
const VERSION = 1;
const KDF_ALG = 'argon2id13';
const CIPHER = 'xchacha20poly1305-ietf';
const PLAINTEXT_TYPE = 0x10;
const PLAINTEXT_VERSION = 1;
const FILE_MODE = 0o600;

/** Plaintext sizes with none and with the maximum of previous keys. */
const PLAINTEXT_MIN_BYTES =
  2 + ED25519_SEED_BYTES + X25519_KEY_BYTES + 2 + KEY_RECORD_BYTES + 1 + 8;
const PLAINTEXT_MAX_BYTES = PLAINTEXT_MIN_BYTES + MAX_PREVIOUS_DH_KEYS * X25519_KEY_BYTES;

export interface KeystoreOptions {
  /** Argon2id cost for the key-encryption key; default ARGON2ID_MODERATE. */
  readonly params?: Argon2idParams;
}

/** Everything the plaintext holds. */
interface KeystoreState {
  readonly identity: LocalIdentity;
  readonly createdAt: number;
}

/** The decoded, validated file: every field except the ciphertext enters the associated data. */
interface KeystoreEnvelope {
  readonly params: Argon2idParams;
  readonly salt: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/**
 * Creates the keystore of a new node with fresh keys and returns its identity.
 * @throws LIAISON_ERR_KEYSTORE_EXISTS (nothing is overwritten), LIAISON_ERR_ARGUMENT
 */
export async function createKeystore(
  dataDir: string,
  passphrase: string,
  now: number,
  options?: KeystoreOptions,
): Promise<LocalIdentity> {
  checkNewPassphrase(passphrase, 'passphrase');
  checkTime(now);
  const params = paramsOf(options);
  const file = path.join(dataDir, KEYSTORE_FILE);
  // Checked first so a second init fails fast; link() below closes the race for real.
  if (await exists(file)) throw new LiaisonError('LIAISON_ERR_KEYSTORE_EXISTS');
  const identity = freshIdentity(now);
  const text = seal({ identity, createdAt: now }, passphrase, params);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeAtomic(dataDir, text, false);
  return identity;
}

/**
 * Opens the keystore and returns the node's identity, previous static keys included.
 * @throws LIAISON_ERR_KEYSTORE_MISSING, LIAISON_ERR_KEYSTORE_PERMISSIONS,
 *   LIAISON_ERR_KEYSTORE_CORRUPT, LIAISON_ERR_KEYSTORE_PASSPHRASE
 */
export async function openKeystore(dataDir: string, passphrase: string): Promise<LocalIdentity> {
  return (await load(dataDir, passphrase)).identity;
}

/**
 * Replaces the static DH key with a fresh one certified by a key record of the next serial. The
 * old key is kept, newest first, so envelopes sealed to it by peers that have not yet seen the
 * new record still open.
 * @throws as openKeystore, and LIAISON_ERR_ARGUMENT
 */
export async function rotateStaticKey(
  dataDir: string,
  passphrase: string,
  now: number,
  options?: KeystoreOptions,
): Promise<LocalIdentity> {
  checkTime(now);
  const params = paramsOf(options);
  const { identity: old, createdAt } = await load(dataDir, passphrase);
  const dhKey = X25519PrivateKey.generate();
  const keyRecord = createKeyRecord(
    old.signingKey,
    old.nodeId,
    dhKey.publicKey,
    old.keyRecord.serial + 1,
    now,
  );
  const previousDhKeys = [old.dhKey, ...old.previousDhKeys].slice(0, MAX_PREVIOUS_DH_KEYS);
  const identity: LocalIdentity = { ...old, dhKey, keyRecord, previousDhKeys };
  await writeAtomic(dataDir, seal({ identity, createdAt }, passphrase, params), true);
  return identity;
}

/**
 * Re-encrypts the keystore under a new passphrase, with a fresh salt and nonce.
 * @throws as openKeystore, and LIAISON_ERR_ARGUMENT for a too short new passphrase
 */
export async function changePassphrase(
  dataDir: string,
  oldPassphrase: string,
  newPassphrase: string,
  options?: KeystoreOptions,
): Promise<void> {
  checkNewPassphrase(newPassphrase, 'newPassphrase');
  const params = paramsOf(options);
  const state = await load(dataDir, oldPassphrase);
  await writeAtomic(dataDir, seal(state, newPassphrase, params), true);
}

// --- arguments ---

function checkNewPassphrase(passphrase: string, field: string): void {
  // Counted in code points, so a passphrase in any script gets the same minimum.
  if ([...passphrase].length < MIN_PASSPHRASE_CHARS) {
    throw new LiaisonError(
      'LIAISON_ERR_ARGUMENT',
      `${field} must be at least ${MIN_PASSPHRASE_CHARS} characters`,
      { field },
    );
  }
  // A lone surrogate would be encoded as U+FFFD: two different strings, one key.
  if (!passphrase.isWellFormed()) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${field} is not well-formed Unicode`, {
      field,
    });
  }
}

function checkTime(now: number): void {
  if (!Number.isSafeInteger(now) || now < 0) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'now must be a non-negative integer (ms)', {
      field: 'now',
    });
  }
}

/** The caller's KDF parameters, held to the bounds a file is held to, so we never write one we would refuse. */
function paramsOf(options: KeystoreOptions | undefined): Argon2idParams {
  const params = options?.params ?? ARGON2ID_MODERATE;
  if (!kdfParamsInBounds(params.opsLimit, params.memLimit)) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'argon2id parameters out of bounds', {
      field: 'params',
    });
  }
  return params;
}

function kdfParamsInBounds(opsLimit: number, memLimit: number): boolean {
  return (
    Number.isSafeInteger(opsLimit) &&
    Number.isSafeInteger(memLimit) &&
    opsLimit >= KDF_MIN_OPS_LIMIT &&
    opsLimit <= KDF_MAX_OPS_LIMIT &&
    memLimit >= KDF_MIN_MEM_LIMIT &&
    memLimit <= KDF_MAX_MEM_LIMIT
  );
}

function freshIdentity(now: number): LocalIdentity {
  const seed = randomBytes(ED25519_SEED_BYTES);
  const dhSecret = randomBytes(X25519_KEY_BYTES);
  try {
    return createLocalIdentity(seed, dhSecret, now);
  } finally {
    wipe(seed);
    wipe(dhSecret);
  }
}

// --- encryption ---

/** Encrypts `state` under a key derived from `passphrase` with a fresh salt and nonce. */
function seal(state: KeystoreState, passphrase: string, params: Argon2idParams): string {
  const salt = randomBytes(ARGON2ID_SALT_BYTES);
  const nonce = randomBytes(AEAD_NONCE_BYTES);
  const plaintext = encodePlaintext(state);
  let key: Uint8Array | null = null;
  try {
    key = deriveKey(passphrase, salt, params);
    const ciphertext = aeadEncrypt(key, nonce, associatedData(params, salt), plaintext);
    return serialize({ params, salt, nonce, ciphertext });
  } finally {
    if (key !== null) wipe(key);
    wipe(plaintext);
  }
}

/**
 * Decrypts and decodes the file.
 * @throws LIAISON_ERR_KEYSTORE_PASSPHRASE, LIAISON_ERR_KEYSTORE_CORRUPT
 */
function unseal(file: KeystoreEnvelope, passphrase: string): KeystoreState {
  const key = deriveKey(passphrase, file.salt, file.params);
  let plaintext: Uint8Array | null;
  try {
    plaintext = aeadDecrypt(
      key,
      file.nonce,
      associatedData(file.params, file.salt),
      file.ciphertext,
    );
  } finally {
    wipe(key);
  }
  // A wrong passphrase and a tampered salt, nonce, parameter or ciphertext all fail the same tag
  // check; they cannot be told apart, and telling them apart would help an attacker.
  if (plaintext === null) throw new LiaisonError('LIAISON_ERR_KEYSTORE_PASSPHRASE');
  try {
    return decodePlaintext(plaintext);
  } finally {
    wipe(plaintext);
  }
}

function deriveKey(passphrase: string, salt: Uint8Array, params: Argon2idParams): Uint8Array {
  const bytes = utf8(passphrase);
  try {
    return argon2id(bytes, salt, params);
  } finally {
    wipe(bytes);
  }
}

/** Canonical JSON of the authenticated fields, keys in a fixed order. */
function associatedData(params: Argon2idParams, salt: Uint8Array): Uint8Array {
  return utf8(JSON.stringify(headerOf(params, salt)));
}

function headerOf(params: Argon2idParams, salt: Uint8Array) {
  return {
    format: FORMAT,
    version: VERSION,
    kdf: {
      alg: KDF_ALG,
      opsLimit: params.opsLimit,
      memLimit: params.memLimit,
      salt: toBase64(salt),
    },
    cipher: CIPHER,
  };
}

function serialize(file: KeystoreEnvelope): string {
  const body = {
    ...headerOf(file.params, file.salt),
    nonce: toBase64(file.nonce),
    ciphertext: toBase64(file.ciphertext),
  };
  return `${JSON.stringify(body, null, 2)}\n`;
}

// --- plaintext ---

/** The canonical plaintext, exactly sized so the Writer never leaves a stray copy behind. */
function encodePlaintext(state: KeystoreState): Uint8Array {
  const { identity } = state;
  const previous = identity.previousDhKeys.slice(0, MAX_PREVIOUS_DH_KEYS);
  const secrets = [
    identity.signingKey.exportSeed(),
    identity.dhKey.exportSecret(),
    ...previous.map((k) => k.exportSecret()),
  ];
  try {
    const w = new Writer(PLAINTEXT_MIN_BYTES + previous.length * X25519_KEY_BYTES)
      .u8(PLAINTEXT_TYPE)
      .u8(PLAINTEXT_VERSION)
      .fixed(secrets[0]!, ED25519_SEED_BYTES, 'signingSeed')
      .fixed(secrets[1]!, X25519_KEY_BYTES, 'dhSecret')
      .bytes(identity.keyRecord.bytes, 2, KEY_RECORD_BYTES, 'keyRecord', KEY_RECORD_BYTES)
      .u8(previous.length, 'previousDhKeys');
    for (const s of secrets.slice(2)) w.fixed(s, X25519_KEY_BYTES, 'previousDhKey');
    return w.u64(state.createdAt, 'createdAt').finishView();
  } finally {
    for (const s of secrets) wipe(s);
  }
}

/**
 * Decodes and cross-checks the plaintext. Key objects copy what they keep, so the caller may wipe
 * `plaintext` afterwards.
 * @throws LIAISON_ERR_KEYSTORE_CORRUPT
 */
function decodePlaintext(plaintext: Uint8Array): KeystoreState {
  try {
    const r = new Reader(plaintext);
    readPreamble(r, PLAINTEXT_TYPE, PLAINTEXT_VERSION, 'keystore');
    const signingKey = Ed25519PrivateKey.fromSeed(r.fixed(ED25519_SEED_BYTES, 'signingSeed'));
    const dhKey = X25519PrivateKey.fromBytes(r.fixed(X25519_KEY_BYTES, 'dhSecret'));
    const keyRecord = decodeKeyRecord(r.bytes(2, KEY_RECORD_BYTES, 'keyRecord', KEY_RECORD_BYTES));
    const count = r.length(1, MAX_PREVIOUS_DH_KEYS, 'previousDhKeys');
    const previousDhKeys: X25519PrivateKey[] = [];
    for (let i = 0; i < count; i++) {
      previousDhKeys.push(X25519PrivateKey.fromBytes(r.fixed(X25519_KEY_BYTES, 'previousDhKey')));
    }
    const createdAt = r.u64('createdAt');
    r.end('keystore');
    checkRecord(keyRecord, signingKey, dhKey);
    const identity = { nodeId: keyRecord.nodeId, signingKey, dhKey, keyRecord, previousDhKeys };
    return { identity, createdAt };
  } catch (err) {
    if (!isLiaisonError(err) || err.code === 'LIAISON_ERR_CRYPTO_NOT_READY') throw err;
    // Only the code and field name go into the error: never bytes of the plaintext.
    const field = typeof err.detail?.field === 'string' ? err.detail.field : 'plaintext';
    throw new LiaisonError('LIAISON_ERR_KEYSTORE_CORRUPT', `bad plaintext (${err.code})`, {
      field,
    });
  }
}

/**
 * The record must certify our current static key under our identity key, for the node ID that
 * key derives. Version 1 stores only the genesis identity key; identity-key rotation needs a new
 * version carrying the key history.
 */
function checkRecord(
  record: KeyRecord,
  signingKey: Ed25519PrivateKey,
  dhKey: X25519PrivateKey,
): void {
  if (
    !equalBytes(record.identityKey.bytes, signingKey.publicKey.bytes) ||
    !equalBytes(record.dhKey.bytes, dhKey.publicKey.bytes) ||
    !equalBytes(record.nodeId, deriveNodeId(signingKey.publicKey))
  ) {
    throw new LiaisonError('LIAISON_ERR_KEY_RECORD_INVALID', 'keyRecord does not match the keys', {
      field: 'keyRecord',
    });
  }
}

// --- the file ---

async function load(dataDir: string, passphrase: string): Promise<KeystoreState> {
  const text = await readKeystoreFile(path.join(dataDir, KEYSTORE_FILE));
  return unseal(parseKeystore(text), passphrase);
}

/**
 * Reads the file through one handle, so the mode and size checked are those of the bytes read.
 * @throws LIAISON_ERR_KEYSTORE_MISSING, LIAISON_ERR_KEYSTORE_PERMISSIONS, LIAISON_ERR_KEYSTORE_CORRUPT
 */
async function readKeystoreFile(file: string): Promise<string> {
  let fh: FileHandle;
  try {
    fh = await open(file, fsConstants.O_RDONLY);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new LiaisonError('LIAISON_ERR_KEYSTORE_MISSING');
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw corrupt('not a regular file', 'file');
    // Windows has no POSIX mode bits: Node reports 0o666 for every writable file.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new LiaisonError(
        'LIAISON_ERR_KEYSTORE_PERMISSIONS',
        `mode ${(st.mode & 0o777).toString(8)}; run chmod 600 ${KEYSTORE_FILE}`,
      );
    }
    if (st.size > MAX_KEYSTORE_FILE_BYTES) throw corrupt('file too large', 'file');
    const bytes = await fh.readFile();
    if (bytes.length > MAX_KEYSTORE_FILE_BYTES) throw corrupt('file too large', 'file');
    return bytes.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Decodes and validates the JSON, KDF bounds included, before any key derivation.
 * @throws LIAISON_ERR_KEYSTORE_CORRUPT
 */
function parseKeystore(text: string): KeystoreEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw corrupt('not JSON', 'file');
  }
  const top = exactObject(json, ['format', 'version', 'kdf', 'cipher', 'nonce', 'ciphertext'], '');
  if (top.format !== FORMAT) throw corrupt('not a Liaison keystore', 'format');
  if (top.version !== VERSION) throw corrupt('unsupported version', 'version');
  if (top.cipher !== CIPHER) throw corrupt('unsupported cipher', 'cipher');
  const kdf = exactObject(top.kdf, ['alg', 'opsLimit', 'memLimit', 'salt'], 'kdf');
  if (kdf.alg !== KDF_ALG) throw corrupt('unsupported KDF', 'kdf.alg');
  const { opsLimit, memLimit } = kdf;
  if (typeof opsLimit !== 'number' || typeof memLimit !== 'number') {
    throw corrupt('KDF parameters must be numbers', 'kdf');
  }
  if (!kdfParamsInBounds(opsLimit, memLimit)) throw corrupt('KDF parameters out of bounds', 'kdf');
  const salt = base64Field(kdf.salt, 'kdf.salt', ARGON2ID_SALT_BYTES, ARGON2ID_SALT_BYTES);
  const nonce = base64Field(top.nonce, 'nonce', AEAD_NONCE_BYTES, AEAD_NONCE_BYTES);
  const ciphertext = base64Field(
    top.ciphertext,
    'ciphertext',
    PLAINTEXT_MIN_BYTES + AEAD_TAG_BYTES,
    PLAINTEXT_MAX_BYTES + AEAD_TAG_BYTES,
  );
  return { params: { opsLimit, memLimit }, salt, nonce, ciphertext };
}

/** A plain JSON object with exactly `keys`; unknown fields are refused, not ignored. */
function exactObject<K extends string>(
  value: unknown,
  keys: readonly K[],
  field: string,
): Record<K, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw corrupt('expected an object', field || 'file');
  }
  const present = Object.keys(value);
  if (present.length !== keys.length || !keys.every((k) => Object.hasOwn(value, k))) {
    throw corrupt('unexpected or missing fields', field || 'file');
  }
  return value as Record<K, unknown>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Canonical padded base64 of a length in [min, max], checked before decoding. */
function base64Field(value: unknown, field: string, min: number, max: number): Uint8Array {
  if (typeof value !== 'string' || value.length > Math.ceil(max / 3) * 4 || !BASE64.test(value)) {
    throw corrupt('not canonical base64', field);
  }
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  // The pattern admits non-zero padding bits; a re-encoding comparison refuses them.
  if (toBase64(bytes) !== value) throw corrupt('not canonical base64', field);
  if (bytes.length < min || bytes.length > max) throw corrupt('wrong length', field);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

function corrupt(why: string, field: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_KEYSTORE_CORRUPT', `${field}: ${why}`, { field });
}

/**
 * Writes `text` as the keystore atomically: a 0600 temporary file in the same directory, fsynced,
 * then moved into place, then the directory fsynced so the new name survives a crash. A new
 * keystore is linked into place, which fails if one appeared meanwhile; a rewrite renames over
 * the old file.
 * @throws LIAISON_ERR_KEYSTORE_EXISTS when creating and a keystore exists
 */
async function writeAtomic(dataDir: string, text: string, replace: boolean): Promise<void> {
  const target = path.join(dataDir, KEYSTORE_FILE);
  const temp = path.join(dataDir, `.${KEYSTORE_FILE}.${toHex(randomBytes(8))}.tmp`);
  const fh = await open(temp, 'wx', FILE_MODE);
  try {
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (replace) await rename(temp, target);
    else await linkNew(temp, target);
  } finally {
    // After a rename the temporary name is gone already; after a link it still names the file.
    await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(dataDir);
}

async function linkNew(temp: string, target: string): Promise<void> {
  try {
    await link(temp, target);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw new LiaisonError('LIAISON_ERR_KEYSTORE_EXISTS');
    throw err;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory for fsync; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  const fh = await open(dir, fsConstants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}
