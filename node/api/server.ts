/**
 * The local HTTP API (docs/api.md), fastify on 127.0.0.1 by default. Every route has a JSON
 * schema and names the roles allowed to call it; every error leaves as
 * `{ error: { code, message, detail? } }` with the status from the error registry, never with a
 * stack trace. The OpenAPI document is built from the same route schemas, so it cannot drift.
 */
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLiaisonError, LiaisonError } from '../../protocol/index.ts';
import type { Logger } from '../log.ts';
import type { Principal, Role, Users } from '../users.ts';

/** Request bodies above this are refused with 413 before they are parsed. */
export const API_BODY_LIMIT_BYTES = 4 * 1024 * 1024 + 512 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
  }
  interface FastifyContextConfig {
    /** Roles allowed to call the route; every route must say. */
    roles?: readonly Role[];
  }
}

export const errorSchema = {
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

/** The error responses every route may give, for the OpenAPI document. */
export function responses(ok: object): Record<number, object> {
  const out: Record<number, object> = { 200: ok };
  for (const s of [400, 401, 403, 404, 409, 413, 500]) out[s] = errorSchema;
  return out;
}

export const ALL_ROLES: readonly Role[] = ['officer', 'auditor', 'admin'];

export function createServer(users: Users, log: Logger): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: API_BODY_LIMIT_BYTES,
    // No type coercion: {"name": 123} is a 400, not the user "123". Query parameters are strings
    // with patterns and converted by their route.
    ajv: { customOptions: { removeAdditional: false, allErrors: false, coerceTypes: false } },
    // A HEAD route would run the GET handler: for a message that is a consultation.
    exposeHeadRoutes: false,
    // Event streams never end on their own: closing the API must cut them, or a node with a
    // follower attached would never stop.
    forceCloseConnections: true,
  });
  const routes: {
    method: string;
    url: string;
    schema: Record<string, unknown>;
    roles: readonly Role[];
  }[] = [];

  app.addHook('onRoute', (r) => {
    const roles = r.config?.roles;
    if (roles === undefined || roles.length === 0)
      throw new Error(`route ${String(r.method)} ${r.url} names no roles`);
    for (const method of [r.method].flat())
      routes.push({
        method,
        url: r.url,
        schema: (r.schema ?? {}) as Record<string, unknown>,
        roles,
      });
  });

  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    const token =
      typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : null;
    const principal = token === null ? null : users.authenticate(token);
    if (principal === null) throw new LiaisonError('LIAISON_ERR_UNAUTHORIZED');
    req.principal = principal;
    const roles = req.routeOptions.config.roles;
    // Unknown routes have no config: they fall through to the 404 handler.
    if (roles !== undefined && !roles.includes(principal.role))
      throw new LiaisonError(
        'LIAISON_ERR_FORBIDDEN',
        `role ${principal.role} may not call this route`,
        {
          role: principal.role,
        },
      );
  });

  app.setErrorHandler(
    (err: FastifyError | LiaisonError, req: FastifyRequest, reply: FastifyReply) => {
      const e = toLiaisonError(err);
      if (e.status >= 500)
        log.error({ reqId: req.id, code: e.code, err: String(err) }, 'api error');
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

  app.get(
    '/v1/openapi.json',
    { config: { roles: ALL_ROLES }, schema: { summary: 'This document' } },
    async () => openApiDocument(routes),
  );
  return app;
}

function openApiDocument(
  routes: readonly {
    method: string;
    url: string;
    schema: Record<string, unknown>;
    roles: readonly Role[];
  }[],
): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const s = r.schema;
    const parameters: object[] = [];
    for (const [where, key] of [
      ['path', 'params'],
      ['query', 'querystring'],
    ] as const) {
      const p = s[key] as { properties?: Record<string, object>; required?: string[] } | undefined;
      for (const [name, schema] of Object.entries(p?.properties ?? {}))
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (p?.required ?? []).includes(name),
          schema,
        });
    }
    const op: Record<string, unknown> = {
      summary: s.summary ?? `${r.method} ${r.url}`,
      'x-liaison-roles': r.roles,
      security: [{ bearer: [] }],
      parameters,
      responses: Object.fromEntries(
        Object.entries(
          (s.response as Record<string, object> | undefined) ?? { 200: { type: 'object' } },
        ).map(([code, schema]) => [
          code,
          {
            description: code === '200' ? 'OK' : 'Error',
            content: { 'application/json': { schema } },
          },
        ]),
      ),
    };
    if (s.body !== undefined)
      op.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Liaison node local API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
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
    const params = first?.params as
      { missingProperty?: string; additionalProperty?: string } | undefined;
    const missing = params?.missingProperty ?? params?.additionalProperty;
    const field =
      first === undefined
        ? 'body'
        : `${f.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.')}${missing ? `.${missing}` : ''}`;
    return new LiaisonError('LIAISON_ERR_VALIDATION', `${field}: ${first?.message ?? 'invalid'}`, {
      field,
    });
  }
  if (f.statusCode !== undefined && f.statusCode < 500)
    return new LiaisonError('LIAISON_ERR_VALIDATION', f.message);
  return new LiaisonError('LIAISON_ERR_INTERNAL');
}
