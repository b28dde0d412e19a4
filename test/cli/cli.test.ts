/**
 * The `liaison` command, run as a user runs it: a child process, exit codes, output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { initCrypto, serializeBundle } from '../../protocol/index.ts';
import { buildPair } from '../helpers/bundle-factory.ts';

const main = new URL('../../cli/main.ts', import.meta.url).pathname;
const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', main, ...args], {
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
    timeout: 60_000,
  });

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/liaison-v1.json', import.meta.url), 'utf8'),
) as {
  envelopes: { envelope: string; messageIdText: string; envelopeHash: string }[];
  nodes: { keyRecord: string; nodeIdText: string }[];
};

t.test('inspect decodes an envelope given as hex on standard input', async (t) => {
  const r = run(['inspect'], vectors.envelopes[0]!.envelope);
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { type: string; messageId: string; envelopeHash: string };
  t.equal(out.type, 'envelope');
  t.equal(out.messageId, vectors.envelopes[0]!.messageIdText);
  t.equal(out.envelopeHash, vectors.envelopes[0]!.envelopeHash);
});

t.test('inspect checks a key record signature', async (t) => {
  const r = run(['inspect'], vectors.nodes[0]!.keyRecord);
  t.equal(r.status, 0, r.stderr);
  t.equal((JSON.parse(r.stdout) as { nodeId: string }).nodeId, vectors.nodes[0]!.nodeIdText);
  const tampered =
    vectors.nodes[0]!.keyRecord.slice(0, -2) +
    (vectors.nodes[0]!.keyRecord.endsWith('00') ? '01' : '00');
  const bad = run(['inspect'], tampered);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /LIAISON_ERR_KEY_RECORD_INVALID/);
});

t.test('bad input and bad usage', async (t) => {
  const garbage = run(['inspect'], 'ff00');
  t.equal(garbage.status, 1);
  t.match(garbage.stderr, /LIAISON_ERR_DECODE_TYPE/);
  const unknown = run(['frobnicate']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown verb 'frobnicate'/);
  const missing = run(['inspect', '/nonexistent/file']);
  t.equal(missing.status, 1);
  t.match(missing.stderr, /ENOENT|no such file/);
});

t.test('demo protocol: the receipts verify and every attack is refused', async (t) => {
  const r = run(['demo', 'protocol']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Rabat\s+delivered/);
  t.match(r.stdout, /Madrid\s+delivered/);
  t.equal(
    (r.stdout.match(/refused: LIAISON_ERR_/g) ?? []).length,
    5,
    'five attacks, five refusals',
  );
  t.notMatch(r.stdout, /ACCEPTED/);
});

t.test(
  'demo: a local federation delivers, acknowledges, survives an outage, cleans up',
  async (t) => {
    const { existsSync } = await import('node:fs');
    // Not a terminal: the demo stops its nodes and removes its directory once the story ends.
    const r = run(['demo']);
    t.equal(r.status, 0, r.stderr);
    t.equal((r.stdout.match(/ match$/gm) ?? []).length, 6, 'three pairings, fingerprints compared');
    t.match(r.stdout, /delivered to Rabat \d+ ms after sending/);
    t.match(r.stdout, /audit-log index \d+/);
    t.match(r.stdout, /URGENT {2}lm[a-z2-7]{26} {2}from Paris, by duty-magistrate, unread/);
    t.match(r.stdout, /acknowledged by Rabat/);
    t.match(r.stdout, /Rabat {5}delivered/);
    t.match(r.stdout, /The Hague acknowledged/);
    t.match(r.stdout, /still 'queued'/);
    t.match(r.stdout, /Nothing was lost/);
    t.match(r.stdout, /peer\.down +nodeId=The Hague/);
    const dir = /^Stopped the three nodes and removed (\S+)\.$/m.exec(r.stdout)?.[1];
    t.ok(dir !== undefined && !existsSync(dir), 'the temporary directory is gone');
    const pids = [...r.stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    t.equal(pids.length, 4, 'three nodes and one restart');
    for (const pid of pids)
      t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `${pid} is gone`);
    const bad = run(['demo', 'frobnicate']);
    t.equal(bad.status, 2);
    t.match(bad.stderr, /demo takes either 'protocol' or --exit/);
  },
);

t.test(
  'node verbs: usage errors exit 2 before contacting anything; init never half-creates',
  async (t) => {
    const { mkdtempSync, rmSync, writeFileSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'liaison-cli-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    for (const args of [
      ['peers', 'frobnicate'],
      ['invite', 'revoke'],
      ['accept'],
      ['keys'],
      ['peers', 'block'],
    ]) {
      const r = run([...args, '--data-dir', dir]);
      t.equal(r.status, 2, `${args.join(' ')}: exit 2`);
      t.match(r.stderr, /usage:/);
    }
    const r = run(['peers', '--data-dir', dir]);
    t.equal(r.status, 1, 'a well-formed verb against a directory without a node fails with a code');
    t.match(r.stderr, /LIAISON_ERR_/);
    // init refuses an existing config.json before creating any key.
    const node = join(dir, 'node');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(node);
    writeFileSync(join(node, 'config.json'), '{}');
    const init = spawnSync(
      process.execPath,
      ['--import', 'tsx', main, 'init', '--data-dir', node, '--insecure-test-kdf'],
      {
        encoding: 'utf8',
        env: { ...process.env, LIAISON_PASSPHRASE: 'a passphrase long enough' },
        timeout: 60_000,
      },
    );
    t.equal(init.status, 1);
    t.match(init.stderr, /LIAISON_ERR_CONFLICT/);
    t.notOk(existsSync(join(node, 'keystore.json')), 'no keystore was created');
  },
);

t.test('audit verify and cross-check: verdicts and exit codes', async (t) => {
  await initCrypto();
  const dir = mkdtempSync(join(tmpdir(), 'liaison-cli-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { world, a, b } = buildPair({ messages: 5, checkpointEvery: 6 });
  const fileA = join(dir, 'a.json');
  const fileB = join(dir, 'b.json');
  const bundleA = world.export(a);
  writeFileSync(fileA, serializeBundle(bundleA));
  writeFileSync(fileB, serializeBundle(world.export(b)));

  const ok = run(['audit', 'verify', fileA]);
  t.equal(ok.status, 0, 'a clean bundle: exit 0');
  t.match(ok.stdout, /VERIFIED/);
  const pinned = run([
    'audit',
    'verify',
    fileA,
    '--key',
    Buffer.from(a.key.publicKey.bytes).toString('base64'),
    '--json',
  ]);
  t.equal(pinned.status, 0);
  t.equal((JSON.parse(pinned.stdout) as { ok: boolean }).ok, true, '--json verdict');
  const wrongKey = run([
    'audit',
    'verify',
    fileA,
    '--key',
    Buffer.from(b.key.publicKey.bytes).toString('base64'),
  ]);
  t.equal(wrongKey.status, 1, 'another node pinned: exit 1');
  t.match(wrongKey.stdout, /pinned-key-mismatch/);

  const tampered = join(dir, 'tampered.json');
  writeFileSync(
    tampered,
    serializeBundle({
      ...bundleA,
      entries: bundleA.entries.filter((_, i) => i !== 2),
      to: bundleA.to - 1,
    }),
  );
  const bad = run(['audit', 'verify', tampered]);
  t.equal(bad.status, 1, 'a deleted entry: exit 1');
  t.match(bad.stdout, /FAILED/);

  writeFileSync(join(dir, 'junk.json'), '{"format":');
  t.equal(run(['audit', 'verify', join(dir, 'junk.json')]).status, 2, 'unreadable: exit 2');
  t.equal(run(['audit', 'verify']).status, 2, 'no file: usage, exit 2');

  const cross = run(['audit', 'cross-check', fileA, fileB]);
  t.equal(cross.status, 0, 'two clean bundles cross-check: exit 0');
});
