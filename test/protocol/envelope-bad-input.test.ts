/**
 * The bad-input table for envelopes: every structural violation, every mutated field, and every
 * attack a network attacker or a malicious paired sender can mount is rejected with its own
 * error code, and never with anything but a LiaisonError.
 */
import t from 'tap';
import {
  acceptEnvelope,
  asMessageId,
  decodeEnvelope,
  decodeHeader,
  isLiaisonError,
  keyCommitment,
  MAX_CLOCK_SKEW_MS,
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPE_LIFETIME_MS,
  MAX_HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_RECIPIENTS,
  PairKeyCache,
  sealEnvelope,
  toHex,
  Writer,
  X25519PrivateKey,
  createKeyRecord,
} from '../../protocol/index.ts';
import type {
  Accepted,
  Envelope,
  EnvelopeHeader,
  ErrorCode,
  LocalIdentity,
} from '../../protocol/index.ts';
import {
  alice,
  bob,
  carol,
  mallory,
  params,
  payload,
  seal,
  T0,
  TestView,
} from '../helpers/fixtures.ts';
import { forge } from '../helpers/forge.ts';
import { rejects } from '../helpers/assert.ts';

const NOW = T0 + 1000;

function accept(
  bytes: Uint8Array,
  me: LocalIdentity = bob,
  view: TestView = new TestView(alice, carol),
  now = NOW,
  from: LocalIdentity = alice,
): Accepted {
  // `from` is the peer whose link delivered the bytes: Alice, unless a test says otherwise.
  return acceptEnvelope(bytes, me, view, now, new PairKeyCache(), from.nodeId);
}

/** Re-frames an envelope around replacement header bytes (ciphertext, wraps, signature kept). */
function reframe(env: Envelope, header: Uint8Array, wrapCount = env.wraps.length): Uint8Array {
  const wraps = new Uint8Array(wrapCount * 48);
  env.wraps.slice(0, wrapCount).forEach((w, i) => wraps.set(w, i * 48));
  return new Writer()
    .u8(1)
    .u8(1)
    .bytes(header, 2, 0xffff, 'h')
    .bytes(env.ciphertext, 4, 0xffffffff, 'c')
    .raw(wraps)
    .raw(env.signature)
    .finish();
}

/** Byte offsets of header fields (docs/protocol.md §5.1). */
function offsets(h: EnvelopeHeader) {
  const author = 115;
  const createdAt = author + 1 + h.author.length;
  const expiresAt = createdAt + 8;
  const hasRef = expiresAt + 8;
  const keyCommitment = hasRef + 1 + (h.ref === null ? 0 : 16);
  const count = keyCommitment + 32;
  const r0 = count + 1;
  return {
    kind: 0,
    priority: 1,
    handling: 2,
    messageId: 3,
    senderNodeId: 19,
    senderIdentityKey: 51,
    senderDhKey: 83,
    author,
    createdAt,
    expiresAt,
    hasRef,
    keyCommitment,
    count,
    r0,
    r0DhKey: r0 + 32,
    r0Seq: r0 + 64,
    r0Mailbox: r0 + 72,
  };
}

const good = seal();
const o = offsets(good.header);

function withHeaderByte(at: number, value: number): Uint8Array {
  const hb = Uint8Array.from(good.headerBytes);
  hb[at] = value;
  return reframe(good, hb);
}

t.test('the valid envelope is accepted (the table below starts from it)', async (t) => {
  const a = accept(good.bytes);
  t.equal(a.payload.subject, payload.subject);
  t.same(a.sequence, { kind: 'next' });
});

t.test('structure', async (t) => {
  rejects(t, () => accept(new Uint8Array(0)), 'LIAISON_ERR_DECODE_TRUNCATED', 'empty input');
  const wrongType = Uint8Array.from(good.bytes);
  wrongType[0] = 0x02;
  rejects(t, () => accept(wrongType), 'LIAISON_ERR_DECODE_TYPE', 'type tag of a receipt');
  const wrongVersion = Uint8Array.from(good.bytes);
  wrongVersion[1] = 0x02;
  rejects(t, () => accept(wrongVersion), 'LIAISON_ERR_DECODE_VERSION', 'version 2');
  for (let n = 0; n < good.bytes.length; n++) {
    rejects(
      t,
      () => decodeEnvelope(good.bytes.subarray(0, n)),
      'LIAISON_ERR_DECODE_TRUNCATED',
      `truncated to ${n} bytes`,
    );
  }
  const extended = new Uint8Array(good.bytes.length + 1);
  extended.set(good.bytes);
  rejects(t, () => accept(extended), 'LIAISON_ERR_DECODE_TRAILING', 'one byte appended');
  rejects(
    t,
    () => accept(new Uint8Array(MAX_ENVELOPE_BYTES + 1)),
    'LIAISON_ERR_DECODE_LIMIT',
    'over MAX_ENVELOPE_BYTES',
  );

  const hugeHeader = Uint8Array.from(good.bytes);
  new DataView(hugeHeader.buffer).setUint16(2, MAX_HEADER_BYTES + 1);
  rejects(
    t,
    () => accept(hugeHeader),
    'LIAISON_ERR_DECODE_LIMIT',
    'header length over MAX_HEADER_BYTES',
  );
  const ctLenAt = 4 + good.headerBytes.length;
  const hugeCt = Uint8Array.from(good.bytes);
  new DataView(hugeCt.buffer).setUint32(ctLenAt, MAX_PAYLOAD_BYTES + 1);
  rejects(
    t,
    () => accept(hugeCt),
    'LIAISON_ERR_DECODE_LIMIT',
    'ciphertext length over MAX_PAYLOAD_BYTES',
  );
  const giantCt = Uint8Array.from(good.bytes);
  new DataView(giantCt.buffer).setUint32(ctLenAt, 0xffffffff);
  rejects(
    t,
    () => accept(giantCt),
    'LIAISON_ERR_DECODE_LIMIT',
    'ciphertext length 2^32-1: refused before allocating',
  );
  const tinyCt = Uint8Array.from(good.bytes);
  new DataView(tinyCt.buffer).setUint32(ctLenAt, 15);
  rejects(t, () => accept(tinyCt), 'LIAISON_ERR_DECODE_VALUE', 'ciphertext shorter than a tag');
  const headerTrailing = new Uint8Array(good.headerBytes.length + 1);
  headerTrailing.set(good.headerBytes);
  rejects(
    t,
    () => accept(reframe(good, headerTrailing)),
    'LIAISON_ERR_DECODE_TRAILING',
    'byte after the header inside its length',
  );
});

t.test('header fields with values the format forbids', async (t) => {
  rejects(t, () => accept(withHeaderByte(o.kind, 9)), 'LIAISON_ERR_DECODE_VALUE', 'unknown kind');
  rejects(
    t,
    () => accept(withHeaderByte(o.priority, 3)),
    'LIAISON_ERR_DECODE_VALUE',
    'unknown priority',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.handling, 4)),
    'LIAISON_ERR_DECODE_VALUE',
    'unknown handling code',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.author + 1, 'D'.charCodeAt(0))),
    'LIAISON_ERR_DECODE_VALUE',
    'upper case in author',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.author + 1, 0xc3)),
    'LIAISON_ERR_DECODE_VALUE',
    'non-ASCII in author',
  );
  rejects(t, () => accept(withHeaderByte(o.author, 0)), 'LIAISON_ERR_DECODE_VALUE', 'empty author');
  rejects(
    t,
    () => accept(withHeaderByte(o.author, 65)),
    'LIAISON_ERR_DECODE_LIMIT',
    'author over MAX_AUTHOR_BYTES',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.createdAt, 0xff)),
    'LIAISON_ERR_DECODE_VALUE',
    'createdAt above 2^53-1',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.hasRef, 2)),
    'LIAISON_ERR_DECODE_VALUE',
    'presence flag 2',
  );
  rejects(t, () => accept(withHeaderByte(o.count, 0)), 'LIAISON_ERR_DECODE_VALUE', 'no recipients');
  rejects(
    t,
    () => accept(withHeaderByte(o.count, MAX_RECIPIENTS + 1)),
    'LIAISON_ERR_DECODE_LIMIT',
    'too many recipients',
  );
  const seq0 = Uint8Array.from(good.headerBytes);
  seq0.fill(0, o.r0Seq, o.r0Seq + 8);
  rejects(t, () => accept(reframe(good, seq0)), 'LIAISON_ERR_DECODE_VALUE', 'sequence 0');
  rejects(
    t,
    () => accept(withHeaderByte(o.r0Mailbox + 1, '_'.charCodeAt(0))),
    'LIAISON_ERR_DECODE_VALUE',
    'mailbox with a forbidden character',
  );

  // Two recipients out of order, and the same recipient twice.
  const two = seal(alice, {}, [bob, carol]);
  const to = offsets(two.header);
  const entry = (i: number) => two.headerBytes.subarray(to.r0 + i * 77, to.r0 + (i + 1) * 77);
  const swapped = Uint8Array.from(two.headerBytes);
  swapped.set(entry(1), to.r0);
  swapped.set(entry(0), to.r0 + 77);
  rejects(
    t,
    () => accept(reframe(two, swapped)),
    'LIAISON_ERR_DECODE_ORDER',
    'recipients not ascending',
  );
  const dup = Uint8Array.from(two.headerBytes);
  dup.set(entry(0), to.r0 + 77);
  rejects(
    t,
    () => accept(reframe(two, dup)),
    'LIAISON_ERR_DECODE_ORDER',
    'the same recipient twice',
  );

  // The sender listed among its own recipients.
  const self = Uint8Array.from(good.headerBytes);
  self.set(alice.nodeId, o.r0);
  rejects(
    t,
    () => accept(reframe(good, self)),
    'LIAISON_ERR_DECODE_VALUE',
    'sender among recipients',
  );
});

t.test('every signed field mutated in transit', async (t) => {
  const table: [string, number, ErrorCode][] = [
    ['messageId', o.messageId, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['senderNodeId', o.senderNodeId, 'LIAISON_ERR_NOT_FROM_SENDER'],
    ['senderIdentityKey', o.senderIdentityKey, 'LIAISON_ERR_SENDER_KEY_MISMATCH'],
    ['senderDhKey', o.senderDhKey, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['author', o.author + 1, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['createdAt', o.createdAt + 7, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['expiresAt', o.expiresAt + 7, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['keyCommitment', o.keyCommitment, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['recipient nodeId', o.r0 + 31, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['recipient dhKey', o.r0DhKey, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['recipient sequence', o.r0Seq + 6, 'LIAISON_ERR_SIGNATURE_INVALID'],
    ['recipient mailbox', o.r0Mailbox + 1, 'LIAISON_ERR_SIGNATURE_INVALID'],
  ];
  for (const [field, at, code] of table) {
    const hb = Uint8Array.from(good.headerBytes);
    // Flip a low bit that keeps the byte valid for its field ('2' -> '3', digits stay digits).
    hb[at]! ^= 0x01;
    rejects(t, () => accept(reframe(good, hb)), code, `header.${field}`);
  }
  for (const kind of [2, 3])
    rejects(
      t,
      () => accept(withHeaderByte(o.kind, kind)),
      'LIAISON_ERR_SIGNATURE_INVALID',
      `kind changed to ${kind}`,
    );
  rejects(
    t,
    () => accept(withHeaderByte(o.priority, 0)),
    'LIAISON_ERR_SIGNATURE_INVALID',
    'priority downgraded',
  );
  rejects(
    t,
    () => accept(withHeaderByte(o.handling, 3)),
    'LIAISON_ERR_SIGNATURE_INVALID',
    'handling code changed',
  );
  const ctAt = 4 + good.headerBytes.length + 4;
  for (const [label, at] of [
    ['ciphertext', ctAt + 3],
    ['payload tag', ctAt + good.ciphertext.length - 1],
    ['wrap', good.bytes.length - 64 - 10],
    ['signature', good.bytes.length - 1],
  ] as const) {
    const b = Uint8Array.from(good.bytes);
    b[at]! ^= 0x80;
    rejects(t, () => accept(b), 'LIAISON_ERR_SIGNATURE_INVALID', label);
  }
});

t.test('a single flipped bit anywhere is refused with a Liaison error', async (t) => {
  let refused = 0;
  for (let i = 0; i < good.bytes.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const b = Uint8Array.from(good.bytes);
      b[i]! ^= bit;
      try {
        accept(b);
        t.fail(`byte ${i} bit ${bit}: accepted`);
      } catch (err) {
        if (!isLiaisonError(err)) t.fail(`byte ${i}: ${String(err)}`);
        else refused += 1;
      }
    }
  }
  t.equal(refused, good.bytes.length * 2);
});

t.test('sender and recipient checks', async (t) => {
  rejects(
    t,
    () => accept(seal(mallory).bytes, bob, new TestView(alice, carol), NOW, mallory),
    'LIAISON_ERR_SENDER_KEY_MISMATCH',
    'validly signed by an unpaired node',
  );
  // Mallory signs Alice's envelope hash: right bytes, wrong key.
  const stolen = Uint8Array.from(good.bytes);
  stolen.set(mallory.signingKey.sign(signatureInputOf(good)), good.bytes.length - 64);
  rejects(t, () => accept(stolen), 'LIAISON_ERR_SIGNATURE_INVALID', 'signature by another key');
  rejects(
    t,
    () => accept(seal(alice, {}, [carol]).bytes),
    'LIAISON_ERR_NOT_A_RECIPIENT',
    'addressed to another node',
  );
  const view = new TestView(alice);
  view.pinned.set(toHex(alice.nodeId), {
    ...alice,
    keyRecord: createKeyRecord(
      alice.signingKey,
      alice.nodeId,
      X25519PrivateKey.fromBytes(new Uint8Array(32).fill(77)).publicKey,
      2,
      T0,
    ),
  });
  rejects(
    t,
    () => accept(good.bytes, bob, view),
    'LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED',
    'sender static key not certified',
  );
  const bobRotated: LocalIdentity = {
    ...bob,
    dhKey: X25519PrivateKey.fromBytes(new Uint8Array(32).fill(88)),
    previousDhKeys: [],
  };
  rejects(
    t,
    () => accept(good.bytes, bobRotated),
    'LIAISON_ERR_RECIPIENT_KEY_UNKNOWN',
    'wrapped for a static key the node no longer holds',
  );
  const bobGrace: LocalIdentity = { ...bobRotated, previousDhKeys: [bob.dhKey] };
  t.equal(
    accept(good.bytes, bobGrace).payload.subject,
    payload.subject,
    'a previous static key still opens during the grace period',
  );
});

function signatureInputOf(env: Envelope): Uint8Array {
  // tag(liaison/v1/envelope-signature) || envelopeHash, built by hand from docs/protocol.md §5.5.
  const tag = new TextEncoder().encode('liaison/v1/envelope-signature');
  const out = new Uint8Array(1 + tag.length + 32);
  out[0] = tag.length;
  out.set(tag, 1);
  out.set(env.envelopeHash, 1 + tag.length);
  return out;
}

t.test('times, replay and sequence', async (t) => {
  rejects(
    t,
    () => accept(good.bytes, bob, new TestView(alice), good.header.expiresAt),
    'LIAISON_ERR_ENVELOPE_EXPIRED',
    'at expiresAt',
  );
  t.ok(
    accept(good.bytes, bob, new TestView(alice), good.header.expiresAt - 1),
    'one millisecond before expiry',
  );
  rejects(
    t,
    () =>
      accept(good.bytes, bob, new TestView(alice), good.header.createdAt - MAX_CLOCK_SKEW_MS - 1),
    'LIAISON_ERR_ENVELOPE_FROM_FUTURE',
    'created beyond the clock skew',
  );
  t.ok(
    accept(good.bytes, bob, new TestView(alice), good.header.createdAt - MAX_CLOCK_SKEW_MS),
    'created exactly at the skew limit',
  );

  const view = new TestView(alice);
  const first = accept(good.bytes, bob, view);
  view.record(first.envelope, bob);
  rejects(t, () => accept(good.bytes, bob, view), 'LIAISON_ERR_REPLAY', 'the same envelope again');
  const again = seal(alice); // a fresh message ID, but sequence 1 again
  rejects(
    t,
    () => accept(again.bytes, bob, view),
    'LIAISON_ERR_SEQUENCE_REPLAY',
    'a new message ID with a used sequence number',
  );
  const skip = sealEnvelope(
    alice,
    {
      ...params(),
      recipients: [
        { nodeId: bob.nodeId, dhKey: bob.dhKey.publicKey, sequence: 5, mailbox: '24-7' },
      ],
    },
    { pairKeys: new PairKeyCache() },
  );
  t.same(
    accept(skip.bytes, bob, view).sequence,
    { kind: 'gap', missingFrom: 2, missingTo: 4 },
    'a gap is accepted and reported',
  );
});

t.test('a malicious paired sender', async (t) => {
  const header = (
    over: Partial<EnvelopeHeader>,
    key: Uint8Array,
    to: LocalIdentity[] = [bob],
  ): EnvelopeHeader => ({
    ...decodeHeader(seal(alice, {}, to).headerBytes),
    keyCommitment: keyCommitment(asMessageId(new Uint8Array(16).fill(9)), key),
    messageId: asMessageId(new Uint8Array(16).fill(9)),
    ...over,
  });
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const base = { signer: alice.signingKey, sender: alice, payload };

  t.ok(
    accept(forge({ ...base, header: header({}, k1), payloadKey: k1 })),
    'the forge helper builds acceptable envelopes',
  );
  rejects(
    t,
    () => accept(forge({ ...base, header: header({}, k1), payloadKey: k2, wrappedKey: k2 })),
    'LIAISON_ERR_KEY_COMMITMENT_MISMATCH',
    'wrapped key differs from the commitment',
  );
  rejects(
    t,
    () => accept(forge({ ...base, header: header({}, k1), payloadKey: k2, wrappedKey: k1 })),
    'LIAISON_ERR_PAYLOAD_DECRYPT_FAILED',
    'payload under another key than the committed one',
  );
  rejects(
    t,
    () =>
      accept(
        forge({
          ...base,
          header: header({}, k1),
          payloadKey: k1,
          plaintext: Uint8Array.of(0x01, 0x01),
        }),
      ),
    'LIAISON_ERR_DECODE_TYPE',
    'a payload that is not a payload',
  );
  rejects(
    t,
    () =>
      accept(
        forge({
          ...base,
          header: header({ expiresAt: T0 + MAX_ENVELOPE_LIFETIME_MS + 1 }, k1),
          payloadKey: k1,
        }),
      ),
    'LIAISON_ERR_ENVELOPE_LIFETIME',
    'lifetime over the maximum',
  );
  rejects(
    t,
    () => accept(forge({ ...base, header: header({ expiresAt: T0 }, k1), payloadKey: k1 })),
    'LIAISON_ERR_ENVELOPE_LIFETIME',
    'expires when created',
  );
  const jit = header({}, k1, [bob, carol]);
  rejects(
    t,
    () => accept(forge({ ...base, header: jit, payloadKey: k1, wrapOrder: [1, 0] })),
    'LIAISON_ERR_UNWRAP_FAILED',
    'swapped wraps, signed by the sender',
  );
  const zeroKey = { ...header({}, k1), senderDhKey: new Uint8Array(32) };
  const view = new TestView(alice);
  view.extraDhKeys.set(toHex(alice.nodeId), [new Uint8Array(32)]);
  // A sender that certified a low-order static key: the recipient's X25519 output is all zero.
  const forged = forgeWithSenderDh(zeroKey, k1);
  rejects(
    t,
    () => accept(forged, bob, view),
    'LIAISON_ERR_KEY_LOW_ORDER',
    'low-order sender static key',
  );
});

/** An envelope naming an arbitrary sender static key (its wraps cannot be valid, and need not be). */
function forgeWithSenderDh(h: EnvelopeHeader, key: Uint8Array): Uint8Array {
  const real = forge({
    signer: alice.signingKey,
    sender: alice,
    payload,
    header: { ...h, senderDhKey: alice.dhKey.publicKey.bytes },
    payloadKey: key,
  });
  const env = decodeEnvelope(real);
  const hb = Uint8Array.from(env.headerBytes);
  hb.set(h.senderDhKey, 83);
  const reframed = reframe(env, hb);
  const re = decodeEnvelope(reframed);
  const signed = Uint8Array.from(reframed);
  signed.set(alice.signingKey.sign(signatureInputOf(re)), signed.length - 64);
  return signed;
}

t.test('sealing refuses what it must never produce', async (t) => {
  const pairKeys = new PairKeyCache();
  rejects(
    t,
    () => sealEnvelope(alice, params({ recipients: [] }), { pairKeys }),
    'LIAISON_ERR_ARGUMENT',
    'no recipients',
  );
  rejects(
    t,
    () => sealEnvelope(alice, params({}, [bob, bob]), { pairKeys }),
    'LIAISON_ERR_ARGUMENT',
    'a recipient twice',
  );
  rejects(
    t,
    () => sealEnvelope(alice, params({}, [alice]), { pairKeys }),
    'LIAISON_ERR_ARGUMENT',
    'the sender as recipient',
  );
  rejects(
    t,
    () => sealEnvelope(alice, params({ expiresAt: T0 }), { pairKeys }),
    'LIAISON_ERR_ARGUMENT',
    'empty lifetime',
  );
  rejects(
    t,
    () => sealEnvelope(alice, params({ author: 'Bad Name' }), { pairKeys }),
    'LIAISON_ERR_ENCODE_VALUE',
    'author with spaces',
  );
  rejects(
    t,
    () =>
      sealEnvelope(alice, params({ payload: { ...payload, subject: 'x'.repeat(2000) } }), {
        pairKeys,
      }),
    'LIAISON_ERR_ENCODE_LIMIT',
    'subject too long',
  );
  rejects(
    t,
    () => sealEnvelope(alice, params({ payload: { ...payload, body: '\ud800' } }), { pairKeys }),
    'LIAISON_ERR_ENCODE_VALUE',
    'lone surrogate',
  );
  const many = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => ({
    nodeId: alice.nodeId.map((b) => b ^ (i + 1)) as typeof alice.nodeId,
    dhKey: bob.dhKey.publicKey,
    sequence: 1,
    mailbox: 'x',
  }));
  rejects(
    t,
    () => sealEnvelope(alice, params({ recipients: many }), { pairKeys }),
    'LIAISON_ERR_ARGUMENT',
    'too many recipients',
  );
});

t.test('one envelope for a whole JIT: each member opens the same plaintext', async (t) => {
  const members = [bob, carol, mallory];
  const env = seal(alice, {}, members);
  for (const m of members) {
    const a = accept(env.bytes, m, new TestView(alice));
    t.equal(
      toHex(a.contentKey),
      toHex(accept(env.bytes, bob, new TestView(alice)).contentKey),
      'same content key',
    );
    t.equal(a.payload.body, payload.body);
  }
});

t.test("envelopes are accepted only over their sender's link", async (t) => {
  // A co-recipient (Carol) relays Alice's genuine envelope to Bob before Alice delivers it.
  const e1 = seal(alice, {}, [bob, carol]);
  rejects(
    t,
    () => accept(e1.bytes, bob, new TestView(alice, carol), NOW, carol),
    'LIAISON_ERR_NOT_FROM_SENDER',
    'relayed by a co-recipient',
  );
  t.ok(
    accept(e1.bytes, bob, new TestView(alice, carol), NOW, alice),
    'the same bytes from Alice are accepted',
  );
});

t.test(
  "unknown key share: a co-recipient cannot reuse the sender's wrap under its own name",
  async (t) => {
    // Mallory is a co-recipient of Alice's JIT envelope, so she learns its content key. She then
    // certifies Alice's static key as her own and re-signs the header as herself, keeping Alice's
    // wrap for Bob: pair keys alone would match, the node IDs in the wrap key do not.
    const original = seal(alice, {}, [bob, mallory]);
    const mine = accept(original.bytes, mallory, new TestView(alice), NOW, alice);
    const malloryWithAlicesKey = { ...mallory, dhKey: alice.dhKey };
    const header = {
      ...original.header,
      senderNodeId: mallory.nodeId,
      senderIdentityKey: mallory.signingKey.publicKey.bytes,
    };
    const bobIndex = original.header.recipients.findIndex(
      (r) => toHex(r.nodeId) === toHex(bob.nodeId),
    );
    // Mallory cannot list herself as a recipient of her own envelope; she addresses Bob alone.
    const forged = forge({
      header: { ...header, recipients: [original.header.recipients[bobIndex]!] },
      payloadKey: mine.contentKey,
      payload: { ...payload, body: 'forged instructions' },
      signer: mallory.signingKey,
      sender: malloryWithAlicesKey,
    });
    // Replace the wrap Mallory computed (under her claimed key) by Alice's original wrap for Bob.
    const bytes = Uint8Array.from(forged);
    const wrapAt = bytes.length - 64 - 48;
    bytes.set(original.wraps[bobIndex]!, wrapAt);
    const resigned = decodeEnvelope(bytes);
    bytes.set(mallory.signingKey.sign(signatureInputOf(resigned)), bytes.length - 64);
    const view = new TestView(alice, mallory);
    view.extraDhKeys.set(toHex(mallory.nodeId), [alice.dhKey.publicKey.bytes]);
    rejects(
      t,
      () => accept(bytes, bob, view, NOW, mallory),
      'LIAISON_ERR_UNWRAP_FAILED',
      "Alice's wrap replayed under Mallory's name",
    );
  },
);
