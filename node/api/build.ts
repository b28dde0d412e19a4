/** Assembles the local API from its route modules (used by the composition root and tests). */
import type { FastifyInstance } from 'fastify';
import type { Delivery } from '../delivery.ts';
import type { EventLog } from '../events.ts';
import type { Logger } from '../log.ts';
import { adminRoutes } from './admin-routes.ts';
import { auditRoutes } from './audit-routes.ts';
import type { AuditDeps } from './audit-routes.ts';
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
  return app;
}
