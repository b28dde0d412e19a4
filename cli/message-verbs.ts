/**
 * Verbs for messages, users and tokens, against a running node's API (docs/cli.md):
 *
 *   send, inbox, outbox, show, status, ack, events   (officers send, show and ack)
 *   users, tokens                                     (admins)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LiaisonError } from '../protocol/index.ts';
import { call, CLIENT_FLAGS, target, when } from './client.ts';
import type { Json, Target } from './client.ts';
import { UsageError } from './api-verbs.ts';

export const MESSAGE_VERBS = [
  'send',
  'inbox',
  'outbox',
  'show',
  'status',
  'ack',
  'events',
  'users',
  'tokens',
] as const;
export type MessageVerb = (typeof MESSAGE_VERBS)[number];

const USAGE: Record<MessageVerb, string> = {
  send: 'liaison send --to NODE[:MAILBOX] [--to ...] --subject S [--body B | --body-file F] [--priority routine|urgent|emergency] [--handling H0..H3] [--ttl SECONDS] [--case REF] [--language TAG] [--reply-to MESSAGE]',
  inbox:
    'liaison inbox [--unread] [--from NODE] [--mailbox M] [--priority P] [--limit N] [--before CURSOR]',
  outbox: 'liaison outbox [--limit N] [--before CURSOR]',
  show: 'liaison show MESSAGE [--sender NODE]',
  status: 'liaison status MESSAGE',
  ack: 'liaison ack MESSAGE [--sender NODE]',
  events: 'liaison events [--after ID] [--count N]',
  users: 'liaison users [list | add NAME officer|auditor|admin | remove NAME]',
  tokens: 'liaison tokens [list [USER] | issue USER [--label L] [--ttl SECONDS] | revoke ID]',
};

export const DEFAULT_MAILBOX = 'general';
const NODE_ID = /^ln[a-z2-7]{52}$/;

/** NODE is a node ID or the name of a paired peer; MAILBOX defaults to 'general'. */
async function resolveRecipients(t: Target, specs: readonly string[]): Promise<Json[]> {
  let peers: Json[] | null = null;
  const out: Json[] = [];
  for (const spec of specs) {
    const colon = spec.lastIndexOf(':');
    const who = colon > 0 ? spec.slice(0, colon) : spec;
    const mailbox = colon > 0 ? spec.slice(colon + 1) : DEFAULT_MAILBOX;
    if (NODE_ID.test(who)) {
      out.push({ nodeId: who, mailbox });
      continue;
    }
    peers ??= (await call(t, 'GET', '/v1/peers')).peers as Json[];
    const match = peers.filter((p) => p.name === who);
    if (match.length !== 1)
      throw new LiaisonError(
        'LIAISON_ERR_RECIPIENT_UNKNOWN',
        match.length === 0
          ? `no paired peer named '${who}'`
          : `several peers are named '${who}': use the node ID`,
        { field: 'to' },
      );
    out.push({ nodeId: match[0]!.nodeId, mailbox });
  }
  return out;
}

export async function messageVerb(
  verb: MessageVerb,
  args: string[],
  say: (s: string) => void,
): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      to: { type: 'string', multiple: true },
      subject: { type: 'string' },
      body: { type: 'string' },
      'body-file': { type: 'string' },
      priority: { type: 'string' },
      handling: { type: 'string' },
      ttl: { type: 'string' },
      case: { type: 'string' },
      language: { type: 'string' },
      'reply-to': { type: 'string' },
      unread: { type: 'boolean' },
      from: { type: 'string' },
      mailbox: { type: 'string' },
      limit: { type: 'string' },
      before: { type: 'string' },
      after: { type: 'string' },
      count: { type: 'string' },
      label: { type: 'string' },
      sender: { type: 'string' },
    },
  });
  const needs = (n: number): void => {
    if (positionals.length !== n) throw new UsageError(`usage: ${USAGE[verb]}`);
  };
  const int = (v: string | undefined, field: string): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d{1,12}$/.test(v)) throw new UsageError(`--${field} must be a whole number`);
    return Number(v);
  };
  const t = target(values);
  // Message IDs are unique per sender: --sender picks one when two senders used the same ID.
  if (values.sender !== undefined && !NODE_ID.test(values.sender))
    throw new UsageError('--sender must be a node ID (ln…)');
  const bySender = values.sender === undefined ? '' : `?sender=${values.sender}`;
  const out = (j: Json, human: () => void) =>
    values.json ? say(JSON.stringify(j, null, 2)) : human();

  switch (verb) {
    case 'send': {
      needs(0);
      if (values.to === undefined || values.subject === undefined)
        throw new UsageError(`usage: ${USAGE.send}`);
      const body =
        values.body ??
        (values['body-file'] !== undefined ? readFileSync(values['body-file'], 'utf8') : '');
      const req: Json = {
        to: await resolveRecipients(t, values.to),
        subject: values.subject,
        body,
      };
      if (values.priority !== undefined) req.priority = values.priority;
      if (values.handling !== undefined) req.handling = values.handling;
      if (values.ttl !== undefined) req.ttlSeconds = int(values.ttl, 'ttl');
      if (values.case !== undefined) req.caseRef = values.case;
      if (values.language !== undefined) req.language = values.language;
      if (values['reply-to'] !== undefined) req.replyTo = values['reply-to'];
      const j = await call(t, 'POST', '/v1/messages', req);
      return out(j, () => {
        say(
          `Queued ${j.messageId as string} (stored; delivery follows, see: liaison status ${j.messageId as string})`,
        );
        for (const r of j.recipients as Json[])
          say(
            `  to ${r.nodeId as string} mailbox ${r.mailbox as string}, sequence ${r.sequence as number}`,
          );
      });
    }
    case 'inbox':
    case 'outbox': {
      needs(0);
      const q = new URLSearchParams();
      if (values.unread === true) q.set('unread', 'true');
      if (values.from !== undefined) q.set('sender', values.from);
      if (values.mailbox !== undefined) q.set('mailbox', values.mailbox);
      if (values.priority !== undefined) q.set('priority', values.priority);
      const limit = int(values.limit, 'limit');
      const before = int(values.before, 'before');
      if (limit !== undefined) q.set('limit', String(limit));
      if (before !== undefined) q.set('before', String(before));
      const j = await call(t, 'GET', `/v1/${verb}?${q.toString()}`);
      return out(j, () => {
        const list = j.messages as Json[];
        if (list.length === 0) say(verb === 'inbox' ? 'No messages.' : 'Nothing sent.');
        for (const m of list) {
          const flags = [
            m.priority !== 'routine' ? String(m.priority).toUpperCase() : '',
            verb === 'inbox' && m.readAt === null ? 'unread' : '',
            m.acknowledgedAt !== null && m.acknowledgedAt !== undefined ? 'acknowledged' : '',
            m.gap !== null && m.gap !== undefined
              ? `GAP ${(m.gap as Json).from as number}-${(m.gap as Json).to as number}`
              : '',
          ].filter((x) => x !== '');
          say(
            `${when(m.createdAt)}  ${m.messageId as string}  ${verb === 'inbox' ? `from ${m.sender as string} [${m.mailbox as string}]` : ''} by ${m.author as string}${flags.length > 0 ? `  (${flags.join(', ')})` : ''}`,
          );
        }
        if (j.next !== null) say(`More: liaison ${verb} --before ${j.next as number}`);
      });
    }
    case 'show': {
      needs(1);
      const j = await call(t, 'GET', `/v1/messages/${positionals[0]!}${bySender}`);
      return out(j, () => {
        const c = j.content as Json;
        say(
          `Message ${j.messageId as string}  (${j.priority as string}, handling ${j.handling as string})`,
        );
        say(`From    ${j.sender as string}, author ${j.author as string}`);
        say(`Sent    ${when(j.createdAt)}   expires ${when(j.expiresAt)}`);
        if (c.caseRef !== null) say(`Case    ${c.caseRef as string}`);
        say(`Subject ${c.subject as string}`);
        say('');
        say(c.body as string);
        if (c.form !== null) {
          const f = c.form as {
            formId: string;
            formVersion: number;
            fields: Record<string, string>;
          };
          say('');
          say(`Form ${f.formId} v${f.formVersion}`);
          for (const [k, v] of Object.entries(f.fields)) say(`  ${k}: ${v}`);
        }
      });
    }
    case 'status': {
      needs(1);
      const j = await call(t, 'GET', `/v1/messages/${positionals[0]!}/status`);
      return out(j, () => {
        say(`Message ${j.messageId as string}, sent ${when(j.createdAt)}`);
        for (const r of j.recipients as Json[]) {
          const detail =
            r.status === 'delivered' || r.status === 'acknowledged'
              ? `at ${when(r.status === 'acknowledged' ? r.acknowledgedAt : r.deliveredAt)}, recipient log index ${r.remoteLogIndex as number}`
              : r.reason !== null
                ? `reason ${r.reason as string}`
                : `since ${when(r.updatedAt)}`;
          say(`  ${r.nodeId as string}  ${String(r.status).padEnd(12)} ${detail}`);
        }
      });
    }
    case 'ack': {
      needs(1);
      const j = await call(t, 'POST', `/v1/messages/${positionals[0]!}/ack${bySender}`);
      return out(j, () =>
        say(`Acknowledged ${positionals[0]!}; the sender is told (${j.ackMessageId as string})`),
      );
    }
    case 'events':
      needs(0);
      return followEvents(
        t,
        int(values.after, 'after'),
        int(values.count, 'count') ?? null,
        values.json,
        say,
      );
    case 'users': {
      const [sub, name, role] = positionals;
      if (sub === undefined || sub === 'list') {
        if (positionals.length > 1) throw new UsageError(`usage: ${USAGE.users}`);
        const j = await call(t, 'GET', '/v1/users');
        return out(j, () => {
          for (const u of j.users as Json[])
            say(`${u.name as string}  ${u.role as string}  since ${when(u.createdAt)}`);
        });
      }
      if (sub === 'add' && name !== undefined && role !== undefined && positionals.length === 3) {
        const j = await call(t, 'POST', '/v1/users', { name, role });
        return out(j, () =>
          say(`Created ${name} (${role}). Issue a token: liaison tokens issue ${name}`),
        );
      }
      if (sub === 'remove' && name !== undefined && positionals.length === 2) {
        const j = await call(t, 'DELETE', `/v1/users/${encodeURIComponent(name)}`);
        return out(j, () => say(`Removed ${name} and revoked its tokens`));
      }
      throw new UsageError(`usage: ${USAGE.users}`);
    }
    case 'tokens': {
      const [sub, arg] = positionals;
      if (sub === undefined || sub === 'list') {
        if (positionals.length > 2) throw new UsageError(`usage: ${USAGE.tokens}`);
        const j = await call(
          t,
          'GET',
          `/v1/tokens${arg === undefined ? '' : `?user=${encodeURIComponent(arg)}`}`,
        );
        return out(j, () => {
          for (const k of j.tokens as Json[]) {
            const state =
              k.revokedAt !== null
                ? `revoked ${when(k.revokedAt)}`
                : k.expiresAt !== null
                  ? `expires ${when(k.expiresAt)}`
                  : 'valid';
            say(
              `${k.id as string}  ${k.user as string}  ${k.label as string}  ${state}  last used ${when(k.lastUsedAt)}`,
            );
          }
        });
      }
      if (sub === 'issue' && arg !== undefined && positionals.length === 2) {
        const body: Json = {};
        if (values.label !== undefined) body.label = values.label;
        if (values.ttl !== undefined) body.ttlSeconds = int(values.ttl, 'ttl');
        const j = await call(t, 'POST', `/v1/users/${encodeURIComponent(arg)}/tokens`, body);
        return out(j, () => {
          say(`Token ${j.id as string} for ${arg} (shown once; store it like a password):`);
          say(j.token as string);
        });
      }
      if (sub === 'revoke' && arg !== undefined && positionals.length === 2) {
        const j = await call(t, 'DELETE', `/v1/tokens/${arg}`);
        return out(j, () => say(`Revoked ${arg}`));
      }
      throw new UsageError(`usage: ${USAGE.tokens}`);
    }
  }
}

/**
 * Follows the event stream, resuming after the last event seen whenever the stream drops;
 * with `count`, stops after that many events.
 */
async function followEvents(
  t: Target,
  after: number | undefined,
  count: number | null,
  json: boolean,
  say: (s: string) => void,
): Promise<void> {
  let last: number | null = after ?? null;
  let seen = 0;
  let connected = false;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(`${t.base}/v1/events${last === null ? '' : `?after=${last}`}`, {
        headers: { authorization: `Bearer ${t.token}`, accept: 'text/event-stream' },
      });
    } catch (err) {
      // Unreachable at the start is an error; a drop later is retried (the node may restart).
      if (!connected)
        throw new LiaisonError(
          'LIAISON_ERR_LINK_CLOSED',
          `cannot reach ${t.base}: ${(err as Error).message}`,
        );
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!res.ok) await call(t, 'GET', `/v1/events${last === null ? '' : `?after=${last}`}`);
    connected = true;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(': ');
          if (i > 0) fields[line.slice(0, i)] = line.slice(i + 2);
        }
        if (fields.id === undefined) {
          // The node pruned events this client had not seen: say so, never skip silently.
          if (fields.event === 'events.lost') {
            const data = JSON.parse(fields.data ?? '{}') as Json;
            if (json) say(JSON.stringify({ type: 'events.lost', data }));
            else
              say(
                `!  events.lost  events ${String(data.from)} to ${String(data.to)} were pruned before this client saw them; re-read the inbox and statuses`,
              );
          }
          continue;
        }
        last = Number(fields.id);
        seen += 1;
        if (json)
          say(
            JSON.stringify({
              id: last,
              type: fields.event,
              data: JSON.parse(fields.data ?? '{}') as Json,
            }),
          );
        else say(`${fields.id}  ${fields.event ?? ''}  ${fields.data ?? ''}`);
        // --count N prints exactly N events, even when one read brought more.
        if (count !== null && seen >= count) {
          await reader.cancel();
          return;
        }
      }
    }
  }
}
