/**
 * Verbs that talk to a running node through its local API: node info, invitations, peers, keys.
 * They locate the node from its data directory (config.json for the API port, api-token for the
 * token) and print what the API answered; errors keep their codes.
 */
import { parseArgs } from 'node:util';
import { LiaisonError } from '../protocol/index.ts';
import { call, CLIENT_FLAGS, target } from './client.ts';

type Json = Record<string, unknown>;

export const API_VERBS = ['info', 'invite', 'accept', 'peers', 'keys'] as const;

/** A verb used with the wrong arguments: the CLI prints usage and exits 2. */
export class UsageError extends Error {}

const SUBCOMMANDS: Record<
  (typeof API_VERBS)[number],
  { subs: readonly (string | undefined)[]; needsArg: readonly string[]; usage: string }
> = {
  info: { subs: [undefined], needsArg: [], usage: 'liaison info' },
  invite: {
    subs: [undefined, 'create', 'list', 'revoke'],
    needsArg: ['revoke'],
    usage: 'liaison invite [create|list|revoke ID]',
  },
  accept: { subs: [], needsArg: [], usage: 'liaison accept INVITATION' },
  peers: {
    subs: [undefined, 'list', 'unpair', 'block', 'unblock'],
    needsArg: ['unpair', 'block', 'unblock'],
    usage: 'liaison peers [list|unpair NODE|block NODE|unblock NODE]',
  },
  keys: { subs: ['rotate'], needsArg: [], usage: 'liaison keys rotate' },
};

/** Checks a verb's positionals before anything else happens (no node is contacted for a typo). */
function checkUsage(verb: (typeof API_VERBS)[number], positionals: string[]): void {
  const spec = SUBCOMMANDS[verb];
  const [sub, arg] = positionals;
  if (verb === 'accept') {
    if (positionals.length !== 1) throw new UsageError(`usage: ${spec.usage}`);
    return;
  }
  if (
    !spec.subs.includes(sub) ||
    (sub !== undefined && spec.needsArg.includes(sub) !== (arg !== undefined)) ||
    positionals.length > 2
  ) {
    throw new UsageError(`usage: ${spec.usage}`);
  }
}

export async function apiVerb(
  verb: (typeof API_VERBS)[number],
  args: string[],
  say: (s: string) => void,
): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      label: { type: 'string' },
      ttl: { type: 'string' },
    },
  });
  checkUsage(verb, positionals);
  const t = target(values);
  const out = (j: Json, human: () => void) =>
    values.json ? say(JSON.stringify(j, null, 2)) : human();
  const [sub, arg] = positionals;
  switch (verb) {
    case 'info': {
      const j = await call(t, 'GET', '/v1/node');
      return out(j, () => {
        say(`${j.name as string}`);
        say(`  node ID      ${j.nodeId as string}`);
        say(`  fingerprint  ${j.fingerprint as string}`);
        say(`  address      ${(j.publicAddress as string | null) ?? '(none: dials out only)'}`);
      });
    }
    case 'invite': {
      if (sub === undefined || sub === 'create') {
        const body: Json = {};
        if (values.label !== undefined) body.label = values.label;
        if (values.ttl !== undefined) body.ttlSeconds = Number(values.ttl);
        const j = await call(t, 'POST', '/v1/invitations', body);
        return out(j, () => {
          say(`Invitation ${j.id as string}, valid until ${j.expiresAt as string}, usable once:`);
          say(j.invitation as string);
        });
      }
      if (sub === 'list') {
        const j = await call(t, 'GET', '/v1/invitations');
        return out(j, () => {
          for (const i of j.invitations as Json[]) {
            const expired = Date.parse(i.expiresAt as string) <= Date.now();
            const state =
              i.usedAt !== null
                ? `used by ${i.usedBy as string}`
                : i.revokedAt !== null
                  ? 'revoked'
                  : expired
                    ? `expired at ${i.expiresAt as string}`
                    : `valid until ${i.expiresAt as string}`;
            say(`${i.id as string}  ${i.label as string}  ${state}`);
          }
        });
      }
      if (sub === 'revoke' && arg !== undefined)
        return out(await call(t, 'DELETE', `/v1/invitations/${arg}`), () => say(`Revoked ${arg}`));
      throw new LiaisonError(
        'LIAISON_ERR_ARGUMENT',
        'usage: liaison invite [create|list|revoke ID]',
      );
    }
    case 'accept': {
      if (sub === undefined)
        throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'usage: liaison accept INVITATION');
      const j = await call(t, 'POST', '/v1/invitations/accept', { invitation: sub });
      return out(j, () =>
        say(
          `Paired with ${j.nodeId as string}. Compare fingerprints with its operator: liaison peers`,
        ),
      );
    }
    case 'peers': {
      if (sub === undefined || sub === 'list') {
        const j = await call(t, 'GET', '/v1/peers');
        return out(j, () => {
          for (const p of j.peers as Json[]) {
            say(
              `${p.name as string}  ${p.nodeId as string}  ${p.status as string}, link ${p.link as string}, last seen ${(p.lastSeen as string | null) ?? 'never'}`,
            );
            say(
              `    fingerprint ${p.fingerprint as string}  address ${(p.address as string | null) ?? '(dials us)'}`,
            );
          }
        });
      }
      if (arg === undefined)
        throw new LiaisonError(
          'LIAISON_ERR_ARGUMENT',
          'usage: liaison peers [list|unpair NODE|block NODE|unblock NODE]',
        );
      if (sub === 'unpair')
        return out(await call(t, 'DELETE', `/v1/peers/${arg}`), () => say(`Unpaired ${arg}`));
      if (sub === 'block' || sub === 'unblock')
        return out(await call(t, 'POST', `/v1/peers/${arg}/${sub}`), () =>
          say(`${sub === 'block' ? 'Blocked' : 'Unblocked'} ${arg}`),
        );
      throw new LiaisonError('LIAISON_ERR_ARGUMENT', `unknown peers action '${sub}'`);
    }
    case 'keys': {
      if (sub !== 'rotate')
        throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'usage: liaison keys rotate');
      const j = await call(t, 'POST', '/v1/keys/rotate');
      return out(j, () =>
        say(
          `Static key rotated; key record serial ${j.keyRecordSerial as number}, announced to connected peers`,
        ),
      );
    }
  }
}
