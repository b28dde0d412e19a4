/**
 * The one crypto wrapper. Nothing else in Liaison imports libsodium or node:crypto.
 *
 * Primitives (docs/protocol.md §1):
 * - Ed25519 (RFC 8032, pure, cofactorless verification): OpenSSL through node:crypto, measured
 *   ~1.3x faster than libsodium's WebAssembly build for signing on our machines
 *   (bench/protocol.ts prints both). Public keys are validated once, at import, with libsodium's
 *   crypto_core_ed25519_is_valid_point: canonical encoding, on the curve, prime-order subgroup, not
 *   of small order. OpenSSL enforces S < L.
 * - X25519 (RFC 7748): libsodium crypto_scalarmult; an all-zero output (low-order peer point) is
 *   an error.
 * - BLAKE2b (RFC 7693), unkeyed or keyed, 32-byte output (64-byte, unkeyed, for fingerprints):
 *   libsodium crypto_generichash.
 * - XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha, IETF variant): libsodium crypto_aead_xchacha20poly1305_ietf.
 * - SHA-256 (FIPS 180-4), for RFC 6962 Merkle trees only: node:crypto.
 * - Randomness: node:crypto.randomFillSync (libsodium's randombytes_buf from WebAssembly is ~50x
 *   slower per call here).
 */
import nodeCrypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import sodium from 'libsodium-wrappers-sumo';
import { LiaisonError } from './errors.ts';
import { abytes, concat } from './bytes.ts';

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_KEY_BYTES = 32;
export const HASH_BYTES = 32;
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

let ready = false;

/** Loads libsodium's WebAssembly module. Await once before any other call. */
export async function initCrypto(): Promise<void> {
  if (ready) return;
  await sodium.ready;
  ready = true;
  direct = DirectSodium.probe();
}

/**
 * Hot-path calls straight into libsodium's WebAssembly exports, for BLAKE2b, XChaCha20-Poly1305
 * and (below CHACHA_NATIVE_FROM_BYTES) ChaCha20-Poly1305 only. The JavaScript wrapper allocates,
 * copies and frees every argument on every call; on 1 KiB envelopes that overhead was a
 * measurable share of seal + open (bench/protocol.ts). Here the inputs are copied once into one
 * reusable region of the WebAssembly heap, which is zeroed after every call so no key material
 * lingers. The region is probed against the wrapper at start-up; if libsodium's internals ever
 * differ, we fall back to the wrapper and lose only speed.
 */
/** libsodium's AEAD exports as compiled: pointers, and 64-bit lengths split into two halves. */
type AeadEncryptExport = (
  c: number,
  cLenP: number,
  m: number,
  mLenLo: number,
  mLenHi: number,
  ad: number,
  adLenLo: number,
  adLenHi: number,
  nsec: number,
  npub: number,
  k: number,
) => number;
type AeadDecryptExport = (
  m: number,
  mLenP: number,
  nsec: number,
  c: number,
  cLenLo: number,
  cLenHi: number,
  ad: number,
  adLenLo: number,
  adLenHi: number,
  npub: number,
  k: number,
) => number;

interface SodiumModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(ptr: number): void;
  _crypto_generichash(
    out: number,
    outLen: number,
    msg: number,
    msgLenLo: number,
    msgLenHi: number,
    key: number,
    keyLen: number,
  ): number;
  _crypto_verify_32(x: number, y: number): number;
  _crypto_aead_xchacha20poly1305_ietf_encrypt: AeadEncryptExport;
  _crypto_aead_xchacha20poly1305_ietf_decrypt: AeadDecryptExport;
  _crypto_aead_chacha20poly1305_ietf_encrypt: AeadEncryptExport;
  _crypto_aead_chacha20poly1305_ietf_decrypt: AeadDecryptExport;
}

class DirectSodium {
  #ptr = 0;
  #size = 0;
  #busy = false;

  private constructor(private readonly m: SodiumModule) {}

  static probe(): DirectSodium | null {
    const m = (sodium as unknown as { libsodium?: Partial<SodiumModule> }).libsodium;
    if (
      m === undefined ||
      typeof m._malloc !== 'function' ||
      typeof m._free !== 'function' ||
      typeof m._crypto_generichash !== 'function' ||
      typeof m._crypto_verify_32 !== 'function' ||
      typeof m._crypto_aead_xchacha20poly1305_ietf_encrypt !== 'function' ||
      typeof m._crypto_aead_xchacha20poly1305_ietf_decrypt !== 'function' ||
      typeof m._crypto_aead_chacha20poly1305_ietf_encrypt !== 'function' ||
      typeof m._crypto_aead_chacha20poly1305_ietf_decrypt !== 'function' ||
      !(m.HEAPU8 instanceof Uint8Array)
    ) {
      return null;
    }
    const d = new DirectSodium(m as SodiumModule);
    // Known-answer agreement with the wrapper on both primitives, keyed and with AD.
    const msg = Uint8Array.from({ length: 77 }, (_, i) => i);
    const key = Uint8Array.from({ length: 32 }, (_, i) => 200 - i);
    const nonce = Uint8Array.from({ length: 24 }, (_, i) => i * 3);
    const same = (a: Uint8Array | null, b: Uint8Array): boolean =>
      a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, key, null, nonce, key);
    const derived = sodium.crypto_generichash(32, msg.subarray(0, 40), key);
    const derivedCt = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      key,
      msg,
      null,
      nonce,
      derived,
    );
    const parts = [msg.subarray(0, 5), msg.subarray(5, 40)];
    const copy = (v: Uint8Array): Uint8Array => v.slice();
    const chachaNonce = nonce.subarray(0, CHACHA_NONCE_BYTES);
    const sealed = new Uint8Array(msg.length + AEAD_TAG_BYTES);
    const opened = new Uint8Array(msg.length);
    const ok =
      same(d.blake2b(32, key, [msg]), sodium.crypto_generichash(32, msg, key)) &&
      same(
        d.blake2b(32, null, [msg.subarray(0, 5), msg.subarray(5)]),
        sodium.crypto_generichash(32, msg, null),
      ) &&
      same(d.aead(true, key, nonce, key, msg, copy), ct) &&
      same(d.aead(false, key, nonce, key, ct, copy), msg) &&
      d.aead(false, key, nonce, msg, ct, copy) === null &&
      // The link's ChaCha20-Poly1305 path: sealed from two parts, opened, a wrong AD refused.
      d.chachaPoly(
        true,
        key,
        chachaNonce,
        key,
        [msg.subarray(0, 5), msg.subarray(5)],
        msg.length,
        sealed,
      ) &&
      same(
        sealed,
        sodium.crypto_aead_chacha20poly1305_ietf_encrypt(msg, key, null, chachaNonce, key),
      ) &&
      d.chachaPoly(false, key, chachaNonce, key, [sealed], sealed.length, opened) &&
      same(opened, msg) &&
      !d.chachaPoly(false, key, chachaNonce, msg, [sealed], sealed.length, opened) &&
      same(d.aeadDerivedKey(true, key, parts, nonce, msg, key), derivedCt) &&
      same(d.aeadDerivedKey(false, key, parts, nonce, msg, derivedCt), key) &&
      d.aeadDerivedKey(false, msg.subarray(0, 32), parts, nonce, msg, derivedCt) === null &&
      d.blake2bEquals(derived, key, parts) &&
      !d.blake2bEquals(derived, key, [msg]) &&
      !d.blake2bEquals(derived, null, parts);
    return ok ? d : null;
  }

  #region(n: number): number {
    if (n > this.#size) {
      if (this.#ptr !== 0) {
        this.m.HEAPU8.fill(0, this.#ptr, this.#ptr + this.#size);
        this.m._free(this.#ptr);
        // Forget the freed block before anything can throw (a failed malloc below).
        this.#ptr = 0;
        this.#size = 0;
      }
      const size = Math.max(n, 64 * 1024);
      const ptr = this.m._malloc(size);
      if (ptr === 0)
        throw new LiaisonError('LIAISON_ERR_CRYPTO_INTERNAL', 'out of WebAssembly memory');
      this.#ptr = ptr;
      this.#size = size;
    }
    return this.#ptr;
  }

  /**
   * Claims the region for one call (at least `total` bytes); pair with #leave in a finally.
   * Re-entry (an output consumer calling back into the wrapper) would overwrite the region under
   * the consumer's feet, so it is refused.
   */
  #enter(total: number): number {
    if (this.#busy)
      throw new LiaisonError(
        'LIAISON_ERR_CRYPTO_INTERNAL',
        'crypto wrapper re-entered from an output consumer',
      );
    const base = this.#region(total);
    this.#busy = true;
    return base;
  }

  /** Zeroes what a call used and releases the region, whatever happened during the call. */
  #leave(base: number, total: number): void {
    // Re-read HEAPU8: a malloc may have grown (and so replaced) the heap's buffer.
    this.m.HEAPU8.fill(0, base, base + total);
    this.#busy = false;
  }

  /** Copies `parts` into the heap one after the other from `at`. */
  #put(parts: readonly Uint8Array[], at: number): void {
    const heap = this.m.HEAPU8;
    for (const p of parts) {
      heap.set(p, at);
      at += p.length;
    }
  }

  /** crypto_generichash on heap pointers (`keyLen` 0: unkeyed). */
  #hash(
    out: number,
    outLen: number,
    msg: number,
    msgLen: number,
    key: number,
    keyLen: number,
  ): void {
    const rc = this.m._crypto_generichash(out, outLen, msg, msgLen, 0, key, keyLen);
    if (rc !== 0)
      throw new LiaisonError('LIAISON_ERR_CRYPTO_INTERNAL', 'crypto_generichash failed');
  }

  /**
   * XChaCha20-Poly1305 (`x`) or ChaCha20-Poly1305 IETF seal or open on heap pointers: `inLen`
   * bytes at `input` to `out` (which may equal `input`: libsodium works in place). False when
   * open fails.
   */
  #aead(
    x: boolean,
    encrypt: boolean,
    out: number,
    input: number,
    inLen: number,
    ad: number,
    adLen: number,
    nonce: number,
    key: number,
  ): boolean {
    const m = this.m;
    const rc = encrypt
      ? (x
          ? m._crypto_aead_xchacha20poly1305_ietf_encrypt
          : m._crypto_aead_chacha20poly1305_ietf_encrypt)(
          out,
          0,
          input,
          inLen,
          0,
          ad,
          adLen,
          0,
          0,
          nonce,
          key,
        )
      : (x
          ? m._crypto_aead_xchacha20poly1305_ietf_decrypt
          : m._crypto_aead_chacha20poly1305_ietf_decrypt)(
          out,
          0,
          0,
          input,
          inLen,
          0,
          ad,
          adLen,
          0,
          nonce,
          key,
        );
    return rc === 0;
  }

  /** BLAKE2b over the concatenation of `parts`, without concatenating them in JavaScript. */
  blake2b(outLen: number, key: Uint8Array | null, parts: readonly Uint8Array[]): Uint8Array {
    let msgLen = 0;
    for (const p of parts) msgLen += p.length;
    const keyLen = key === null ? 0 : key.length;
    const total = outLen + keyLen + msgLen;
    const base = this.#enter(total);
    try {
      const keyPtr = base + outLen;
      if (key !== null) this.m.HEAPU8.set(key, keyPtr);
      this.#put(parts, keyPtr + keyLen);
      this.#hash(base, outLen, keyPtr + keyLen, msgLen, key === null ? 0 : keyPtr, keyLen);
      return this.m.HEAPU8.slice(base, base + outLen);
    } finally {
      this.#leave(base, total);
    }
  }

  /**
   * Whether the 32-byte BLAKE2b digest of `parts` equals `expected` (32 bytes), compared by
   * crypto_verify_32 (constant time) next to where it is computed.
   */
  blake2bEquals(
    expected: Uint8Array,
    key: Uint8Array | null,
    parts: readonly Uint8Array[],
  ): boolean {
    let msgLen = 0;
    for (const p of parts) msgLen += p.length;
    const keyLen = key === null ? 0 : key.length;
    const total = 2 * HASH_BYTES + keyLen + msgLen;
    const base = this.#enter(total);
    try {
      const expectedPtr = base + HASH_BYTES;
      const keyPtr = expectedPtr + HASH_BYTES;
      this.m.HEAPU8.set(expected, expectedPtr);
      if (key !== null) this.m.HEAPU8.set(key, keyPtr);
      this.#put(parts, keyPtr + keyLen);
      this.#hash(base, HASH_BYTES, keyPtr + keyLen, msgLen, key === null ? 0 : keyPtr, keyLen);
      return this.m._crypto_verify_32(base, expectedPtr) === 0;
    } finally {
      this.#leave(base, total);
    }
  }

  /**
   * XChaCha20-Poly1305 IETF seal (`encrypt`) or open. `consume` receives a view of the output
   * inside the WebAssembly heap, valid only during the call (the region is zeroed afterwards); it
   * must copy what it keeps and must not call back into this wrapper (that is refused). Returns
   * null when open fails.
   */
  aead<T>(
    encrypt: boolean,
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    input: Uint8Array,
    consume: (out: Uint8Array) => T,
  ): T | null {
    const outLen = encrypt ? input.length + AEAD_TAG_BYTES : input.length - AEAD_TAG_BYTES;
    if (outLen < 0) return null;
    const total = outLen + input.length + ad.length + nonce.length + AEAD_KEY_BYTES;
    const base = this.#enter(total);
    try {
      const heap = this.m.HEAPU8;
      const inPtr = base + outLen;
      const adPtr = inPtr + input.length;
      const noncePtr = adPtr + ad.length;
      const keyPtr = noncePtr + nonce.length;
      heap.set(input, inPtr);
      heap.set(ad, adPtr);
      heap.set(nonce, noncePtr);
      heap.set(key, keyPtr);
      return this.#aead(
        true,
        encrypt,
        base,
        inPtr,
        input.length,
        adPtr,
        ad.length,
        noncePtr,
        keyPtr,
      )
        ? consume(heap.subarray(base, base + outLen))
        : null;
    } finally {
      this.#leave(base, total);
    }
  }

  /**
   * XChaCha20-Poly1305 seal or open under the key BLAKE2b-256(key = kdfKey, kdfParts): the
   * derived key is computed into the heap and used there, in one claim of the region. Returns a
   * copy of the output, or null when open fails.
   */
  aeadDerivedKey(
    encrypt: boolean,
    kdfKey: Uint8Array,
    kdfParts: readonly Uint8Array[],
    nonce: Uint8Array,
    ad: Uint8Array,
    input: Uint8Array,
  ): Uint8Array | null {
    let kdfLen = 0;
    for (const p of kdfParts) kdfLen += p.length;
    const outLen = encrypt ? input.length + AEAD_TAG_BYTES : input.length - AEAD_TAG_BYTES;
    if (outLen < 0) return null;
    const total =
      outLen + input.length + ad.length + nonce.length + AEAD_KEY_BYTES + kdfKey.length + kdfLen;
    const base = this.#enter(total);
    try {
      const heap = this.m.HEAPU8;
      const inPtr = base + outLen;
      const adPtr = inPtr + input.length;
      const noncePtr = adPtr + ad.length;
      const keyPtr = noncePtr + nonce.length;
      const kdfKeyPtr = keyPtr + AEAD_KEY_BYTES;
      const kdfPtr = kdfKeyPtr + kdfKey.length;
      heap.set(input, inPtr);
      heap.set(ad, adPtr);
      heap.set(nonce, noncePtr);
      heap.set(kdfKey, kdfKeyPtr);
      this.#put(kdfParts, kdfPtr);
      this.#hash(keyPtr, AEAD_KEY_BYTES, kdfPtr, kdfLen, kdfKeyPtr, kdfKey.length);
      return this.#aead(
        true,
        encrypt,
        base,
        inPtr,
        input.length,
        adPtr,
        ad.length,
        noncePtr,
        keyPtr,
      )
        ? heap.slice(base, base + outLen)
        : null;
    } finally {
      this.#leave(base, total);
    }
  }

  /**
   * ChaCha20-Poly1305 IETF (12-byte nonce) seal (`encrypt`: `input` is the plaintext in parts of
   * `inLen` bytes in all) or open (`input` is one ciphertext of `inLen` bytes), writing the output
   * to `dest` (exactly inLen + 16, resp. inLen - 16, bytes; it may overlap the input, which is
   * copied in first). Returns false, with `dest` untouched, when open fails.
   *
   * This is the link's per-frame path, so it is leaner than aead(): libsodium seals and opens in
   * place (c == m; it reads each block before writing it, and opening checks the tag before
   * decrypting), so the region holds the message once rather than input and output; the output
   * goes straight to its destination instead of through a consumer; no closure per call.
   */
  chachaPoly(
    encrypt: boolean,
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    input: readonly Uint8Array[],
    inLen: number,
    dest: Uint8Array,
  ): boolean {
    // Layout: key, nonce, ad, then the message (with room for the tag when sealing).
    const adOffset = AEAD_KEY_BYTES + CHACHA_NONCE_BYTES;
    const msgOffset = adOffset + ad.length;
    const total = msgOffset + (encrypt ? inLen + AEAD_TAG_BYTES : inLen);
    const base = this.#enter(total);
    try {
      const heap = this.m.HEAPU8;
      const noncePtr = base + AEAD_KEY_BYTES;
      const adPtr = base + adOffset;
      const msgPtr = base + msgOffset;
      heap.set(key, base);
      heap.set(nonce, noncePtr);
      heap.set(ad, adPtr);
      this.#put(input, msgPtr);
      if (!this.#aead(false, encrypt, msgPtr, msgPtr, inLen, adPtr, ad.length, noncePtr, base))
        return false;
      dest.set(heap.subarray(msgPtr, msgPtr + dest.length));
      return true;
    } finally {
      this.#leave(base, total);
    }
  }
}

let direct: DirectSodium | null = null;

function lib(): typeof sodium {
  if (!ready) throw new LiaisonError('LIAISON_ERR_CRYPTO_NOT_READY');
  return sodium;
}

// DER wrappers that let OpenSSL take raw RFC 8032 keys (RFC 8410 §7 and §4).
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

/** A validated Ed25519 public key. Holds its OpenSSL handle so verification never re-imports it. */
export class Ed25519PublicKey {
  readonly bytes: Uint8Array;
  readonly #handle: KeyObject;

  private constructor(bytes: Uint8Array, handle: KeyObject) {
    this.bytes = bytes;
    this.#handle = handle;
  }

  /**
   * @throws LIAISON_ERR_KEY_INVALID unless `bytes` is a canonical prime-order point.
   */
  static fromBytes(bytes: Uint8Array, label = 'ed25519 public key'): Ed25519PublicKey {
    if (
      bytes.length !== ED25519_PUBLIC_KEY_BYTES ||
      !lib().crypto_core_ed25519_is_valid_point(bytes)
    ) {
      throw new LiaisonError('LIAISON_ERR_KEY_INVALID', label, { field: label });
    }
    const copy = Uint8Array.from(bytes);
    const handle = nodeCrypto.createPublicKey({
      key: Buffer.from(concat(SPKI_ED25519_PREFIX, copy)),
      format: 'der',
      type: 'spki',
    });
    return new Ed25519PublicKey(copy, handle);
  }

  /** True iff `signature` is a valid RFC 8032 signature of `message` by this key. */
  verify(message: Uint8Array, signature: Uint8Array): boolean {
    if (signature.length !== ED25519_SIGNATURE_BYTES) return false;
    return nodeCrypto.verify(null, message, this.#handle, signature);
  }
}

/** An Ed25519 signing key. The seed is kept only to be exported to the encrypted keystore. */
export class Ed25519PrivateKey {
  readonly publicKey: Ed25519PublicKey;
  readonly #handle: KeyObject;
  readonly #seed: Uint8Array;

  private constructor(seed: Uint8Array, handle: KeyObject, publicKey: Ed25519PublicKey) {
    this.#seed = seed;
    this.#handle = handle;
    this.publicKey = publicKey;
  }

  static fromSeed(seed: Uint8Array): Ed25519PrivateKey {
    abytes(seed, ED25519_SEED_BYTES, 'ed25519 seed');
    const copy = Uint8Array.from(seed);
    const handle = nodeCrypto.createPrivateKey({
      key: Buffer.from(concat(PKCS8_ED25519_PREFIX, copy)),
      format: 'der',
      type: 'pkcs8',
    });
    const spki = nodeCrypto.createPublicKey(handle).export({ format: 'der', type: 'spki' });
    const pub = Ed25519PublicKey.fromBytes(
      new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length)),
    );
    return new Ed25519PrivateKey(copy, handle, pub);
  }

  static generate(): Ed25519PrivateKey {
    const seed = randomBytes(ED25519_SEED_BYTES);
    try {
      return Ed25519PrivateKey.fromSeed(seed);
    } finally {
      wipe(seed);
    }
  }

  sign(message: Uint8Array): Uint8Array {
    // A plain Uint8Array view of the Buffer (whose slice() would alias): no copy, no surprises.
    const sig = nodeCrypto.sign(null, message, this.#handle);
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.length);
  }

  /** A copy of the 32-byte seed, for the encrypted keystore only. */
  exportSeed(): Uint8Array {
    return Uint8Array.from(this.#seed);
  }
}

/** Any clamped scalar detects low order (see fromBytesStrict); this one is fixed and public. */
const LOW_ORDER_PROBE_SCALAR = new Uint8Array(32).fill(0x5a);

/** An X25519 public key. Any 32 bytes are accepted (RFC 7748 §5); low order shows at agreement. */
export class X25519PublicKey {
  readonly bytes: Uint8Array;
  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  static fromBytes(bytes: Uint8Array, label = 'x25519 public key'): X25519PublicKey {
    if (bytes.length !== X25519_KEY_BYTES) {
      throw new LiaisonError('LIAISON_ERR_KEY_INVALID', label, { field: label });
    }
    return new X25519PublicKey(Uint8Array.from(bytes));
  }

  /**
   * A key fit to be certified as a node's static key: canonical (bit 255 clear, u < 2^255 - 19)
   * and not of low order. A clamped scalar is a multiple of 8, so X25519 with any of them maps
   * exactly the points of order dividing 8 (on the curve or its twist) to zero.
   * @throws LIAISON_ERR_KEY_INVALID
   */
  static fromBytesStrict(bytes: Uint8Array, label = 'x25519 public key'): X25519PublicKey {
    const key = X25519PublicKey.fromBytes(bytes, label);
    const b = key.bytes;
    // u >= p with bit 255 clear means u in [2^255 - 19, 2^255 - 1]: ed ff .. ff 7f and above.
    const atLeastP = b[31] === 0x7f && b[0]! >= 0xed && b.subarray(1, 31).every((x) => x === 0xff);
    if ((b[31]! & 0x80) !== 0 || atLeastP) {
      throw new LiaisonError('LIAISON_ERR_KEY_INVALID', `${label}: not canonical`, {
        field: label,
      });
    }
    let zero = true;
    try {
      const probe = lib().crypto_scalarmult(LOW_ORDER_PROBE_SCALAR, b);
      zero = probe.every((x) => x === 0);
    } catch {
      zero = true; // libsodium refuses low-order points itself
    }
    if (zero)
      throw new LiaisonError('LIAISON_ERR_KEY_INVALID', `${label}: low order`, { field: label });
    return key;
  }
}

export class X25519PrivateKey {
  readonly publicKey: X25519PublicKey;
  readonly #secret: Uint8Array;

  private constructor(secret: Uint8Array, publicKey: X25519PublicKey) {
    this.#secret = secret;
    this.publicKey = publicKey;
  }

  /** From 32 secret bytes; clamping is applied by X25519 itself (RFC 7748 §5). */
  static fromBytes(secret: Uint8Array): X25519PrivateKey {
    abytes(secret, X25519_KEY_BYTES, 'x25519 private key');
    const copy = Uint8Array.from(secret);
    const pub = lib().crypto_scalarmult_base(copy);
    return new X25519PrivateKey(copy, X25519PublicKey.fromBytes(pub));
  }

  static generate(): X25519PrivateKey {
    const secret = randomBytes(X25519_KEY_BYTES);
    try {
      return X25519PrivateKey.fromBytes(secret);
    } finally {
      wipe(secret);
    }
  }

  /**
   * X25519(this, peer).
   * @throws LIAISON_ERR_KEY_LOW_ORDER when the result is all zero (RFC 7748 §6.1).
   */
  agree(peer: X25519PublicKey): Uint8Array {
    let out: Uint8Array;
    try {
      out = lib().crypto_scalarmult(this.#secret, peer.bytes);
    } catch {
      // libsodium refuses an all-zero result itself.
      throw new LiaisonError('LIAISON_ERR_KEY_LOW_ORDER');
    }
    let acc = 0;
    for (const b of out) acc |= b;
    if (acc === 0) throw new LiaisonError('LIAISON_ERR_KEY_LOW_ORDER');
    return out;
  }

  /** A copy of the secret scalar bytes, for the encrypted keystore only. */
  exportSecret(): Uint8Array {
    return Uint8Array.from(this.#secret);
  }
}

/** BLAKE2b with a 32-byte output; keyed when `key` is given (RFC 7693 §2.5). */
export function blake2b256(message: Uint8Array, key?: Uint8Array): Uint8Array {
  return blake2b256Parts(key ?? null, message);
}

function checkBlake2bKey(key: Uint8Array | null): void {
  if (key !== null && (key.length < 1 || key.length > 64)) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'BLAKE2b key must be 1 to 64 bytes', {
      field: 'key',
    });
  }
}

/** BLAKE2b-256 of the concatenation of `parts`, keyed when `key` is not null. */
export function blake2b256Parts(
  key: Uint8Array | null,
  ...parts: readonly Uint8Array[]
): Uint8Array {
  const l = lib();
  checkBlake2bKey(key);
  if (direct !== null) return direct.blake2b(HASH_BYTES, key, parts);
  return l.crypto_generichash(HASH_BYTES, parts.length === 1 ? parts[0]! : concat(...parts), key);
}

/**
 * Whether BLAKE2b-256 of the concatenation of `parts` (keyed when `key` is not null) equals
 * `expected`, in constant time: for checking a secret against a commitment to it. The digest is
 * compared inside libsodium's memory (crypto_verify_32) and never handed out; hashing out and
 * calling constantTimeEqual costs ~0.5 us more, most of it node:crypto moving the fresh 32-byte
 * digest out of V8's heap before comparing.
 */
export function blake2b256Equals(
  expected: Uint8Array,
  key: Uint8Array | null,
  ...parts: readonly Uint8Array[]
): boolean {
  if (expected.length !== HASH_BYTES) return false;
  if (direct === null) return constantTimeEqual(blake2b256Parts(key, ...parts), expected);
  checkBlake2bKey(key);
  return direct.blake2bEquals(expected, key, parts);
}

/** BLAKE2b with a 64-byte output, unkeyed (fingerprints need more than 32 bytes of digest). */
export function blake2b512(message: Uint8Array): Uint8Array {
  return lib().crypto_generichash(64, message, null);
}

/** Whether the direct WebAssembly fast path passed its start-up probe (for tests and benches). */
export function cryptoFastPathActive(): boolean {
  return direct !== null;
}

export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const h = nodeCrypto.createHash('sha256');
  for (const p of parts) h.update(p);
  // digest() returns a Buffer of its own (never a slice of the shared pool): view it, no copy.
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** XChaCha20-Poly1305 (IETF); returns ciphertext || 16-byte tag. */
export function aeadEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + AEAD_TAG_BYTES);
  aeadEncryptInto(out, key, nonce, ad, plaintext);
  return out;
}

/**
 * aeadEncrypt writing ciphertext || tag into `dest` (exactly plaintext.length + 16 bytes), so a
 * caller assembling a larger structure avoids one allocation and one copy.
 */
export function aeadEncryptInto(
  dest: Uint8Array,
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): void {
  abytes(key, AEAD_KEY_BYTES, 'aead key');
  abytes(nonce, AEAD_NONCE_BYTES, 'aead nonce');
  abytes(dest, plaintext.length + AEAD_TAG_BYTES, 'aead output');
  const l = lib();
  if (direct !== null) {
    direct.aead(true, key, nonce, ad, plaintext, (out) => dest.set(out));
    return;
  }
  dest.set(l.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key));
}

/** XChaCha20-Poly1305 (IETF) decryption; `null` when the tag does not authenticate. */
export function aeadDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array | null {
  return aeadDecryptWith(key, nonce, ad, ciphertext, (plaintext) => plaintext.slice());
}

/**
 * Decrypts and hands the plaintext to `use` without copying it out first; the plaintext is
 * zeroed when `use` returns, so `use` must copy what it keeps (a decoder that builds strings and
 * copies byte fields does) and must not call other crypto functions. `null` when the tag fails.
 */
export function aeadDecryptWith<T>(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  ciphertext: Uint8Array,
  use: (plaintext: Uint8Array) => T,
): T | null {
  abytes(key, AEAD_KEY_BYTES, 'aead key');
  abytes(nonce, AEAD_NONCE_BYTES, 'aead nonce');
  if (ciphertext.length < AEAD_TAG_BYTES) return null;
  const l = lib();
  if (direct !== null) return direct.aead(false, key, nonce, ad, ciphertext, use);
  let plaintext: Uint8Array;
  try {
    plaintext = l.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    return null;
  }
  try {
    return use(plaintext);
  } finally {
    wipe(plaintext);
  }
}

/**
 * aeadEncrypt under the key BLAKE2b-256(key = kdfKey, concatenation of kdfParts): a key derived
 * for one message and used once, as the content-key wraps do (docs/protocol.md §5.3). The
 * derivation and the encryption run in a single pass through the WebAssembly heap, so the
 * derived key never exists as a JavaScript array (and a wrap costs ~1.3 us, not ~1.7 as two calls).
 */
export function aeadEncryptWithDerivedKey(
  kdfKey: Uint8Array,
  kdfParts: readonly Uint8Array[],
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Uint8Array {
  checkDerivedKeyArgs(kdfKey, nonce);
  if (direct !== null) return direct.aeadDerivedKey(true, kdfKey, kdfParts, nonce, ad, plaintext)!;
  const key = blake2b256Parts(kdfKey, ...kdfParts);
  try {
    return aeadEncrypt(key, nonce, ad, plaintext);
  } finally {
    wipe(key);
  }
}

/** aeadDecrypt under a derived key, as aeadEncryptWithDerivedKey; `null` when the tag fails. */
export function aeadDecryptWithDerivedKey(
  kdfKey: Uint8Array,
  kdfParts: readonly Uint8Array[],
  nonce: Uint8Array,
  ad: Uint8Array,
  ciphertext: Uint8Array,
): Uint8Array | null {
  checkDerivedKeyArgs(kdfKey, nonce);
  if (ciphertext.length < AEAD_TAG_BYTES) return null;
  if (direct !== null) return direct.aeadDerivedKey(false, kdfKey, kdfParts, nonce, ad, ciphertext);
  const key = blake2b256Parts(kdfKey, ...kdfParts);
  try {
    return aeadDecrypt(key, nonce, ad, ciphertext);
  } finally {
    wipe(key);
  }
}

function checkDerivedKeyArgs(kdfKey: Uint8Array, nonce: Uint8Array): void {
  lib();
  checkBlake2bKey(kdfKey);
  abytes(nonce, AEAD_NONCE_BYTES, 'aead nonce');
}

/** ChaCha20-Poly1305 (RFC 8439) nonce length: the Noise cipher (Noise spec §12.3). */
export const CHACHA_NONCE_BYTES = 12;
/**
 * Below this many bytes libsodium's WebAssembly ChaCha20-Poly1305 is faster than OpenSSL (the
 * per-call setup of a node:crypto cipher dominates); above it OpenSSL's vectorised code is about
 * four times faster (64 KiB frames: ~1.8 GB/s vs ~0.4 GB/s here). Both compute the same function.
 */
const CHACHA_NATIVE_FROM_BYTES = 4096;

/**
 * Ciphertexts below CHACHA_NATIVE_FROM_BYTES are views into shared 64 KiB slabs rather than
 * arrays of their own: a fresh ArrayBuffer per 1 KiB link frame (allocated outside the V8 heap,
 * zeroed, tracked by the GC) cost 0.4 to 0.7 us, a view into a slab 0.15 us with the copy. Slabs
 * hold only what chachaPolyEncrypt returns, each byte handed out once; a caller that encrypts a
 * secret (Noise Rekey) wipes the result.
 */
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(0);
let slabAt = 0;

function fromSlab(n: number): Uint8Array {
  if (slabAt + n > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const out = slab.subarray(slabAt, slabAt + n);
  slabAt += n;
  return out;
}

/**
 * ChaCha20-Poly1305 (RFC 8439) encryption of the concatenation of `plaintext` (one array or
 * several parts, so a caller never assembles a frame just to encrypt it); returns
 * ciphertext || 16-byte tag.
 */
export function chachaPolyEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array | readonly Uint8Array[],
): Uint8Array {
  abytes(key, AEAD_KEY_BYTES, 'chacha key');
  abytes(nonce, CHACHA_NONCE_BYTES, 'chacha nonce');
  const parts = plaintext instanceof Uint8Array ? [plaintext] : plaintext;
  let length = 0;
  for (const p of parts) length += p.length;
  const l = lib();
  if (length < CHACHA_NATIVE_FROM_BYTES) {
    if (direct !== null) {
      const out = fromSlab(length + AEAD_TAG_BYTES);
      if (!direct.chachaPoly(true, key, nonce, ad, parts, length, out))
        throw new LiaisonError('LIAISON_ERR_CRYPTO_INTERNAL', 'ChaCha20-Poly1305 seal failed');
      return out;
    }
    return l.crypto_aead_chacha20poly1305_ietf_encrypt(
      parts.length === 1 ? parts[0]! : concat(...parts),
      ad,
      null,
      nonce,
      key,
    );
  }
  const c = nodeCrypto.createCipheriv('chacha20-poly1305', key, nonce, {
    authTagLength: AEAD_TAG_BYTES,
  });
  c.setAAD(ad, { plaintextLength: length });
  const out = new Uint8Array(length + AEAD_TAG_BYTES);
  let at = 0;
  for (const p of parts) {
    const chunk = c.update(p);
    out.set(chunk, at);
    at += chunk.length;
  }
  const tail = c.final();
  out.set(tail, at);
  out.set(c.getAuthTag(), length);
  return out;
}

/**
 * ChaCha20-Poly1305 (RFC 8439) decryption; `null` when the tag does not authenticate. The
 * plaintext goes to `into` when given (exactly ciphertext.length - 16 bytes; it may be the start
 * of `ciphertext` itself, to decrypt in place without allocating), else to a new array. `into` is
 * written only once the tag has been checked.
 */
export function chachaPolyDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  ciphertext: Uint8Array,
  into?: Uint8Array,
): Uint8Array | null {
  abytes(key, AEAD_KEY_BYTES, 'chacha key');
  abytes(nonce, CHACHA_NONCE_BYTES, 'chacha nonce');
  if (ciphertext.length < AEAD_TAG_BYTES) return null;
  const bodyLength = ciphertext.length - AEAD_TAG_BYTES;
  if (into !== undefined) abytes(into, bodyLength, 'chacha output');
  const l = lib();
  if (bodyLength < CHACHA_NATIVE_FROM_BYTES) {
    if (direct !== null) {
      const out = into ?? new Uint8Array(bodyLength);
      return direct.chachaPoly(false, key, nonce, ad, [ciphertext], ciphertext.length, out)
        ? out
        : null;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = l.crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
    } catch {
      return null;
    }
    if (into === undefined) return plaintext;
    into.set(plaintext);
    return into;
  }
  const d = nodeCrypto.createDecipheriv('chacha20-poly1305', key, nonce, {
    authTagLength: AEAD_TAG_BYTES,
  });
  d.setAAD(ad, { plaintextLength: bodyLength });
  d.setAuthTag(ciphertext.subarray(bodyLength));
  const plaintext = d.update(ciphertext.subarray(0, bodyLength));
  try {
    d.final();
  } catch {
    wipe(plaintext);
    return null;
  }
  const out = into ?? new Uint8Array(bodyLength);
  out.set(plaintext);
  return out;
}

export const ARGON2ID_SALT_BYTES = 16;

/** Argon2id cost parameters (RFC 9106): passes over memory and memory in bytes. */
export interface Argon2idParams {
  readonly opsLimit: number;
  readonly memLimit: number;
}

/**
 * The keystore default: libsodium's MODERATE (3 passes, 256 MiB), about 1 s here, paid once at
 * node start. Tests use ARGON2ID_TEST to stay fast; never use it for real keys.
 */
export const ARGON2ID_MODERATE: Argon2idParams = { opsLimit: 3, memLimit: 256 * 1024 * 1024 };
/** Smallest costs libsodium accepts: for tests only. */
export const ARGON2ID_TEST: Argon2idParams = { opsLimit: 1, memLimit: 8192 };

/**
 * Argon2id v1.3 (RFC 9106) through libsodium crypto_pwhash: derives `length` bytes from a
 * passphrase and a 16-byte salt.
 * @throws LIAISON_ERR_ARGUMENT on a bad salt or parameters outside libsodium's bounds.
 */
export function argon2id(
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: Argon2idParams,
  length = 32,
): Uint8Array {
  abytes(salt, ARGON2ID_SALT_BYTES, 'argon2id salt');
  const l = lib();
  if (
    params.opsLimit < l.crypto_pwhash_OPSLIMIT_MIN ||
    params.memLimit < l.crypto_pwhash_MEMLIMIT_MIN ||
    params.memLimit > 2 ** 30
  ) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'argon2id parameters out of range', {
      field: 'params',
    });
  }
  return l.crypto_pwhash(
    length,
    passphrase,
    salt,
    params.opsLimit,
    params.memLimit,
    l.crypto_pwhash_ALG_ARGON2ID13,
  );
}

/** BLAKE2b-512 of the concatenation of `parts` (the Noise HASH function, HASHLEN 64). */
export function blake2b512Parts(...parts: readonly Uint8Array[]): Uint8Array {
  const l = lib();
  if (direct !== null) return direct.blake2b(64, null, parts);
  return l.crypto_generichash(64, parts.length === 1 ? parts[0]! : concat(...parts), null);
}

/**
 * HMAC (RFC 2104) over BLAKE2b-512 with its 128-byte block, as the Noise spec §4.3 defines HMAC
 * for the BLAKE2b hash. OpenSSL's HMAC with "blake2b512" is exactly that construction.
 */
export function hmacBlake2b512(key: Uint8Array, ...parts: readonly Uint8Array[]): Uint8Array {
  const h = nodeCrypto.createHmac('blake2b512', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

// Randomness is drawn from the OS in 4 KiB blocks: one randomFillSync costs ~2 us whatever its
// size, and an envelope needs two small draws. Bytes handed out are zeroed in the pool at once.
const RANDOM_POOL_BYTES = 4096;
const RANDOM_POOL_MAX_DRAW = 256;
let randomPool = new Uint8Array(0);
let randomPoolPos = 0;

export function randomBytes(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new LiaisonError(
      'LIAISON_ERR_ARGUMENT',
      'randomBytes: n must be a non-negative integer',
      { field: 'n' },
    );
  }
  if (n > RANDOM_POOL_MAX_DRAW) {
    const out = new Uint8Array(n);
    nodeCrypto.randomFillSync(out);
    return out;
  }
  if (randomPoolPos + n > randomPool.length) {
    randomPool = new Uint8Array(RANDOM_POOL_BYTES);
    nodeCrypto.randomFillSync(randomPool);
    randomPoolPos = 0;
  }
  const out = randomPool.slice(randomPoolPos, randomPoolPos + n);
  randomPool.fill(0, randomPoolPos, randomPoolPos + n);
  randomPoolPos += n;
  return out;
}

/** Constant-time equality for secrets and MACs. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && nodeCrypto.timingSafeEqual(a, b);
}

/** Overwrites a secret buffer with zeros. */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}
