/**
 * Known-answer tests: the committed vectors (test/vectors/liaison-v1.json) are decoded, verified
 * and opened from their hex alone, and the generator reproduces them byte for byte.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  decodeEnvelope,
  decodeHeader,
  decodeKeyRecord,
  decodeKeyRotation,
  decodePayload,
  decodeReceipt,
  decryptWithDisclosedKey,
  derivePairKey,
  deriveNodeId,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  encodeHeader,
  encodePayload,
  fingerprint,
  fromHex,
  keyCommitment,
  nodeIdToText,
  openEnvelope,
  PairKeyCache,
  receiptEntryFor,
  toHex,
  verifyEnvelopeSignature,
  verifyKeyHistory,
  verifyReceipt,
  X25519PrivateKey,
  X25519PublicKey,
  createKeyRecord,
  asNodeId,
  initCrypto,
  acceptEnvelope,
} from '../../protocol/index.ts';
import type { ErrorCode, LocalIdentity, Payload, ReceiverView } from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';
import { buildVectors, serialise, VECTORS_PATH } from '../vectors/generate.ts';

await initCrypto();
const text = readFileSync(VECTORS_PATH, 'utf8');
const v = JSON.parse(text) as Awaited<ReturnType<typeof buildVectors>>;
const h = (s: string) => fromHex(s);

t.test('the generator reproduces the committed vectors byte for byte', async (t) => {
  t.equal(serialise(await buildVectors()), text);
});

// Identities rebuilt from the committed seeds only.
const ids = new Map<string, LocalIdentity>();
for (const n of v.nodes) {
  const signingKey = Ed25519PrivateKey.fromSeed(h(n.signingSeed));
  const dhKey = X25519PrivateKey.fromBytes(h(n.dhSecret));
  const nodeId = deriveNodeId(signingKey.publicKey);
  const keyRecord = decodeKeyRecord(h(n.keyRecord));
  ids.set(n.name, { nodeId, signingKey, dhKey, keyRecord, previousDhKeys: [] });
}
const id = (name: string) => ids.get(name)!;

t.test('nodes: keys, node IDs, fingerprints, key records', async (t) => {
  for (const n of v.nodes) {
    const me = id(n.name);
    t.equal(toHex(me.signingKey.publicKey.bytes), n.identityKey, `${n.name} identity key`);
    t.equal(toHex(me.dhKey.publicKey.bytes), n.dhKey, `${n.name} static key`);
    t.equal(toHex(me.nodeId), n.nodeId, `${n.name} node ID`);
    t.equal(nodeIdToText(me.nodeId), n.nodeIdText, `${n.name} node ID text`);
    t.equal(fingerprint(me.signingKey.publicKey), n.fingerprint, `${n.name} fingerprint`);
    t.match(n.fingerprint, /^\d{5}( \d{5}){7}$/);
    const rec = me.keyRecord;
    t.equal(toHex(rec.nodeId), n.nodeId);
    t.equal(toHex(rec.identityKey.bytes), n.identityKey);
    t.equal(toHex(rec.dhKey.bytes), n.dhKey);
    t.equal(rec.serial, 1);
    // Signing is deterministic (RFC 8032), so re-creating the record gives the same bytes.
    t.equal(
      toHex(
        createKeyRecord(me.signingKey, me.nodeId, me.dhKey.publicKey, rec.serial, rec.issuedAt)
          .bytes,
      ),
      n.keyRecord,
    );
  }
});

t.test('envelopes: decode, verify, open for every recipient, disclose', async (t) => {
  t.equal(v.envelopes.length, 3);
  for (const e of v.envelopes) {
    t.test(e.name, async (t) => {
      const env = decodeEnvelope(h(e.envelope));
      const sender = id(e.sender);
      t.equal(toHex(env.headerBytes), e.header, 'header bytes');
      t.equal(
        toHex(encodeHeader(decodeHeader(env.headerBytes))),
        e.header,
        'header re-encodes identically',
      );
      t.equal(toHex(env.ciphertext), e.ciphertext, 'ciphertext');
      t.same(env.wraps.map(toHex), e.wraps, 'wraps');
      t.equal(toHex(env.payloadHash), e.payloadHash, 'payloadHash');
      t.equal(toHex(env.envelopeHash), e.envelopeHash, 'envelopeHash');
      t.equal(toHex(env.signature), e.signature, 'signature');
      t.equal(toHex(env.header.messageId), e.messageId);
      t.equal(toHex(env.header.keyCommitment), e.keyCommitment);
      t.equal(
        toHex(keyCommitment(env.header.messageId, h(e.contentKey))),
        e.keyCommitment,
        'commitment from content key',
      );
      t.equal(env.header.kind, e.decoded.kind);
      t.equal(env.header.priority, e.decoded.priority);
      t.equal(env.header.handling, e.decoded.handling);
      t.equal(env.header.author, e.decoded.author);
      t.equal(env.header.createdAt, e.decoded.createdAt);
      t.equal(env.header.expiresAt, e.decoded.expiresAt);
      t.equal(env.header.ref === null ? null : toHex(env.header.ref), e.decoded.ref);
      t.same(
        env.header.recipients.map((r) => ({
          nodeId: toHex(r.nodeId),
          dhKey: toHex(r.dhKey),
          sequence: r.sequence,
          mailbox: r.mailbox,
        })),
        e.decoded.recipients,
      );
      t.doesNotThrow(
        () => verifyEnvelopeSignature(env, sender.signingKey.publicKey),
        'signature verifies',
      );

      const expectedPayload = decodePayload(h(e.payloadPlaintext));
      t.equal(
        toHex(encodePayload(expectedPayload)),
        e.payloadPlaintext,
        'payload re-encodes identically',
      );
      t.same(
        payloadJson(expectedPayload),
        e.decoded.payload,
        'payload plaintext decodes to the listed fields',
      );

      e.recipients.forEach((name, i) => {
        const me = id(name);
        t.equal(
          toHex(
            derivePairKey(me.dhKey, X25519PublicKey.fromBytes(env.header.senderDhKey), 'receive'),
          ),
          e.pairKeys[i],
          `${name}: pair key`,
        );
        const opened = openEnvelope(env, me, new PairKeyCache());
        t.equal(opened.recipientIndex, i);
        t.equal(toHex(opened.contentKey), e.contentKey, `${name}: content key`);
        t.same(payloadJson(opened.payload), e.decoded.payload, `${name}: payload`);
      });
      t.same(
        payloadJson(decryptWithDisclosedKey(env, h(e.contentKey))),
        e.decoded.payload,
        'auditor with disclosed key',
      );
    });
  }
});

t.test('receipts', async (t) => {
  for (const r of v.receipts) {
    const receipt = decodeReceipt(h(r.receipt));
    const issuer = id(r.issuer);
    verifyReceipt(receipt, issuer.signingKey.publicKey, id(r.sender).nodeId);
    t.equal(toHex(receipt.signature), r.signature);
    t.equal(receipt.issuedAt, r.issuedAt);
    t.same(
      receipt.entries.map((x) => ({
        messageId: toHex(x.messageId),
        envelopeHash: toHex(x.envelopeHash),
        logIndex: x.logIndex,
      })),
      r.entries,
    );
    const first = decodeEnvelope(h(v.envelopes[0]!.envelope));
    t.equal(
      receiptEntryFor(receipt, first).logIndex,
      17,
      'the receipt names the first envelope at log index 17',
    );
  }
});

t.test('identity key rotation and key history', async (t) => {
  for (const r of v.keyRotations) {
    const node = id(r.node);
    const rot = decodeKeyRotation(h(r.rotation));
    t.equal(toHex(rot.oldKey.bytes), r.oldKey);
    t.equal(toHex(rot.newKey.bytes), r.newKey);
    t.equal(toHex(Ed25519PrivateKey.fromSeed(h(r.newSigningSeed)).publicKey.bytes), r.newKey);
    const periods = verifyKeyHistory(node.nodeId, node.signingKey.publicKey, [rot], r.issuedAt);
    t.equal(periods.length, 2);
    t.equal(toHex(periods[1]!.key.bytes), r.newKey, 'the current key is the new key');
    t.equal(periods[0]!.until, r.issuedAt);
    const rec = decodeKeyRecord(h(r.newKeyRecord));
    t.equal(rec.serial, 2);
    t.equal(
      toHex(rec.identityKey.bytes),
      r.newKey,
      'the new static key is certified by the new identity key',
    );
    t.equal(toHex(rec.dhKey.bytes), r.newDhKey);
    t.equal(toHex(rec.nodeId), toHex(node.nodeId), 'the node ID survives the rotation');
    t.ok(Ed25519PublicKey.fromBytes(h(r.newKey)));
    t.same(asNodeId(rec.nodeId), node.nodeId);
  }
});

/** The header's sender node ID, read from its fixed offset (§5.1), even if the rest is broken. */
function senderOf(envelope: Uint8Array) {
  return asNodeId(envelope.slice(4 + 19, 4 + 51));
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

t.test('invalid vectors: each refused with its one expected code', async (t) => {
  t.ok(v.invalid.length >= 10);
  for (const x of v.invalid) {
    const run = (): unknown => {
      switch (x.structure) {
        case 'envelope': {
          const me = id(x.receiver!);
          // The receiver's context as §11 describes it: paired with every other vector node.
          const view: ReceiverView = {
            pinnedIdentityKey: (n) =>
              [...ids.values()].find((p) => p !== me && toHex(p.nodeId) === toHex(n))?.signingKey
                .publicKey ?? null,
            isCertifiedDhKey: (n, k) =>
              [...ids.values()].some(
                (p) => toHex(p.nodeId) === toHex(n) && toHex(p.keyRecord.dhKey.bytes) === toHex(k),
              ),
            hasSeen: () => false,
            lastSequence: () => 0,
          };
          // Delivered over the link of `from` when the vector names it, else of the header's sender.
          const from =
            'from' in x && typeof x.from === 'string' ? id(x.from).nodeId : senderOf(h(x.input));
          return acceptEnvelope(h(x.input), me, view, x.now!, new PairKeyCache(), from);
        }
        case 'receipt':
          return decodeReceipt(h(x.input));
        case 'keyRecord':
          return decodeKeyRecord(h(x.input));
        case 'keyRotation':
          return decodeKeyRotation(h(x.input));
        default:
          throw new Error(`unknown structure ${x.structure}`);
      }
    };
    rejects(t, run, x.expectedError as ErrorCode, x.name);
  }
});
