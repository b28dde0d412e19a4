/**
 * The local HTTP API (docs/api.md), fastify on 127.0.0.1 by default. Every route has a JSON
 * schema; every error leaves as `{ error: { code, message, detail? } }` with the status from the
 * error registry, and never with a stack trace. Authentication: a bearer token, compared by hash
 * in constant time. This routes are the operator's (admin) routes; users, roles and the
 * officer and auditor routes come with delivery.
 */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  blake2b256,
  constantTimeEqual,
  fingerprint,
  fromHex,
  isLiaisonError,
  LiaisonError,
  nodeIdToText,
  toHex,
  utf8,
} from '../protocol/index.ts';
import type { Pairing } from './pairing.ts';
import type { LinkManager } from './link/link-manager.ts';
import type { LinkSelf } from './link/handshake.ts';
import type { Logger } from './log.ts';

/** Request bodies above this are refused with 413 before they are parsed. */
export const API_BODY_LIMIT_BYTES = 64 * 1024;
export const API_TOKEN_PREFIX = 'lt_';

export interface ApiDeps {
  readonly self: () => LinkSelf;
  readonly pairing: Pairing;
  readonly links: LinkManager;
  readonly tokenHash: Uint8Array;
  readonly peerPort: () => number;
  readonly log: Logger;
  readonly rotateStaticKey: () => Promise<void>;
}

/** Hash under which API tokens are stored and compared. */
export function hashToken(token: string): Uint8Array {
  return blake2b256(utf8(`liaison/v1/api-token:${token}`));
}

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        detail: { type: 'object', additionalProperties: true },
      },
      required: ['code', 'message'],
    },
  },
} as const;

const nodeIdParam = {
  type: 'object',
  properties: { nodeId: { type: 'string', pattern: '^ln[a-z2-7]{52}$' } },
  required: ['nodeId'],
  additionalProperties: false,
} as const;

export function buildApi(d: ApiDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: API_BODY_LIMIT_BYTES,
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  });

  app.addHook('onRequest', async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    const token =
      typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : null;
    if (token === null || !constantTimeEqual(hashToken(token), d.tokenHash))
      throw new LiaisonError('LIAISON_ERR_UNAUTHORIZED');
  });

  app.setErrorHandler(
    (err: FastifyError | LiaisonError, req: FastifyRequest, reply: FastifyReply) => {
      const e = toLiaisonError(err);
      if (e.status >= 500)
        d.log.error({ reqId: req.id, code: e.code, err: String(err) }, 'api error');
      void reply.status(e.status).send({
        error: {
          code: e.code,
          message: e.message,
          ...(e.detail === undefined ? {} : { detail: e.detail }),
        },
      });
    },
  );
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    void reply.status(404).send({
      error: {
        code: 'LIAISON_ERR_NOT_FOUND',
        message: `no route ${req.method} ${req.url.split('?')[0]}`,
      },
    });
  });

  const responses = (ok: object) => ({
    200: ok,
    400: errorSchema,
    401: errorSchema,
    404: errorSchema,
    409: errorSchema,
    413: errorSchema,
    500: errorSchema,
  });

  app.get(
    '/v1/node',
    { schema: { response: responses({ type: 'object', additionalProperties: true }) } },
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
    '/v1/peers',
    { schema: { response: responses({ type: 'object', additionalProperties: true }) } },
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
          pairedAt: new Date(p.pairedAt).toISOString(),
          lastSeen: p.lastSeen === null ? null : new Date(p.lastSeen).toISOString(),
          keyRecordSerial: p.keyRecordSerial,
        })),
      };
    },
  );

  app.delete<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId',
    { schema: { params: nodeIdParam } },
    async (req) => {
      d.pairing.unpair(req.params.nodeId);
      d.links.disconnect(req.params.nodeId, 'UNPAIRED');
      return { nodeId: req.params.nodeId, status: 'unpaired' };
    },
  );

  app.post<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId/block',
    { schema: { params: nodeIdParam } },
    async (req) => {
      d.pairing.block(req.params.nodeId);
      d.links.disconnect(req.params.nodeId, 'LIAISON_ERR_PEER_BLOCKED');
      return { nodeId: req.params.nodeId, status: 'blocked' };
    },
  );

  app.post<{ Params: { nodeId: string } }>(
    '/v1/peers/:nodeId/unblock',
    { schema: { params: nodeIdParam } },
    async (req) => {
      d.pairing.unblock(req.params.nodeId);
      d.links.peerChanged(req.params.nodeId);
      return { nodeId: req.params.nodeId, status: 'paired' };
    },
  );

  app.post<{ Body: { label?: string; ttlSeconds?: number } }>(
    '/v1/invitations',
    {
      schema: {
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
      return {
        id: created.id,
        invitation: created.text,
        expiresAt: new Date(created.expiresAt).toISOString(),
      };
    },
  );

  app.get('/v1/invitations', async () => ({
    invitations: d.pairing.listInvitations().map((i) => ({
      id: i.id,
      label: i.label,
      createdAt: new Date(i.createdAt).toISOString(),
      expiresAt: new Date(i.expiresAt).toISOString(),
      usedAt: i.usedAt === null ? null : new Date(i.usedAt).toISOString(),
      usedBy: i.usedBy,
      revokedAt: i.revokedAt === null ? null : new Date(i.revokedAt).toISOString(),
    })),
  }));

  app.delete<{ Params: { id: string } }>(
    '/v1/invitations/:id',
    {
      schema: {
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
      schema: {
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

  app.post('/v1/keys/rotate', async () => {
    await d.rotateStaticKey();
    return { keyRecordSerial: d.self().identity.keyRecord.serial };
  });

  return app;
}

function toLiaisonError(err: FastifyError | LiaisonError): LiaisonError {
  if (isLiaisonError(err)) return err;
  const f = err as FastifyError;
  if (f.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new LiaisonError('LIAISON_ERR_BODY_TOO_LARGE', `limit ${API_BODY_LIMIT_BYTES} bytes`, {
      limit: API_BODY_LIMIT_BYTES,
    });
  if (f.validation !== undefined) {
    const first = f.validation[0];
    const field =
      first === undefined
        ? 'body'
        : `${f.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.')}${(first.params as { missingProperty?: string }).missingProperty ? `.${(first.params as { missingProperty: string }).missingProperty}` : ''}`;
    return new LiaisonError('LIAISON_ERR_VALIDATION', `${field}: ${first?.message ?? 'invalid'}`, {
      field,
    });
  }
  if (f.statusCode !== undefined && f.statusCode < 500)
    return new LiaisonError('LIAISON_ERR_VALIDATION', f.message);
  return new LiaisonError('LIAISON_ERR_INTERNAL');
}

/** Parses a hex token hash stored in the database. */
export function tokenHashFromHex(hex: string): Uint8Array {
  return fromHex(hex, 'tokenHash');
}
