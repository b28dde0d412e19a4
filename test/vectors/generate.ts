/**
 * Known-answer vectors for the Liaison v1 wire format (docs/protocol.md §11).
 *
 * Everything is derived from fixed seeds: node keys, message IDs and content keys come from a
 * deterministic stream, so regenerating yields identical bytes. `npm run vectors` rewrites
 * test/vectors/liaison-v1.json; `npm run vectors -- --check` exits 1 if the committed file differs.
 * The test suite decodes, verifies and opens the committed file independently of this generator.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import {
  blake2b256Parts,
  createKeyRecord,
  createKeyRotation,
  createLocalIdentity,
  createReceipt,
  derivePairKey,
  Ed25519PrivateKey,
  decodePayload,
  encodePayload,
  fingerprint,
  keyCommitment,
  concat as concatBytes,
  initCrypto,
  messageIdToText,
  nodeIdToText,
  PairKeyCache,
  sealEnvelope,
  toHex,
  utf8,
} from '../../protocol/index.ts';
import type {
  Envelope,
  EnvelopeHeader,
  LocalIdentity,
  Payload,
  SealParams,
} from '../../protocol/index.ts';
import { forge } from '../helpers/forge.ts';

/** Adds the group order L to a little-endian scalar in place (S -> S + L < 2^256 for any S < L). */
function addOrderToS(s: Uint8Array): void {
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  let v = 0n;
  for (let i = 31; i >= 0; i--) v = (v << 8n) | BigInt(s[i]!);
  v += L;
  for (let i = 0; i < 32; i++) {
    s[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export const VECTORS_PATH = new URL('./liaison-v1.json', import.meta.url);

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00.000Z

/** A deterministic byte stream: block i = BLAKE2b-256(key = label, u32be(i)). Test use only. */
function stream(label: string): (n: number) => Uint8Array {
  let counter = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    while (buf.length < n) {
      const c = Uint8Array.of(
        counter >>> 24,
        (counter >>> 16) & 255,
        (counter >>> 8) & 255,
        counter & 255,
      );
      counter += 1;
      const block = blake2b256Parts(utf8(label), c);
      const next = new Uint8Array(buf.length + block.length);
      next.set(buf);
      next.set(block, buf.length);
      buf = next;
    }
    const out = buf.slice(0, n);
    buf = buf.slice(n);
    return out;
  };
}

function seed(label: string): Uint8Array {
  return stream(`liaison-vector-seed:${label}`)(32);
}

interface NodeVector {
  name: string;
  signingSeed: string;
  dhSecret: string;
  identityKey: string;
  dhKey: string;
  nodeId: string;
  nodeIdText: string;
  fingerprint: string;
  keyRecord: string;
}

function nodeVector(name: string, id: LocalIdentity): NodeVector {
  return {
    name,
    signingSeed: toHex(seed(`${name}/signing`)),
    dhSecret: toHex(seed(`${name}/dh`)),
    identityKey: toHex(id.signingKey.publicKey.bytes),
    dhKey: toHex(id.dhKey.publicKey.bytes),
    nodeId: toHex(id.nodeId),
    nodeIdText: nodeIdToText(id.nodeId),
    fingerprint: fingerprint(id.signingKey.publicKey),
    keyRecord: toHex(id.keyRecord.bytes),
  };
}

function payloadJson(p: Payload) {
  return {
    subject: p.subject,
    body: p.body,
    language: p.language,
    caseRef: p.caseRef,
    form:
      p.form === null
        ? null
        : {
            formId: p.form.formId,
            formVersion: p.form.formVersion,
            fields: p.form.fields.map((f) => ({ name: f.name, value: f.value })),
          },
    attachments: p.attachments.map((a) => ({
      name: a.name,
      mediaType: a.mediaType,
      size: a.size,
      chunkSize: a.chunkSize,
      contentHash: toHex(a.contentHash),
      fileKey: toHex(a.fileKey),
      streamHeader: toHex(a.streamHeader),
    })),
  };
}

function envelopeVector(
  name: string,
  senderName: string,
  recipientNames: string[],
  params: SealParams,
  env: Envelope,
  contentKey: Uint8Array,
  pairKeys: Uint8Array[],
) {
  const h = env.header;
  return {
    name,
    sender: senderName,
    recipients: recipientNames,
    messageId: toHex(h.messageId),
    messageIdText: messageIdToText(h.messageId),
    contentKey: toHex(contentKey),
    keyCommitment: toHex(h.keyCommitment),
    pairKeys: pairKeys.map(toHex),
    header: toHex(env.headerBytes),
    payloadPlaintext: toHex(encodePayload(params.payload)),
    ciphertext: toHex(env.ciphertext),
    wraps: env.wraps.map(toHex),
    payloadHash: toHex(env.payloadHash),
    envelopeHash: toHex(env.envelopeHash),
    signature: toHex(env.signature),
    envelope: toHex(env.bytes),
    decoded: {
      kind: h.kind,
      priority: h.priority,
      handling: h.handling,
      author: h.author,
      createdAt: h.createdAt,
      expiresAt: h.expiresAt,
      ref: h.ref === null ? null : toHex(h.ref),
      recipients: h.recipients.map((r) => ({
        nodeId: toHex(r.nodeId),
        dhKey: toHex(r.dhKey),
        sequence: r.sequence,
        mailbox: r.mailbox,
      })),
      // The canonical order: form fields sorted by name, as they travel.
      payload: payloadJson(decodePayload(encodePayload(params.payload))),
    },
  };
}

export async function buildVectors() {
  await initCrypto();
  const names = ['alice', 'bob', 'carol'] as const;
  const ids = Object.fromEntries(
    names.map((n) => [n, createLocalIdentity(seed(`${n}/signing`), seed(`${n}/dh`), T0)]),
  ) as Record<(typeof names)[number], LocalIdentity>;
  const cache = new PairKeyCache();

  const envelopes: ReturnType<typeof envelopeVector>[] = [];
  const seal = (
    name: string,
    from: (typeof names)[number],
    to: (typeof names)[number][],
    params: Omit<SealParams, 'recipients'>,
    sequences: number[],
  ) => {
    const sender = ids[from];
    const draw = stream(`liaison-vector-envelope:${name}`);
    let contentKey = new Uint8Array(0);
    let draws = 0;
    const random = (n: number): Uint8Array => {
      const out = draw(n);
      draws += 1;
      if (draws === 2) contentKey = Uint8Array.from(out); // message ID first, then content key
      return out;
    };
    const full: SealParams = {
      ...params,
      recipients: to.map((r, i) => ({
        nodeId: ids[r].nodeId,
        dhKey: ids[r].dhKey.publicKey,
        sequence: sequences[i]!,
        mailbox: r === 'bob' ? '24-7' : 'jit-ecto-2026',
      })),
    };
    const env = sealEnvelope(sender, full, { pairKeys: cache, random });
    // Pair keys in header recipient order (sorted by node ID).
    const pairKeys = env.header.recipients.map((r) => {
      const rn = names.find((n) => toHex(ids[n].nodeId) === toHex(r.nodeId))!;
      return derivePairKey(sender.dhKey, ids[rn].dhKey.publicKey, 'send');
    });
    const recipientNames = env.header.recipients.map((r) =>
      names.find((n) => toHex(ids[n].nodeId) === toHex(r.nodeId))!,
    );
    envelopes.push(envelopeVector(name, from, recipientNames, full, env, contentKey, pairKeys));
    return env;
  };

  const first = seal(
    'message-one-recipient',
    'alice',
    ['bob'],
    {
      kind: 'message',
      priority: 'urgent',
      handling: 'H0',
      author: 'duty-officer',
      createdAt: T0 + 1000,
      expiresAt: T0 + 1000 + 8 * 3600_000,
      ref: null,
      payload: {
        subject: 'Urgent: preservation of subscriber data',
        body: 'Please preserve the data listed in the attached form.',
        language: 'en',
        caseRef: null,
        form: null,
        attachments: [],
      },
    },
    [1],
  );

  const jit = seal(
    'jit-message-two-recipients',
    'alice',
    ['bob', 'carol'],
    {
      kind: 'message',
      priority: 'routine',
      handling: 'H2',
      author: 'liaison.magistrate',
      createdAt: T0 + 2000,
      expiresAt: T0 + 2000 + 7 * 24 * 3600_000,
      ref: null,
      payload: {
        subject: 'Mise à jour ECE / تحديث فريق التحقيق المشترك',
        body: 'Réunion de coordination le 12 janvier.\nاجتماع التنسيق يوم 12 يناير.\n',
        language: 'fr',
        caseRef: 'JIT-2026-007',
        form: {
          formId: 'jit-update',
          formVersion: 2,
          fields: [
            { name: 'summary', value: 'Nouvelles pistes financières' },
            { name: 'next-steps', value: 'Perquisitions coordonnées' },
            { name: 'classification', value: 'H2' },
          ],
        },
        attachments: [
          {
            name: 'relevé-bancaire.pdf',
            mediaType: 'application/pdf',
            size: 1_048_576,
            chunkSize: 65_536,
            contentHash: seed('attachment/hash'),
            fileKey: seed('attachment/key'),
            streamHeader: seed('attachment/header').subarray(0, 24),
          },
        ],
      },
    },
    [2, 1],
  );

  seal(
    'ack-with-ref',
    'bob',
    ['alice'],
    {
      kind: 'ack',
      priority: 'urgent',
      handling: 'H0',
      author: 'on-call.backup',
      createdAt: T0 + 60_000,
      expiresAt: T0 + 60_000 + 24 * 3600_000,
      ref: first.header.messageId,
      payload: {
        subject: 'Acknowledged',
        body: '',
        language: null,
        caseRef: null,
        form: null,
        attachments: [],
      },
    },
    [1],
  );

  const receipt = createReceipt(ids.bob.signingKey, ids.bob.nodeId, ids.alice.nodeId, T0 + 1500, [
    { messageId: first.header.messageId, envelopeHash: first.envelopeHash, logIndex: 17 },
    { messageId: jit.header.messageId, envelopeHash: jit.envelopeHash, logIndex: 18 },
  ]);

  // Alice rotates her identity key (serial 1) and certifies a new static key with it (serial 2).
  const newSigning = Ed25519PrivateKey.fromSeed(seed('alice/signing-2'));
  const rotation = createKeyRotation(
    ids.alice.nodeId,
    1,
    ids.alice.signingKey,
    newSigning,
    T0 + 86_400_000,
  );
  const newDh = createLocalIdentity(seed('alice/signing-2'), seed('alice/dh-2'), T0).dhKey;
  const record2 = createKeyRecord(
    newSigning,
    ids.alice.nodeId,
    newDh.publicKey,
    2,
    T0 + 86_400_000,
  );

  // Malformed and hostile inputs, each with the receiver's context and the one expected code.
  // Context for envelopes: the receiver has paired with every other node in `nodes` (pinned
  // identity key, certified static key from its key record), has accepted nothing yet, and
  // checks at time `now`.
  const hex = (b: Uint8Array) => toHex(b);
  const mutated = (b: Uint8Array, f: (c: Uint8Array) => void) => {
    const c = Uint8Array.from(b);
    f(c);
    return c;
  };
  const forged = (
    name: string,
    over: (h: EnvelopeHeader, k: Uint8Array) => Partial<Parameters<typeof forge>[0]>,
  ) => {
    const k = stream(`liaison-vector-forge:${name}`)(32);
    const base = first.header;
    const header: EnvelopeHeader = {
      ...jit.header,
      keyCommitment: keyCommitment(base.messageId, k),
      messageId: base.messageId,
    };
    return forge({
      header,
      payloadKey: k,
      payload: {
        subject: 'forged',
        body: '',
        language: null,
        caseRef: null,
        form: null,
        attachments: [],
      },
      signer: ids.alice.signingKey,
      sender: ids.alice,
      ...over(header, k),
    });
  };
  const now = T0 + 5000;
  const invalid = [
    {
      name: 'envelope-truncated',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(first.bytes.subarray(0, first.bytes.length - 1)),
      expectedError: 'LIAISON_ERR_DECODE_TRUNCATED',
    },
    {
      name: 'envelope-trailing-byte',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(concatBytes(first.bytes, Uint8Array.of(0))),
      expectedError: 'LIAISON_ERR_DECODE_TRAILING',
    },
    {
      name: 'envelope-version-2',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(mutated(first.bytes, (c) => (c[1] = 2))),
      expectedError: 'LIAISON_ERR_DECODE_VERSION',
    },
    {
      name: 'envelope-unknown-kind',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(mutated(first.bytes, (c) => (c[4] = 9))),
      expectedError: 'LIAISON_ERR_DECODE_VALUE',
    },
    {
      name: 'envelope-ciphertext-bit-flipped',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(mutated(first.bytes, (c) => (c[4 + first.headerBytes.length + 4]! ^= 1))),
      expectedError: 'LIAISON_ERR_SIGNATURE_INVALID',
    },
    {
      name: 'envelope-for-another-node',
      structure: 'envelope',
      receiver: 'carol',
      now,
      input: hex(first.bytes),
      expectedError: 'LIAISON_ERR_NOT_A_RECIPIENT',
    },
    {
      name: 'envelope-expired',
      structure: 'envelope',
      receiver: 'bob',
      now: first.header.expiresAt,
      input: hex(first.bytes),
      expectedError: 'LIAISON_ERR_ENVELOPE_EXPIRED',
    },
    {
      name: 'envelope-from-the-future',
      structure: 'envelope',
      receiver: 'bob',
      now: first.header.createdAt - 300_001,
      input: hex(first.bytes),
      expectedError: 'LIAISON_ERR_ENVELOPE_FROM_FUTURE',
    },
    {
      name: 'envelope-key-commitment-mismatch',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(
        forged('commitment', (_h, k) => ({
          payloadKey: k.map((b) => b ^ 0xff),
          wrappedKey: k.map((b) => b ^ 0xff),
        })),
      ),
      expectedError: 'LIAISON_ERR_KEY_COMMITMENT_MISMATCH',
    },
    {
      name: 'envelope-payload-under-another-key',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(
        forged('payload-key', (_h, k) => ({ payloadKey: k.map((b) => b ^ 0xff), wrappedKey: k })),
      ),
      expectedError: 'LIAISON_ERR_PAYLOAD_DECRYPT_FAILED',
    },
    {
      name: 'envelope-wraps-swapped-by-sender',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(forged('swapped', () => ({ wrapOrder: [1, 0] }))),
      expectedError: 'LIAISON_ERR_UNWRAP_FAILED',
    },
    {
      name: 'receipt-entries-out-of-order',
      structure: 'receipt',
      input: hex(
        mutated(receipt.bytes, (c) => {
          const e0 = 2 + 32 + 32 + 32 + 8 + 2;
          const a = c.slice(e0, e0 + 56);
          c.copyWithin(e0, e0 + 56, e0 + 112);
          c.set(a, e0 + 56);
        }),
      ),
      expectedError: 'LIAISON_ERR_DECODE_ORDER',
    },
    {
      name: 'key-record-bad-signature',
      structure: 'keyRecord',
      input: hex(mutated(ids.alice.keyRecord.bytes, (c) => (c[c.length - 1]! ^= 1))),
      expectedError: 'LIAISON_ERR_KEY_RECORD_INVALID',
    },
    {
      name: 'key-rotation-new-signature-missing',
      structure: 'keyRotation',
      input: hex(mutated(rotation.bytes, (c) => c.fill(0, c.length - 64))),
      expectedError: 'LIAISON_ERR_SIGNATURE_INVALID',
    },
    {
      // S + L: the same point equation holds, but S is not canonical (§1.4 rule 2).
      name: 'envelope-signature-s-not-reduced',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(mutated(first.bytes, (c) => addOrderToS(c.subarray(c.length - 32)))),
      expectedError: 'LIAISON_ERR_SIGNATURE_INVALID',
    },
    {
      name: 'envelope-header-length-over-limit',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(mutated(first.bytes, (c) => new DataView(c.buffer).setUint16(2, 16_385))),
      expectedError: 'LIAISON_ERR_DECODE_LIMIT',
    },
    {
      name: 'envelope-sender-static-key-uncertified',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(
        forged('uncertified', (h) => ({
          header: { ...h, senderDhKey: ids.carol.dhKey.publicKey.bytes },
        })),
      ),
      expectedError: 'LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED',
    },
    {
      name: 'envelope-lifetime-over-maximum',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(
        forged('lifetime', (h) => ({
          header: { ...h, expiresAt: h.createdAt + 90 * 86_400_000 + 1 },
        })),
      ),
      expectedError: 'LIAISON_ERR_ENVELOPE_LIFETIME',
    },
    {
      // A valid AEAD over a payload whose subject is not UTF-8 (0xff).
      name: 'envelope-payload-subject-not-utf8',
      structure: 'envelope',
      receiver: 'bob',
      now,
      input: hex(
        forged('utf8', () => ({
          plaintext: Uint8Array.of(0x05, 0x01, 0x00, 0x01, 0xff, 0, 0, 0, 0, 0, 0, 0, 0),
        })),
      ),
      expectedError: 'LIAISON_ERR_DECODE_UTF8',
    },
    {
      // A co-recipient (carol) relays alice's genuine envelope: refused before anything else.
      name: 'envelope-relayed-by-a-co-recipient',
      structure: 'envelope',
      receiver: 'bob',
      from: 'carol',
      now,
      input: hex(jit.bytes),
      expectedError: 'LIAISON_ERR_NOT_FROM_SENDER',
    },
    {
      name: 'key-record-static-key-low-order',
      structure: 'keyRecord',
      input: hex(mutated(ids.alice.keyRecord.bytes, (c) => c.fill(0, 66, 98))),
      expectedError: 'LIAISON_ERR_KEY_INVALID',
    },
    {
      name: 'key-record-identity-key-small-order',
      structure: 'keyRecord',
      input: hex(mutated(ids.alice.keyRecord.bytes, (c) => c.fill(0, 34, 66))),
      expectedError: 'LIAISON_ERR_KEY_INVALID',
    },
  ];

  return {
    description:
      'Liaison protocol v1 known-answer vectors. All byte strings are lowercase hex. See docs/protocol.md §11.',
    formatVersion: 1,
    nodes: names.map((n) => nodeVector(n, ids[n])),
    envelopes,
    receipts: [
      {
        name: 'bob-receipt-two-entries',
        issuer: 'bob',
        sender: 'alice',
        issuedAt: T0 + 1500,
        entries: receipt.entries.map((e) => ({
          messageId: toHex(e.messageId),
          envelopeHash: toHex(e.envelopeHash),
          logIndex: e.logIndex,
        })),
        signature: toHex(receipt.signature),
        receipt: toHex(receipt.bytes),
      },
    ],
    keyRotations: [
      {
        name: 'alice-rotates-identity-key',
        node: 'alice',
        serial: 1,
        oldKey: toHex(ids.alice.signingKey.publicKey.bytes),
        newSigningSeed: toHex(seed('alice/signing-2')),
        newKey: toHex(newSigning.publicKey.bytes),
        issuedAt: T0 + 86_400_000,
        rotation: toHex(rotation.bytes),
        newKeyRecord: toHex(record2.bytes),
        newDhKey: toHex(newDh.publicKey.bytes),
      },
    ],
    invalid,
  };
}

export function serialise(vectors: unknown): string {
  return `${JSON.stringify(vectors, null, 1)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = serialise(await buildVectors());
  if (process.argv.includes('--check')) {
    const committed = readFileSync(VECTORS_PATH, 'utf8');
    if (committed !== text) {
      process.stderr.write(
        'test/vectors/liaison-v1.json differs from what the generator produces\n',
      );
      process.exit(1);
    }
    process.stdout.write('vectors match\n');
  } else {
    writeFileSync(VECTORS_PATH, text);
    process.stdout.write(`wrote ${VECTORS_PATH.pathname}\n`);
  }
}
