/**
 * Configuration: precedence (defaults < config.json < environment < flags), validation errors
 * naming the field, unknown settings refused.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ENV_VARS, loadConfig, resolveConfig } from '../../node/config.ts';
import { rejects } from '../helpers/assert.ts';

const dir = mkdtempSync(join(tmpdir(), 'liaison-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('defaults', async (t) => {
  const c = resolveConfig([{ dataDir: dir }]);
  t.equal(c.peer.port, 7800);
  t.equal(c.api.host, '127.0.0.1', 'the API stays on loopback by default');
  t.equal(c.peer.host, '0.0.0.0');
  t.equal(c.logLevel, 'info');
  t.equal(c.links.handshakeTimeoutMs, 10_000);
});

t.test('precedence: file < environment < flags', async (t) => {
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ name: 'From file', peerPort: 7900, apiPort: 7901, logLevel: 'warn' }),
  );
  const env = { LIAISON_DATA_DIR: dir, LIAISON_PEER_PORT: '8000', LIAISON_LOG_LEVEL: 'debug' };
  const c = loadConfig({ logLevel: 'error' }, env);
  t.equal(c.name, 'From file');
  t.equal(c.api.port, 7901, 'file');
  t.equal(c.peer.port, 8000, 'environment over file');
  t.equal(c.logLevel, 'error', 'flag over environment');
  t.equal(ENV_VARS.handshakeTimeoutMs, 'LIAISON_HANDSHAKE_TIMEOUT_MS');
});

t.test('bad values name their field', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ peerPort: 70_000 }, 'peerPort'],
    [{ apiPort: 'eighty' }, 'apiPort'],
    [{ logLevel: 'loud' }, 'logLevel'],
    [{ publicAddress: 'http://example.org' }, 'publicAddress'],
    [{ tlsCert: '/x.pem' }, 'tlsKey'],
    [{ handshakeTimeoutMs: 5 }, 'handshakeTimeoutMs'],
    [{ name: '' }, 'name'],
    [{ name: 'é'.repeat(65) }, 'name'],
    [{ publicAddress: 'ws://host/?x=1' }, 'publicAddress'],
    [{ publicAddress: `ws://${'a'.repeat(260)}:7800` }, 'publicAddress'],
  ];
  for (const [input, field] of cases) {
    try {
      resolveConfig([{ dataDir: dir }, input]);
      t.fail(`${field}: accepted`);
    } catch (err) {
      t.equal((err as { code: string }).code, 'LIAISON_ERR_CONFIG_INVALID', field);
      t.equal((err as { detail: { field: string } }).detail.field, field);
    }
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ peerPort: 7900, colour: 'blue' }));
  rejects(
    t,
    () => loadConfig({}, { LIAISON_DATA_DIR: dir }),
    'LIAISON_ERR_CONFIG_INVALID',
    'unknown setting in the file',
  );
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ dataDir: '/elsewhere' }));
  rejects(
    t,
    () => loadConfig({}, { LIAISON_DATA_DIR: dir }),
    'LIAISON_ERR_CONFIG_INVALID',
    'dataDir inside config.json',
  );
  writeFileSync(join(dir, 'config.json'), '{ not json');
  rejects(
    t,
    () => loadConfig({}, { LIAISON_DATA_DIR: dir }),
    'LIAISON_ERR_CONFIG_INVALID',
    'malformed file',
  );
});
