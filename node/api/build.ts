/** Assembles the local API from its route modules (used by the composition root and tests). */
import type { FastifyInstance } from 'fastify';
import type { Delivery } from '../delivery.ts';
import type { EventLog } from '../events.ts';
import type { Logger } from '../log.ts';
import { adminRoutes } from './admin-routes.ts';
import { auditRoutes } from './audit-routes.ts';
import type { AuditDeps } from './audit-routes.ts';
import { MAX_AUDIT_TEXT_BYTES } from '../../protocol/index.ts';
import type { AdminDeps } from './admin-routes.ts';
import { messageRoutes } from './message-routes.ts';
import { createServer } from './server.ts';

export interface ApiDeps extends AdminDeps {
  readonly delivery: Delivery;
  readonly events: EventLog;
  readonly log: Logger;
  readonly audit: AuditDeps;
}

export function buildApi(d: ApiDeps): FastifyInstance {
  const app = createServer(d.users, d.log);
  adminRoutes(app, d);
  messageRoutes(app, d.delivery, d.events, (token) => d.users.authenticate(token) !== null);
  auditRoutes(app, d.audit);
  recordAuditorReads(app, d.audit);
  return app;
}

/** Routes whose answers are message metadata: an auditor's call to one is an audit entry. */
const METADATA_ROUTES: ReadonlySet<string> = new Set([
  '/v1/inbox',
  '/v1/outbox',
  '/v1/messages/:id/meta',
  '/v1/messages/:id/status',
  '/v1/events',
]);

/**
 * Logs every metadata read by an auditor (`metadata-consulted`) before the handler runs: the
 * auditor's reads of the log itself are logged by the audit routes, and reads of content only
 * happen through disclosures, which are logged too. Officers' and admins' metadata reads are
 * routine operation and are not logged.
 */
function recordAuditorReads(app: FastifyInstance, d: AuditDeps): void {
  app.addHook('preHandler', async (req) => {
    if (req.principal?.role !== 'auditor' || !METADATA_ROUTES.has(req.routeOptions.url ?? ''))
      return;
    const request = truncateUtf8(`${req.method} ${req.url}`, MAX_AUDIT_TEXT_BYTES);
    d.store.transaction(() =>
      d.audit.append('metadata-consulted', d.clock.now(), { user: req.principal.user, request }),
    );
  });
}

/** The longest prefix of `text` within `max` UTF-8 bytes, never splitting a character. */
function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}
