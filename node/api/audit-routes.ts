/**
 * The audit log (docs/api.md §Audit): checkpoints, entries, proofs, export, witnessing records
 * and disclosures. Auditors and admins read the log; officers do not. Nobody reads message
 * content here except an auditor fetching a disclosure an admin made to them by name. Reading
 * entries, exporting, disclosing and fetching a disclosure are themselves audit entries.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import {
  auditFieldsToJson,
  decodeAuditEntry,
  formatVerifierKey,
  LiaisonError,
  MAX_AUDIT_TEXT_BYTES,
  nodeIdFromText,
  NOTE_KEY_TYPE_COSIGNATURE_V1,
  NOTE_KEY_TYPE_ED25519,
  serializeBundleChunks,
  toHex,
} from '../../protocol/index.ts';
import type { LocalIdentity } from '../../protocol/index.ts';
import type { AuditExport } from '../audit-export.ts';
import type { AuditLog } from '../audit-log.ts';
import type { Checkpoints, StoredCheckpoint } from '../checkpoints.ts';
import type { Clock } from '../clock.ts';
import type { Disclosure, Disclosures } from '../disclosures.ts';
import type { Store } from '../store.ts';
import type { Role } from '../users.ts';
import type { Witnessing } from '../witnessing.ts';
import { responses } from './server.ts';

export interface AuditDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly checkpoints: Checkpoints;
  readonly witnessing: Witnessing;
  readonly auditExport: AuditExport;
  readonly disclosures: Disclosures;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
  /** Peers with a link up: the witnesses a new checkpoint is sent to at once. */
  readonly connectedPeers: () => readonly string[];
}

const READERS: readonly Role[] = ['auditor', 'admin'];
const ADMIN: readonly Role[] = ['admin'];
const AUDITOR: readonly Role[] = ['auditor'];
/** Entries returned by one GET /v1/audit/entries. */
export const MAX_AUDIT_PAGE = 1_000;

const anyObject = { type: 'object', additionalProperties: true } as const;
const uint = { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' } as const;
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const iso = (t: number): string => new Date(t).toISOString();
/** A time in seconds as ISO 8601; null if out of Date's range (never thrown at a client). */
const isoSeconds = (t: number): string | null =>
  Number.isFinite(t) && Math.abs(t) <= 8.64e12 ? new Date(t * 1000).toISOString() : null;

function num(v: string | undefined, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n))
    throw new LiaisonError('LIAISON_ERR_VALIDATION', `${field}: too large`, { field });
  return n;
}

function outOfRange(field: string, why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_VALIDATION', `querystring.${field}: ${why}`, {
    field: `querystring.${field}`,
  });
}

const disclosureView = (d: Disclosure) => ({
  id: d.id,
  sender: d.sender,
  messageId: d.messageId,
  auditor: d.auditor,
  disclosedBy: d.disclosedBy,
  justification: d.justification,
  createdAt: iso(d.createdAt),
  logIndex: d.logIndex,
});

export function auditRoutes(app: FastifyInstance, d: AuditDeps): void {
  const keys = () => {
    const me = d.identity();
    const name = d.checkpoints.origin;
    const pub = me.signingKey.publicKey.bytes;
    return {
      origin: name,
      verifierKey: formatVerifierKey(name, NOTE_KEY_TYPE_ED25519, pub),
      cosignerKey: formatVerifierKey(name, NOTE_KEY_TYPE_COSIGNATURE_V1, pub),
    };
  };
  const checkpointView = (c: StoredCheckpoint) => ({
    size: c.size,
    rootHash: b64(c.rootHash),
    issuedAt: iso(c.issuedAt),
    note: d.checkpoints.cosignedNote(c),
    cosignatures: d.checkpoints.cosignatures(c.size).map((s) => ({
      witness: s.witness,
      cosignedAt: isoSeconds(s.cosignedAt),
    })),
  });

  app.get(
    '/v1/audit',
    {
      config: { roles: READERS },
      schema: { summary: 'The log: size, keys to verify it with, newest checkpoint' },
    },
    async () => {
      const latest = d.checkpoints.latest();
      return {
        ...keys(),
        size: d.audit.size(),
        checkpoint: latest === null ? null : checkpointView(latest),
      };
    },
  );

  app.post(
    '/v1/audit/checkpoints',
    {
      config: { roles: READERS },
      schema: { summary: 'Sign a checkpoint of the log as it is now (and send it to witnesses)' },
    },
    async () => {
      const c = d.checkpoints.issue(true);
      if (c === null) throw new LiaisonError('LIAISON_ERR_NOT_FOUND', 'the log is empty');
      d.witnessing.pushAll(d.connectedPeers());
      return checkpointView(c);
    },
  );

  app.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/audit/checkpoints',
    {
      config: { roles: READERS },
      schema: {
        summary: `Checkpoints with sizes in [from, to], with their cosignatures (the newest ${MAX_AUDIT_PAGE})`,
        querystring: {
          type: 'object',
          properties: { from: uint, to: uint },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const from = num(req.query.from, 'from', 0);
      const to = num(req.query.to, 'to', Number.MAX_SAFE_INTEGER);
      return {
        checkpoints: d.checkpoints.newestBetween(from, to, MAX_AUDIT_PAGE).map(checkpointView),
      };
    },
  );

  app.get<{ Querystring: { from?: string; limit?: string } }>(
    '/v1/audit/entries',
    {
      config: { roles: READERS },
      schema: {
        summary: 'Log entries from an index, decoded (recorded as a consultation of the log)',
        querystring: {
          type: 'object',
          properties: { from: uint, limit: uint },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const from = num(req.query.from, 'from', 0);
      const limit = num(req.query.limit, 'limit', 100);
      if (limit < 1 || limit > MAX_AUDIT_PAGE) throw outOfRange('limit', `1 to ${MAX_AUDIT_PAGE}`);
      const size = d.audit.size();
      if (from > size) throw outOfRange('from', `the log has ${size} entries`);
      const rows = d.audit.entries(from, limit);
      const to = from + rows.length;
      d.store.transaction(() =>
        d.audit.append('audit-consulted', d.clock.now(), { user: req.principal.user, from, to }),
      );
      return {
        size,
        from,
        to,
        entries: rows.map((r) => {
          const e = decodeAuditEntry(r.entry);
          return {
            index: r.index,
            kind: e.kind,
            time: iso(e.time),
            fields: auditFieldsToJson(e),
            leafHash: toHex(r.leafHash),
            entry: b64(r.entry),
          };
        }),
      };
    },
  );

  app.get<{ Querystring: { index: string; size?: string } }>(
    '/v1/audit/proofs/inclusion',
    {
      config: { roles: READERS },
      schema: {
        summary: 'RFC 6962 inclusion proof of one entry in the tree of a given size',
        querystring: {
          type: 'object',
          properties: { index: uint, size: uint },
          required: ['index'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const size = num(req.query.size, 'size', d.audit.size());
      const index = num(req.query.index, 'index', 0);
      if (size > d.audit.size()) throw outOfRange('size', 'beyond the log');
      if (index >= size) throw outOfRange('index', 'not below size');
      return {
        index,
        size,
        leafHash: b64(d.audit.read(0, index)),
        rootHash: b64(d.audit.treeHash(size)),
        proof: d.audit.inclusionProof(index, size).map(b64),
      };
    },
  );

  app.get<{ Querystring: { from: string; to?: string } }>(
    '/v1/audit/proofs/consistency',
    {
      config: { roles: READERS },
      schema: {
        summary: 'RFC 6962 consistency proof between two tree sizes',
        querystring: {
          type: 'object',
          properties: { from: uint, to: uint },
          required: ['from'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const to = num(req.query.to, 'to', d.audit.size());
      const from = num(req.query.from, 'from', 0);
      if (to > d.audit.size()) throw outOfRange('to', 'beyond the log');
      if (from > to) throw outOfRange('from', 'after to');
      return {
        from,
        to,
        fromRoot: b64(d.audit.treeHash(from)),
        toRoot: b64(d.audit.treeHash(to)),
        proof: d.audit.consistencyProof(from, to).map(b64),
      };
    },
  );

  app.post<{ Body: { from?: number } }>(
    '/v1/audit/export',
    {
      config: { roles: READERS },
      schema: {
        summary:
          'Export a verifiable bundle from an index to now (recorded; waits briefly for cosignatures)',
        body: {
          type: 'object',
          properties: { from: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const from = req.body?.from ?? 0;
      if (from > d.audit.size())
        throw new LiaisonError('LIAISON_ERR_VALIDATION', 'body.from: beyond the log', {
          field: 'body.from',
        });
      const bundle = await d.auditExport.export(from, req.principal.user);
      // Streamed in pieces: a large bundle is never one string, and the loop keeps turning.
      return reply.type('application/json').send(Readable.from(serializeBundleChunks(bundle)));
    },
  );

  app.get(
    '/v1/audit/witnessed',
    {
      config: { roles: READERS },
      schema: { summary: "Peers' checkpoints this node holds and has cosigned as their witness" },
    },
    async () => ({
      witnessed: d.witnessing.allHeld().map((w) => ({
        peer: w.peer,
        size: w.size,
        rootHash: b64(w.rootHash),
        note: w.note,
        updatedAt: iso(w.updatedAt),
      })),
    }),
  );

  app.get(
    '/v1/audit/evidence',
    {
      config: { roles: READERS },
      schema: { summary: 'Equivocation evidence: contradicting checkpoints received from peers' },
    },
    async () => ({
      evidence: d.witnessing.evidence().map((e) => ({
        id: e.id,
        peer: e.peer,
        finding: e.finding,
        detectedAt: iso(e.detectedAt),
        heldNote: e.heldNote,
        presentedNote: e.presentedNote,
        proof: e.proof.map(b64),
      })),
    }),
  );

  app.post<{
    Body: { messageId: string; sender?: string; auditor: string; justification: string };
  }>(
    '/v1/audit/disclosures',
    {
      config: { roles: ADMIN },
      schema: {
        summary: "Disclose one message's content key to an auditor, with a justification",
        body: {
          type: 'object',
          properties: {
            messageId: { type: 'string', pattern: '^lm[a-z2-7]{26}$' },
            sender: { type: 'string', pattern: '^ln[a-z2-7]{52}$' },
            auditor: { type: 'string', minLength: 1, maxLength: 64 },
            justification: { type: 'string', minLength: 1, maxLength: MAX_AUDIT_TEXT_BYTES },
          },
          required: ['messageId', 'auditor', 'justification'],
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      if (req.body.sender !== undefined) nodeIdFromText(req.body.sender);
      const created = d.disclosures.create({
        messageId: req.body.messageId,
        ...(req.body.sender === undefined ? {} : { sender: req.body.sender }),
        auditor: req.body.auditor,
        justification: req.body.justification,
        by: req.principal.user,
      });
      return disclosureView(created);
    },
  );

  app.get(
    '/v1/audit/disclosures',
    {
      config: { roles: READERS },
      schema: { summary: 'Disclosures: all of them for an admin, your own for an auditor' },
    },
    async (req) => ({
      disclosures: d.disclosures
        .list(req.principal.role === 'admin' ? undefined : req.principal.user)
        .map(disclosureView),
    }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/audit/disclosures/:id',
    {
      config: { roles: AUDITOR },
      schema: {
        summary:
          'A disclosure made to you: envelope, content key, sender key (recorded as a consultation)',
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
          required: ['id'],
          additionalProperties: false,
        },
        response: responses(anyObject),
      },
    },
    async (req) => d.disclosures.open(req.params.id, req.principal.user),
  );
}
