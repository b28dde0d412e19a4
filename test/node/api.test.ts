/**
 * The local API with fastify inject(): authentication, validation naming the field, body limit,
 * unknown routes and IDs, error bodies with stable codes and no stack traces.
 */
import t from 'tap';
import { initCrypto, randomBytes, toHex } from '../../protocol/index.ts';
import { API_BODY_LIMIT_BYTES } from '../../node/api/server.ts';
import { EventLog } from '../../node/events.ts';
import { apiApp } from '../helpers/api-app.ts';

await initCrypto();
const h = await apiApp();
const app = h.app;
t.teardown(() => h.close());
const auth = await h.tokenFor('admin');
const token = auth.authorization.slice('Bearer '.length);

t.test('authentication', async (t) => {
  for (const headers of [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: token },
    { authorization: 'Basic abc' },
  ]) {
    const r = await app.inject({ method: 'GET', url: '/v1/node', headers });
    t.equal(r.statusCode, 401, JSON.stringify(headers));
    t.equal(r.json().error.code, 'LIAISON_ERR_UNAUTHORIZED');
  }
  // Unknown routes need a token too: no probing of the API without one.
  t.equal((await app.inject({ method: 'GET', url: '/nope' })).statusCode, 401);
  const ok = await app.inject({ method: 'GET', url: '/v1/node', headers: auth });
  t.equal(ok.statusCode, 200);
  t.equal(ok.json().name, 'Test authority');
});

t.test('validation names the failing field; no stack traces', async (t) => {
  const bad = await app.inject({
    method: 'POST',
    url: '/v1/invitations',
    headers: auth,
    payload: { ttlSeconds: 5 },
  });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().error.code, 'LIAISON_ERR_VALIDATION');
  t.match(bad.json().error.detail.field, /ttlSeconds/);
  const extra = await app.inject({
    method: 'POST',
    url: '/v1/invitations',
    headers: auth,
    payload: { label: 'x', admin: true },
  });
  t.equal(extra.statusCode, 400, 'unknown properties are refused');
  const missing = await app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    headers: auth,
    payload: {},
  });
  t.equal(missing.statusCode, 400);
  t.match(missing.json().error.detail.field, /invitation/);
  const garbage = await app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: '{"invitation":',
  });
  t.equal(garbage.statusCode, 400, 'malformed JSON');
  t.notMatch(garbage.body, /at .*\.ts:\d+/, 'no stack trace');
  const notAnInvitation = await app.inject({
    method: 'POST',
    url: '/v1/invitations/accept',
    headers: auth,
    payload: { invitation: 'liaison-invite-v1:aaaa' },
  });
  t.equal(notAnInvitation.statusCode, 400);
  t.equal(notAnInvitation.json().error.code, 'LIAISON_ERR_INVITATION_INVALID');
});

t.test('body limit and unknown IDs', async (t) => {
  const big = await app.inject({
    method: 'POST',
    url: '/v1/invitations',
    headers: { ...auth, 'content-type': 'application/json' },
    payload: JSON.stringify({ label: 'x'.repeat(API_BODY_LIMIT_BYTES) }),
  });
  t.equal(big.statusCode, 413);
  t.equal(big.json().error.code, 'LIAISON_ERR_BODY_TOO_LARGE');
  const unknownPeer = await app.inject({
    method: 'DELETE',
    url: `/v1/peers/ln${'a'.repeat(52)}`,
    headers: auth,
  });
  t.equal(unknownPeer.statusCode, 404);
  t.equal(unknownPeer.json().error.code, 'LIAISON_ERR_NOT_FOUND');
  const badId = await app.inject({ method: 'DELETE', url: '/v1/peers/not-a-node', headers: auth });
  t.equal(badId.statusCode, 400);
  const unknownInv = await app.inject({
    method: 'DELETE',
    url: `/v1/invitations/${toHex(randomBytes(16))}`,
    headers: auth,
  });
  t.equal(unknownInv.statusCode, 404);
  const route = await app.inject({ method: 'GET', url: '/v1/nothing-here', headers: auth });
  t.equal(route.statusCode, 404);
  t.equal(route.json().error.code, 'LIAISON_ERR_NOT_FOUND');
});

t.test('invitations: create, list without secrets, revoke', async (t) => {
  const created = await app.inject({
    method: 'POST',
    url: '/v1/invitations',
    headers: auth,
    payload: { label: 'for Rabat', ttlSeconds: 3600 },
  });
  t.equal(created.statusCode, 200);
  const { id, invitation } = created.json() as { id: string; invitation: string };
  t.match(invitation, /^liaison-invite-v1:/);
  const list = await app.inject({ method: 'GET', url: '/v1/invitations', headers: auth });
  t.notMatch(list.body, /secret/i, 'no secret in the listing');
  t.equal(list.json().invitations[0].label, 'for Rabat');
  t.equal(
    (await app.inject({ method: 'DELETE', url: `/v1/invitations/${id}`, headers: auth }))
      .statusCode,
    200,
  );
  t.equal(
    (await app.inject({ method: 'DELETE', url: `/v1/invitations/${id}`, headers: auth }))
      .statusCode,
    200,
    'revoking twice is harmless',
  );
  t.ok(list.json().invitations.length >= 1);
});

t.test(
  'event stream: each event as id, type and its data with the time as member at',
  async (t) => {
    // Events written by the node's own EventLog class, over the same database.
    const events = new EventLog(h.store.database, h.clock);
    const from = events.lastId();
    const written = [
      { type: 'message.status', data: { messageId: 'm1', recipient: 'ln1', status: 'sent' } },
      { type: 'message.gap', data: { sender: 'ln2', from: 3, to: 7 } },
      {
        type: 'audit.alert',
        data: { finding: 'fork', note: 'é "quoted" \\ \n', nested: [1, { a: null }] },
      },
      { type: 'peer.up', data: {} },
    ] as const;
    h.store.transaction(() => {
      for (const e of written) events.record(e.type, e.data);
    });
    t.throws(
      () => events.record('peer.up', { at: 1 }),
      /member named at/,
      'data may not carry its own at',
    );
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as { port: number };
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/v1/events?after=${from}`, {
      headers: auth,
      signal: ctl.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/\n\n/g) ?? []).length < written.length + 1)
      text += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    const at = new Date(h.clock.now()).toISOString();
    const expected = written
      .map(
        (e, i) =>
          `id: ${from + i + 1}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...e.data, at })}\n\n`,
      )
      .join('');
    t.equal(
      text,
      `: liaison event stream\n\n${expected}`,
      'exactly JSON.stringify({ ...data, at })',
    );
  },
);
