/**
 * Node configuration (docs/operations.md): `config.json` in the data directory, overridden by
 * `LIAISON_*` environment variables, overridden by command-line flags. Validated once, at start,
 * into a typed value; any bad value stops the node with LIAISON_ERR_CONFIG_INVALID naming it.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { isLinkAddress, isNodeName, LiaisonError } from '../protocol/index.ts';
import {
  DEFAULT_API_HOST,
  DEFAULT_API_PORT,
  DEFAULT_PEER_HOST,
  DEFAULT_PEER_PORT,
  HANDSHAKE_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  MAX_FRAMES_PER_SECOND,
  MAX_PENDING_HANDSHAKES,
  RECONNECT_MAX_MS,
  CHECKPOINT_INTERVAL_MS,
} from './constants.ts';

export const CONFIG_FILE = 'config.json';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface NodeConfig {
  readonly dataDir: string;
  /** The authority's display name, shown to peers when pairing. */
  readonly name: string;
  readonly peer: {
    readonly host: string;
    readonly port: number;
    /** The address peers dial (ws:// or wss://); null: this node only dials out. */
    readonly publicAddress: string | null;
    /** PEM files for wss:// on the peer port. */
    readonly tlsCert: string | null;
    readonly tlsKey: string | null;
    /** A PEM CA file to trust when dialing wss:// peers (an operator's private CA). */
    readonly tlsCa: string | null;
  };
  readonly api: { readonly host: string; readonly port: number };
  readonly logLevel: LogLevel;
  readonly links: LinkSettings;
  /** How often the node signs a new checkpoint of its audit log when the log has grown. */
  readonly checkpointIntervalMs: number;
}

/** Link limits an operator may tune (docs/operations.md); defaults in constants.ts. */
export interface LinkSettings {
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly maxFramesPerSecond: number;
  readonly keepaliveIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly reconnectMaxMs: number;
}

/** Everything a source may set, all optional, keyed as in config.json. */
export interface ConfigInput {
  dataDir?: unknown;
  name?: unknown;
  peerHost?: unknown;
  peerPort?: unknown;
  publicAddress?: unknown;
  tlsCert?: unknown;
  tlsKey?: unknown;
  tlsCa?: unknown;
  apiHost?: unknown;
  apiPort?: unknown;
  logLevel?: unknown;
  handshakeTimeoutMs?: unknown;
  maxPendingHandshakes?: unknown;
  maxFramesPerSecond?: unknown;
  keepaliveIntervalMs?: unknown;
  idleTimeoutMs?: unknown;
  reconnectMaxMs?: unknown;
  checkpointIntervalMs?: unknown;
}

const KEYS = [
  'dataDir',
  'name',
  'peerHost',
  'peerPort',
  'publicAddress',
  'tlsCert',
  'tlsKey',
  'tlsCa',
  'apiHost',
  'apiPort',
  'logLevel',
  'handshakeTimeoutMs',
  'maxPendingHandshakes',
  'maxFramesPerSecond',
  'keepaliveIntervalMs',
  'idleTimeoutMs',
  'reconnectMaxMs',
  'checkpointIntervalMs',
] as const;

/** Environment variable for each key: LIAISON_ + upper snake case. */
export const ENV_VARS: Readonly<Record<(typeof KEYS)[number], string>> = Object.fromEntries(
  KEYS.map((k) => [k, `LIAISON_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`]),
) as Record<(typeof KEYS)[number], string>;

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIAISON_DATA_DIR ?? join(homedir(), '.liaison');
}

function bad(field: string, why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_CONFIG_INVALID', `${field}: ${why}`, { field });
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw bad(field, 'must be a non-empty string');
  return v;
}

function port(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65_535)
    throw bad(field, 'must be a port number 0-65535 (0: any free port)');
  return n;
}

function int(v: unknown, field: string, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw bad(field, `must be an integer from ${min} to ${max}`);
  return n;
}

function nodeName(v: unknown): string {
  const s = str(v, 'name');
  if (!isNodeName(s)) throw bad('name', 'must be 1 to 128 bytes of UTF-8');
  return s;
}

function optional(v: unknown, field: string): string | null {
  return v === undefined || v === null || v === '' ? null : str(v, field);
}

/** Reads config.json from the data directory; absent is fine, malformed is not. */
export function readConfigFile(dataDir: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(join(dataDir, CONFIG_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw bad(CONFIG_FILE, (err as Error).message);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad(CONFIG_FILE, 'not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw bad(CONFIG_FILE, 'must be a JSON object');
  for (const k of Object.keys(parsed)) {
    if (!(KEYS as readonly string[]).includes(k)) throw bad(k, 'unknown setting');
    // The file lives in the data directory, so it cannot say where the data directory is.
    if (k === 'dataDir')
      throw bad(
        k,
        'set the data directory with --data-dir or LIAISON_DATA_DIR, not in config.json',
      );
  }
  return parsed as ConfigInput;
}

export function configFromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  const out: ConfigInput = {};
  for (const k of KEYS) {
    const v = env[ENV_VARS[k]];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * Merges sources (later wins) and validates. `dataDir` must come from flags or environment (or
 * the default), since the file lives in it.
 * @throws LIAISON_ERR_CONFIG_INVALID
 */
export function resolveConfig(sources: readonly ConfigInput[]): NodeConfig {
  const m: ConfigInput = Object.assign({}, ...sources);
  const logLevel = m.logLevel ?? 'info';
  if (!(LOG_LEVELS as readonly unknown[]).includes(logLevel))
    throw bad('logLevel', `one of ${LOG_LEVELS.join(', ')}`);
  const publicAddress = optional(m.publicAddress, 'publicAddress');
  if (publicAddress !== null && !isLinkAddress(publicAddress)) {
    throw bad(
      'publicAddress',
      'must be a ws:// or wss:// URL (host, optional port and path; at most 255 bytes)',
    );
  }
  const tlsCert = optional(m.tlsCert, 'tlsCert');
  const tlsKey = optional(m.tlsKey, 'tlsKey');
  if ((tlsCert === null) !== (tlsKey === null))
    throw bad(tlsCert === null ? 'tlsCert' : 'tlsKey', 'tlsCert and tlsKey go together');
  return {
    dataDir: resolve(str(m.dataDir, 'dataDir')),
    name: nodeName(m.name ?? 'Liaison node'),
    peer: {
      host: str(m.peerHost ?? DEFAULT_PEER_HOST, 'peerHost'),
      port: port(m.peerPort ?? DEFAULT_PEER_PORT, 'peerPort'),
      publicAddress,
      tlsCert,
      tlsKey,
      tlsCa: optional(m.tlsCa, 'tlsCa'),
    },
    api: {
      host: str(m.apiHost ?? DEFAULT_API_HOST, 'apiHost'),
      port: port(m.apiPort ?? DEFAULT_API_PORT, 'apiPort'),
    },
    logLevel: logLevel as LogLevel,
    links: {
      handshakeTimeoutMs: int(
        m.handshakeTimeoutMs,
        'handshakeTimeoutMs',
        100,
        120_000,
        HANDSHAKE_TIMEOUT_MS,
      ),
      maxPendingHandshakes: int(
        m.maxPendingHandshakes,
        'maxPendingHandshakes',
        1,
        10_000,
        MAX_PENDING_HANDSHAKES,
      ),
      maxFramesPerSecond: int(
        m.maxFramesPerSecond,
        'maxFramesPerSecond',
        1,
        1_000_000,
        MAX_FRAMES_PER_SECOND,
      ),
      keepaliveIntervalMs: int(
        m.keepaliveIntervalMs,
        'keepaliveIntervalMs',
        100,
        600_000,
        KEEPALIVE_INTERVAL_MS,
      ),
      idleTimeoutMs: int(m.idleTimeoutMs, 'idleTimeoutMs', 300, 3_600_000, IDLE_TIMEOUT_MS),
      reconnectMaxMs: int(m.reconnectMaxMs, 'reconnectMaxMs', 100, 3_600_000, RECONNECT_MAX_MS),
    },
    checkpointIntervalMs: int(
      m.checkpointIntervalMs,
      'checkpointIntervalMs',
      100,
      86_400_000,
      CHECKPOINT_INTERVAL_MS,
    ),
  };
}

/** The usual order: defaults < config.json < environment < flags. */
export function loadConfig(flags: ConfigInput, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const fromEnv = configFromEnv(env);
  const dataDir = str(flags.dataDir ?? fromEnv.dataDir ?? defaultDataDir(env), 'dataDir');
  return resolveConfig([{ dataDir }, readConfigFile(dataDir), fromEnv, flags]);
}
