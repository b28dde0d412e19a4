/**
 * Verbs that create and run a node: `liaison init` and `liaison start`. The passphrase comes from
 * LIAISON_PASSPHRASE, from --passphrase-file, or from a prompt on a terminal; never from a flag
 * (flags end up in shell history and process listings).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { LiaisonError } from '../protocol/index.ts';
import { systemClock } from '../node/clock.ts';
import { defaultDataDir, loadConfig } from '../node/config.ts';
import type { ConfigInput } from '../node/config.ts';
import { createLogger } from '../node/log.ts';
import { initNode, startNode } from '../node/node.ts';

/** Flags shared by every verb that locates a node. */
export const NODE_FLAGS = {
  'data-dir': { type: 'string' },
  'api-port': { type: 'string' },
  'api-host': { type: 'string' },
} as const;

async function readPassphrase(file: string | undefined, confirm: boolean): Promise<string> {
  if (file !== undefined) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  const env = process.env.LIAISON_PASSPHRASE;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY)
    throw new LiaisonError(
      'LIAISON_ERR_ARGUMENT',
      'no passphrase: set LIAISON_PASSPHRASE, use --passphrase-file, or run on a terminal',
      { field: 'passphrase' },
    );
  const first = await prompt('Keystore passphrase: ');
  if (confirm && (await prompt('Repeat passphrase: ')) !== first)
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'the passphrases differ', {
      field: 'passphrase',
    });
  return first;
}

/** Reads a line from the terminal without echoing it. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
    const out = rl as unknown as {
      _writeToOutput: (s: string) => void;
      output: NodeJS.WriteStream;
    };
    out._writeToOutput = (s: string) => {
      if (s.startsWith(question)) out.output.write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stdout.write('\n');
      resolve(answer);
    });
  });
}

function port(v: string | undefined, field: string): number | null {
  if (v === undefined) return null;
  if (!/^\d+$/.test(v) || Number(v) > 65_535)
    throw new LiaisonError('LIAISON_ERR_CONFIG_INVALID', `${field}: must be a port number`, {
      field,
    });
  return Number(v);
}

export async function init(args: string[], say: (s: string) => void): Promise<void> {
  // Everything a node writes is for its operator's account alone.
  process.umask(0o077);
  const { values } = parseArgs({
    args,
    options: {
      ...NODE_FLAGS,
      name: { type: 'string' },
      'public-address': { type: 'string' },
      'peer-port': { type: 'string' },
      'passphrase-file': { type: 'string' },
      'insecure-test-kdf': { type: 'boolean', default: false },
    },
  });
  const dataDir = values['data-dir'] ?? defaultDataDir();
  const passphrase = await readPassphrase(values['passphrase-file'], true);
  const r = await initNode({
    dataDir,
    passphrase,
    name: values.name ?? 'Liaison node',
    publicAddress: values['public-address'] ?? null,
    peerPort: port(values['peer-port'], 'peerPort'),
    apiPort: port(values['api-port'], 'apiPort'),
    kdf: values['insecure-test-kdf'] ? 'test' : 'moderate',
    clock: systemClock,
  });
  say(`Created node ${r.nodeId}`);
  say(`  data directory  ${dataDir}`);
  say(`  fingerprint     ${r.fingerprint}`);
  say(`  API token       ${r.tokenFile} (admin; keep it private)`);
  say(
    'Start it with: liaison start' +
      (values['data-dir'] === undefined ? '' : ` --data-dir ${dataDir}`),
  );
}

export async function start(args: string[]): Promise<void> {
  process.umask(0o077);
  const { values } = parseArgs({
    args,
    options: {
      ...NODE_FLAGS,
      'peer-port': { type: 'string' },
      'peer-host': { type: 'string' },
      'public-address': { type: 'string' },
      'log-level': { type: 'string' },
      'passphrase-file': { type: 'string' },
    },
  });
  const flags: ConfigInput = {};
  if (values['data-dir'] !== undefined) flags.dataDir = values['data-dir'];
  if (values['api-port'] !== undefined) flags.apiPort = values['api-port'];
  if (values['api-host'] !== undefined) flags.apiHost = values['api-host'];
  if (values['peer-port'] !== undefined) flags.peerPort = values['peer-port'];
  if (values['peer-host'] !== undefined) flags.peerHost = values['peer-host'];
  if (values['public-address'] !== undefined) flags.publicAddress = values['public-address'];
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  const config = loadConfig(flags);
  const passphrase = await readPassphrase(values['passphrase-file'], false);
  const log = createLogger(config.logLevel);
  const node = await startNode({ config, passphrase, clock: systemClock, log });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      node.stop().then(resolve, (err: unknown) => {
        log.error({ err: String(err) }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
