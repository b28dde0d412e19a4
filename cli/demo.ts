/**
 * `liaison demo`: the protocol core, told as the 03:00 story it exists for. Three authorities
 * (fresh keys each run) exchange one urgent preservation request, end-to-end encrypted for two
 * recipients at once, with signed receipts; then an attacker's attempts fail with their codes.
 * Everything runs in this process on the real protocol code; the multi-node demo over real links
 * replaces this once the node daemon exists.
 */
import {
  acceptEnvelope,
  createLocalIdentity,
  createReceipt,
  decodeEnvelope,
  decodeReceipt,
  equalBytes,
  fingerprint,
  isLiaisonError,
  messageIdToText,
  nodeIdToText,
  PairKeyCache,
  randomBytes,
  receiptEntryFor,
  sealEnvelope,
  toHex,
  verifyReceipt,
} from '../protocol/index.ts';
import type {
  Accepted,
  LocalIdentity,
  MessageId,
  NodeId,
  ReceiverView,
} from '../protocol/index.ts';

interface Authority {
  readonly name: string;
  readonly identity: LocalIdentity;
  readonly pairKeys: PairKeyCache;
  readonly seen: Set<string>;
  lastSeq: number;
}

export function runDemo(say: (line: string) => void, now: number = Date.now()): void {
  const make = (name: string): Authority => ({
    name,
    identity: createLocalIdentity(randomBytes(32), randomBytes(32), now),
    pairKeys: new PairKeyCache(),
    seen: new Set(),
    lastSeq: 0,
  });
  const paris = make('Paris: 24/7 counter-terrorism focal point (FR)');
  const rabat = make('Rabat: central authority for mutual legal assistance (MA)');
  const madrid = make('Madrid: national court prosecutor (ES)');
  const all = [paris, rabat, madrid];

  say('Liaison protocol demo: three authorities, one urgent request, no central server.\n');
  for (const a of all) {
    say(`${a.name}`);
    say(`  node ID      ${nodeIdToText(a.identity.nodeId)}`);
    say(
      `  fingerprint  ${fingerprint(a.identity.signingKey.publicKey)}   (read out over the phone when pairing)`,
    );
  }

  // Each node pins its peers' identity keys and knows their certified static keys (pairing does
  // this over the network in the node daemon; here the three have paired already).
  const viewFor = (me: Authority): ReceiverView => ({
    pinnedIdentityKey: (id: NodeId) =>
      all.find((a) => a !== me && equalBytes(a.identity.nodeId, id))?.identity.signingKey
        .publicKey ?? null,
    isCertifiedDhKey: (id: NodeId, key: Uint8Array) =>
      all.some(
        (a) =>
          equalBytes(a.identity.nodeId, id) && equalBytes(a.identity.keyRecord.dhKey.bytes, key),
      ),
    hasSeen: (_sender: NodeId, id: MessageId) => me.seen.has(toHex(id)),
    lastSequence: () => me.lastSeq,
  });

  say(
    '\nT+0.0s  Paris seals an urgent preservation request (Budapest Convention art. 29) for Rabat and Madrid.',
  );
  const sealed = sealEnvelope(
    paris.identity,
    {
      kind: 'message',
      priority: 'urgent',
      handling: 'H2',
      author: 'duty-officer',
      createdAt: now,
      expiresAt: now + 8 * 3600_000,
      ref: null,
      recipients: [rabat, madrid].map((r) => ({
        nodeId: r.identity.nodeId,
        dhKey: r.identity.dhKey.publicKey,
        sequence: 1,
        mailbox: '24-7',
      })),
      payload: {
        subject: 'Preservation request: subscriber and traffic data, account @example-handle',
        body: 'Please preserve all subscriber, traffic and content data for the account below pending an MLA request. Suspected attack planning; the provider deletes logs after 7 days.',
        language: 'en',
        caseRef: 'FR-PNAT-2026-0412',
        form: {
          formId: 'preservation-request',
          formVersion: 1,
          fields: [
            { name: 'provider', value: 'Example Social Network Ltd' },
            { name: 'account', value: '@example-handle' },
            { name: 'data-categories', value: 'subscriber, traffic, content' },
            { name: 'period', value: '2026-10-01/2026-11-22' },
            { name: 'legal-basis', value: 'Budapest Convention art. 29; CPP art. 60-2' },
          ],
        },
        attachments: [],
      },
    },
    { pairKeys: paris.pairKeys },
  );
  const h = sealed.header;
  say(`  message ID    ${messageIdToText(h.messageId)}`);
  say(
    `  envelope      ${sealed.bytes.length} bytes, one signature, content key wrapped for ${h.recipients.length} recipients`,
  );
  say(
    `  in clear      kind=${h.kind} priority=${h.priority} handling=${h.handling} author=${h.author} (metadata only)`,
  );
  say(
    `  encrypted     subject, body, case reference, form fields: ${sealed.ciphertext.length} bytes of XChaCha20-Poly1305`,
  );
  say(`  envelopeHash  ${toHex(sealed.envelopeHash)}`);

  const receipts: Uint8Array[] = [];
  for (const r of [rabat, madrid]) {
    const accepted: Accepted = acceptEnvelope(
      sealed.bytes,
      r.identity,
      viewFor(r),
      now + 1200,
      r.pairKeys,
      paris.identity.nodeId,
    );
    r.seen.add(toHex(accepted.envelope.header.messageId));
    r.lastSeq = accepted.envelope.header.recipients[accepted.recipientIndex]!.sequence;
    say(
      `\nT+1.2s  ${r.name.split(':')[0]} verifies Paris's signature against the pinned key and opens the envelope.`,
    );
    say(`  subject       ${accepted.payload.subject}`);
    say(
      `  form          ${accepted.payload.form?.formId} v${accepted.payload.form?.formVersion}: ${accepted.payload.form?.fields.map((f) => `${f.name}=${f.value}`).join('; ')}`,
    );
    say(`  key commitment checked: every recipient reads the same plaintext`);
    const receipt = createReceipt(
      r.identity.signingKey,
      r.identity.nodeId,
      paris.identity.nodeId,
      now + 1300,
      [{ messageId: h.messageId, envelopeHash: accepted.envelope.envelopeHash, logIndex: 41 }],
    );
    receipts.push(receipt.bytes);
    say(
      `  signed receipt sent back (${receipt.bytes.length} bytes, names the envelope hash and audit-log index 41)`,
    );
  }

  say(
    '\nT+1.3s  Paris verifies both receipts: proof that each recipient stored exactly what was sent.',
  );
  for (const [i, bytes] of receipts.entries()) {
    const issuer = [rabat, madrid][i]!;
    const receipt = decodeReceipt(bytes);
    verifyReceipt(receipt, issuer.identity.signingKey.publicKey, paris.identity.nodeId);
    const entry = receiptEntryFor(receipt, decodeEnvelope(sealed.bytes));
    say(
      `  ${issuer.name.split(':')[0]!.padEnd(7)} delivered, recorded at its log index ${entry.logIndex}`,
    );
  }

  say('\nAn attacker who controls the network or a peer tries its luck:');
  const attempt = (label: string, run: () => void): void => {
    try {
      run();
      say(`  ${label.padEnd(58)} ACCEPTED (this is a bug)`);
    } catch (err) {
      if (!isLiaisonError(err)) throw err;
      say(`  ${label.padEnd(58)} refused: ${err.code}`);
    }
  };
  const tampered = Uint8Array.from(sealed.bytes);
  tampered[tampered.length - 100]! ^= 0x01;
  attempt('flip one bit of the ciphertext in transit', () =>
    acceptEnvelope(
      tampered,
      rabat.identity,
      viewFor(rabat),
      now + 2000,
      rabat.pairKeys,
      paris.identity.nodeId,
    ),
  );
  attempt('replay the same envelope to Rabat', () =>
    acceptEnvelope(
      sealed.bytes,
      rabat.identity,
      viewFor(rabat),
      now + 2000,
      rabat.pairKeys,
      paris.identity.nodeId,
    ),
  );
  const outsider = make('Outsider');
  attempt('an unpaired node sends to Madrid', () => {
    const forged = sealEnvelope(
      outsider.identity,
      {
        ...baseParams(now),
        recipients: [
          {
            nodeId: madrid.identity.nodeId,
            dhKey: madrid.identity.dhKey.publicKey,
            sequence: 2,
            mailbox: '24-7',
          },
        ],
      },
      { pairKeys: outsider.pairKeys },
    );
    acceptEnvelope(
      forged.bytes,
      madrid.identity,
      viewFor(madrid),
      now + 2000,
      madrid.pairKeys,
      outsider.identity.nodeId,
    );
  });
  attempt("Rabat forwards Paris's envelope to a third party", () => {
    const third = make('Third');
    acceptEnvelope(
      sealed.bytes,
      third.identity,
      { ...viewFor(third), pinnedIdentityKey: () => paris.identity.signingKey.publicKey },
      now + 2000,
      third.pairKeys,
      rabat.identity.nodeId,
    );
  });
  attempt('deliver the request after its 8-hour expiry', () => {
    const fresh = make('Fresh');
    acceptEnvelope(
      sealed.bytes,
      madrid.identity,
      {
        ...viewFor(fresh),
        pinnedIdentityKey: () => paris.identity.signingKey.publicKey,
        isCertifiedDhKey: () => true,
      },
      now + 9 * 3600_000,
      madrid.pairKeys,
      paris.identity.nodeId,
    );
  });
  say(
    '\nNext: `npm test` runs the test suite; `npm run bench:protocol` measures seal + open against raw Ed25519.',
  );
}

function baseParams(now: number) {
  return {
    kind: 'message' as const,
    priority: 'routine' as const,
    handling: 'H0' as const,
    author: 'mallory',
    createdAt: now,
    expiresAt: now + 3600_000,
    ref: null,
    payload: {
      subject: 'hello',
      body: 'trust me',
      language: null,
      caseRef: null,
      form: null,
      attachments: [],
    },
  };
}
