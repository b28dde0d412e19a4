/**
 * Hostile envelopes from a paired peer. A scripted peer (its own identity, driven by this test)
 * pairs with a real node process through an invitation and then, over that authenticated link,
 * sends envelopes no honest node would: signed by or claiming another node, addressed elsewhere,
 * expired, replayed, tampered with, with a wrong key commitment, with an old sequence number.
 * Each is answered with a REJECTS message naming its code, nothing of it is stored, and the link
 * stays up (the next valid envelope gets a signed receipt). A malformed delivery message, or an
 * envelope announced over MAX_ENVELOPE_BYTES, is a protocol violation that closes the link with
 * LIAISON_ERR_DELIVERY_PROTOCOL. All the while a second, genuine node keeps exchanging messages
 * with the target.
 */
import t from 'tap';
import { MAX_REFUSALS_PER_BATCH } from '../../node/delivery.ts';
import type { Test } from 'tap';
import {
  asMessageId,
  closeCodeFor,
  createLocalIdentity,
  decodeEnvelope,
  decodeInvitation,
  decodeReceipt,
  DELIVERY,
  Ed25519PublicKey,
  equalBytes,
  fromHex,
  initCrypto,
  keyCommitment,
  MAX_ENVELOPE_BYTES,
  MAX_SINGLE_FRAME_ENVELOPE_BYTES,
  messageIdToText,
  nodeIdFromText,
  nodeIdToText,
  PairKeyCache,
  PART_CHUNK_BYTES,
  randomBytes,
  receiptEntryFor,
  sealEnvelope,
  toHex,
  verifyReceipt,
  Writer,
  X25519PublicKey,
} from '../../protocol/index.ts';
import type {
  DeliveryMessage,
  Ed25519PrivateKey,
  Envelope,
  EnvelopeHeader,
  LocalIdentity,
  MessageId,
  NodeId,
  Payload,
  SealOptions,
} from '../../protocol/index.ts';
import { dial } from '../../node/link/handshake.ts';
import type { Established, LinkSelf } from '../../node/link/handshake.ts';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';
import { forge } from '../helpers/forge.ts';
import { ScriptedPeer } from '../helpers/hostile-peer.ts';

await initCrypto();

const MAILBOX = '24-7';
const HOUR = 3_600_000;
const PROTOCOL_VIOLATION = 'LIAISON_ERR_DELIVERY_PROTOCOL';

function payload(subject: string, body = `body of ${subject}`): Payload {
  return { subject, body, language: 'en', caseRef: null, form: null, attachments: [] };
}

function newIdentity(): LocalIdentity {
  return createLocalIdentity(randomBytes(32), randomBytes(32), Date.now());
}

function selfOf(id: LocalIdentity): LinkSelf {
  return { identity: id, rotations: [], name: 'scripted peer', address: null };
}

interface Addressee {
  readonly nodeId: NodeId;
  readonly dhKey: Uint8Array;
}

interface SealSpec {
  readonly from: LocalIdentity;
  readonly to: Addressee;
  readonly sequence: number;
  readonly subject: string;
  readonly body?: string;
  readonly createdAt?: number;
  readonly expiresAt?: number;
  /** Reuse this message ID (a replay with other content). */
  readonly messageId?: MessageId;
}

/** A genuinely sealed envelope (sealEnvelope, as a node would). */
function sealed(s: SealSpec): Envelope {
  const createdAt = s.createdAt ?? Date.now();
  const fixedId = s.messageId;
  let first = true;
  const options: SealOptions =
    fixedId === undefined
      ? { pairKeys: new PairKeyCache() }
      : {
          pairKeys: new PairKeyCache(),
          random: (n) => {
            if (first && n === fixedId.length) {
              first = false;
              return Uint8Array.from(fixedId);
            }
            return randomBytes(n);
          },
        };
  return sealEnvelope(
    s.from,
    {
      kind: 'message',
      priority: 'routine',
      handling: 'H0',
      author: 'scripted',
      createdAt,
      expiresAt: s.expiresAt ?? createdAt + HOUR,
      ref: null,
      recipients: [
        {
          nodeId: s.to.nodeId,
          dhKey: X25519PublicKey.fromBytes(s.to.dhKey),
          sequence: s.sequence,
          mailbox: MAILBOX,
        },
      ],
      payload: payload(s.subject, s.body),
    },
    options,
  );
}

interface ForgeSpec {
  readonly sender: LocalIdentity;
  readonly to: Addressee;
  readonly sequence: number;
  readonly header?: Partial<EnvelopeHeader>;
  readonly signer?: Ed25519PrivateKey;
  /** Key the header commits to (default: the content key). */
  readonly committedKey?: Uint8Array;
  /** Key the payload is encrypted under (default: the content key). */
  readonly payloadKey?: Uint8Array;
  /** Whose static key the wraps are computed with (default: the sender's). */
  readonly wrapsFrom?: LocalIdentity;
}

/** An envelope assembled by hand (test/helpers/forge.ts): validly signed unless told otherwise. */
function forged(s: ForgeSpec): Envelope {
  const messageId = asMessageId(randomBytes(16));
  const contentKey = randomBytes(32);
  const now = Date.now();
  const header: EnvelopeHeader = {
    kind: 'message',
    priority: 'routine',
    handling: 'H0',
    messageId,
    senderNodeId: s.sender.nodeId,
    senderIdentityKey: s.sender.signingKey.publicKey.bytes,
    senderDhKey: s.sender.dhKey.publicKey.bytes,
    author: 'scripted',
    createdAt: now,
    expiresAt: now + HOUR,
    ref: null,
    keyCommitment: keyCommitment(messageId, s.committedKey ?? contentKey),
    recipients: [
      { nodeId: s.to.nodeId, dhKey: s.to.dhKey, sequence: s.sequence, mailbox: MAILBOX },
    ],
    ...s.header,
  };
  return decodeEnvelope(
    forge({
      header,
      payloadKey: s.payloadKey ?? contentKey,
      wrappedKey: contentKey,
      payload: payload('forged'),
      signer: s.signer ?? s.sender.signingKey,
      sender: s.wrapsFrom ?? s.sender,
    }),
  );
}

/** One each way between the target and the genuine peer, both delivered. */
async function exchange(c: Cluster, a: TestNode, b: TestNode, label: string): Promise<void> {
  const ab = await a.send([b], `${label}: ${a.name} to ${b.name}`);
  const ba = await b.send([a], `${label}: ${b.name} to ${a.name}`);
  await c.waitFor(
    async () =>
      (await a.statuses(ab))[b.nodeId] === 'delivered' &&
      (await b.statuses(ba))[a.nodeId] === 'delivered',
    `genuine exchange ${label}`,
    20_000,
  );
}

function describe(m: DeliveryMessage): string {
  switch (m.type) {
    case 'REJECTS':
      return `REJECTS ${m.rejections.map((r) => r.code).join(',')}`;
    case 'ENVELOPES':
      return `ENVELOPES ×${m.envelopes.length}`;
    default:
      return m.type;
  }
}

t.test('hostile envelopes from a paired peer', async (t) => {
  const c = await Cluster.create(t, 0);
  const target = await c.add('target');
  const good = await c.add('good');
  await c.pair(target, good);
  await c.waitFor(
    async () => (await target.linkUp(good)) && (await good.linkUp(target)),
    'genuine link up',
  );

  const info = (await target.api('GET', '/v1/node')).body;
  const targetKey = Ed25519PublicKey.fromBytes(fromHex(String(info.identityKey)));
  const targetAddr: Addressee = {
    nodeId: nodeIdFromText(target.nodeId),
    dhKey: fromHex(String(info.dhKey)),
  };

  // The scripted peer pairs through an invitation (IKpsk2); that link is the one it attacks on.
  const mallory = newIdentity();
  const malloryId = nodeIdToText(mallory.nodeId);
  const inv = await target.api('POST', '/v1/invitations', { label: 'scripted peer' });
  t.equal(inv.status, 200, 'invitation issued');
  const invitation = decodeInvitation(String(inv.body.invitation), Date.now());
  const paired = await dial({
    url: `ws://127.0.0.1:${target.peerPort}`,
    mode: 'invitation',
    remoteStatic: invitation.inviter.keyRecord.dhKey.bytes,
    psk: invitation.secret,
    invitationId: invitation.id,
    self: selfOf(mallory),
    now: () => Date.now(),
    timeoutMs: 5000,
    verify: () => undefined,
  });
  t.ok(equalBytes(paired.hello.identity.nodeId, targetAddr.nodeId), 'the inviter answered');
  // Enough of a TestNode for linkUp().
  const malloryNode = { nodeId: malloryId } as TestNode;
  let peer = new ScriptedPeer(paired);
  t.teardown(() => peer.close());
  const reconnect = async (): Promise<void> => {
    const est: Established = await dial({
      url: `ws://127.0.0.1:${target.peerPort}`,
      mode: 'paired',
      remoteStatic: targetAddr.dhKey,
      self: selfOf(mallory),
      now: () => Date.now(),
      timeoutMs: 5000,
      verify: () => undefined,
    });
    peer = new ScriptedPeer(est);
    await c.waitFor(() => target.linkUp(malloryNode), 'scripted link up again');
  };
  await c.waitFor(() => target.linkUp(malloryNode), 'scripted link up');
  const pinned = (await target.peers()).find((p) => p.nodeId === malloryId);
  t.equal(pinned?.status, 'paired', 'the target pinned the scripted peer');

  // Genuine traffic in the background for the whole test.
  const background = {
    stop: false,
    error: null as string | null,
    sent: [] as { from: TestNode; to: TestNode; id: string }[],
  };
  const backgroundDone = (async () => {
    for (let i = 0; i < 200 && !background.stop; i++) {
      const [from, to] = i % 2 === 0 ? [target, good] : [good, target];
      background.sent.push({ from, to, id: await from.send([to], `background ${i}`) });
      await new Promise((r) => setTimeout(r, 150));
    }
  })().catch((err: unknown) => {
    background.error = String(err);
  });

  let lastSequence = 0;
  const accepted: { id: string; env: Envelope; logIndex: number; subject: string }[] = [];

  /** The target's inbox entries from the scripted peer. */
  const fromMallory = () => target.inbox(`sender=${malloryId}`);

  const expectRejected = async (t: Test, env: Envelope, code: string): Promise<void> => {
    const id = messageIdToText(env.header.messageId);
    const before = (await fromMallory()).length;
    const existed = (await target.api('GET', `/v1/messages/${id}/meta`)).status === 200;
    peer.sendEnvelopes([env.bytes]);
    const m = await peer.next();
    t.equal(m.type, 'REJECTS', `answered ${describe(m)}`);
    if (m.type === 'REJECTS')
      t.same(
        m.rejections.map((r) => ({ messageId: messageIdToText(r.messageId), code: r.code })),
        [{ messageId: id, code }],
        `rejected with ${code}`,
      );
    const after = await fromMallory();
    t.equal(after.length, before, 'nothing added to the inbox');
    if (!existed) {
      const meta = await target.api('GET', `/v1/messages/${id}/meta`);
      t.equal(meta.status, 404, 'no stored message under that ID');
      t.equal((meta.body.error as { code?: string } | undefined)?.code, 'LIAISON_ERR_NOT_FOUND');
      t.notOk(
        after.some((m) => m.messageId === id),
        'the inbox does not list it',
      );
    }
    await c.waitFor(
      () =>
        target
          .logged('envelope rejected')
          .some((l) => l.code === code && l.messageId === id && l.peer === malloryId),
      `logged rejection ${code}`,
      5000,
    );
  };

  /** Sends envelopes that must all be accepted (in one batch) and checks the signed receipt. */
  const expectAccepted = async (t: Test, envs: Envelope[], subjects: string[]): Promise<void> => {
    peer.sendEnvelopes(envs.map((e) => e.bytes));
    const m = await peer.next();
    t.equal(m.type, 'RECEIPT', `answered ${describe(m)}`);
    if (m.type !== 'RECEIPT') return;
    const receipt = decodeReceipt(m.receipt);
    t.doesNotThrow(
      () => verifyReceipt(receipt, targetKey, mallory.nodeId),
      'receipt signed by the target, addressed to the scripted peer',
    );
    t.ok(equalBytes(receipt.issuerNodeId, targetAddr.nodeId), 'issued by the target');
    t.equal(receipt.entries.length, envs.length, 'one entry per envelope');
    for (const [i, env] of envs.entries()) {
      const entry = receiptEntryFor(receipt, env);
      const id = messageIdToText(env.header.messageId);
      const meta = await target.api('GET', `/v1/messages/${id}/meta`);
      t.equal(meta.status, 200, `${id} stored`);
      t.equal(meta.body.sender, malloryId);
      t.equal(meta.body.envelopeHash, toHex(env.envelopeHash), 'the exact envelope');
      t.equal(meta.body.logIndex, entry.logIndex, 'the receipt names its audit-log index');
      const sequence = env.header.recipients[0]!.sequence;
      t.equal(meta.body.sequence, sequence);
      t.equal(sequence, lastSequence + 1, 'per-recipient sequence 1, 2, 3…');
      t.equal(meta.body.gap, null, 'no gap: the rejected envelopes used no sequence number');
      lastSequence = sequence;
      accepted.push({ id, env, logIndex: entry.logIndex, subject: subjects[i]! });
    }
  };

  /** A valid envelope afterwards, on the same link, is receipted: the link stayed up. */
  const linkStillServes = async (t: Test, label: string): Promise<void> => {
    const subject = `valid after ${label}`;
    await expectAccepted(
      t,
      [sealed({ from: mallory, to: targetAddr, sequence: lastSequence + 1, subject })],
      [subject],
    );
    t.notOk(peer.isClosed, 'the scripted link is still open');
    t.ok(await target.linkUp(malloryNode), 'the target still lists it up');
    t.same(peer.faults, [], 'everything the target sent decrypted and decoded');
  };

  const next = () => lastSequence + 1;

  await t.test('valid envelopes are accepted first (sealed, forged, split in parts)', async (t) => {
    await expectAccepted(
      t,
      [sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'first' })],
      ['first'],
    );
    await expectAccepted(
      t,
      [forged({ sender: mallory, to: targetAddr, sequence: next() })],
      ['forged'],
    );
    // Bigger than a frame: travels as PARTs and is reassembled.
    const big = sealed({
      from: mallory,
      to: targetAddr,
      sequence: next(),
      subject: 'large',
      body: 'x'.repeat(MAX_SINGLE_FRAME_ENVELOPE_BYTES + 10_000),
    });
    t.ok(big.bytes.length > MAX_SINGLE_FRAME_ENVELOPE_BYTES, 'needs PARTs');
    await expectAccepted(t, [big], ['large']);
    await exchange(c, target, good, 'after valid');
  });

  await t.test('an envelope from another node, relayed by the peer', async (t) => {
    const other = newIdentity();
    await expectRejected(
      t,
      sealed({ from: other, to: targetAddr, sequence: next(), subject: 'relayed' }),
      'LIAISON_ERR_NOT_FROM_SENDER',
    );
    // Claiming to be the genuine peer the target is paired with changes nothing.
    await expectRejected(
      t,
      forged({
        sender: mallory,
        to: targetAddr,
        sequence: next(),
        header: { senderNodeId: nodeIdFromText(good.nodeId) },
      }),
      'LIAISON_ERR_NOT_FROM_SENDER',
    );
    await linkStillServes(t, 'relayed');
  });

  await t.test('an envelope signed by another node', async (t) => {
    const other = newIdentity();
    await expectRejected(
      t,
      forged({ sender: mallory, to: targetAddr, sequence: next(), signer: other.signingKey }),
      'LIAISON_ERR_SIGNATURE_INVALID',
    );
    // … and naming that node's key as the sender key: not the pinned one.
    await expectRejected(
      t,
      forged({
        sender: mallory,
        to: targetAddr,
        sequence: next(),
        signer: other.signingKey,
        header: { senderIdentityKey: other.signingKey.publicKey.bytes },
      }),
      'LIAISON_ERR_SENDER_KEY_MISMATCH',
    );
    await linkStillServes(t, 'foreign signature');
  });

  await t.test('an envelope addressed to another node', async (t) => {
    const other = newIdentity();
    await expectRejected(
      t,
      sealed({
        from: mallory,
        to: { nodeId: other.nodeId, dhKey: other.dhKey.publicKey.bytes },
        sequence: next(),
        subject: 'not for you',
      }),
      'LIAISON_ERR_NOT_A_RECIPIENT',
    );
    await linkStillServes(t, 'misaddressed');
  });

  await t.test('expired, from the future, over-long lifetime', async (t) => {
    const now = Date.now();
    await expectRejected(
      t,
      sealed({
        from: mallory,
        to: targetAddr,
        sequence: next(),
        subject: 'stale',
        createdAt: now - 2 * HOUR,
        expiresAt: now - HOUR,
      }),
      'LIAISON_ERR_ENVELOPE_EXPIRED',
    );
    await expectRejected(
      t,
      sealed({
        from: mallory,
        to: targetAddr,
        sequence: next(),
        subject: 'tomorrow',
        createdAt: now + 24 * HOUR,
      }),
      'LIAISON_ERR_ENVELOPE_FROM_FUTURE',
    );
    await expectRejected(
      t,
      forged({
        sender: mallory,
        to: targetAddr,
        sequence: next(),
        header: { createdAt: now, expiresAt: now + 365 * 24 * HOUR },
      }),
      'LIAISON_ERR_ENVELOPE_LIFETIME',
    );
    await linkStillServes(t, 'expired');
  });

  await t.test('a replayed message ID, and the exact same envelope again', async (t) => {
    const original = accepted[0]!;
    const countBefore = (await fromMallory()).length;
    await expectRejected(
      t,
      sealed({
        from: mallory,
        to: targetAddr,
        sequence: next(),
        subject: 'same ID, other content',
        messageId: original.env.header.messageId,
      }),
      'LIAISON_ERR_REPLAY',
    );
    const meta = await target.api('GET', `/v1/messages/${original.id}/meta`);
    t.equal(meta.body.envelopeHash, toHex(original.env.envelopeHash), 'the original stays');

    // The exact bytes again (a resend after a lost receipt): receipted again, stored once.
    peer.sendEnvelopes([original.env.bytes]);
    const m = await peer.next();
    t.equal(m.type, 'RECEIPT', `a resend is receipted, not rejected (${describe(m)})`);
    if (m.type === 'RECEIPT') {
      const receipt = decodeReceipt(m.receipt);
      t.doesNotThrow(() => verifyReceipt(receipt, targetKey, mallory.nodeId), 'signed');
      const entry = receiptEntryFor(receipt, original.env);
      t.equal(entry.logIndex, original.logIndex, 'the same audit-log index as the first time');
    }
    const inbox = await fromMallory();
    t.equal(inbox.length, countBefore, 'nothing new stored');
    t.equal(inbox.filter((x) => x.messageId === original.id).length, 1, 'stored exactly once');
    const officer = await target.officerToken();
    const shown = await target.api('GET', `/v1/messages/${original.id}`, undefined, officer);
    t.equal(shown.status, 200);
    t.equal(
      (shown.body.content as { subject?: string } | undefined)?.subject,
      original.subject,
      'the content is the original',
    );
    await linkStillServes(t, 'replay');
  });

  await t.test('a tampered payload', async (t) => {
    // Changed in transit: the signature no longer covers it.
    const env = sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'tamper' });
    const bytes = Uint8Array.from(env.bytes);
    const ctAt = 2 + 2 + env.headerBytes.length + 4;
    bytes[ctAt + 3]! ^= 0x01;
    await expectRejected(t, decodeEnvelope(bytes), 'LIAISON_ERR_SIGNATURE_INVALID');
    // Signed by the sender, but encrypted under a key other than the one it wraps and commits to.
    await expectRejected(
      t,
      forged({ sender: mallory, to: targetAddr, sequence: next(), payloadKey: randomBytes(32) }),
      'LIAISON_ERR_PAYLOAD_DECRYPT_FAILED',
    );
    await linkStillServes(t, 'tampered');
  });

  await t.test('a wrong key commitment', async (t) => {
    await expectRejected(
      t,
      forged({ sender: mallory, to: targetAddr, sequence: next(), committedKey: randomBytes(32) }),
      'LIAISON_ERR_KEY_COMMITMENT_MISMATCH',
    );
    await linkStillServes(t, 'commitment');
  });

  await t.test('keys the envelope cannot be opened with', async (t) => {
    const other = newIdentity();
    await expectRejected(
      t,
      forged({
        sender: mallory,
        to: targetAddr,
        sequence: next(),
        header: { senderDhKey: other.dhKey.publicKey.bytes },
      }),
      'LIAISON_ERR_SENDER_DH_KEY_UNCERTIFIED',
    );
    await expectRejected(
      t,
      forged({
        sender: mallory,
        to: { nodeId: targetAddr.nodeId, dhKey: other.dhKey.publicKey.bytes },
        sequence: next(),
      }),
      'LIAISON_ERR_RECIPIENT_KEY_UNKNOWN',
    );
    await expectRejected(
      t,
      forged({ sender: mallory, to: targetAddr, sequence: next(), wrapsFrom: other }),
      'LIAISON_ERR_UNWRAP_FAILED',
    );
    await linkStillServes(t, 'unopenable');
  });

  await t.test('an undecodable envelope in a well-formed ENVELOPES message', async (t) => {
    const before = (await fromMallory()).length;
    const env = sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'garbled' });
    const garbled = Uint8Array.from(env.bytes);
    garbled[0] = 0x7e; // not an envelope's type tag
    peer.sendEnvelopes([garbled]);
    // It names no message ID a REJECTS could carry: refused alone, and the link stays up.
    await c.waitFor(
      () =>
        target
          .logged('envelope rejected')
          .some((l) => l.peer === malloryId && l.code === 'LIAISON_ERR_DECODE_TYPE'),
      'logged the undecodable envelope',
      5000,
    );
    t.equal((await fromMallory()).length, before, 'nothing stored');
    await linkStillServes(t, 'undecodable');
  });

  await t.test('the same new envelope twice in one batch', async (t) => {
    const subject = 'twice in a batch';
    const env = sealed({ from: mallory, to: targetAddr, sequence: next(), subject });
    const before = (await fromMallory()).length;
    peer.sendEnvelopes([env.bytes, env.bytes]);
    const first = await peer.next();
    t.equal(first.type, 'RECEIPT', `receipted (${describe(first)})`);
    if (first.type === 'RECEIPT') {
      const r = decodeReceipt(first.receipt);
      t.doesNotThrow(() => verifyReceipt(r, targetKey, mallory.nodeId));
      t.equal(r.entries.length, 1, 'one entry');
      t.doesNotThrow(() => receiptEntryFor(r, env));
    }
    // A repeat of the exact bytes is a resend, not a replay: nothing is rejected.
    await new Promise((r) => setTimeout(r, 300));
    const extra: string[] = [];
    while (peer.queued > 0) extra.push(describe(await peer.next()));
    t.same(extra, [], `no REJECTS for the repeat (got: ${extra.join('; ') || 'nothing'})`);
    const inbox = await fromMallory();
    t.equal(inbox.length, before + 1, 'stored once');
    const meta = await target.api(
      'GET',
      `/v1/messages/${messageIdToText(env.header.messageId)}/meta`,
    );
    t.equal(meta.body.sequence, lastSequence + 1);
    lastSequence += 1;
    accepted.push({
      id: messageIdToText(env.header.messageId),
      env,
      logIndex: Number(meta.body.logIndex),
      subject,
    });
    await linkStillServes(t, 'in-batch repeat');
  });

  await t.test('a sequence replay', async (t) => {
    await expectRejected(
      t,
      sealed({ from: mallory, to: targetAddr, sequence: lastSequence, subject: 'seq again' }),
      'LIAISON_ERR_SEQUENCE_REPLAY',
    );
    await expectRejected(
      t,
      sealed({ from: mallory, to: targetAddr, sequence: 1, subject: 'seq 1 again' }),
      'LIAISON_ERR_SEQUENCE_REPLAY',
    );
    await linkStillServes(t, 'sequence replay');
  });

  await t.test('a batch mixing valid and hostile envelopes', async (t) => {
    const now = Date.now();
    const a = sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'batch a' });
    const bad = sealed({
      from: mallory,
      to: targetAddr,
      sequence: next() + 1,
      subject: 'batch expired',
      createdAt: now - 2 * HOUR,
      expiresAt: now - HOUR,
    });
    const b = sealed({ from: mallory, to: targetAddr, sequence: next() + 1, subject: 'batch b' });
    peer.sendEnvelopes([a.bytes, bad.bytes, b.bytes]);
    const got = [await peer.next(), await peer.next()];
    const receipt = got.find((m) => m.type === 'RECEIPT');
    const rejects = got.find((m) => m.type === 'REJECTS');
    t.ok(receipt !== undefined && rejects !== undefined, 'a receipt and a rejection');
    if (rejects?.type === 'REJECTS')
      t.same(
        rejects.rejections.map((r) => [messageIdToText(r.messageId), r.code]),
        [[messageIdToText(bad.header.messageId), 'LIAISON_ERR_ENVELOPE_EXPIRED']],
      );
    if (receipt?.type === 'RECEIPT') {
      const r = decodeReceipt(receipt.receipt);
      t.doesNotThrow(() => verifyReceipt(r, targetKey, mallory.nodeId));
      t.equal(r.entries.length, 2, 'both valid ones receipted');
      for (const env of [a, b]) t.doesNotThrow(() => receiptEntryFor(r, env));
    }
    const metas = await Promise.all(
      [a, b].map((e) =>
        target.api('GET', `/v1/messages/${messageIdToText(e.header.messageId)}/meta`),
      ),
    );
    t.same(
      metas.map((m) => [m.body.sequence, m.body.gap]),
      [
        [lastSequence + 1, null],
        [lastSequence + 2, null],
      ],
      'sequences consecutive, no gap',
    );
    lastSequence += 2;
    accepted.push(
      ...[a, b].map((env, i) => ({
        id: messageIdToText(env.header.messageId),
        env,
        logIndex: Number(metas[i]!.body.logIndex),
        subject: i === 0 ? 'batch a' : 'batch b',
      })),
    );
    t.equal(
      (await target.api('GET', `/v1/messages/${messageIdToText(bad.header.messageId)}/meta`))
        .status,
      404,
      'the expired one is not stored',
    );
    await linkStillServes(t, 'mixed batch');
    await exchange(c, target, good, 'after envelope rejections');
  });

  await t.test(
    'a batch of refused envelopes past MAX_REFUSALS_PER_BATCH cuts the link',
    async (t) => {
      const before = (await fromMallory()).length;
      const mine = () => target.logged('envelope rejected').filter((l) => l.peer === malloryId);
      const loggedBefore = mine().length;
      const now = Date.now();
      const stale = Array.from(
        { length: MAX_REFUSALS_PER_BATCH + 8 },
        (_, i) =>
          sealed({
            from: mallory,
            to: targetAddr,
            sequence: next(),
            subject: `stale ${i}`,
            createdAt: now - 2 * HOUR,
            expiresAt: now - HOUR,
          }).bytes,
      );
      peer.sendEnvelopes(stale);
      const reply = await peer.next();
      t.equal(reply.type, 'REJECTS', `the refusals are answered first (${describe(reply)})`);
      if (reply.type === 'REJECTS')
        t.equal(reply.rejections.length, stale.length, 'each one named');
      const closed = await peer.waitClosed();
      t.equal(closed.closeFrame, 'LIAISON_ERR_LINK_RATE_LIMIT', 'then the link is cut');
      await c.waitFor(
        () =>
          target
            .logged('too many envelopes refused in one batch')
            .some((l) => l.peer === malloryId && l.refused === stale.length),
        'one summary line for the batch',
        5000,
      );
      t.equal(mine().length - loggedBefore, MAX_REFUSALS_PER_BATCH, 'the first ones logged singly');
      t.equal((await fromMallory()).length, before, 'nothing stored');
      t.ok(await target.linkUp(good), 'the genuine link is still up');
      await exchange(c, target, good, 'after the refusal flood');
      await reconnect();
      await linkStillServes(t, 'refusal flood');
    },
  );

  /** Sends a protocol violation and checks the link is closed for it, then dials back in. */
  const violation = async (t: Test, label: string, bodies: Uint8Array[], code: string) => {
    const before = (await fromMallory()).length;
    const logsBefore = target.logged('delivery message refused; closing link').length;
    for (const b of bodies) peer.sendData(b);
    const closed = await peer.waitClosed();
    t.equal(closed.code, closeCodeFor(code), `${label}: WebSocket close code`);
    t.equal(closed.closeFrame, code, `${label}: the CLOSE frame names ${code}`);
    t.equal(closed.reason, code, `${label}: the close reason is the code`);
    t.equal(peer.queued, 0, 'nothing was answered before the close');
    await c.waitFor(
      () =>
        target
          .logged('delivery message refused; closing link')
          .slice(logsBefore)
          .some((l) => l.peer === malloryId),
      `logged the refusal`,
      5000,
    );
    const logged = target
      .logged('delivery message refused; closing link')
      .slice(logsBefore)
      .find((l) => l.peer === malloryId);
    t.equal(logged?.code, code, `${label}: logged with ${code}`);
    await c.waitFor(async () => !(await target.linkUp(malloryNode)), 'scripted link down');
    t.equal((await fromMallory()).length, before, 'nothing stored');
    t.ok(await target.linkUp(good), 'the genuine link is still up');
    await exchange(c, target, good, `after ${label}`);
    await reconnect();
    await linkStillServes(t, label);
  };

  const partBody = (total: number, offset: number, chunk: Uint8Array): Uint8Array =>
    new Writer(9 + chunk.length)
      .u8(DELIVERY.PART)
      .u32(total, 'total')
      .u32(offset, 'offset')
      .raw(chunk)
      .finish();

  await t.test('an envelope announced over MAX_ENVELOPE_BYTES closes the link', async (t) => {
    await violation(
      t,
      'oversized PART',
      [partBody(MAX_ENVELOPE_BYTES + 1, 0, randomBytes(PART_CHUNK_BYTES))],
      PROTOCOL_VIOLATION,
    );
  });

  await t.test('an unknown delivery message type closes the link', async (t) => {
    await violation(t, 'unknown type', [Uint8Array.of(0x7f, 0, 1, 2, 3)], PROTOCOL_VIOLATION);
  });

  await t.test('ENVELOPES interrupting a split envelope closes the link', async (t) => {
    const total = MAX_SINGLE_FRAME_ENVELOPE_BYTES + 1000;
    const env = sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'interleaved' });
    await violation(
      t,
      'interleaved parts',
      [
        partBody(total, 0, randomBytes(PART_CHUNK_BYTES)),
        new Writer()
          .u8(DELIVERY.ENVELOPES)
          .u16(1, 'count')
          .bytes(env.bytes, 4, 0xffffffff, 'envelope')
          .finish(),
      ],
      PROTOCOL_VIOLATION,
    );
  });

  await t.test('a truncated ENVELOPES message closes the link', async (t) => {
    const env = sealed({ from: mallory, to: targetAddr, sequence: next(), subject: 'truncated' });
    const whole = new Writer()
      .u8(DELIVERY.ENVELOPES)
      .u16(1, 'count')
      .bytes(env.bytes, 4, 0xffffffff, 'envelope')
      .finish();
    await violation(
      t,
      'truncated ENVELOPES',
      [whole.subarray(0, whole.length - 100)],
      PROTOCOL_VIOLATION,
    );
  });

  await t.test('through all of it, the genuine peer kept exchanging messages', async (t) => {
    background.stop = true;
    await backgroundDone;
    t.equal(background.error, null, 'every background send was accepted');
    t.ok(background.sent.length >= 4, `${background.sent.length} background messages`);
    await c.waitFor(
      async () => {
        for (const s of background.sent)
          if ((await s.from.statuses(s.id))[s.to.nodeId] !== 'delivered') return false;
        return true;
      },
      'every background message delivered',
      30_000,
    );
    const inGood = await good.inbox(`sender=${target.nodeId}`);
    const fromTarget = background.sent.filter((s) => s.from === target).map((s) => s.id);
    t.same(
      inGood.map((m) => m.messageId).filter((id) => fromTarget.includes(String(id))),
      fromTarget,
      'the genuine peer received every one, in order, once',
    );
    t.equal(target.crash, null, 'the target never crashed');
    t.notOk(
      target.logs.some((l) => l.peer === good.nodeId && l.msg === 'link down'),
      'the genuine link never went down',
    );
    const inTarget = await fromMallory();
    t.same(
      inTarget.map((m) => m.sequence),
      accepted.map((_, i) => i + 1),
      'the inbox holds exactly the accepted envelopes, sequences 1…n',
    );
    t.same(
      inTarget.map((m) => m.messageId),
      accepted.map((a) => a.id),
      'and nothing else from the scripted peer',
    );
  });
});
