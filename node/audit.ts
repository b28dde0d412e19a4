/**
 * The audit subsystem assembled (docs/audit.md): checkpoints, witnessing, export and disclosures
 * over one audit log. The composition root and the in-process API tests build it the same way.
 */
import { AuditExport } from './audit-export.ts';
import type { AuditLog } from './audit-log.ts';
import { Checkpoints } from './checkpoints.ts';
import type { Clock } from './clock.ts';
import type { Delivery, LinkPort, PeerPort } from './delivery.ts';
import { Disclosures } from './disclosures.ts';
import type { EventLog } from './events.ts';
import type { Store } from './store.ts';
import type { Users } from './users.ts';
import { Witnessing } from './witnessing.ts';
import type { WitnessingLogger } from './witnessing.ts';
import type { LocalIdentity } from '../protocol/index.ts';

export interface AuditSubsystemDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly events: EventLog;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
  readonly peers: PeerPort;
  readonly links: LinkPort & { connectedPeers(): readonly string[] };
  readonly delivery: Delivery;
  readonly users: Users;
  readonly log: WitnessingLogger;
}

export interface AuditSubsystem {
  readonly checkpoints: Checkpoints;
  readonly witnessing: Witnessing;
  readonly auditExport: AuditExport;
  readonly disclosures: Disclosures;
}

export function createAuditSubsystem(d: AuditSubsystemDeps): AuditSubsystem {
  const checkpoints = new Checkpoints(d);
  const witnessing = new Witnessing({ ...d, checkpoints });
  const auditExport = new AuditExport({
    ...d,
    checkpoints,
    witnessing,
    peers: () => d.store.peerIdentities(),
    connectedPeers: () => d.links.connectedPeers(),
  });
  const disclosures = new Disclosures({
    ...d,
    peerKey: (id) => d.store.peerIdentities().find((p) => p.nodeId === id)?.identityKey ?? null,
  });
  return { checkpoints, witnessing, auditExport, disclosures };
}
