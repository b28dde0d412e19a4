#!/usr/bin/env node
/**
 * The `liaison` command. Offline verbs use protocol/ directly; verbs that talk to a running node
 * arrive with the node daemon. Exit codes: 0 success, 1 the operation failed (a LiaisonError,
 * printed with its code), 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initCrypto, isLiaisonError } from '../protocol/index.ts';
import { runDemo } from './demo.ts';
import { inspect } from './inspect.ts';

const USAGE = `liaison: secure federated messaging for judicial and law-enforcement cooperation

Usage:
  liaison demo                 walk through the protocol: three authorities exchange a signed,
                               end-to-end encrypted preservation request, receipts, and attacks
  liaison inspect [FILE]       decode an envelope, receipt, key record or key rotation (hex or
                               binary, from FILE or standard input) and print its fields as JSON
  liaison version              print the version
  liaison help                 print this help
`;

function usage(message: string): never {
  process.stderr.write(`liaison: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    case 'version':
    case '--version': {
      const pkg = JSON.parse(
        readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
      ) as { version: string };
      process.stdout.write(`liaison ${pkg.version}\n`);
      return;
    }
    case 'demo':
      if (rest.length > 0) usage('demo takes no arguments');
      await initCrypto();
      runDemo((line) => process.stdout.write(`${line}\n`));
      return;
    case 'inspect': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length > 1) usage('inspect takes at most one FILE');
      const input =
        positionals[0] === undefined || positionals[0] === '-'
          ? readFileSync(0)
          : readFileSync(positionals[0]);
      await initCrypto();
      process.stdout.write(`${JSON.stringify(inspect(new Uint8Array(input)), null, 2)}\n`);
      return;
    }
    default:
      usage(`unknown verb '${verb}'`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (isLiaisonError(err)) {
    process.stderr.write(`liaison: ${err.code}: ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof Error && 'code' in err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
    process.stderr.write(`liaison: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
});
