/**
 * Messages (docs/api.md §Messages): send, inbox and outbox listings, content, status,
 * acknowledgement, and the event stream. Officers send, read and acknowledge; auditors and admins
 * see metadata and statuses, never content.
 */
import type { FastifyInstance } from 'fastify';
import {
  LiaisonError,
  MAX_AUTHOR_BYTES,
  MAX_BODY_BYTES,
  MAX_CASE_REF_BYTES,
  MAX_ENVELOPE_LIFETIME_MS,
  MAX_FORM_FIELD_NAME_BYTES,
  MAX_FORM_FIELD_VALUE_BYTES,
  MAX_FORM_FIELDS,
  MAX_FORM_ID_BYTES,
  MAX_LANGUAGE_TAG_BYTES,
  MAX_MAILBOX_BYTES,
  MAX_RECIPIENTS,
  MAX_SUBJECT_BYTES,
  PRIORITIES,
  HANDLING_CODES,
} from '../../protocol/index.ts';
import type { HandlingCode, Payload, Priority } from '../../protocol/index.ts';
import { DEFAULT_MESSAGE_TTL_MS } from '../delivery.ts';
import type { Delivery, MessageMeta } from '../delivery.ts';
import type { EventLog } from '../events.ts';
import type { Role } from '../users.ts';
import { ALL_ROLES, responses } from './server.ts';

const OFFICER: readonly Role[] = ['officer'];
/** Bytes of events queued for one SSE client before the node waits for it to drain. */
export const SSE_MAX_BUFFERED_BYTES = 256 * 1024;
/** A comment line every so often keeps proxies and idle timers from closing the stream. */
export const SSE_HEARTBEAT_MS = 15_000;
export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

function pageSize(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  const n = Number(limit);
  if (n > MAX_PAGE_SIZE)
    throw new LiaisonError(
      'LIAISON_ERR_VALIDATION',
      `querystring.limit: at most ${MAX_PAGE_SIZE}`,
      {
        field: 'querystring.limit',
      },
    );
  return n;
}

const messageIdParam = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^lm[a-z2-7]{26}$' } },
  required: ['id'],
  additionalProperties: false,
} as const;
const nodeIdPattern = '^ln[a-z2-7]{52}$';
/** Message IDs are unique per sender: ?sender= resolves the rare ID two senders used. */
const senderQuery = {
  type: 'object',
  properties: { sender: { type: 'string', pattern: '^ln[a-z2-7]{52}$' } },
  additionalProperties: false,
} as const;
const identPattern = '^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$';

const sendBody = {
  type: 'object',
  properties: {
    to: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_RECIPIENTS,
      items: {
        type: 'object',
        properties: {
          nodeId: { type: 'string', pattern: nodeIdPattern },
          mailbox: {
            type: 'string',
            minLength: 1,
            maxLength: MAX_MAILBOX_BYTES,
            pattern: identPattern,
          },
        },
        required: ['nodeId', 'mailbox'],
        additionalProperties: false,
      },
    },
    subject: { type: 'string', maxLength: MAX_SUBJECT_BYTES },
    body: { type: 'string', maxLength: MAX_BODY_BYTES },
    language: { type: 'string', minLength: 2, maxLength: MAX_LANGUAGE_TAG_BYTES },
    caseRef: { type: 'string', minLength: 1, maxLength: MAX_CASE_REF_BYTES },
    priority: { type: 'string', enum: Object.keys(PRIORITIES) },
    handling: { type: 'string', enum: Object.keys(HANDLING_CODES) },
    ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_ENVELOPE_LIFETIME_MS / 1000 },
    replyTo: { type: 'string', pattern: '^lm[a-z2-7]{26}$' },
    form: {
      type: 'object',
      properties: {
        formId: {
          type: 'string',
          minLength: 1,
          maxLength: MAX_FORM_ID_BYTES,
          pattern: identPattern,
        },
        formVersion: { type: 'integer', minimum: 1, maximum: 65535 },
        fields: {
          type: 'object',
          maxProperties: MAX_FORM_FIELDS,
          propertyNames: { maxLength: MAX_FORM_FIELD_NAME_BYTES, pattern: identPattern },
          additionalProperties: { type: 'string', maxLength: MAX_FORM_FIELD_VALUE_BYTES },
        },
      },
      required: ['formId', 'formVersion', 'fields'],
      additionalProperties: false,
    },
  },
  required: ['to', 'subject', 'body'],
  additionalProperties: false,
} as const;

interface SendBody {
  to: { nodeId: string; mailbox: string }[];
  subject: string;
  body: string;
  language?: string;
  caseRef?: string;
  priority?: Priority;
  handling?: HandlingCode;
  ttlSeconds?: number;
  replyTo?: string;
  form?: { formId: string; formVersion: number; fields: Record<string, string> };
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export function metaView(m: MessageMeta) {
  return {
    messageId: m.messageId,
    direction: m.direction,
    sender: m.sender,
    kind: m.kind,
    priority: m.priority,
    handling: m.handling,
    author: m.author,
    createdAt: iso(m.createdAt),
    expiresAt: iso(m.expiresAt),
    replyTo: m.ref,
    envelopeHash: m.envelopeHash,
    logIndex: m.logIndex,
    storedAt: iso(m.storedAt),
    mailbox: m.mailbox,
    sequence: m.sequence,
    gap: m.gap,
    readAt: iso(m.readAt),
    readBy: m.readBy,
    acknowledgedAt: iso(m.acknowledgedAt),
    acknowledgedBy: m.acknowledgedBy,
  };
}

function payloadView(p: Payload) {
  return {
    subject: p.subject,
    body: p.body,
    language: p.language,
    caseRef: p.caseRef,
    form:
      p.form === null
        ? null
        : {
            formId: p.form.formId,
            formVersion: p.form.formVersion,
            fields: Object.fromEntries(p.form.fields.map((f) => [f.name, f.value])),
          },
    attachments: p.attachments.map((a) => ({ name: a.name, mediaType: a.mediaType, size: a.size })),
  };
}

export function messageRoutes(
  app: FastifyInstance,
  delivery: Delivery,
  events: EventLog,
  /** Re-checks a stream's token: a revoked or expired token ends its stream too. */
  stillValid: (token: string) => boolean,
): void {
  app.post<{ Body: SendBody }>(
    '/v1/messages',
    { config: { roles: OFFICER }, schema: { summary: 'Send a message', body: sendBody } },
    async (req) => {
      const b = req.body;
      if (Buffer.byteLength(req.principal.user) > MAX_AUTHOR_BYTES)
        throw new LiaisonError('LIAISON_ERR_VALIDATION', 'user name too long to author', {
          field: 'author',
        });
      const submitted = await delivery.submit({
        author: req.principal.user,
        recipients: b.to,
        kind: 'message',
        priority: b.priority ?? 'routine',
        handling: b.handling ?? 'H0',
        ttlMs: b.ttlSeconds === undefined ? DEFAULT_MESSAGE_TTL_MS : b.ttlSeconds * 1000,
        ref: b.replyTo ?? null,
        payload: {
          subject: b.subject,
          body: b.body,
          language: b.language ?? null,
          caseRef: b.caseRef ?? null,
          form:
            b.form === undefined
              ? null
              : {
                  formId: b.form.formId,
                  formVersion: b.form.formVersion,
                  fields: Object.entries(b.form.fields).map(([name, value]) => ({ name, value })),
                },
          attachments: [],
        },
      });
      return {
        messageId: submitted.messageId,
        createdAt: iso(submitted.createdAt),
        expiresAt: iso(submitted.expiresAt),
        recipients: submitted.recipients.map((r) => ({ ...r, status: 'queued' })),
      };
    },
  );

  const listQuery = {
    type: 'object',
    properties: {
      sender: { type: 'string', pattern: nodeIdPattern },
      mailbox: { type: 'string', maxLength: MAX_MAILBOX_BYTES },
      priority: { type: 'string', enum: Object.keys(PRIORITIES) },
      kind: { type: 'string', enum: ['message', 'ack', 'case-event'] },
      unread: { type: 'string', enum: ['true', 'false'] },
      before: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
      limit: { type: 'string', pattern: '^[1-9][0-9]{0,2}$' },
    },
    additionalProperties: false,
  } as const;
  type ListQuery = {
    sender?: string;
    mailbox?: string;
    priority?: Priority;
    kind?: 'message' | 'ack' | 'case-event';
    unread?: 'true' | 'false';
    before?: string;
    limit?: string;
  };
  for (const [url, direction] of [
    ['/v1/inbox', 'in'],
    ['/v1/outbox', 'out'],
  ] as const) {
    app.get<{ Querystring: ListQuery }>(
      url,
      {
        config: { roles: ALL_ROLES },
        schema: {
          summary: `${direction === 'in' ? 'Received' : 'Sent'} messages, newest first (metadata)`,
          querystring: listQuery,
        },
      },
      async (req) => {
        const q = req.query;
        const page = delivery.list({
          direction,
          ...(q.sender === undefined ? {} : { sender: q.sender }),
          ...(q.mailbox === undefined ? {} : { mailbox: q.mailbox }),
          ...(q.priority === undefined ? {} : { priority: q.priority }),
          ...(q.kind === undefined
            ? direction === 'in'
              ? { kind: 'message' as const }
              : {}
            : { kind: q.kind }),
          ...(q.unread === undefined ? {} : { unread: q.unread === 'true' }),
          ...(q.before === undefined ? {} : { before: Number(q.before) }),
          limit: pageSize(q.limit),
        });
        return {
          messages: page.messages.map((m) => ({ ...metaView(m), cursor: m.rowId })),
          next: page.next,
        };
      },
    );
  }

  app.get<{ Params: { id: string }; Querystring: { sender?: string } }>(
    '/v1/messages/:id',
    {
      config: { roles: OFFICER },
      schema: {
        summary: 'A message with its decrypted content (recorded as a consultation)',
        params: messageIdParam,
        querystring: senderQuery,
        response: responses({ type: 'object', additionalProperties: true }),
      },
    },
    async (req) => {
      const { meta, payload } = delivery.read(req.params.id, req.principal.user, req.query.sender);
      return { ...metaView(meta), content: payloadView(payload) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { sender?: string } }>(
    '/v1/messages/:id/meta',
    {
      config: { roles: ALL_ROLES },
      schema: {
        summary: 'A message without its content',
        params: messageIdParam,
        querystring: senderQuery,
      },
    },
    async (req) => {
      const m = delivery.meta(req.params.id, undefined, req.query.sender);
      if (m === null)
        throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no message ${req.params.id}`, {
          field: 'id',
        });
      return metaView(m);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/messages/:id/status',
    {
      config: { roles: ALL_ROLES },
      schema: {
        summary: 'Per-recipient delivery status of a sent message',
        params: messageIdParam,
      },
    },
    async (req) => {
      const s = delivery.status(req.params.id);
      return {
        ...metaView(s.meta),
        recipients: s.recipients.map((r) => ({
          nodeId: r.nodeId,
          mailbox: r.mailbox,
          sequence: r.sequence,
          status: r.status,
          reason: r.reason,
          updatedAt: iso(r.updatedAt),
          sentAt: iso(r.sentAt),
          deliveredAt: iso(r.deliveredAt),
          acknowledgedAt: iso(r.acknowledgedAt),
          remoteLogIndex: r.remoteLogIndex,
        })),
      };
    },
  );

  app.post<{ Params: { id: string }; Querystring: { sender?: string } }>(
    '/v1/messages/:id/ack',
    {
      config: { roles: OFFICER },
      schema: {
        summary: 'Acknowledge a received message',
        params: messageIdParam,
        querystring: senderQuery,
      },
    },
    async (req) => {
      const ack = await delivery.acknowledge(req.params.id, req.principal.user, req.query.sender);
      return {
        messageId: req.params.id,
        acknowledgedBy: req.principal.user,
        ackMessageId: ack.messageId,
      };
    },
  );

  app.get<{ Querystring: { after?: string } }>(
    '/v1/events',
    {
      config: { roles: ALL_ROLES },
      schema: {
        summary: 'Server-sent events; resumes after Last-Event-ID (or ?after=)',
        querystring: {
          type: 'object',
          properties: { after: { type: 'string', pattern: '^[0-9]{1,15}$' } },
          additionalProperties: false,
        },
      },
    },
    (req, reply) => {
      const header = req.headers['last-event-id'];
      const fromHeader =
        typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : null;
      let last =
        fromHeader ??
        (req.query.after === undefined ? null : Number(req.query.after)) ??
        events.lastId();
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': liaison event stream\n\n');
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      // Events older than the retention window are gone: say so rather than skip them silently.
      const first = events.firstId();
      if (first !== null && last < first - 1)
        res.write(
          `event: events.lost\ndata: ${JSON.stringify({ from: last + 1, to: first - 1 })}\n\n`,
        );
      let closed = false;
      const send = (): void => {
        try {
          pump();
        } catch {
          // A database error (e.g. busy) must not escape a timer: end this stream, the client
          // resumes from its last event ID.
          res.destroy();
        }
      };
      const pump = (): void => {
        if (closed) return;
        if (!stillValid(token)) {
          res.end();
          return;
        }
        for (;;) {
          // Paced by the client: past the bound, wait for 'drain'. Events wait in the database,
          // not in memory, so a client that reads slowly (or not at all) costs nothing more.
          if (draining) return;
          if (res.writableLength > SSE_MAX_BUFFERED_BYTES) {
            draining = true;
            res.once('drain', () => {
              draining = false;
              send();
            });
            return;
          }
          const batch = events.afterText(last);
          if (batch.length === 0) return;
          // One write per batch. The data is sent as stored, with the time appended as its last
          // member: the same text JSON.stringify({ ...data, at }) would give, without parsing.
          let chunk = '';
          for (const e of batch) {
            const at = `"at":"${new Date(e.at).toISOString()}"}`;
            const data = e.data === '{}' ? `{${at}` : `${e.data.slice(0, -1)},${at}`;
            chunk += `id: ${e.id}\nevent: ${e.type}\ndata: ${data}\n\n`;
          }
          res.write(chunk);
          last = batch.at(-1)!.id;
        }
      };
      let draining = false;
      const unsubscribe = events.subscribe(send);
      const heartbeat = setInterval(() => {
        try {
          if (stillValid(token)) res.write(': keepalive\n\n');
          else res.end();
        } catch {
          res.destroy();
        }
      }, SSE_HEARTBEAT_MS);
      heartbeat.unref();
      const cleanup = (): void => {
        closed = true;
        unsubscribe();
        clearInterval(heartbeat);
      };
      res.on('close', cleanup);
      res.on('error', cleanup);
      send();
    },
  );
}
