/**
 * `liaison audit verify` and `liaison audit cross-check` (docs/cli.md §Audit): the offline
 * verifier, for an auditor who has only the exported bundles and the pinned identity keys. No
 * node, no network, no database.
 *
 *   liaison audit verify BUNDLE [--key KEY]... [--witness KEY]... [--json]
 *   liaison audit cross-check BUNDLE_A BUNDLE_B [--key-a KEY]... [--key-b KEY]...
 *                             [--witness KEY]... [--json]
 *
 * KEY is a node's identity key as base64 (32 bytes) or its C2SP verifier key
 * (`liaison/ln…+hash+key`, as `liaison audit status` prints it; for `--witness`, its cosigner
 * verifier key too). Exit codes: 0 nothing wrong (warnings and notes may be printed), 1 at least
 * one finding of severity error, 2 unreadable input or a usage error.
 *
 * The human output shows what bundles say (peer names, origins, error texts, notes) with every
 * control character escaped, so that a bundle cannot move the cursor, hide lines or forge a
 * line of its own; the verdict line is printed last, from constants and counts only.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initCrypto, isLiaisonError, parseBundle } from '../protocol/index.ts';
import type { Bundle } from '../protocol/index.ts';
import { analyseBundle, parsePinnedKey, parseWitnessKey } from '../protocol/audit-verify.ts';
import type { Finding, PinnedKey, Verdict } from '../protocol/audit-verify.ts';
import { crossCheck } from '../protocol/audit-cross-check.ts';
import type { CrossReport } from '../protocol/audit-cross-check.ts';

/** Evidence values longer than this are shortened in the human output (never in --json). */
const EVIDENCE_TEXT_CHARS = 72;

class InputError extends Error {}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/**
 * C0 and C1 controls, DEL, and the Unicode line separators and bidirectional controls that
 * reorder or break what a terminal shows.
 */
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every control character written as an escape (`\x1b`, `\u{202e}`): one printed
 * value stays on its line and cannot drive the terminal. Newlines are escaped too: only the CLI
 * itself starts a line.
 */
export function safe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
  });
}

function readBundle(path: string): Bundle {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return parseBundle(text);
  } catch (err) {
    if (isLiaisonError(err)) throw new InputError(`${path}: ${err.code}: ${err.message}`);
    throw err;
  }
}

/**
 * JSON text with DEL, C1 and the other characters of UNSAFE that JSON.stringify leaves raw
 * written as \u escapes (C0 controls it escapes itself): the same JSON value, safe to print.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** An evidence value on one line, shortened, escaped. */
function shorten(v: unknown): string {
  return safe(shortenRaw(v));
}

function shortenRaw(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'object' && !Array.isArray(v)) {
    // {index: 64, checkpointSize: 66} reads as "index 64, checkpointSize 66".
    return Object.entries(v)
      .map(
        ([k, x]) => `${k} ${typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x)}`,
      )
      .join(', ');
  }
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  if (s.length <= EVIDENCE_TEXT_CHARS) return s;
  return `${s.slice(0, EVIDENCE_TEXT_CHARS - 1)}… (${s.length} chars)`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function tally(findings: readonly { severity: string }[]): string {
  const e = findings.filter((f) => f.severity === 'error').length;
  const w = findings.filter((f) => f.severity === 'warning').length;
  const i = findings.filter((f) => f.severity === 'info').length;
  return `${plural(e, 'error')}, ${plural(w, 'warning')}, ${plural(i, 'note')}`;
}

function printFindings(findings: readonly (Finding<string> & { direction?: string })[]): void {
  const order = { error: 0, warning: 1, info: 2 } as const;
  const sorted = [...findings].sort((a, b) => order[a.severity] - order[b.severity]);
  for (const f of sorted) {
    const dir = f.direction === undefined ? '' : ` [${f.direction}]`;
    out(`  ${f.severity.toUpperCase().padEnd(7)} ${safe(f.code)}${dir}: ${safe(f.message)}`);
    for (const [k, v] of Object.entries(f.evidence)) out(`          ${safe(k)}: ${shorten(v)}`);
  }
}

function describe(v: Verdict, bundle: Bundle, title: string): void {
  out(safe(title));
  out(`  node:         ${safe(v.nodeId)}`);
  out(`  origin:       ${safe(v.origin)}`);
  out(
    `  range:        entries ${v.range.from} to ${v.range.to} (${v.entries} present` +
      `${bundle.from > 0 ? `, earlier ones summarised by a ${bundle.frontier.length}-hash frontier` : ''})`,
  );
  out(
    `  checked:      node ID against its key history; ${plural(v.checkpoints, 'checkpoint')} ` +
      `signed by the node; Merkle roots recomputed from every entry; ` +
      `${plural(bundle.consistency.length, 'consistency proof')}; ${plural(v.receipts, 'valid receipt')} ` +
      `of ${bundle.receipts.length}; the state snapshot against the log; ` +
      `${plural(bundle.witnessed.length, 'witnessed checkpoint')}; ${plural(bundle.evidence.length, 'evidence item')}`,
  );
  if (v.cosignatures.length === 0)
    out('  cosigned by:  nobody (no valid cosignature of a known peer)');
  for (const c of v.cosignatures) {
    out(
      `  cosigned by:  ${safe(c.name)} (${safe(c.witness)}): ${plural(c.count, 'checkpoint')}, ` +
        `latest at size ${c.latestSize}; ` +
        (c.pinned
          ? 'pinned witness key'
          : 'identity not checked: its key comes from the bundle (pin it with --witness)'),
    );
  }
}

function pinnedLine(v: Verdict, keys: readonly PinnedKey[], flag: string): string {
  if (keys.length === 0)
    return `  pinned key:   none given: the bundle is checked against its own key only (use ${flag})`;
  return `  pinned key:   ${v.findings.some((f) => f.code === 'pinned-key-mismatch') ? 'NO MATCH' : 'matches'}`;
}

function pinnedKeys(values: readonly string[] | undefined, flag: string): PinnedKey[] {
  const keys: PinnedKey[] = [];
  for (const k of values ?? []) {
    try {
      if (flag === '--witness') parseWitnessKey(k);
      else parsePinnedKey(k);
    } catch (err) {
      throw new InputError(`${flag} ${k}: ${(err as Error).message}`);
    }
    keys.push(k);
  }
  return keys;
}

async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      key: { type: 'string', multiple: true },
      witness: { type: 'string', multiple: true },
    },
  });
  if (positionals.length !== 1)
    throw new InputError(
      'usage: liaison audit verify BUNDLE [--key KEY]... [--witness KEY]... [--json]',
    );
  const keys = pinnedKeys(values.key, '--key');
  const witnesses = pinnedKeys(values.witness, '--witness');
  const bundle = readBundle(positionals[0]!);
  const facts = analyseBundle(bundle, {
    now: Date.now(),
    ...(keys.length > 0 ? { pinnedIdentityKeys: keys } : {}),
    ...(witnesses.length > 0 ? { pinnedWitnessKeys: witnesses } : {}),
  });
  const v = facts.verdict;
  if (values.json === true) {
    out(safeJson(v));
  } else {
    describe(v, bundle, `Audit bundle ${positionals[0]!}`);
    out(pinnedLine(v, keys, '--key'));
    if (v.findings.length > 0) {
      out('Findings:');
      printFindings(v.findings);
    }
    out(
      v.ok ? `Verdict: VERIFIED (${tally(v.findings)})` : `Verdict: FAILED (${tally(v.findings)})`,
    );
  }
  return v.ok ? 0 : 1;
}

function describeCross(
  r: CrossReport,
  a: Bundle,
  b: Bundle,
  paths: string[],
  keysA: readonly PinnedKey[],
  keysB: readonly PinnedKey[],
): void {
  describe(r.a, a, `A: audit bundle ${paths[0]!}`);
  out(pinnedLine(r.a, keysA, '--key-a'));
  out(`  verdict:      ${r.a.ok ? 'verified' : 'FAILED'} (${tally(r.a.findings)})`);
  describe(r.b, b, `B: audit bundle ${paths[1]!}`);
  out(pinnedLine(r.b, keysB, '--key-b'));
  out(`  verdict:      ${r.b.ok ? 'verified' : 'FAILED'} (${tally(r.b.findings)})`);
  out(
    `Messages: ${r.messages.aToB} from A to B, ${r.messages.bToA} from B to A, each checked ` +
      `against the sender's log, the receiver's signed receipt, the receiver's log and inbox`,
  );
  const own = [
    ...r.a.findings.map((f) => ({ ...f, message: `A: ${f.message}` })),
    ...r.b.findings.map((f) => ({ ...f, message: `B: ${f.message}` })),
  ];
  if (own.length > 0) {
    out('Findings in each bundle:');
    printFindings(own);
  }
  if (r.findings.length > 0) {
    out('Findings between the bundles:');
    printFindings(r.findings);
  }
  out(
    r.ok
      ? `Verdict: CONSISTENT (${tally(r.findings)})`
      : `Verdict: FAILED (${tally([...own, ...r.findings])})`,
  );
}

async function cross(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      'key-a': { type: 'string', multiple: true },
      'key-b': { type: 'string', multiple: true },
      witness: { type: 'string', multiple: true },
    },
  });
  if (positionals.length !== 2)
    throw new InputError(
      'usage: liaison audit cross-check BUNDLE_A BUNDLE_B [--key-a KEY]... [--key-b KEY]... ' +
        '[--witness KEY]... [--json]',
    );
  const keysA = pinnedKeys(values['key-a'], '--key-a');
  const keysB = pinnedKeys(values['key-b'], '--key-b');
  const witnesses = pinnedKeys(values.witness, '--witness');
  const a = readBundle(positionals[0]!);
  const b = readBundle(positionals[1]!);
  const report = crossCheck(a, b, {
    now: Date.now(),
    ...(keysA.length > 0 ? { pinnedA: keysA } : {}),
    ...(keysB.length > 0 ? { pinnedB: keysB } : {}),
    ...(witnesses.length > 0 ? { pinnedWitnesses: witnesses } : {}),
  });
  if (values.json === true) out(safeJson(report));
  else describeCross(report, a, b, positionals, keysA, keysB);
  return report.ok ? 0 : 1;
}

/**
 * Runs `liaison audit verify` or `cross-check` with the arguments after the verb; prints the
 * verdict and returns the exit code (0 clean, 1 error findings, 2 unreadable input or usage).
 */
export async function auditOffline(
  verb: 'verify' | 'cross-check',
  args: string[],
): Promise<number> {
  await initCrypto();
  try {
    return verb === 'verify' ? await verify(args) : await cross(args);
  } catch (err) {
    if (
      err instanceof InputError ||
      (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`liaison audit ${verb}: ${safe(err.message)}\n`);
      return 2;
    }
    throw err;
  }
}
