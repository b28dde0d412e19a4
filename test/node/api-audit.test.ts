/**
 * The audit routes in-process: an auditor's reads are themselves audit entries; a disclosure
 * reaches only the auditor it names, is recorded at creation and at each fetch, and the package
 * verifies offline (the plaintext is what the sender signed) while a tampered one does not; the
 * entries, proofs and checkpoints the API serves agree with each other.
 */
import t from 'tap';
import {
  createLocalIdentity,
  decodeAuditEntry,
  fromHex,
  initCrypto,
  isLiaisonError,
  nodeIdToText,
  openCheckpoint,
  randomBytes,
  verifyConsistency,
  verifyDisclosure,
  verifyInclusion,
  Ed25519PublicKey,
} from '../../protocol/index.ts';
import type { LinkSelf } from '../../node/link/handshake.ts';
import { Pairing } from '../../node/pairing.ts';
import { apiApp } from '../helpers/api-app.ts';

await initCrypto();

const h = await apiApp();
t.teardown(() => h.close());
const officer = await h.tokenFor('officer', 'duty');
const auditor = await h.tokenFor('auditor', 'supervisor');
const otherAuditor = await h.tokenFor('auditor', 'someone-else');
const admin = await h.tokenFor('admin', 'chief');

// A paired peer, so that the officer can send (the message stays queued: no link is up).
const self: LinkSelf = {
  identity: h.identity,
  rotations: [],
  name: 'Here',
  address: 'ws://127.0.0.1:9',
};
const remote = createLocalIdentity(randomBytes(32), randomBytes(32), h.clock.now());
{
  const pairing = new Pairing(h.store, h.clock, () => self);
  const inv = pairing.createInvitation('peer');
  pairing.pairedByInvitation(
    fromHex(inv.id),
    {
      identity: {
        nodeId: remote.nodeId,
        identityKey: remote.signingKey.publicKey,
        rotations: [],
        keyRecord: remote.keyRecord,
        name: 'There',
      },
      address: null,
    },
    h.clock.now(),
  );
}

async function call(
  method: 'GET' | 'POST',
  url: string,
  headers: { authorization: string },
  payload?: Record<string, unknown>,
) {
  const r = await h.app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
  return { status: r.statusCode, body: r.json() as Record<string, unknown> };
}

const kinds = () => h.audit.entries(0, 10_000).map((e) => decodeAuditEntry(e.entry));

const sent = await call('POST', '/v1/messages', officer, {
  to: [{ nodeId: nodeIdToText(remote.nodeId), mailbox: '24-7' }],
  subject: 'Preservation request',
  body: 'Please preserve the subscriber data of account X.',
});
const messageId = String(sent.body.messageId);

t.test("an auditor's metadata reads are logged; an officer's are not", async (t) => {
  const before = kinds().filter((e) => e.kind === 'metadata-consulted').length;
  t.equal((await call('GET', '/v1/outbox', officer)).status, 200);
  t.equal(kinds().filter((e) => e.kind === 'metadata-consulted').length, before, 'officer: none');
  t.equal((await call('GET', '/v1/outbox?limit=5', auditor)).status, 200);
  t.equal((await call('GET', `/v1/messages/${messageId}/status`, auditor)).status, 200);
  const logged = kinds().filter((e) => e.kind === 'metadata-consulted');
  t.equal(logged.length, before + 2, 'two auditor reads, two entries');
  t.match(logged.at(-2)!.fields, { user: 'supervisor', request: 'GET /v1/outbox?limit=5' });
  t.equal((await call('GET', '/v1/audit/entries?from=0&limit=3', auditor)).status, 200);
  t.match(kinds().at(-1), {
    kind: 'audit-consulted',
    fields: { user: 'supervisor', from: 0, to: 3 },
  });
});

t.test('disclosure: to one named auditor, recorded, verifiable offline', async (t) => {
  const refused = await call('POST', '/v1/audit/disclosures', admin, {
    messageId,
    auditor: 'duty',
    justification: 'x',
  });
  t.equal(refused.status, 400, 'only an auditor account can receive a disclosure');
  t.equal(
    (
      await call('POST', '/v1/audit/disclosures', auditor, {
        messageId,
        auditor: 'supervisor',
        justification: 'x',
      })
    ).status,
    403,
    'an auditor cannot disclose to itself',
  );
  const d = await call('POST', '/v1/audit/disclosures', admin, {
    messageId,
    auditor: 'supervisor',
    justification: 'Supervisory audit 2026-11',
  });
  t.equal(d.status, 200);
  const id = String(d.body.id);
  t.match(kinds().at(-1), {
    kind: 'content-disclosed',
    fields: { user: 'chief', auditor: 'supervisor', justification: 'Supervisory audit 2026-11' },
  });
  t.equal(
    (await call('GET', `/v1/audit/disclosures/${id}`, otherAuditor)).status,
    404,
    'not theirs',
  );
  t.equal(
    (await call('GET', `/v1/audit/disclosures/${id}`, officer)).status,
    403,
    'not an auditor',
  );
  t.equal(
    (await call('GET', `/v1/audit/disclosures/${id}`, admin)).status,
    403,
    'not even an admin',
  );
  const mine = await call('GET', '/v1/audit/disclosures', otherAuditor);
  t.same(mine.body.disclosures, [], 'another auditor lists nothing');

  const pkg = await call('GET', `/v1/audit/disclosures/${id}`, auditor);
  t.equal(pkg.status, 200);
  t.match(kinds().at(-1), { kind: 'disclosure-consulted', fields: { user: 'supervisor' } });
  const v = verifyDisclosure(pkg.body);
  t.equal(v.messageId, messageId);
  t.equal(v.payload.body, 'Please preserve the subscriber data of account X.');

  const key = Buffer.from(String(pkg.body.contentKey), 'base64');
  key[0] = key[0]! ^ 1;
  try {
    verifyDisclosure({ ...pkg.body, contentKey: key.toString('base64') });
    t.fail('a wrong content key verified');
  } catch (err) {
    t.ok(isLiaisonError(err, 'LIAISON_ERR_KEY_COMMITMENT_MISMATCH'), 'a wrong key is refused');
  }
  try {
    verifyDisclosure({
      ...pkg.body,
      senderIdentityKey: Buffer.from(remote.signingKey.publicKey.bytes).toString('base64'),
    });
    t.fail('another key verified');
  } catch (err) {
    t.ok(isLiaisonError(err, 'LIAISON_ERR_NODE_ID_MISMATCH'), "another node's key is refused");
  }
});

t.test('a disclosure belongs to the account, not to its name', async (t) => {
  const d = await call('POST', '/v1/audit/disclosures', admin, {
    messageId,
    auditor: 'supervisor',
    justification: 'Second look',
  });
  t.equal(d.status, 200);
  h.clock.advance(1000);
  h.users.remove('supervisor', 'chief');
  h.clock.advance(1000);
  const again = await h.tokenFor('auditor', 'supervisor');
  t.equal(
    (await call('GET', `/v1/audit/disclosures/${String(d.body.id)}`, again)).status,
    404,
    'a new account under the old name does not inherit the disclosure',
  );
  t.same((await call('GET', '/v1/audit/disclosures', again)).body.disclosures, [], 'nor lists it');
});

t.test('checkpoints, entries and proofs agree', async (t) => {
  const cp = await call('POST', '/v1/audit/checkpoints', otherAuditor);
  t.equal(cp.status, 200);
  const size = Number(cp.body.size);
  const status = await call('GET', '/v1/audit', admin);
  const opened = openCheckpoint(
    String(cp.body.note),
    String(status.body.origin),
    Ed25519PublicKey.fromBytes(h.identity.signingKey.publicKey.bytes),
  );
  t.equal(opened.checkpoint.size, size, 'the note states the size');
  const b64 = (s: unknown) => new Uint8Array(Buffer.from(String(s), 'base64'));
  for (const index of [0, Math.floor(size / 2), size - 1]) {
    const p = await call(
      'GET',
      `/v1/audit/proofs/inclusion?index=${index}&size=${size}`,
      otherAuditor,
    );
    verifyInclusion(
      index,
      size,
      b64(p.body.leafHash),
      (p.body.proof as string[]).map(b64),
      opened.checkpoint.rootHash,
    );
  }
  const c = await call('GET', `/v1/audit/proofs/consistency?from=2&to=${size}`, otherAuditor);
  verifyConsistency(
    2,
    size,
    (c.body.proof as string[]).map(b64),
    b64(c.body.fromRoot),
    opened.checkpoint.rootHash,
  );
  t.pass('inclusion and consistency proofs lead to the signed root');
});
