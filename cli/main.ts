#!/usr/bin/env node
/**
 * The `liaison` command. Offline verbs use protocol/ directly; verbs that talk to a running node
 * arrive with the node daemon. Exit codes: 0 success, 1 the operation failed (a LiaisonError,
 * printed with its code), 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initCrypto, isLiaisonError } from '../protocol/index.ts';
import { API_VERBS, apiVerb, UsageError } from './api-verbs.ts';
import { AUDIT_USAGE, auditVerb } from './audit-verbs.ts';
import { runDemo } from './demo.ts';
import { runFederationDemo } from './federation-demo.ts';
import { inspect } from './inspect.ts';
import { MESSAGE_VERBS, messageVerb } from './message-verbs.ts';
import { init, start } from './node-verbs.ts';

const USAGE = `liaison: secure federated messaging for judicial and law-enforcement cooperation

Usage:
  liaison init [--data-dir D] [--name N] [--public-address ws://HOST:PORT] [--peer-port P]
               [--api-port P] [--passphrase-file F]
                               create a node: keys (encrypted with the passphrase from
                               LIAISON_PASSPHRASE, the file, or a prompt), config, database, API token
  liaison start [--data-dir D] [--peer-port P] [--peer-host H] [--public-address URL]
               [--api-port P] [--log-level L] [--passphrase-file F]
                               run the node until SIGINT or SIGTERM
  liaison info                 this node's ID, fingerprint and address (running node)
  liaison invite [create [--label L] [--ttl SECONDS] | list | revoke ID]
                               one-time invitations for another authority to pair with this node
  liaison accept INVITATION    pair with the node that issued INVITATION
  liaison peers [list | unpair NODE | block NODE | unblock NODE]
  liaison keys rotate          new static key, certified and announced to connected peers
  liaison send --to NODE[:MAILBOX] --subject S [--body B | --body-file F] [--priority P]
               [--handling H] [--ttl SECONDS] [--case REF] [--language TAG] [--reply-to ID]
                               sign, encrypt and queue a message (officer token)
  liaison inbox [--unread] [--from NODE] [--mailbox M] [--limit N] [--before CURSOR]
  liaison outbox [--limit N] [--before CURSOR]
  liaison show MESSAGE [--sender NODE]
                               decrypt and print a message (officer; recorded in the audit log)
  liaison status MESSAGE       delivery status per recipient
  liaison ack MESSAGE [--sender NODE]
                               acknowledge a received message to its sender (officer)
  liaison events [--after ID] [--count N]
                               follow what happens (messages, statuses, peers)
  liaison users [list | add NAME ROLE | remove NAME]      roles: officer, auditor, admin
  liaison tokens [list [USER] | issue USER [--label L] [--ttl S] | revoke ID]
                               API verbs use LIAISON_TOKEN, --token-file F, or the admin token
  ${AUDIT_USAGE}
                               audit verbs need an auditor or admin token; verify, cross-check
                               and verify-disclosure work offline on files
  liaison demo [--exit]        a local federation: three node processes on 127.0.0.1 pair, carry
                               an urgent request and a JIT update, and ride out an outage; on a
                               terminal the nodes then keep running for the CLI until Ctrl-C
  liaison demo protocol        walk through the protocol: three authorities exchange a signed,
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
    case 'demo': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { exit: { type: 'boolean', default: false } },
      });
      if (positionals.length === 1 && positionals[0] === 'protocol' && !values.exit) {
        await initCrypto();
        runDemo((line) => process.stdout.write(`${line}\n`));
        return;
      }
      if (positionals.length > 0) usage("demo takes either 'protocol' or --exit");
      const outcome = await runFederationDemo({
        say: (line) => process.stdout.write(`${line}\n`),
        warn: (line) => process.stderr.write(`${line}\n`),
        // Kept running only for someone at a terminal who can try the CLI and press Ctrl-C.
        keepRunning: process.stdout.isTTY === true && !values.exit,
      });
      // 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
      if (outcome === 'interrupted') process.exitCode = 130;
      return;
    }
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
    case 'audit':
      process.exitCode = await auditVerb(rest, (line) => process.stdout.write(`${line}\n`));
      return;
    case 'init':
      await initCrypto();
      await init(rest, (line) => process.stdout.write(`${line}\n`));
      return;
    case 'start':
      await start(rest);
      return;
    default:
      if ((MESSAGE_VERBS as readonly string[]).includes(verb)) {
        await messageVerb(verb as (typeof MESSAGE_VERBS)[number], rest, (line) =>
          process.stdout.write(`${line}\n`),
        );
        return;
      }
      if ((API_VERBS as readonly string[]).includes(verb)) {
        await apiVerb(verb as (typeof API_VERBS)[number], rest, (line) =>
          process.stdout.write(`${line}\n`),
        );
        return;
      }
      usage(`unknown verb '${verb}'`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) usage(err.message);
  if (
    err instanceof TypeError &&
    'code' in err &&
    String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')
  ) {
    usage(err.message);
  }
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
