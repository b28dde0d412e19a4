/**
 * The CLI's client for a running node's local API. The node is found from its data directory
 * (node.json for the bound API port, config.json otherwise); the token is, in order,
 * LIAISON_TOKEN, the file named by --token-file, or the admin token in the data directory.
 * Errors keep the node's codes.
 */
import { readFileSync } from 'node:fs';
import { ERRORS, LiaisonError } from '../protocol/index.ts';
import type { ErrorCode } from '../protocol/index.ts';
import { loadConfig } from '../node/config.ts';
import type { ConfigInput } from '../node/config.ts';
import { readApiToken, readRuntime } from '../node/node.ts';
import { NODE_FLAGS } from './node-verbs.ts';

/** Flags every API verb takes. */
export const CLIENT_FLAGS = {
  ...NODE_FLAGS,
  'token-file': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function tokenOf(file: string | undefined, dataDir: string): string {
  const env = process.env.LIAISON_TOKEN;
  if (env !== undefined && env.trim() !== '') return env.trim();
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new LiaisonError(
        'LIAISON_ERR_UNAUTHORIZED',
        `cannot read --token-file: ${(err as Error).message}`,
      );
    }
  }
  return readApiToken(dataDir);
}

export type Json = Record<string, unknown>;

export interface Target {
  readonly base: string;
  readonly token: string;
}

export function target(values: {
  'data-dir'?: string;
  'api-port'?: string;
  'api-host'?: string;
  'token-file'?: string;
}): Target {
  const flags: ConfigInput = {};
  if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
  if (values['api-port'] !== undefined) flags.apiPort = values['api-port'];
  if (values['api-host'] !== undefined) flags.apiHost = values['api-host'];
  const config = loadConfig(flags);
  // An explicit --api-port wins; else the port the running node bound (it may be ephemeral).
  const runtime = values['api-port'] === undefined ? readRuntime(config.dataDir) : null;
  const apiHost = runtime?.apiHost ?? config.api.host;
  const host = apiHost.includes(':') ? `[${apiHost}]` : apiHost;
  return {
    base: `http://${host}:${runtime?.apiPort ?? config.api.port}`,
    token: tokenOf(values['token-file'], config.dataDir),
  };
}

export async function call(t: Target, method: string, path: string, body?: Json): Promise<Json> {
  let res: Response;
  try {
    res = await fetch(t.base + path, {
      method,
      headers: {
        authorization: `Bearer ${t.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new LiaisonError(
      'LIAISON_ERR_LINK_CLOSED',
      `cannot reach the node's API at ${t.base}: is it running? (${(err as Error).message})`,
    );
  }
  const json = (await res.json().catch(() => ({}))) as Json;
  if (!res.ok) {
    const e = (json.error ?? {}) as { code?: string; message?: string };
    // Keep the node's code; a code this CLI does not know (a newer node) becomes INTERNAL with
    // the original in the text. The node's message already starts with the code's base text.
    const known = typeof e.code === 'string' && e.code in ERRORS;
    const code = (known ? e.code : 'LIAISON_ERR_INTERNAL') as ErrorCode;
    const base = ERRORS[code].message;
    const message = e.message ?? `HTTP ${res.status}`;
    const rest =
      message === base
        ? undefined
        : message.startsWith(`${base}: `)
          ? message.slice(base.length + 2)
          : known
            ? message
            : `${e.code}: ${message}`;
    throw new LiaisonError(code, rest);
  }
  return json;
}

/** An ISO time from the API as the CLI prints it: `2026-11-22 09:14:41Z`; '-' when absent. */
export const when = (iso: unknown): string =>
  typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
