/**
 * Roles and tokens on every route of the local API, with fastify inject(). The route table below
 * is the expected matrix, hard-coded so that a change to the code is caught: officers send, read
 * content and acknowledge; auditors see metadata and statuses, never content; admins manage
 * peers, invitations, keys, users and tokens and also never read content. The test fails if the
 * OpenAPI document lists a route the table does not cover, or other roles for it.
 *
 * For every route: no token → 401; each role → 403 exactly where not allowed; revoked, expired
 * and removed users' tokens → 401; malformed JSON → 400; a body over API_BODY_LIMIT_BYTES → 413;
 * unknown message IDs → 404; validation errors name the field; no error body has a stack trace.
 */
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import {
  asMessageId,
  createLocalIdentity,
  fromHex,
  initCrypto,
  messageIdToText,
  nodeIdToText,
  randomBytes,
  toHex,
} from '../../protocol/index.ts';
import { API_BODY_LIMIT_BYTES } from '../../node/api/server.ts';
import type { LinkSelf } from '../../node/link/handshake.ts';
import { Pairing } from '../../node/pairing.ts';
import type { Role } from '../../node/users.ts';
import { apiApp } from '../helpers/api-app.ts';
import type { ApiApp } from '../helpers/api-app.ts';

await initCrypto();

const ROLES: readonly Role[] = ['officer', 'auditor', 'admin'];
const ALL: readonly Role[] = ROLES;
const ADMIN: readonly Role[] = ['admin'];
const OFFICER: readonly Role[] = ['officer'];
const READERS: readonly Role[] = ['auditor', 'admin'];
const AUDITOR: readonly Role[] = ['auditor'];
const MATRIX_AUDITOR = 'matrix-auditor';

const UNKNOWN_NODE = `ln${'a'.repeat(52)}`;
const UNKNOWN_MESSAGE = messageIdToText(asMessageId(randomBytes(16)));
const UNKNOWN_INVITATION = toHex(randomBytes(16));
const UNKNOWN_TOKEN = toHex(randomBytes(8));
const UNKNOWN_USER = 'nobody-here';

interface Invalid {
  readonly url: string;
  readonly body?: unknown;
  /** What detail.field must say. */
  readonly field: string;
}

interface RouteCase {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** As the OpenAPI document writes it. */
  readonly path: string;
  readonly roles: readonly Role[];
  /** A concrete URL for a call by an allowed role. */
  readonly url: string;
  readonly body?: () => unknown;
  /** Status an allowed role gets for that call. */
  readonly ok: number;
  /** An invalid request and the field its 400 must name. */
  readonly invalid?: readonly Invalid[];
  /** A server-sent event stream (never ends: called over a real socket). */
  readonly stream?: boolean;
}

let userSeq = 0;

/** The expected matrix. Change it only together with the code and docs/api.md. */
const ROUTES: readonly RouteCase[] = [
  { method: 'GET', path: '/v1/openapi.json', roles: ALL, url: '/v1/openapi.json', ok: 200 },
  { method: 'GET', path: '/v1/node', roles: ALL, url: '/v1/node', ok: 200 },
  { method: 'GET', path: '/v1/whoami', roles: ALL, url: '/v1/whoami', ok: 200 },
  { method: 'GET', path: '/v1/peers', roles: ALL, url: '/v1/peers', ok: 200 },
  {
    method: 'DELETE',
    path: '/v1/peers/{nodeId}',
    roles: ADMIN,
    url: `/v1/peers/${UNKNOWN_NODE}`,
    ok: 404,
    invalid: [{ url: '/v1/peers/not-a-node', field: 'params.nodeId' }],
  },
  {
    method: 'POST',
    path: '/v1/peers/{nodeId}/block',
    roles: ADMIN,
    url: `/v1/peers/${UNKNOWN_NODE}/block`,
    ok: 404,
    invalid: [{ url: `/v1/peers/ln${'A'.repeat(52)}/block`, field: 'params.nodeId' }],
  },
  {
    method: 'POST',
    path: '/v1/peers/{nodeId}/unblock',
    roles: ADMIN,
    url: `/v1/peers/${UNKNOWN_NODE}/unblock`,
    ok: 404,
    invalid: [{ url: '/v1/peers/ln1/unblock', field: 'params.nodeId' }],
  },
  {
    method: 'POST',
    path: '/v1/invitations',
    roles: ADMIN,
    url: '/v1/invitations',
    body: () => ({ label: 'roles test' }),
    ok: 200,
    invalid: [
      { url: '/v1/invitations', body: { ttlSeconds: 5 }, field: 'body.ttlSeconds' },
      { url: '/v1/invitations', body: { label: '' }, field: 'body.label' },
    ],
  },
  { method: 'GET', path: '/v1/invitations', roles: ADMIN, url: '/v1/invitations', ok: 200 },
  {
    method: 'DELETE',
    path: '/v1/invitations/{id}',
    roles: ADMIN,
    url: `/v1/invitations/${UNKNOWN_INVITATION}`,
    ok: 404,
    invalid: [{ url: '/v1/invitations/XYZ', field: 'params.id' }],
  },
  {
    method: 'POST',
    path: '/v1/invitations/accept',
    roles: ADMIN,
    url: '/v1/invitations/accept',
    body: () => ({ invitation: 'liaison-invite-v1:aaaa' }),
    ok: 400,
    invalid: [
      { url: '/v1/invitations/accept', body: {}, field: 'body.invitation' },
      { url: '/v1/invitations/accept', body: { invitation: '' }, field: 'body.invitation' },
    ],
  },
  { method: 'POST', path: '/v1/keys/rotate', roles: ADMIN, url: '/v1/keys/rotate', ok: 200 },
  { method: 'GET', path: '/v1/users', roles: ADMIN, url: '/v1/users', ok: 200 },
  {
    method: 'POST',
    path: '/v1/users',
    roles: ADMIN,
    url: '/v1/users',
    body: () => ({ name: `matrix-${++userSeq}`, role: 'auditor' }),
    ok: 200,
    invalid: [
      { url: '/v1/users', body: { name: 'x', role: 'superuser' }, field: 'body.role' },
      { url: '/v1/users', body: { role: 'officer' }, field: 'body.name' },
    ],
  },
  {
    method: 'DELETE',
    path: '/v1/users/{name}',
    roles: ADMIN,
    url: `/v1/users/${UNKNOWN_USER}`,
    ok: 404,
    invalid: [{ url: `/v1/users/${'a'.repeat(65)}`, field: 'params.name' }],
  },
  {
    method: 'POST',
    path: '/v1/users/{name}/tokens',
    roles: ADMIN,
    url: `/v1/users/${UNKNOWN_USER}/tokens`,
    body: () => ({ label: 'x' }),
    ok: 404,
    invalid: [
      { url: '/v1/users/someone/tokens', body: { ttlSeconds: 1 }, field: 'body.ttlSeconds' },
      { url: `/v1/users/${'a'.repeat(65)}/tokens`, body: {}, field: 'params.name' },
    ],
  },
  {
    method: 'GET',
    path: '/v1/tokens',
    roles: ADMIN,
    url: '/v1/tokens',
    ok: 200,
    invalid: [{ url: `/v1/tokens?user=${'a'.repeat(65)}`, field: 'querystring.user' }],
  },
  {
    method: 'DELETE',
    path: '/v1/tokens/{id}',
    roles: ADMIN,
    url: `/v1/tokens/${UNKNOWN_TOKEN}`,
    ok: 404,
    invalid: [{ url: '/v1/tokens/not-hex', field: 'params.id' }],
  },
  {
    method: 'POST',
    path: '/v1/messages',
    roles: OFFICER,
    url: '/v1/messages',
    // Filled in once a peer is paired (see below); an unknown recipient until then.
    body: () => sendBody(),
    ok: 200,
    invalid: [
      { url: '/v1/messages', body: { to: [], subject: 's', body: 'b' }, field: 'body.to' },
      {
        url: '/v1/messages',
        body: { to: [{ nodeId: 'x', mailbox: '24-7' }], subject: 's', body: 'b' },
        field: 'body.to.0.nodeId',
      },
      {
        url: '/v1/messages',
        body: { to: [{ nodeId: UNKNOWN_NODE, mailbox: '24-7' }], body: 'b' },
        field: 'body.subject',
      },
      {
        url: '/v1/messages',
        body: {
          to: [{ nodeId: UNKNOWN_NODE, mailbox: '24-7' }],
          subject: 's',
          body: 'b',
          priority: 'whenever',
        },
        field: 'body.priority',
      },
    ],
  },
  {
    method: 'GET',
    path: '/v1/inbox',
    roles: ALL,
    url: '/v1/inbox',
    ok: 200,
    invalid: [
      { url: '/v1/inbox?limit=0', field: 'querystring.limit' },
      { url: '/v1/inbox?sender=me', field: 'querystring.sender' },
    ],
  },
  {
    method: 'GET',
    path: '/v1/outbox',
    roles: ALL,
    url: '/v1/outbox',
    ok: 200,
    invalid: [{ url: '/v1/outbox?priority=whenever', field: 'querystring.priority' }],
  },
  {
    method: 'GET',
    path: '/v1/messages/{id}',
    roles: OFFICER,
    url: `/v1/messages/${UNKNOWN_MESSAGE}`,
    ok: 404,
    invalid: [{ url: '/v1/messages/lm1', field: 'params.id' }],
  },
  {
    method: 'GET',
    path: '/v1/messages/{id}/meta',
    roles: ALL,
    url: `/v1/messages/${UNKNOWN_MESSAGE}/meta`,
    ok: 404,
    invalid: [{ url: '/v1/messages/nope/meta', field: 'params.id' }],
  },
  {
    method: 'GET',
    path: '/v1/messages/{id}/status',
    roles: ALL,
    url: `/v1/messages/${UNKNOWN_MESSAGE}/status`,
    ok: 404,
    invalid: [{ url: '/v1/messages/nope/status', field: 'params.id' }],
  },
  {
    method: 'POST',
    path: '/v1/messages/{id}/ack',
    roles: OFFICER,
    url: `/v1/messages/${UNKNOWN_MESSAGE}/ack`,
    ok: 404,
    invalid: [{ url: '/v1/messages/nope/ack', field: 'params.id' }],
  },
  {
    method: 'GET',
    path: '/v1/events',
    roles: ALL,
    url: '/v1/events',
    ok: 200,
    stream: true,
    invalid: [{ url: '/v1/events?after=-1', field: 'querystring.after' }],
  },
  { method: 'GET', path: '/v1/audit', roles: READERS, url: '/v1/audit', ok: 200 },
  {
    method: 'POST',
    path: '/v1/audit/checkpoints',
    roles: READERS,
    url: '/v1/audit/checkpoints',
    ok: 200,
  },
  {
    method: 'GET',
    path: '/v1/audit/checkpoints',
    roles: READERS,
    url: '/v1/audit/checkpoints',
    ok: 200,
    invalid: [{ url: '/v1/audit/checkpoints?from=-1', field: 'querystring.from' }],
  },
  {
    method: 'GET',
    path: '/v1/audit/entries',
    roles: READERS,
    url: '/v1/audit/entries?from=0&limit=5',
    ok: 200,
    invalid: [
      { url: '/v1/audit/entries?limit=0', field: 'querystring.limit' },
      { url: '/v1/audit/entries?from=x', field: 'querystring.from' },
      { url: '/v1/audit/entries?from=999999', field: 'querystring.from' },
    ],
  },
  {
    method: 'GET',
    path: '/v1/audit/proofs/inclusion',
    roles: READERS,
    url: '/v1/audit/proofs/inclusion?index=0',
    ok: 200,
    invalid: [
      { url: '/v1/audit/proofs/inclusion', field: 'querystring.index' },
      { url: '/v1/audit/proofs/inclusion?index=999999', field: 'querystring.index' },
    ],
  },
  {
    method: 'GET',
    path: '/v1/audit/proofs/consistency',
    roles: READERS,
    url: '/v1/audit/proofs/consistency?from=1',
    ok: 200,
    invalid: [{ url: '/v1/audit/proofs/consistency?from=1&to=999999', field: 'querystring.to' }],
  },
  {
    method: 'POST',
    path: '/v1/audit/export',
    roles: READERS,
    url: '/v1/audit/export',
    body: () => ({}),
    ok: 200,
    invalid: [{ url: '/v1/audit/export', body: { from: -1 }, field: 'body.from' }],
  },
  {
    method: 'GET',
    path: '/v1/audit/witnessed',
    roles: READERS,
    url: '/v1/audit/witnessed',
    ok: 200,
  },
  { method: 'GET', path: '/v1/audit/evidence', roles: READERS, url: '/v1/audit/evidence', ok: 200 },
  {
    method: 'POST',
    path: '/v1/audit/disclosures',
    roles: ADMIN,
    url: '/v1/audit/disclosures',
    body: () => ({ messageId: UNKNOWN_MESSAGE, auditor: MATRIX_AUDITOR, justification: 'test' }),
    ok: 404,
    invalid: [
      {
        url: '/v1/audit/disclosures',
        body: { messageId: 'lm1', auditor: MATRIX_AUDITOR, justification: 'x' },
        field: 'body.messageId',
      },
      {
        url: '/v1/audit/disclosures',
        body: { messageId: UNKNOWN_MESSAGE, auditor: MATRIX_AUDITOR },
        field: 'body.justification',
      },
    ],
  },
  {
    method: 'GET',
    path: '/v1/audit/disclosures',
    roles: READERS,
    url: '/v1/audit/disclosures',
    ok: 200,
  },
  {
    method: 'GET',
    path: '/v1/audit/disclosures/{id}',
    roles: AUDITOR,
    url: '/v1/audit/disclosures/0123456789abcdef',
    ok: 404,
    invalid: [{ url: '/v1/audit/disclosures/XYZ', field: 'params.id' }],
  },
];

const h = await apiApp();
const app = h.app;
t.teardown(() => h.close());

/** Every response the test saw, for the stack-trace sweep at the end. */
const seen: { what: string; status: number; body: string }[] = [];

interface Reply {
  readonly status: number;
  readonly body: string;
  json(): Record<string, unknown>;
}

async function call(
  method: string,
  url: string,
  o: { token?: string | null; body?: unknown; raw?: string; contentType?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (o.token !== undefined && o.token !== null) headers.authorization = `Bearer ${o.token}`;
  if (o.contentType !== undefined) headers['content-type'] = o.contentType;
  const r = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(o.raw !== undefined
      ? { payload: o.raw }
      : o.body === undefined
        ? {}
        : { payload: o.body as Record<string, unknown> }),
  });
  seen.push({ what: `${method} ${url}`, status: r.statusCode, body: r.body });
  return {
    status: r.statusCode,
    body: r.body,
    json: () => (r.body === '' ? {} : (r.json() as Record<string, unknown>)),
  };
}

function errorOf(r: Reply): { code?: string; message?: string; detail?: Record<string, unknown> } {
  return (r.json().error ?? {}) as {
    code?: string;
    message?: string;
    detail?: Record<string, unknown>;
  };
}

/** An event stream over a real socket: the status and content type, then hang up. */
let base: string | null = null;
async function openStream(token: string): Promise<{ status: number; type: string }> {
  if (base === null) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }
  const url = `${base}/v1/events`;
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) });
      req.destroy();
    });
    req.on('error', (err) => {
      if (!req.destroyed) reject(err);
    });
    req.end();
  });
}

async function tokenOf(role: Role, name?: string): Promise<string> {
  return (await h.tokenFor(role, name)).authorization.slice('Bearer '.length);
}

const tokens: Record<Role, string> = {
  officer: await tokenOf('officer'),
  auditor: await tokenOf('auditor'),
  admin: await tokenOf('admin'),
};
await tokenOf('auditor', MATRIX_AUDITOR);

// A paired peer (pinned in the same store the API reads), so an officer can really send.
const self: LinkSelf = {
  identity: h.identity,
  rotations: [],
  name: 'Test authority',
  address: 'ws://127.0.0.1:9',
};
const pairing = new Pairing(h.store, h.clock, () => self);
const remote = createLocalIdentity(randomBytes(32), randomBytes(32), h.clock.now());
const remoteId = nodeIdToText(remote.nodeId);
{
  const inv = pairing.createInvitation('roles test peer');
  pairing.pairedByInvitation(
    fromHex(inv.id),
    {
      identity: {
        nodeId: remote.nodeId,
        identityKey: remote.signingKey.publicKey,
        rotations: [],
        keyRecord: remote.keyRecord,
        name: 'Remote authority',
      },
      address: null,
    },
    h.clock.now(),
  );
}
function sendBody(subject = 'matrix test'): Record<string, unknown> {
  return {
    to: [{ nodeId: remoteId, mailbox: '24-7' }],
    subject,
    body: 'do not show this to an auditor',
  };
}

async function callAllowed(r: RouteCase, token: string): Promise<Reply> {
  return call(r.method, r.url, {
    token,
    ...(r.body === undefined ? {} : { body: r.body() }),
  });
}

t.test('the route table is the OpenAPI document, roles included', async (t) => {
  const doc = await call('GET', '/v1/openapi.json', { token: tokens.admin });
  t.equal(doc.status, 200);
  const paths = doc.json().paths as Record<string, Record<string, { 'x-liaison-roles'?: Role[] }>>;
  const documented = new Map<string, Role[]>();
  for (const [path, ops] of Object.entries(paths))
    for (const [method, op] of Object.entries(ops))
      documented.set(`${method.toUpperCase()} ${path}`, op['x-liaison-roles'] ?? []);
  const table = new Map(ROUTES.map((r) => [`${r.method} ${r.path}`, r.roles]));
  for (const [key, roles] of documented) {
    t.ok(table.has(key), `${key} is covered by the test's route table`);
    t.same([...roles].sort(), [...(table.get(key) ?? [])].sort(), `${key}: roles as expected`);
  }
  for (const key of table.keys()) t.ok(documented.has(key), `${key} is in the OpenAPI document`);
  t.equal(documented.size, ROUTES.length, 'no route more, no route less');

  // The invariants the matrix encodes, stated once more.
  for (const r of ROUTES) {
    const key = `${r.method} ${r.path}`;
    if (r.path === '/v1/messages/{id}' || key === 'POST /v1/messages' || r.path.endsWith('/ack'))
      t.same(r.roles, ['officer'], `${key}: officers only`);
    if (r.roles.includes('officer') && !r.roles.includes('admin'))
      t.notOk(r.roles.includes('auditor'), `${key}: an auditor never reads or sends content`);
  }
});

t.test('every route: 401 without a token, 403 exactly for roles not allowed', async (t) => {
  const junk = [
    null,
    'wrong',
    `lt_${'a'.repeat(52)}`,
    `${tokens.admin}x`,
    tokens.admin.toUpperCase(),
  ];
  for (const r of ROUTES) {
    const key = `${r.method} ${r.path}`;
    for (const token of junk) {
      const res = await call(r.method, r.url, { token });
      t.equal(res.status, 401, `${key} with token ${String(token).slice(0, 8)}…: 401`);
      t.equal(errorOf(res).code, 'LIAISON_ERR_UNAUTHORIZED');
    }
    // A header that is not a bearer token at all.
    const basic = await app.inject({
      method: r.method,
      url: r.url,
      headers: { authorization: `Basic ${tokens.admin}` },
    });
    t.equal(basic.statusCode, 401, `${key} with Basic: 401`);
    if (r.method === 'GET') {
      const head = await app.inject({ method: 'HEAD', url: r.url });
      t.equal(head.statusCode, 401, `HEAD ${r.path} without a token: 401`);
    }
    for (const role of ROLES) {
      const allowed = r.roles.includes(role);
      if (allowed && r.stream === true) {
        const s = await openStream(tokens[role]);
        t.equal(s.status, 200, `${key} as ${role}: stream opens`);
        t.match(s.type, /^text\/event-stream/);
        continue;
      }
      const res = allowed
        ? await callAllowed(r, tokens[role])
        : await call(r.method, r.url, {
            token: tokens[role],
            ...(r.body === undefined ? {} : { body: r.body() }),
          });
      if (allowed) {
        t.equal(res.status, r.ok, `${key} as ${role}: ${r.ok}`);
        t.not(errorOf(res).code, 'LIAISON_ERR_FORBIDDEN');
      } else {
        t.equal(res.status, 403, `${key} as ${role}: 403`);
        t.equal(errorOf(res).code, 'LIAISON_ERR_FORBIDDEN');
        t.equal(errorOf(res).detail?.role, role, 'the error names the role');
      }
      if (r.method === 'GET') {
        // No HEAD routes: a HEAD would run the GET handler (for a message, a consultation).
        const head = await app.inject({
          method: 'HEAD',
          url: r.url,
          headers: { authorization: `Bearer ${tokens[role]}` },
        });
        t.equal(head.statusCode, 404, `HEAD ${r.path} as ${role}: no such route`);
      }
    }
  }
  const who = await Promise.all(
    ROLES.map((role) => call('GET', '/v1/whoami', { token: tokens[role] })),
  );
  t.same(
    who.map((w) => w.json().role),
    ROLES,
    'whoami tells each role',
  );
});

/** Tokens of `role` made unusable three ways: revoked, expired, user removed. */
async function deadTokens(
  role: Role,
): Promise<{ revoked: string; expired: string; removed: string }> {
  const admin = tokens.admin;
  const mk = async (name: string, ttlSeconds?: number) => {
    const u = await call('POST', '/v1/users', { token: admin, body: { name, role } });
    if (u.status !== 200) throw new Error(`user ${name}: ${u.body}`);
    const tok = await call('POST', `/v1/users/${name}/tokens`, {
      token: admin,
      body: ttlSeconds === undefined ? { label: 'dead' } : { label: 'dead', ttlSeconds },
    });
    if (tok.status !== 200) throw new Error(`token ${name}: ${tok.body}`);
    return tok.json() as { token: string; id: string };
  };
  const revoked = await mk(`revoked-${role}`);
  const expired = await mk(`expired-${role}`, 60);
  const removed = await mk(`removed-${role}`);
  return { revoked: revoked.token, expired: expired.token, removed: removed.token };
}

t.test('revoked, expired and removed users’ tokens: 401 on every route', async (t) => {
  const dead: Record<Role, { revoked: string; expired: string; removed: string }> = {
    officer: await deadTokens('officer'),
    auditor: await deadTokens('auditor'),
    admin: await deadTokens('admin'),
  };
  // Each works before it dies.
  for (const role of ROLES)
    for (const [how, token] of Object.entries(dead[role])) {
      const w = await call('GET', '/v1/whoami', { token });
      t.equal(w.status, 200, `${role} ${how} token works at first`);
    }
  const listed = (await call('GET', '/v1/tokens', { token: tokens.admin })).json().tokens as {
    id: string;
    user: string;
  }[];
  for (const role of ROLES) {
    const id = listed.find((x) => x.user === `revoked-${role}`)!.id;
    const rev = await call('DELETE', `/v1/tokens/${id}`, { token: tokens.admin });
    t.equal(rev.status, 200, `revoke the ${role} token`);
    const del = await call('DELETE', `/v1/users/removed-${role}`, { token: tokens.admin });
    t.equal(del.status, 200, `remove the ${role} user`);
    const left = await call('GET', `/v1/tokens?user=removed-${role}`, { token: tokens.admin });
    t.same(left.json().tokens, [], 'its tokens went with it');
  }
  // A new user under a removed user's name (with another role) does not revive the old token.
  const again = await call('POST', '/v1/users', {
    token: tokens.admin,
    body: { name: 'removed-auditor', role: 'admin' },
  });
  t.equal(again.status, 200);

  // Token lifetime is 60 s: still valid 1 ms before, refused at the instant it expires.
  h.clock.advance(59_999);
  for (const role of ROLES)
    t.equal(
      (await call('GET', '/v1/whoami', { token: dead[role].expired })).status,
      200,
      `${role}: valid just before expiry`,
    );
  h.clock.advance(1);

  for (const r of ROUTES) {
    for (const role of ROLES) {
      for (const [how, token] of Object.entries(dead[role])) {
        const res = await call(r.method, r.url, {
          token,
          ...(r.body === undefined ? {} : { body: r.body() }),
        });
        t.equal(res.status, 401, `${r.method} ${r.path} with a ${how} ${role} token: 401`);
        t.equal(errorOf(res).code, 'LIAISON_ERR_UNAUTHORIZED');
      }
    }
  }
  // The live tokens are untouched by all this.
  for (const role of ROLES)
    t.equal((await call('GET', '/v1/whoami', { token: tokens[role] })).status, 200);
});

t.test('every route with a body: malformed JSON → 400, too large → 413', async (t) => {
  const oversized = JSON.stringify({ label: 'x'.repeat(API_BODY_LIMIT_BYTES) });
  t.ok(Buffer.byteLength(oversized) > API_BODY_LIMIT_BYTES);
  for (const r of ROUTES) {
    if (r.method === 'GET') continue;
    const key = `${r.method} ${r.path}`;
    const token = tokens[r.roles[0]!];
    for (const raw of ['{"label":', '{label: 1}', 'null,', '\u0000']) {
      const res = await call(r.method, r.url, {
        token,
        raw,
        contentType: 'application/json',
      });
      t.equal(res.status, 400, `${key}: malformed JSON ${JSON.stringify(raw)} → 400`);
      t.equal(errorOf(res).code, 'LIAISON_ERR_VALIDATION');
    }
    const big = await call(r.method, r.url, {
      token,
      raw: oversized,
      contentType: 'application/json',
    });
    t.equal(big.status, 413, `${key}: body over the limit → 413`);
    t.equal(errorOf(big).code, 'LIAISON_ERR_BODY_TOO_LARGE');
    t.equal(errorOf(big).detail?.limit, API_BODY_LIMIT_BYTES, 'detail.limit');
    // Refused before anything is authorised: a forbidden role still gets 403, not 413.
    const other = ROLES.find((x) => !r.roles.includes(x));
    if (other !== undefined) {
      const f = await call(r.method, r.url, {
        token: tokens[other],
        raw: oversized,
        contentType: 'application/json',
      });
      t.equal(f.status, 403, `${key}: a forbidden role learns nothing about the body`);
    }
    const anon = await call(r.method, r.url, { raw: oversized, contentType: 'application/json' });
    t.equal(anon.status, 401, `${key}: without a token, 401 before the body is read`);
  }
});

t.test('validation errors name the failing field', async (t) => {
  for (const r of ROUTES) {
    for (const inv of r.invalid ?? []) {
      const res = await call(r.method, inv.url, {
        token: tokens[r.roles[0]!],
        ...(inv.body === undefined ? {} : { body: inv.body }),
      });
      const label = `${r.method} ${inv.url} ${inv.body === undefined ? '' : JSON.stringify(inv.body)}`;
      t.equal(res.status, 400, `${label}: 400`);
      t.equal(errorOf(res).code, 'LIAISON_ERR_VALIDATION');
      t.equal(errorOf(res).detail?.field, inv.field, `${label}: names ${inv.field}`);
    }
  }
  // JSON has types: a number where a string is required is a validation error, not coerced.
  for (const [url, body, field] of [
    ['/v1/users', { name: 123, role: 'officer' }, 'body.name'],
    ['/v1/users', { name: ['listed'], role: 'officer' }, 'body.name'],
    ['/v1/invitations', { label: 'typed', ttlSeconds: '3600' }, 'body.ttlSeconds'],
  ] as const) {
    const res = await call('POST', url, { token: tokens.admin, body });
    t.equal(res.status, 400, `${url} ${JSON.stringify(body)}: 400`);
    t.equal(errorOf(res).detail?.field, field, `names ${field}`);
  }
  const extra = await call('POST', '/v1/users', {
    token: tokens.admin,
    body: { name: 'extra-field', role: 'auditor', admin: true },
  });
  t.equal(extra.status, 400, 'unknown body fields are refused');
  t.match(String(errorOf(extra).detail?.field), /^body/, 'and the error points at the body');
});

t.test('unknown message IDs: 404 for every message route and allowed role', async (t) => {
  for (const r of ROUTES.filter((x) => x.path.startsWith('/v1/messages/{id}'))) {
    for (const role of r.roles) {
      const res = await call(r.method, r.url, { token: tokens[role] });
      t.equal(res.status, 404, `${r.method} ${r.path} as ${role}`);
      t.equal(errorOf(res).code, 'LIAISON_ERR_NOT_FOUND');
    }
  }
});

t.test('content is for officers: a real message', async (t) => {
  const subject = 'preservation request 4711';
  const sent = await call('POST', '/v1/messages', {
    token: tokens.officer,
    body: sendBody(subject),
  });
  t.equal(sent.status, 200, 'the officer sends');
  const id = String(sent.json().messageId);
  // HEAD sends no content: it must not count as a consultation (audit entry, read mark).
  const consulted = () =>
    Number(
      (
        h.store.database
          .prepare("SELECT count(*) AS n FROM audit_log WHERE kind = 'message-consulted'")
          .get() as { n: number | bigint }
      ).n,
    );
  const consultedBefore = consulted();
  const head = await app.inject({
    method: 'HEAD',
    url: `/v1/messages/${id}`,
    headers: { authorization: `Bearer ${tokens.officer}` },
  });
  t.equal(head.body, '', 'HEAD shows no content');
  t.equal(consulted(), consultedBefore, 'HEAD audits no consultation');
  const unread = await call('GET', `/v1/messages/${id}/meta`, { token: tokens.officer });
  t.equal(unread.json().readAt, null, 'HEAD does not mark the message read');
  const afterHead = consulted();
  const read = await call('GET', `/v1/messages/${id}`, { token: tokens.officer });
  t.equal(consulted(), afterHead + 1, 'GET audits the consultation');
  t.equal(read.status, 200, 'the officer reads the content');
  t.equal((read.json().content as { subject?: string } | undefined)?.subject, subject);
  for (const role of ['auditor', 'admin'] as const) {
    const denied = await call('GET', `/v1/messages/${id}`, { token: tokens[role] });
    t.equal(denied.status, 403, `${role} may not read the content`);
    t.notMatch(denied.body, /4711|do not show/, `${role}: nothing of the content leaks`);
    for (const url of [`/v1/messages/${id}/meta`, `/v1/messages/${id}/status`, '/v1/outbox']) {
      const m = await call('GET', url, { token: tokens[role] });
      t.equal(m.status, 200, `${role}: ${url}`);
      t.notMatch(m.body, /4711|do not show/, `${role}: ${url} has no content`);
      t.notOk('content' in m.json(), `${role}: ${url} has no content field`);
    }
    const sendAs = await call('POST', '/v1/messages', { token: tokens[role], body: sendBody() });
    t.equal(sendAs.status, 403, `${role} may not send`);
    const ackAs = await call('POST', `/v1/messages/${id}/ack`, { token: tokens[role] });
    t.equal(ackAs.status, 403, `${role} may not acknowledge`);
  }
  const ack = await call('POST', `/v1/messages/${id}/ack`, { token: tokens.officer });
  t.equal(ack.status, 404, 'an officer may acknowledge, but only a received message');
});

t.test('the last admin cannot be removed; user names are validated', async (t) => {
  const h2: ApiApp = await apiApp();
  t.teardown(() => h2.close());
  const ask = async (method: string, url: string, token: string, body?: unknown) => {
    const r = await h2.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
    seen.push({ what: `${method} ${url}`, status: r.statusCode, body: r.body });
    return { status: r.statusCode, json: () => r.json() as Record<string, unknown> };
  };
  // A new store has exactly one admin, 'admin' (created by the schema migration).
  t.same(
    h2.users
      .list()
      .filter((u) => u.role === 'admin')
      .map((u) => u.name),
    ['admin'],
    'one admin to begin with',
  );
  const root = (await h2.tokenFor('admin', 'admin')).authorization.slice(7);
  const last = await ask('DELETE', '/v1/users/admin', root);
  t.equal(last.status, 409, 'the only admin cannot remove itself');
  t.equal((last.json().error as { code?: string } | undefined)?.code, 'LIAISON_ERR_CONFLICT');
  t.ok(h2.users.get('admin') !== null, 'still there');
  t.equal((await ask('GET', '/v1/whoami', root)).status, 200, 'and its token still works');

  t.equal((await ask('POST', '/v1/users', root, { name: 'second', role: 'admin' })).status, 200);
  const second = String(
    (await ask('POST', '/v1/users/second/tokens', root, { label: 'x' })).json().token,
  );
  t.equal((await ask('DELETE', '/v1/users/admin', second)).status, 200, 'one of two admins goes');
  t.equal((await ask('GET', '/v1/whoami', root)).status, 401, "the removed admin's token is dead");
  const now = await ask('DELETE', '/v1/users/second', second);
  t.equal(now.status, 409, 'and now the remaining one is the last');
  t.equal((now.json().error as { code?: string } | undefined)?.code, 'LIAISON_ERR_CONFLICT');
  // Removing officers and auditors is never blocked by this rule.
  await h2.tokenFor('officer', 'off');
  t.equal((await ask('DELETE', '/v1/users/off', second)).status, 200);
  t.equal((await ask('DELETE', '/v1/users/off', second)).status, 404, 'gone');

  for (const name of [
    'Bad Name',
    'UPPER',
    '-lead',
    'trail-',
    '.dot',
    'a b',
    'é',
    'a/b',
    '',
    'a'.repeat(65),
  ]) {
    const r = await ask('POST', '/v1/users', second, { name, role: 'officer' });
    t.equal(r.status, 400, `name ${JSON.stringify(name)} refused`);
    const e = r.json().error as { code: string; detail?: { field?: string } };
    t.equal(e.code, 'LIAISON_ERR_VALIDATION');
    t.match(String(e.detail?.field), /(^|\.)name$/, 'the error names the name');
    t.equal(h2.users.get(name), null, 'not created');
  }
  for (const name of ['a', '7', 'duty.officer-2', 'x_y', 'a'.repeat(64)]) {
    const r = await ask('POST', '/v1/users', second, { name, role: 'auditor' });
    t.equal(r.status, 200, `name ${JSON.stringify(name)} accepted`);
  }
  const dup = await ask('POST', '/v1/users', second, { name: 'x_y', role: 'officer' });
  t.equal(dup.status, 409, 'a name is taken once');
});

t.test('no error body carries a stack trace or internals', async (t) => {
  const errors = seen.filter((s) => s.status >= 400);
  t.ok(errors.length > 200, `${errors.length} error responses checked`);
  const bad: string[] = [];
  for (const e of errors) {
    let body: unknown;
    try {
      body = JSON.parse(e.body);
    } catch {
      bad.push(`${e.what}: not JSON`);
      continue;
    }
    const err = (body as { error?: Record<string, unknown> }).error;
    if (
      err === undefined ||
      typeof err.code !== 'string' ||
      !/^LIAISON_ERR_[A-Z0-9_]+$/.test(err.code) ||
      typeof err.message !== 'string' ||
      Object.keys(body as object).length !== 1 ||
      Object.keys(err).some((k) => !['code', 'message', 'detail'].includes(k))
    )
      bad.push(`${e.what}: not { error: { code, message, detail? } }: ${e.body.slice(0, 200)}`);
    if (/\n\s+at |\.(ts|js|mjs):\d+|node_modules|"stack"|FST_/.test(e.body))
      bad.push(`${e.what}: internals in ${e.body.slice(0, 300)}`);
  }
  t.same(bad, [], 'every error is a clean error body');
  const statuses = new Set(errors.map((e) => e.status));
  for (const s of [400, 401, 403, 404, 409, 413]) t.ok(statuses.has(s), `saw ${s}`);
});
