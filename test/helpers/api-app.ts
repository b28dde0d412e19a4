/**
 * The node's local API composed in-process over an in-memory store, for fastify inject() tests:
 * real users, tokens, audit log, events and delivery; links that are never up.
 */
import type { FastifyInstance } from 'fastify';
import { createLocalIdentity, randomBytes } from '../../protocol/index.ts';
import type { LocalIdentity } from '../../protocol/index.ts';
import { buildApi } from '../../node/api/build.ts';
import { AuditLog } from '../../node/audit-log.ts';
import { createAuditSubsystem } from '../../node/audit.ts';
import type { AuditSubsystem } from '../../node/audit.ts';
import { ManualClock } from '../../node/clock.ts';
import { Delivery } from '../../node/delivery.ts';
import { EventLog } from '../../node/events.ts';
import { LinkManager } from '../../node/link/link-manager.ts';
import type { LinkSelf } from '../../node/link/handshake.ts';
import { createLogger } from '../../node/log.ts';
import { Pairing } from '../../node/pairing.ts';
import { Store } from '../../node/store.ts';
import { hashToken, Users } from '../../node/users.ts';
import type { Role } from '../../node/users.ts';

export interface ApiApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly users: Users;
  readonly audit: AuditLog;
  readonly delivery: Delivery;
  readonly auditing: AuditSubsystem;
  readonly identity: LocalIdentity;
  readonly clock: ManualClock;
  /** Bearer headers of a fresh user with `role`. */
  tokenFor(role: Role, name?: string): Promise<{ authorization: string }>;
  close(): Promise<void>;
}

export async function apiApp(): Promise<ApiApp> {
  const clock = new ManualClock(1_767_225_600_000);
  const identity = createLocalIdentity(randomBytes(32), randomBytes(32), clock.now());
  const self: LinkSelf = {
    identity,
    rotations: [],
    name: 'Test authority',
    address: 'ws://127.0.0.1:9',
  };
  const store = Store.open(':memory:', clock);
  const audit = new AuditLog(store.database);
  const events = new EventLog(store.database, clock);
  const users = new Users(store, audit, clock);
  const pairing = new Pairing(store, clock, () => self);
  const log = createLogger('silent');
  const links = new LinkManager({
    self: () => self,
    directory: pairing,
    clock,
    log: { info: () => undefined, warn: () => undefined },
    listen: { host: '127.0.0.1', port: 0 },
  });
  const delivery = new Delivery({
    store,
    audit,
    events,
    clock,
    identity: () => identity,
    peers: pairing,
    links: { send: () => false, isUp: () => false, close: () => undefined },
    log: { info: () => undefined, warn: () => undefined },
  });
  const auditing = createAuditSubsystem({
    store,
    audit,
    events,
    clock,
    identity: () => identity,
    peers: pairing,
    links: {
      send: () => false,
      isUp: () => false,
      close: () => undefined,
      connectedPeers: () => [],
    },
    delivery,
    users,
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const app = buildApi({
    audit: { store, audit, clock, identity: () => identity, connectedPeers: () => [], ...auditing },
    self: () => self,
    pairing,
    links,
    users,
    peerPort: () => 9,
    rotateStaticKey: async () => undefined,
    delivery,
    events,
    log,
  });
  let n = 0;
  return {
    app,
    auditing,
    store,
    users,
    audit,
    delivery,
    identity,
    clock,
    async tokenFor(role, name) {
      const user = name ?? `${role}-${++n}`;
      if (users.get(user) === null) users.add(user, role, 'test');
      const { token } = users.issueToken(user, 'test', null, 'test');
      return { authorization: `Bearer ${token}` };
    },
    async close() {
      await app.close();
      delivery.stop();
      store.close();
    },
  };
}

export { hashToken };
