/**
 * STYLE.md habits 1 and 6, checked on the source: protocol/ does no I/O and imports nothing from
 * node/ or cli/; only protocol/crypto.ts imports libsodium or node:crypto.
 */
import { readdirSync, readFileSync } from 'node:fs';
import t from 'tap';

const root = new URL('../../', import.meta.url);

function files(dir: string): string[] {
  return readdirSync(new URL(dir, root), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) =>
      `${e.parentPath.slice(new URL(root).pathname.length)}/${e.name}`.replace(/^\/+/, ''),
    );
}

const importsOf = (file: string) =>
  [...readFileSync(new URL(file, root), 'utf8').matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map(
    (m) => m[1]!,
  );

t.test('protocol/ is pure', async (t) => {
  const list = files('protocol');
  t.ok(list.length > 10);
  for (const f of list) {
    for (const spec of importsOf(f)) {
      t.notOk(
        /^node:(fs|net|http|https|child_process|os|dgram|tls|worker_threads)/.test(spec),
        `${f} imports ${spec}`,
      );
      t.notOk(/(^|\/)(node|cli)\//.test(spec) || spec.startsWith('../'), `${f} imports ${spec}`);
      t.notOk(['ws', 'fastify', 'better-sqlite3', 'pino'].includes(spec), `${f} imports ${spec}`);
    }
  }
});

t.test('one crypto wrapper', async (t) => {
  for (const dir of ['protocol', 'node', 'cli']) {
    let list: string[] = [];
    try {
      list = files(dir);
    } catch {
      continue;
    }
    for (const f of list) {
      if (f === 'protocol/crypto.ts') continue;
      for (const spec of importsOf(f)) {
        t.notOk(
          spec === 'node:crypto' || spec === 'crypto' || spec.startsWith('libsodium'),
          `${f} imports ${spec}`,
        );
      }
    }
  }
});
