/**
 * Real nodes: wss with an operator's certificate and CA; static-key rotation announced to a
 * connected peer and learned by one that was offline; and no secret ever in the logs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Cluster, TEST_PASSPHRASE } from '../harness/cluster.ts';

/** A throwaway CA and a certificate for 127.0.0.1 signed by it (openssl, on loopback only). */
function makeCertificates(dir: string): { cert: string; key: string; ca: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=Liaison test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  run([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    'node.key',
    '-out',
    'node.csr',
  ]);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run([
    'x509',
    '-req',
    '-in',
    'node.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    'node.pem',
    '-extfile',
    'ext.cnf',
  ]);
  return { cert: join(dir, 'node.pem'), key: join(dir, 'node.key'), ca: join(dir, 'ca.pem') };
}

t.test('wss with an operator certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { cert, key, ca } = makeCertificates(dir);
  const env = { LIAISON_TLS_CERT: cert, LIAISON_TLS_KEY: key, LIAISON_TLS_CA: ca };
  const c = await Cluster.create(t, 2, { env });
  const [a, b] = [c.node(0), c.node(1)];
  const info = (await a.api('GET', '/v1/node')).body;
  t.match(info.publicAddress as string, /^wss:\/\/127\.0\.0\.1:\d+$/);
  await c.pair(a, b);
  await c.waitFor(async () => (await a.linkUp(b)) && (await b.linkUp(a)), 'link up over wss');
  // A plain ws:// client cannot talk to a wss peer port.
  const plain = await fetch(`http://127.0.0.1:${a.peerPort}/liaison/v1`).then(
    () => 'answered',
    () => 'refused',
  );
  t.equal(plain, 'refused', 'no cleartext on the TLS port');
});

t.test('static key rotation reaches connected and offline peers', async (t) => {
  const c = await Cluster.create(t, 3);
  const [a, b, d] = [c.node(0), c.node(1), c.node(2)];
  await c.pair(a, b);
  await c.pair(a, d);
  await c.waitFor(async () => (await a.linkUp(b)) && (await a.linkUp(d)), 'links up');
  await d.stop();
  const rotated = await a.api('POST', '/v1/keys/rotate');
  t.equal(rotated.status, 200);
  t.equal(rotated.body.keyRecordSerial, 2);
  const serialAt = async (node: typeof b) =>
    (
      (await node.api('GET', '/v1/peers')).body.peers as {
        nodeId: string;
        keyRecordSerial: number;
      }[]
    ).find((p) => p.nodeId === a.nodeId)?.keyRecordSerial;
  await c.waitFor(
    async () => (await serialAt(b)) === 2,
    'b learned the new key record over the live link',
  );
  // d was offline: it still knows serial 1 and dials a's old static key; a accepts handshakes to
  // its previous key, and d learns the new record from a's hello.
  await d.start();
  await c.waitFor(
    async () => (await d.linkUp(a)) && (await serialAt(d)) === 2,
    'd reconnected and learned the new key',
    20_000,
  );
  // After a restarts, everyone reaches it with the new key.
  await a.stop();
  await a.start();
  await c.waitFor(
    async () => (await a.linkUp(b)) && (await a.linkUp(d)),
    'links back after a restart with the rotated key',
    20_000,
  );
});

t.test('no secret in any log line', async (t) => {
  const c = await Cluster.create(t, 2);
  const [a, b] = [c.node(0), c.node(1)];
  const inv = await a.api('POST', '/v1/invitations', { label: 'secret-test' });
  const text = inv.body.invitation as string;
  await b.api('POST', '/v1/invitations/accept', { invitation: text });
  await c.waitFor(async () => a.linkUp(b), 'link up');
  await a.api('POST', '/v1/keys/rotate');
  await a.api('GET', '/v1/node', undefined, 'lt_wrong-token');
  const all = JSON.stringify([...a.logs, ...b.logs]);
  t.ok(all.length > 200, 'there are logs to search');
  for (const [label, secret] of [
    ['passphrase', TEST_PASSPHRASE],
    ['API token a', a.token],
    ['API token b', b.token],
    ['invitation', text.slice(20, 80)],
    ['wrong token', 'lt_wrong-token'],
  ] as const) {
    t.notOk(all.includes(secret), `${label} never logged`);
  }
});
