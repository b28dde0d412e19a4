/**
 * The error registry and docs/errors.md stay in sync: every code documented with its status,
 * no stale entry, no duplicate.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ERROR_CODES, ERRORS, LiaisonError } from '../../protocol/index.ts';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\|\s*`(LIAISON_ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map(
  (m) => ({ code: m[1]!, status: Number(m[2]) }),
);

t.test('every registry code is documented with its status', async (t) => {
  for (const code of ERROR_CODES) {
    const row = rows.find((r) => r.code === code);
    t.ok(row, `${code} is documented`);
    if (row) t.equal(row.status, ERRORS[code].status, `${code} status`);
  }
});

t.test('no stale or duplicate entry in the docs', async (t) => {
  const known = new Set<string>(ERROR_CODES);
  for (const r of rows) t.ok(known.has(r.code), `${r.code} is in the registry`);
  t.equal(new Set(rows.map((r) => r.code)).size, rows.length, 'no duplicates');
  t.equal(rows.length, ERROR_CODES.length);
});

t.test('codes are stable identifiers and errors carry them', async (t) => {
  for (const code of ERROR_CODES) t.match(code, /^LIAISON_ERR_[A-Z0-9_]+$/);
  const e = new LiaisonError('LIAISON_ERR_DECODE_LIMIT', 'body', { field: 'body', limit: 10 });
  t.equal(e.code, 'LIAISON_ERR_DECODE_LIMIT');
  t.equal(e.status, 413);
  t.same(e.detail, { field: 'body', limit: 10 });
  t.match(e.message, /exceeds its limit: body/);
});
