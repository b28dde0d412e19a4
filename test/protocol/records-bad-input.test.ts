/**
 * Bad inputs for receipts, key records, key rotations and payloads: each rejected with its code.
 */
import t from 'tap';
import {
  createKeyRecord,
  createKeyRotation,
  createReceipt,
  decodeEnvelope,
  decodeKeyRecord,
  decodeKeyRotation,
  decodePayload,
  decodeReceipt,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  encodePayload,
  MAX_RECEIPT_ENTRIES,
  receiptEntryFor,
  verifyKeyHistory,
  isRotationEquivocation,
  verifyReceipt,
  Writer,
  X25519PrivateKey,
  X25519PublicKey,
  asMessageId,
} from '../../protocol/index.ts';
import type { Payload, ReceiptEntry } from '../../protocol/index.ts';
import { alice, bob, carol, mallory, payload, seal, T0 } from '../helpers/fixtures.ts';
import { rejects } from '../helpers/assert.ts';

const env = seal();
const entry: ReceiptEntry = {
  messageId: env.header.messageId,
  envelopeHash: env.envelopeHash,
  logIndex: 7,
};
const receipt = createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [entry]);

t.test('receipts', async (t) => {
  const r = decodeReceipt(receipt.bytes);
  verifyReceipt(r, bob.signingKey.publicKey, alice.nodeId);
  t.equal(receiptEntryFor(r, decodeEnvelope(env.bytes)).logIndex, 7);

  for (let n = 0; n < receipt.bytes.length; n++) {
    rejects(
      t,
      () => decodeReceipt(receipt.bytes.subarray(0, n)),
      'LIAISON_ERR_DECODE_TRUNCATED',
      `truncated to ${n}`,
    );
  }
  const trailing = new Uint8Array(receipt.bytes.length + 1);
  trailing.set(receipt.bytes);
  rejects(t, () => decodeReceipt(trailing), 'LIAISON_ERR_DECODE_TRAILING', 'trailing byte');
  const countAt = 2 + 32 + 32 + 32 + 8;
  const zero = Uint8Array.from(receipt.bytes);
  new DataView(zero.buffer).setUint16(countAt, 0);
  rejects(t, () => decodeReceipt(zero), 'LIAISON_ERR_DECODE_VALUE', 'no entries');
  const many = Uint8Array.from(receipt.bytes);
  new DataView(many.buffer).setUint16(countAt, MAX_RECEIPT_ENTRIES + 1);
  rejects(t, () => decodeReceipt(many), 'LIAISON_ERR_DECODE_LIMIT', 'too many entries');

  const two = createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [
    entry,
    { ...entry, logIndex: 9 },
  ]);
  const swapped = Uint8Array.from(two.bytes);
  const e0 = countAt + 2;
  swapped.set(two.bytes.subarray(e0 + 56, e0 + 112), e0);
  swapped.set(two.bytes.subarray(e0, e0 + 56), e0 + 56);
  rejects(
    t,
    () => decodeReceipt(swapped),
    'LIAISON_ERR_DECODE_ORDER',
    'entries not ascending by log index',
  );
  rejects(
    t,
    () => createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [entry, entry]),
    'LIAISON_ERR_ENCODE_VALUE',
    'two entries at one log index',
  );

  const flipped = Uint8Array.from(receipt.bytes);
  flipped[countAt + 2 + 60]! ^= 1;
  rejects(
    t,
    () => verifyReceipt(decodeReceipt(flipped), bob.signingKey.publicKey, alice.nodeId),
    'LIAISON_ERR_SIGNATURE_INVALID',
    'log index altered',
  );
  rejects(
    t,
    () => verifyReceipt(r, carol.signingKey.publicKey, alice.nodeId),
    'LIAISON_ERR_SENDER_KEY_MISMATCH',
    'checked against another pinned key',
  );
  const byMallory = createReceipt(mallory.signingKey, bob.nodeId, alice.nodeId, T0, [entry]);
  rejects(
    t,
    () => verifyReceipt(decodeReceipt(byMallory.bytes), bob.signingKey.publicKey, alice.nodeId),
    'LIAISON_ERR_SENDER_KEY_MISMATCH',
    "issued in bob's name with another key",
  );
  rejects(
    t,
    () => verifyReceipt(r, bob.signingKey.publicKey, carol.nodeId),
    'LIAISON_ERR_RECEIPT_MISMATCH',
    'addressed to another sender',
  );
  const otherHash = createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [
    { ...entry, envelopeHash: new Uint8Array(32) },
  ]);
  rejects(
    t,
    () => receiptEntryFor(otherHash, decodeEnvelope(env.bytes)),
    'LIAISON_ERR_RECEIPT_MISMATCH',
    'names another envelope hash',
  );
  const otherMsg = createReceipt(bob.signingKey, bob.nodeId, alice.nodeId, T0, [
    { ...entry, messageId: asMessageId(new Uint8Array(16)) },
  ]);
  rejects(
    t,
    () => receiptEntryFor(otherMsg, decodeEnvelope(env.bytes)),
    'LIAISON_ERR_RECEIPT_MISMATCH',
    'does not name the message',
  );
  const byCarol = createReceipt(carol.signingKey, carol.nodeId, alice.nodeId, T0, [entry]);
  rejects(
    t,
    () => receiptEntryFor(byCarol, decodeEnvelope(env.bytes)),
    'LIAISON_ERR_RECEIPT_MISMATCH',
    'issued by a node that was not a recipient',
  );
});

t.test('key records', async (t) => {
  const rec = alice.keyRecord.bytes;
  t.equal(decodeKeyRecord(rec).serial, 1);
  for (let i = 0; i < rec.length; i++) {
    const b = Uint8Array.from(rec);
    b[i]! ^= 0x01;
    try {
      decodeKeyRecord(b);
      t.fail(`byte ${i} flipped: accepted`);
    } catch (err) {
      const code = (err as { code?: string }).code;
      t.ok(
        code === 'LIAISON_ERR_KEY_RECORD_INVALID' ||
          code === 'LIAISON_ERR_KEY_INVALID' ||
          code?.startsWith('LIAISON_ERR_DECODE_'),
        `byte ${i}: ${code}`,
      );
    }
  }
  const badSig = Uint8Array.from(rec);
  badSig[rec.length - 1]! ^= 1;
  rejects(t, () => decodeKeyRecord(badSig), 'LIAISON_ERR_KEY_RECORD_INVALID', 'signature altered');
  const badKey = Uint8Array.from(rec);
  badKey.fill(0, 34, 66); // the all-zero point has small order
  rejects(
    t,
    () => decodeKeyRecord(badKey),
    'LIAISON_ERR_KEY_INVALID',
    'identity key of small order',
  );
  const serial0 = Uint8Array.from(rec);
  serial0.fill(0, 98, 102);
  rejects(t, () => decodeKeyRecord(serial0), 'LIAISON_ERR_DECODE_VALUE', 'serial 0');
  rejects(
    t,
    () => createKeyRecord(alice.signingKey, alice.nodeId, alice.dhKey.publicKey, 0, T0),
    'LIAISON_ERR_ENCODE_VALUE',
    'creating serial 0',
  );
  const wrongType = Uint8Array.from(rec);
  wrongType[0] = 0x04;
  rejects(t, () => decodeKeyRecord(wrongType), 'LIAISON_ERR_DECODE_TYPE', 'type tag of a rotation');
});

t.test('identity key rotations and key histories', async (t) => {
  const k1 = Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(11));
  const k2 = Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(12));
  const r1 = createKeyRotation(alice.nodeId, 1, alice.signingKey, k1, T0 + 10);
  const r2 = createKeyRotation(alice.nodeId, 2, k1, k2, T0 + 20);
  const periods = verifyKeyHistory(
    alice.nodeId,
    alice.signingKey.publicKey,
    [decodeKeyRotation(r1.bytes), decodeKeyRotation(r2.bytes)],
    T0 + 60_000,
  );
  t.same(
    periods.map((p) => [p.from, p.until]),
    [
      [0, T0 + 10],
      [T0 + 10, T0 + 20],
      [T0 + 20, null],
    ],
  );

  rejects(
    t,
    () => verifyKeyHistory(bob.nodeId, alice.signingKey.publicKey, [], T0 + 60_000),
    'LIAISON_ERR_NODE_ID_MISMATCH',
    'genesis key of another node',
  );
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [r2], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'serial 2 first',
  );
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [r1, r1], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'the same rotation twice',
  );
  const fromWrongKey = createKeyRotation(alice.nodeId, 1, mallory.signingKey, k1, T0 + 10);
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [fromWrongKey], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'starts from a key that is not current',
  );
  const backdated = createKeyRotation(alice.nodeId, 2, k1, k2, T0 + 5);
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [r1, backdated], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'dated before its predecessor',
  );
  const otherNode = createKeyRotation(bob.nodeId, 1, alice.signingKey, k1, T0 + 10);
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [otherNode], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'names another node',
  );

  // A thief with only the old key, or only the new key, cannot produce a rotation.
  const body = r1.bytes.subarray(0, r1.bytes.length - 128);
  const onlyOld = new Writer()
    .raw(body)
    .raw(r1.oldSignature)
    .raw(mallory.signingKey.sign(body))
    .finish();
  rejects(
    t,
    () => decodeKeyRotation(onlyOld),
    'LIAISON_ERR_SIGNATURE_INVALID',
    'new-key signature missing',
  );
  const onlyNew = new Writer().raw(body).raw(new Uint8Array(64)).raw(r1.newSignature).finish();
  rejects(
    t,
    () => decodeKeyRotation(onlyNew),
    'LIAISON_ERR_SIGNATURE_INVALID',
    'old-key signature missing',
  );
  const future = createKeyRotation(alice.nodeId, 1, alice.signingKey, k1, T0 + 60_000 + 300_001);
  rejects(
    t,
    () => verifyKeyHistory(alice.nodeId, alice.signingKey.publicKey, [future], T0 + 60_000),
    'LIAISON_ERR_KEY_HISTORY_INVALID',
    'dated beyond now plus the clock skew',
  );

  // A thief holding only the genesis key can rotate to a key of its own: the history alone
  // cannot tell, but the two serial-1 rotations side by side are equivocation evidence.
  const thief = createKeyRotation(alice.nodeId, 1, alice.signingKey, mallory.signingKey, T0 + 10);
  t.ok(
    isRotationEquivocation(decodeKeyRotation(r1.bytes), decodeKeyRotation(thief.bytes)),
    'the fork is detected',
  );
  t.notOk(
    isRotationEquivocation(r1, decodeKeyRotation(r1.bytes)),
    'the same rotation twice is not a fork',
  );
  t.notOk(isRotationEquivocation(r1, r2), 'successive rotations are not a fork');

  rejects(
    t,
    () => createKeyRotation(alice.nodeId, 1, k1, k1, T0),
    'LIAISON_ERR_ENCODE_VALUE',
    'rotation to the same key',
  );
  rejects(
    t,
    () => Ed25519PublicKey.fromBytes(new Uint8Array(31)),
    'LIAISON_ERR_KEY_INVALID',
    'short public key',
  );
  rejects(
    t,
    () => X25519PrivateKey.fromBytes(new Uint8Array(31)),
    'LIAISON_ERR_ARGUMENT',
    'short static secret',
  );
});

t.test('payloads', async (t) => {
  const full: Payload = {
    ...payload,
    form: {
      formId: 'eio',
      formVersion: 1,
      fields: [
        { name: 'b', value: '2' },
        { name: 'a', value: '1' },
      ],
    },
    attachments: [
      {
        name: 'a.pdf',
        mediaType: 'application/pdf',
        size: 10,
        chunkSize: 65536,
        contentHash: new Uint8Array(32),
        fileKey: new Uint8Array(32),
        streamHeader: new Uint8Array(24),
      },
    ],
  };
  const bytes = encodePayload(full);
  t.same(
    decodePayload(bytes).form?.fields.map((f) => f.name),
    ['a', 'b'],
    'fields travel sorted',
  );

  // Finds a u8-length-prefixed field by its content and returns the offset of the content.
  const at = (needle: string) => {
    const n = new TextEncoder().encode(needle);
    for (let i = 1; i < bytes.length; i++)
      if (bytes[i - 1] === n.length && n.every((b, j) => bytes[i + j] === b)) return i;
    throw new Error(`${needle} not found`);
  };
  const swap = Uint8Array.from(bytes);
  swap[at('a')] = 'c'.charCodeAt(0); // fields become c, b: descending
  rejects(t, () => decodePayload(swap), 'LIAISON_ERR_DECODE_ORDER', 'form fields not ascending');
  const dup = Uint8Array.from(bytes);
  dup[at('b')] = 'a'.charCodeAt(0);
  rejects(t, () => decodePayload(dup), 'LIAISON_ERR_DECODE_ORDER', 'a form field twice');
  const badUtf8 = Uint8Array.from(bytes);
  badUtf8[4] = 0xff; // first byte of the subject (u16 length at 2..3)
  rejects(
    t,
    () => decodePayload(badUtf8),
    'LIAISON_ERR_DECODE_UTF8',
    'invalid UTF-8 in the subject',
  );
  const badLang = Uint8Array.from(bytes);
  badLang[at('en')] = '-'.charCodeAt(0);
  rejects(t, () => decodePayload(badLang), 'LIAISON_ERR_DECODE_VALUE', 'malformed language tag');
  const badType = Uint8Array.from(bytes);
  badType[at('application/pdf')] = 'A'.charCodeAt(0);
  rejects(
    t,
    () => decodePayload(badType),
    'LIAISON_ERR_DECODE_VALUE',
    'media type with upper case',
  );
  const chunkAt = at('application/pdf') + 'application/pdf'.length + 8;
  const badChunk = Uint8Array.from(bytes);
  new DataView(badChunk.buffer).setUint32(chunkAt, 512);
  rejects(
    t,
    () => decodePayload(badChunk),
    'LIAISON_ERR_DECODE_VALUE',
    'chunk size below the minimum',
  );
  const flagAt = 2 + 2 + payload.subject.length + 4 + payload.body.length;
  const badFlag = Uint8Array.from(bytes);
  badFlag[flagAt] = 2;
  rejects(t, () => decodePayload(badFlag), 'LIAISON_ERR_DECODE_VALUE', 'language presence flag 2');
  const bom = encodePayload({ ...payload, subject: '\ufeffBOM' });
  t.equal(
    decodePayload(bom).subject,
    '\ufeffBOM',
    'a leading BOM is kept, so the text re-encodes identically',
  );
  rejects(
    t,
    () =>
      encodePayload({
        ...full,
        form: {
          formId: 'eio',
          formVersion: 1,
          fields: [
            { name: 'a', value: '1' },
            { name: 'a', value: '2' },
          ],
        },
      }),
    'LIAISON_ERR_ENCODE_VALUE',
    'encoding a field twice',
  );
  rejects(
    t,
    () => encodePayload({ ...payload, language: 'english language' }),
    'LIAISON_ERR_ENCODE_VALUE',
    'encoding a malformed language',
  );
});

t.test('static keys in key records must be canonical and of large order', async (t) => {
  const lowOrder: [string, string][] = [
    ['zero', '00'.repeat(32)],
    ['one', '01' + '00'.repeat(31)],
    ['order 8', 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'],
    ['p - 1', 'ec' + 'ff'.repeat(30) + '7f'],
    ['p (non-canonical zero)', 'ed' + 'ff'.repeat(30) + '7f'],
  ];
  for (const [label, hex] of lowOrder) {
    const rec = Uint8Array.from(alice.keyRecord.bytes);
    rec.set(Buffer.from(hex, 'hex'), 66);
    rejects(
      t,
      () => decodeKeyRecord(rec),
      'LIAISON_ERR_KEY_INVALID',
      `certified static key: ${label}`,
    );
  }
  const highBit = Uint8Array.from(alice.keyRecord.bytes);
  highBit[97]! |= 0x80;
  rejects(
    t,
    () => decodeKeyRecord(highBit),
    'LIAISON_ERR_KEY_INVALID',
    'bit 255 set (a second encoding of the same key)',
  );
  rejects(
    t,
    () =>
      createKeyRecord(
        alice.signingKey,
        alice.nodeId,
        X25519PublicKey.fromBytes(new Uint8Array(32)),
        2,
        T0,
      ),
    'LIAISON_ERR_KEY_INVALID',
    'certifying a low-order key',
  );
});
