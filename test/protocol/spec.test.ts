/**
 * docs/protocol.md and the code agree: the domain tags, the limits table and the worked examples
 * in the specification are checked against protocol/.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import * as P from '../../protocol/index.ts';

await P.initCrypto();
const spec = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
const fill = (b: string) => new Uint8Array(32).fill(parseInt(b, 16));

t.test('every domain tag is listed with its exact bytes', async (t) => {
  for (const [key, name] of Object.entries(P.DOMAIN_NAMES)) {
    const hex = P.toHex(P.DOMAIN[key as P.DomainName]);
    t.match(
      spec,
      new RegExp(`\\| \`${name}\`\\s*\\| ${name.length}\\s*\\| \`${hex}\``),
      `${name}: ${hex}`,
    );
  }
  const listed = [...spec.matchAll(/\| `(liaison\/v1\/[a-z-]+)`/g)].map((m) => m[1]);
  t.same(
    new Set(listed),
    new Set(Object.values(P.DOMAIN_NAMES)),
    'no tag documented that the code lacks',
  );
});

t.test('the limits table matches protocol/limits.ts', async (t) => {
  const rows = [...spec.matchAll(/^\| `(MAX_[A-Z0-9_]+)`\s*\| ([\d,]+)/gm)].map(
    (m) => [m[1]!, Number(m[2]!.replace(/,/g, ''))] as const,
  );
  const exported = Object.entries(P).filter(
    ([k, v]) => k.startsWith('MAX_') && typeof v === 'number',
  );
  t.ok(rows.length >= 20);
  for (const [name, value] of exported) {
    const row = rows.find(([n]) => n === name);
    t.ok(row, `${name} is documented`);
    if (row) t.equal(row[1], value, `${name} = ${value}`);
  }
});

t.test('the worked examples of §11 are what the code computes', async (t) => {
  const a = P.Ed25519PrivateKey.fromSeed(fill('01'));
  const b = P.Ed25519PrivateKey.fromSeed(fill('03'));
  const expect = (label: string, value: string) =>
    t.match(spec, new RegExp(`${label}\\s+${value}`), `${label} ${value}`);
  expect('Ed25519 seed 01 x 32\\s+-> public key', P.toHex(a.publicKey.bytes));
  expect('nodeId', P.toHex(P.deriveNodeId(a.publicKey)));
  expect('text form', P.nodeIdToText(P.deriveNodeId(a.publicKey)));
  expect('fingerprint', P.fingerprint(a.publicKey));
  expect('Ed25519 seed 03 x 32\\s+-> public key', P.toHex(b.publicKey.bytes));
  const x2 = P.X25519PrivateKey.fromBytes(fill('02'));
  const x4 = P.X25519PrivateKey.fromBytes(fill('04'));
  expect('X25519 secret 02 x 32\\s+-> public key', P.toHex(x2.publicKey.bytes));
  expect('X25519 secret 04 x 32\\s+-> public key', P.toHex(x4.publicKey.bytes));
  expect(
    'pairKey, sender static 02 x 32 -> recipient static 04 x 32',
    P.toHex(P.derivePairKey(x2, x4.publicKey, 'send')),
  );
  t.equal(
    P.toHex(P.derivePairKey(x4, x2.publicKey, 'receive')),
    P.toHex(P.derivePairKey(x2, x4.publicKey, 'send')),
    'both ends derive the same key',
  );
  expect(
    'pairKey, sender static 04 x 32 -> recipient static 02 x 32 \\(same X25519 output, other direction\\)',
    P.toHex(P.derivePairKey(x4, x2.publicKey, 'send')),
  );
  const mid = P.asMessageId(Uint8Array.from({ length: 16 }, (_, i) => i));
  const ck = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
  expect(
    'keyCommitment, messageId 000102..0f, contentKey 202122..3f',
    P.toHex(P.keyCommitment(mid, ck)),
  );
  // The key record split by field.
  const block = spec.slice(spec.indexOf('split by field:'));
  const recordHex = [
    ...block.slice(0, block.indexOf('```', block.indexOf('```') + 3)).matchAll(/^([0-9a-f]+)/gm),
  ]
    .map((m) => m[1])
    .join('');
  const record = P.createKeyRecord(
    a,
    P.deriveNodeId(a.publicKey),
    x2.publicKey,
    1,
    1_767_225_600_000,
  );
  t.equal(recordHex, P.toHex(record.bytes), 'the annotated key record');
});
