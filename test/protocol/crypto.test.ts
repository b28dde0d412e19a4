/**
 * The crypto wrapper: the direct WebAssembly fast path agrees with libsodium's own wrapper, the
 * two ChaCha20-Poly1305 back ends agree with each other across their switch-over size, misuse is
 * refused with a registry code and leaves the wrapper usable, and keys are validated.
 */
import sodium from 'libsodium-wrappers-sumo';
import t from 'tap';
import {
  aeadDecrypt,
  aeadDecryptWith,
  aeadDecryptWithDerivedKey,
  aeadEncrypt,
  aeadEncryptWithDerivedKey,
  blake2b256Equals,
  blake2b256Parts,
  blake2b512Parts,
  chachaPolyDecrypt,
  chachaPolyEncrypt,
  cryptoFastPathActive,
  initCrypto,
  randomBytes,
  toHex,
  X25519PublicKey,
} from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';

await initCrypto();
await sodium.ready;
const bytes = (n: number, seed = 1) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

t.test('the direct path is active and agrees with the wrapper', async (t) => {
  t.ok(cryptoFastPathActive(), 'probe passed');
  for (const n of [0, 1, 63, 64, 127, 128, 1024, 65_536, 200_000]) {
    const m = bytes(n);
    t.equal(
      toHex(blake2b256Parts(null, m)),
      toHex(sodium.crypto_generichash(32, m, null)),
      `BLAKE2b-256 of ${n} bytes`,
    );
    t.equal(
      toHex(blake2b512Parts(m)),
      toHex(sodium.crypto_generichash(64, m, null)),
      `BLAKE2b-512 of ${n} bytes`,
    );
    const key = bytes(32, 7);
    t.equal(
      toHex(blake2b256Parts(key, m.subarray(0, n >> 1), m.subarray(n >> 1))),
      toHex(sodium.crypto_generichash(32, m, key)),
      `keyed, in two parts, ${n} bytes`,
    );
    const nonce = bytes(24, 9);
    const ad = bytes(n % 300, 3);
    const c = aeadEncrypt(key, nonce, ad, m);
    t.equal(
      toHex(c),
      toHex(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(m, ad, null, nonce, key)),
      `XChaCha20-Poly1305 of ${n} bytes`,
    );
    t.equal(toHex(aeadDecrypt(key, nonce, ad, c)!), toHex(m));
    const bad = Uint8Array.from(c);
    bad[bad.length - 1]! ^= 1;
    t.equal(aeadDecrypt(key, nonce, ad, bad), null, 'a flipped tag bit fails');
  }
});

t.test('AEAD under a derived key is Seal(Hk(kdfKey, parts), ...)', async (t) => {
  const nonce = bytes(24, 9);
  for (const [keyLength, n] of [
    [32, 32],
    [1, 0],
    [64, 1000],
  ] as const) {
    const kdfKey = bytes(keyLength, 11);
    const parts = [bytes(15, 1), bytes(0), bytes(96, 2)];
    const ad = bytes(n % 7, 3);
    const m = bytes(n, 4);
    const derived = sodium.crypto_generichash(
      32,
      Uint8Array.from([...parts[0]!, ...parts[2]!]),
      kdfKey,
    );
    const c = aeadEncryptWithDerivedKey(kdfKey, parts, nonce, ad, m);
    t.equal(
      toHex(c),
      toHex(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(m, ad, null, nonce, derived)),
      `key of ${keyLength} bytes, ${n} bytes of plaintext`,
    );
    t.equal(toHex(aeadDecryptWithDerivedKey(kdfKey, parts, nonce, ad, c)!), toHex(m));
    const other = Uint8Array.from(kdfKey);
    other[0]! ^= 1;
    t.equal(aeadDecryptWithDerivedKey(other, parts, nonce, ad, c), null, 'another kdf key fails');
    t.equal(
      aeadDecryptWithDerivedKey(kdfKey, [parts[0]!], nonce, ad, c),
      null,
      'other kdf input fails',
    );
  }
  rejects(
    t,
    () => aeadEncryptWithDerivedKey(new Uint8Array(0), [], bytes(24), bytes(0), bytes(1)),
    'LIAISON_ERR_ARGUMENT',
    'empty kdf key',
  );
  rejects(
    t,
    () => aeadDecryptWithDerivedKey(bytes(32), [], bytes(12), bytes(0), bytes(20)),
    'LIAISON_ERR_ARGUMENT',
    'short nonce',
  );
});

t.test('blake2b256Equals compares a digest with an expected value', async (t) => {
  const key = bytes(32, 5);
  const parts = [bytes(25, 1), bytes(16, 2), bytes(32, 3)];
  const digest = blake2b256Parts(null, ...parts);
  t.ok(blake2b256Equals(digest, null, ...parts), 'equal');
  t.ok(blake2b256Equals(blake2b256Parts(key, ...parts), key, ...parts), 'equal, keyed');
  t.notOk(blake2b256Equals(digest, key, ...parts), 'keyed is another function');
  for (const i of [0, 17, 31]) {
    const other = Uint8Array.from(digest);
    other[i]! ^= 0x80;
    t.notOk(blake2b256Equals(other, null, ...parts), `differs in byte ${i}`);
  }
  t.notOk(blake2b256Equals(digest.subarray(0, 31), null, ...parts), 'a shorter expected value');
  rejects(
    t,
    () => blake2b256Equals(digest, new Uint8Array(65), ...parts),
    'LIAISON_ERR_ARGUMENT',
    'a 65-byte key',
  );
});

t.test('an output consumer cannot re-enter the wrapper, and the wrapper stays sound', async (t) => {
  const key = bytes(32, 5);
  const nonce = bytes(24, 6);
  const c = aeadEncrypt(key, nonce, new Uint8Array(0), bytes(100));
  rejects(
    t,
    () => aeadDecryptWith(key, nonce, new Uint8Array(0), c, (pt) => blake2b256Parts(null, pt)),
    'LIAISON_ERR_CRYPTO_INTERNAL',
    'hashing inside the consumer',
  );
  // After the refusal the shared region is usable again and outputs are right.
  t.equal(toHex(aeadDecrypt(key, nonce, new Uint8Array(0), c)!), toHex(bytes(100)));
  t.equal(
    toHex(blake2b256Parts(null, bytes(10))),
    toHex(sodium.crypto_generichash(32, bytes(10), null)),
  );
  // The consumer sees the plaintext; it is zeroed once the consumer returns.
  let seen: Uint8Array | null = null;
  const copy = aeadDecryptWith(key, nonce, new Uint8Array(0), c, (pt) => {
    seen = pt;
    return pt.slice();
  });
  t.equal(toHex(copy!), toHex(bytes(100)));
  t.ok(seen !== null && (seen as Uint8Array).every((b) => b === 0), 'the view is zeroed after use');
});

t.test('ChaCha20-Poly1305: both back ends compute the same function', async (t) => {
  const key = bytes(32, 2);
  const nonce = bytes(12, 4);
  for (const n of [0, 1, 4095, 4096, 4097, 65_519]) {
    const m = bytes(n);
    const ad = bytes(n % 50);
    const c = chachaPolyEncrypt(key, nonce, ad, m);
    t.equal(
      toHex(c),
      toHex(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(m, ad, null, nonce, key)),
      `${n} bytes`,
    );
    t.equal(toHex(chachaPolyDecrypt(key, nonce, ad, c)!), toHex(m));
    const bad = Uint8Array.from(c);
    bad[0]! ^= 1;
    t.equal(
      chachaPolyDecrypt(key, nonce, ad, n === 0 ? c.subarray(1) : bad),
      null,
      `${n} bytes: tampering fails`,
    );
    // In place: the plaintext overwrites the start of the ciphertext, once it authenticates.
    const badBefore = toHex(bad);
    t.equal(chachaPolyDecrypt(key, nonce, ad, bad, bad.subarray(0, n)), null);
    t.equal(toHex(bad), badBefore, `${n} bytes: a failed decryption in place writes nothing`);
    const inPlace = Uint8Array.from(c);
    const p = chachaPolyDecrypt(key, nonce, ad, inPlace, inPlace.subarray(0, n))!;
    t.equal(toHex(p), toHex(m), `${n} bytes in place`);
    t.equal(p.buffer, inPlace.buffer, `${n} bytes: in place means no copy`);
  }
  rejects(
    t,
    () => chachaPolyDecrypt(key, nonce, new Uint8Array(0), new Uint8Array(40), new Uint8Array(23)),
    'LIAISON_ERR_ARGUMENT',
    'an output of the wrong length',
  );
  // Small ciphertexts share slabs: each is its own bytes all the same.
  const first = chachaPolyEncrypt(key, nonce, new Uint8Array(0), bytes(100));
  const firstHex = toHex(first);
  const second = chachaPolyEncrypt(key, nonce, new Uint8Array(0), bytes(100, 3));
  second.fill(0);
  t.equal(toHex(first), firstHex, 'ciphertexts do not overlap');
  // RFC 8439 §2.8.2 test vector.
  const rfcKey = Buffer.from(
    '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
    'hex',
  );
  const rfcNonce = Buffer.from('070000004041424344454647', 'hex');
  const rfcAd = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex');
  const rfcPt = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const out = toHex(chachaPolyEncrypt(rfcKey, rfcNonce, rfcAd, rfcPt));
  t.equal(out.slice(0, 32), 'd31a8d34648e60db7b86afbc53ef7ec2');
  t.equal(out.slice(-32), '1ae10b594f09e26a7e902ecbd0600691', 'RFC 8439 tag');
});

t.test('randomness and key validation', async (t) => {
  rejects(t, () => randomBytes(-8), 'LIAISON_ERR_ARGUMENT', 'negative length');
  rejects(t, () => randomBytes(Number.NaN), 'LIAISON_ERR_ARGUMENT', 'NaN length');
  const a = randomBytes(32);
  const b = randomBytes(32);
  t.not(toHex(a), toHex(b));
  t.equal(randomBytes(1000).length, 1000);
  t.ok(
    X25519PublicKey.fromBytesStrict(sodium.crypto_scalarmult_base(bytes(32, 3))),
    'an honest static key',
  );
});
