/**
 * The canonical codec, text forms and identifiers: round trips, canonicality, limits checked
 * before allocation, and the exact error codes.
 */
import t from 'tap';
import {
  fromBase32,
  fromHex,
  messageIdFromText,
  messageIdToText,
  nodeIdFromText,
  nodeIdToText,
  Reader,
  toBase32,
  toHex,
  Writer,
  asMessageId,
  asNodeId,
  randomBytes,
} from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';

t.test('integers are big-endian and round-trip', async (t) => {
  const bytes = new Writer()
    .u8(0xab)
    .u16(0x1234)
    .u32(0xdeadbeef)
    .u64(2 ** 53 - 1)
    .bool(true)
    .finish();
  t.equal(toHex(bytes), 'ab1234deadbeef001fffffffffffff01');
  const r = new Reader(bytes);
  t.equal(r.u8('a'), 0xab);
  t.equal(r.u16('b'), 0x1234);
  t.equal(r.u32('c'), 0xdeadbeef);
  t.equal(r.u64('d'), 2 ** 53 - 1);
  t.equal(r.bool('e'), true);
  r.end('test');
  rejects(
    t,
    () => new Reader(fromHex('0020000000000000')).u64('x'),
    'LIAISON_ERR_DECODE_VALUE',
    'u64 of 2^53',
  );
  rejects(t, () => new Writer().u64(2 ** 53), 'LIAISON_ERR_ENCODE_VALUE', 'encoding 2^53');
  rejects(t, () => new Writer().u8(256), 'LIAISON_ERR_ENCODE_VALUE', 'u8 of 256');
  rejects(t, () => new Writer().u16(-1), 'LIAISON_ERR_ENCODE_VALUE', 'negative u16');
  rejects(t, () => new Writer().u32(1.5), 'LIAISON_ERR_ENCODE_VALUE', 'fractional u32');
  rejects(t, () => new Reader(Uint8Array.of(2)).bool('flag'), 'LIAISON_ERR_DECODE_VALUE', 'flag 2');
  rejects(
    t,
    () => new Reader(Uint8Array.of(1, 2)).u32('x'),
    'LIAISON_ERR_DECODE_TRUNCATED',
    'u32 from 2 bytes',
  );
});

t.test('length prefixes are checked before slicing', async (t) => {
  // A u32 length of 4 GiB over a 5-byte input: refused by the limit, not by an allocation.
  rejects(
    t,
    () => new Reader(fromHex('ffffffff00')).bytes(4, 1024, 'blob'),
    'LIAISON_ERR_DECODE_LIMIT',
    '4 GiB length',
  );
  rejects(
    t,
    () => new Reader(fromHex('0005aabb')).bytes(2, 1024, 'blob'),
    'LIAISON_ERR_DECODE_TRUNCATED',
    'length past the end',
  );
  rejects(
    t,
    () => new Reader(fromHex('00')).bytes(1, 10, 'blob', 1),
    'LIAISON_ERR_DECODE_VALUE',
    'below the minimum',
  );
  rejects(
    t,
    () => new Writer().bytes(new Uint8Array(11), 1, 10, 'blob'),
    'LIAISON_ERR_ENCODE_LIMIT',
    'encoding over the limit',
  );
  rejects(
    t,
    () => new Writer().text('x'.repeat(11), 1, 10, 'text'),
    'LIAISON_ERR_ENCODE_LIMIT',
    'text over the limit',
  );
  rejects(
    t,
    () => new Writer().text('é'.repeat(6), 1, 10, 'text'),
    'LIAISON_ERR_ENCODE_LIMIT',
    'multi-byte text over the limit',
  );
  t.equal(
    toHex(new Writer().text('é', 1, 10, 't').finish()),
    '02c3a9',
    'UTF-8 with its byte length',
  );
  t.equal(
    toHex(new Writer().text('日本', 2, 10, 't').finish()),
    '0006e697a5e69cac',
    'three-byte characters',
  );
});

t.test('identifiers accept only the restricted ASCII form', async (t) => {
  for (const ok of ['24-7', 'a', 'central-authority', 'jit-ecto.2026', 'user_1']) {
    t.equal(new Reader(new Writer().ident(ok, 64, 'id').finish()).ident(64, 'id'), ok, ok);
  }
  for (const bad of ['', '-a', 'a-', 'A', 'a b', 'é', '.a', 'a.']) {
    rejects(
      t,
      () => new Writer().ident(bad, 64, 'id'),
      'LIAISON_ERR_ENCODE_VALUE',
      `encode ${JSON.stringify(bad)}`,
    );
  }
  rejects(
    t,
    () => new Reader(fromHex('02c3a9')).ident(64, 'id'),
    'LIAISON_ERR_DECODE_VALUE',
    'non-ASCII identifier',
  );
});

t.test('text forms: hex, base32, node and message IDs', async (t) => {
  // RFC 4648 §10 test vectors, lowercased and unpadded.
  const rfc: [string, string][] = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [plain, b32] of rfc) {
    t.equal(toBase32(new TextEncoder().encode(plain)), b32, `base32(${plain})`);
    t.equal(new TextDecoder().decode(fromBase32(b32)), plain);
  }
  rejects(t, () => fromBase32('mz'), 'LIAISON_ERR_ARGUMENT', 'non-zero trailing bits');
  rejects(t, () => fromBase32('m'), 'LIAISON_ERR_ARGUMENT', 'impossible length');
  rejects(t, () => fromBase32('MY'), 'LIAISON_ERR_ARGUMENT', 'upper case');
  rejects(t, () => fromHex('abc'), 'LIAISON_ERR_ARGUMENT', 'odd hex');
  rejects(t, () => fromHex('zz'), 'LIAISON_ERR_ARGUMENT', 'non-hex');
  for (let i = 0; i < 50; i++) {
    const id = asNodeId(randomBytes(32));
    const text = nodeIdToText(id);
    t.match(text, /^ln[a-z2-7]{52}$/);
    t.equal(toHex(nodeIdFromText(text)), toHex(id));
    const m = asMessageId(randomBytes(16));
    t.equal(toHex(messageIdFromText(messageIdToText(m))), toHex(m));
  }
  rejects(
    t,
    () => nodeIdFromText('lm' + 'a'.repeat(52)),
    'LIAISON_ERR_NODE_ID_INVALID',
    'wrong prefix',
  );
  rejects(
    t,
    () => nodeIdFromText('ln' + 'a'.repeat(51)),
    'LIAISON_ERR_NODE_ID_INVALID',
    'too short',
  );
  rejects(
    t,
    () => nodeIdFromText('ln' + 'a'.repeat(51) + 'b'),
    'LIAISON_ERR_NODE_ID_INVALID',
    'non-canonical last character',
  );
  rejects(t, () => asNodeId(new Uint8Array(31)), 'LIAISON_ERR_NODE_ID_INVALID', '31-byte node ID');
  rejects(
    t,
    () => messageIdFromText('lm' + 'a'.repeat(25)),
    'LIAISON_ERR_ARGUMENT',
    'short message ID',
  );
});
