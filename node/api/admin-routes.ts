/**
 * Node, peers, invitations, keys, users and tokens (docs/api.md). Reading the node and its peers
 * is open to every role (an officer needs a peer's node ID to address it); changing anything is
 * for admins.
 */
import type { FastifyInstance } from 'fastify';
import { fingerprint, nodeIdToText, toHex } from '../../protocol/index.ts';
import type { LinkSelf } from '../link/handshake.ts';
import type { LinkManager } from '../link/link-manager.ts';
import type { Pairing } from '../pairing.ts';
import { MAX_TOKEN_LABEL_BYTES, ROLES } from '../users.ts';
import type { Role, TokenInfo, Users } from '../users.ts';
import { ALL_ROLES, responses } from './server.ts';

export interface AdminDeps {
  readonly self: () => LinkSelf;
  readonly pairing: Pairing;
  readonly links: LinkManager;
  readonly users: Users;
  readonly peerPort: () => number;
  readonly rotateStaticKey: (by: string) => Promise<void>;
}

const ADMIN: readonly Role[] = ['admin'];
const anyObject = { type: 'object', additionalProperties: true } as const;
const nodeIdParam = {
  type: 'object',
  properties: { nodeId: { type: 'string', pattern: '^ln[a-z2-7]{52}$' } },
  required: ['nodeId'],
  additionalProperties: false,
} as const;
const userParam = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['name'],
} as const;

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
const tokenView = (t: TokenInfo) => ({
  id: t.id,
  user: t.user,
  label: t.label,
  createdAt: iso(t.createdAt),
  expiresAt: iso(t.expiresAt),
  revokedAt: iso(t.revokedAt),
  lastUsedAt: iso(t.lastUsedAt),
});

export function adminRoutes(app: FastifyInstance, d: AdminDeps): void {
  app.get(
    '/v1/node',
    {
      config: { roles: ALL_ROLES },
      schema: { summary: 'This node', response: responses(anyObject) },
    },
    async () => {
      const me = d.self();
      return {
        nodeId: nodeIdToText(me.identity.nodeId),
        name: me.name,
        fingerprint: fingerprint(me.identity.signingKey.publicKey),
        identityKey: toHex(me.identity.signingKey.publicKey.bytes),
        dhKey: toHex(me.identity.dhKey.publicKey.bytes),
        keyRecordSerial: me.identity.keyRecord.serial,
        publicAddress: me.address,
        peerPort: d.peerPort(),
      };
    },
  );

  app.get(
    '/v1/whoami',
    { config: { roles: ALL_ROLES }, schema: { summary: 'The caller' } },
    async (req) => ({
      user: req.principal.user,
      role: req.principal.role,
      tokenId: req.principal.tokenId,
    }),
  );

  app.get(
    '/v1/peers',
    {
      config: { roles: ALL_ROLES },
      schema: { summary: 'Paired and blocked peers', response: responses(anyObject) },
    },
    async () => {
      const up = new Set(d.links.connectedPeers());
      return {
        peers: d.pairing.peers().map((p) => ({
          nodeId: p.nodeId,
          name: p.name,
          fingerprint: p.fingerprint,
          address: p.address,
          status: p.status,
          link: up.has(p.nodeId) ? 'up' : 'down',
          pairedAt: iso(p.pairedAt),
          lastSeen: iso(p.lastSeen),
          keyRecordSerial: p.keyRecordSerial,
        })),
      };
    },
  );

  app.delete<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId',
    { config: { roles: ADMIN }, schema: { summary: 'Unpair', params: nodeIdParam } },
    async (req) => {
      d.pairing.unpair(req.params.nodeId, req.principal.user);
      d.links.disconnect(req.params.nodeId, 'UNPAIRED');
      return { nodeId: req.params.nodeId, status: 'unpaired' };
    },
  );

  app.post<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId/block',
    { config: { roles: ADMIN }, schema: { summary: 'Block', params: nodeIdParam } },
    async (req) => {
      d.pairing.block(req.params.nodeId, req.principal.user);
      d.links.disconnect(req.params.nodeId, 'LIAISON_ERR_PEER_BLOCKED');
      return { nodeId: req.params.nodeId, status: 'blocked' };
    },
  );

  app.post<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId/unblock',
    { config: { roles: ADMIN }, schema: { summary: 'Unblock', params: nodeIdParam } },
    async (req) => {
      d.pairing.unblock(req.params.nodeId, req.principal.user);
      d.links.peerChanged(req.params.nodeId);
      return { nodeId: req.params.nodeId, status: 'paired' };
    },
  );

  app.post<{ Body: { label?: string; ttlSeconds?: number } | undefined }>(
    '/v1/invitations',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Create an invitation',
        body: {
          type: 'object',
          properties: {
            label: { type: 'string', minLength: 1, maxLength: 200 },
            ttlSeconds: { type: 'integer', minimum: 60, maximum: 7 * 24 * 3600 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const body = req.body ?? {};
      const created = d.pairing.createInvitation(
        body.label ?? 'invitation',
        body.ttlSeconds === undefined ? undefined : body.ttlSeconds * 1000,
      );
      return { id: created.id, invitation: created.text, expiresAt: iso(created.expiresAt) };
    },
  );

  app.get(
    '/v1/invitations',
    { config: { roles: ADMIN }, schema: { summary: 'List invitations' } },
    async () => ({
      invitations: d.pairing.listInvitations().map((i) => ({
        id: i.id,
        label: i.label,
        createdAt: iso(i.createdAt),
        expiresAt: iso(i.expiresAt),
        usedAt: iso(i.usedAt),
        usedBy: i.usedBy,
        revokedAt: iso(i.revokedAt),
      })),
    }),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/invitations/:id',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Revoke an invitation',
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } },
          required: ['id'],
        },
      },
    },
    async (req) => {
      d.pairing.revokeInvitation(req.params.id);
      return { id: req.params.id, status: 'revoked' };
    },
  );

  app.post<{ Body: { invitation: string } }>(
    '/v1/invitations/accept',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Accept an invitation (pair)',
        body: {
          type: 'object',
          properties: { invitation: { type: 'string', minLength: 1, maxLength: 8192 } },
          required: ['invitation'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const nodeId = await d.links.acceptInvitation(req.body.invitation);
      return { nodeId, status: 'paired' };
    },
  );

  app.post(
    '/v1/keys/rotate',
    { config: { roles: ADMIN }, schema: { summary: 'Rotate the static key' } },
    async (req) => {
      await d.rotateStaticKey(req.principal.user);
      return { keyRecordSerial: d.self().identity.keyRecord.serial };
    },
  );

  // --- users and tokens ---

  app.get(
    '/v1/users',
    { config: { roles: ADMIN }, schema: { summary: 'List users' } },
    async () => ({
      users: d.users
        .list()
        .map((u) => ({ name: u.name, role: u.role, createdAt: iso(u.createdAt) })),
    }),
  );

  app.post<{ Body: { name: string; role: Role } }>(
    '/v1/users',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Create a user',
        body: {
          type: 'object',
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 64 },
            role: { type: 'string', enum: [...ROLES] },
          },
          required: ['name', 'role'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const u = d.users.add(req.body.name, req.body.role, req.principal.user);
      return { name: u.name, role: u.role, createdAt: iso(u.createdAt) };
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/users/:name',
    {
      config: { roles: ADMIN },
      schema: { summary: 'Remove a user and its tokens', params: userParam },
    },
    async (req) => {
      d.users.remove(req.params.name, req.principal.user);
      return { name: req.params.name, status: 'removed' };
    },
  );

  app.post<{ Params: { name: string }; Body: { label?: string; ttlSeconds?: number } | undefined }>(
    '/v1/users/:name/tokens',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Issue a token (shown once)',
        params: userParam,
        body: {
          type: 'object',
          properties: {
            label: { type: 'string', minLength: 1, maxLength: MAX_TOKEN_LABEL_BYTES },
            ttlSeconds: { type: 'integer', minimum: 60 },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const body = req.body ?? {};
      const issued = d.users.issueToken(
        req.params.name,
        body.label ?? 'token',
        body.ttlSeconds === undefined ? null : body.ttlSeconds * 1000,
        req.principal.user,
      );
      return { token: issued.token, ...tokenView(issued.info) };
    },
  );

  app.get<{ Querystring: { user?: string } }>(
    '/v1/tokens',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'List tokens (never the tokens themselves)',
        querystring: {
          type: 'object',
          properties: { user: { type: 'string', maxLength: 64 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => ({ tokens: d.users.tokens(req.query.user).map(tokenView) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/tokens/:id',
    {
      config: { roles: ADMIN },
      schema: {
        summary: 'Revoke a token',
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
          required: ['id'],
        },
      },
    },
    async (req) => {
      d.users.revokeToken(req.params.id, req.principal.user);
      return { id: req.params.id, status: 'revoked' };
    },
  );
}
