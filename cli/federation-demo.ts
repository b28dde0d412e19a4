/**
 * `liaison demo`: a real federation on this machine. Three authorities run as three separate
 * `liaison start` processes (loopback only, ephemeral ports, a temporary directory), pair through
 * invitations, and live the night-duty story over real links: an urgent preservation request
 * with its signed receipt and acknowledgement, a JIT update to two authorities, and a node outage
 * that loses nothing. Everything goes through each node's local HTTP API, as operators' tools do.
 *
 * On a terminal the nodes keep running afterwards, so the CLI can be tried against them, until
 * Ctrl-C; otherwise (CI, a pipe, --exit) everything stops and is removed as soon as the story ends.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LiaisonError, parseBundle, verifyDisclosure } from '../protocol/index.ts';
import { crossCheck } from '../protocol/audit-cross-check.ts';
import { verifyBundle } from '../protocol/audit-verify.ts';
import type { ErrorCode } from '../protocol/index.ts';
import { systemClock } from '../node/clock.ts';
import { initNode, readApiToken, readRuntime, RUNTIME_FILE } from '../node/node.ts';
import { call } from './client.ts';
import type { Json, Target } from './client.ts';

/** Fixed, because the demo's keystores are thrown away with its directory. */
const PASSPHRASE = 'liaison demo passphrase: not a secret';
const LOG_FILE = 'node.log';
const POLL_MS = 25;
/** Generous for a loaded CI machine; on a laptop every step takes milliseconds. */
const WAIT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
/** How long the event stream is read before its lines are printed. */
const EVENT_READ_MS = 300;
const LOG_TAIL_LINES = 15;
const BODY_WIDTH = 80;

/** The `liaison` next to this file: main.js once built, main.ts when run from sources (tests). */
const MAIN = fileURLToPath(
  new URL(`./main${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

interface Authority {
  readonly label: string;
  readonly name: string;
  readonly officer: string;
  readonly dir: string;
}

const PARIS: Authority = {
  label: 'Paris',
  name: "Paris prosecutor's office (PNAT)",
  officer: 'duty-magistrate',
  dir: 'paris',
};
const RABAT: Authority = {
  label: 'Rabat',
  name: 'Rabat central authority',
  officer: 'duty-officer',
  dir: 'rabat',
};
const THE_HAGUE: Authority = {
  label: 'The Hague',
  name: 'The Hague 24/7 desk',
  officer: 'desk-officer',
  dir: 'the-hague',
};

class DemoNode {
  proc: ChildProcess | null = null;
  nodeId = '';
  fingerprint = '';
  admin: Target = { base: '', token: '' };
  officer: Target = { base: '', token: '' };

  constructor(
    readonly role: Authority,
    readonly dataDir: string,
  ) {}

  get label(): string {
    return this.role.label;
  }

  get logFile(): string {
    return join(this.dataDir, LOG_FILE);
  }
}

interface Story {
  readonly say: (line: string) => void;
  readonly signal: AbortSignal;
  readonly t0: number;
  readonly paris: DemoNode;
  readonly rabat: DemoNode;
  readonly hague: DemoNode;
  readonly nodes: readonly DemoNode[];
}

export interface FederationDemoOptions {
  readonly say: (line: string) => void;
  /** Where failures are explained (the nodes' log tails): standard error. */
  readonly warn: (line: string) => void;
  /** Keep the nodes running after the story until SIGINT (a terminal); else stop at once. */
  readonly keepRunning: boolean;
}

/** 'interrupted': a signal stopped the story before its end (the caller exits 130). */
export async function runFederationDemo(o: FederationDemoOptions): Promise<'done' | 'interrupted'> {
  const root = mkdtempSync(join(tmpdir(), 'liaison-demo-'));
  const nodeOf = (a: Authority): DemoNode => new DemoNode(a, join(root, a.dir));
  const [paris, rabat, hague] = [nodeOf(PARIS), nodeOf(RABAT), nodeOf(THE_HAGUE)];
  const nodes = [paris, rabat, hague];
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  // A reader that went away (`liaison demo | head`) ends the demo as a signal does. The listener
  // stays: every later write to the closed pipe fails the same way, and must not crash us.
  process.stdout.on('error', onSignal);
  // Last resort, should this process die of an uncaught error: no node outlives the demo.
  const onExit = (): void => {
    for (const n of nodes) n.proc?.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  try {
    const story: Story = {
      say: (line) => {
        // After a signal the story's remaining steps only fail against stopping nodes: unsaid.
        if (!abort.signal.aborted) o.say(line);
      },
      signal: abort.signal,
      t0: Date.now(),
      paris,
      rabat,
      hague,
      nodes,
    };
    const urgent = await tell(story, root);
    if (o.keepRunning) {
      printCliGuide(story, root, urgent);
      if (!abort.signal.aborted) await once(abort.signal, 'abort');
    }
    return 'done';
  } catch (err) {
    if (abort.signal.aborted) {
      o.say('\nInterrupted.');
      return 'interrupted';
    }
    for (const n of nodes) printLogTail(n, o.warn);
    throw err;
  } finally {
    await Promise.all(nodes.map(stopNode));
    rmSync(root, { recursive: true, force: true });
    process.off('exit', onExit);
    for (const s of signals) process.off(s, onSignal);
    o.say(`\nStopped the three nodes and removed ${root}.`);
  }
}

/** The story; resolves with the urgent request's message ID, for the CLI guide. */
async function tell(s: Story, root: string): Promise<string> {
  s.say('Liaison federation demo: three authorities, three real nodes, no central server.');
  s.say(`Everything runs on this machine, on 127.0.0.1 only, in ${root}.`);
  await startFederation(s);
  await pairAll(s);
  await addOfficers(s);
  const urgent = await urgentRequest(s);
  await jitUpdate(s);
  await outage(s);
  await printEvents(s, s.paris);
  await audit(s, urgent);
  return urgent;
}

// --- the nodes ---

async function startFederation(s: Story): Promise<void> {
  step(s, 'Each authority initialises its node: keys, configuration, database, admin API token.');
  for (const n of s.nodes) {
    await initNode({
      dataDir: n.dataDir,
      passphrase: PASSPHRASE,
      name: n.role.name,
      publicAddress: null,
      peerPort: 0,
      apiPort: 0,
      // The cheapest Argon2id parameters: the keystores live for a minute. Never for a real node.
      kdf: 'test',
      clock: systemClock,
    });
  }
  await Promise.all(s.nodes.map((n) => startNode(n, s.signal)));
  for (const n of s.nodes) {
    s.say(`  ${n.role.name}`);
    s.say(`    node ID ${n.nodeId}, pid ${n.proc?.pid ?? '?'}, log ${n.logFile}`);
  }
}

/**
 * Starts `liaison start` for the node and resolves once it wrote its runtime file and its API
 * answers. The passphrase goes through the environment, as an operator's service manager would.
 */
async function startNode(n: DemoNode, signal: AbortSignal): Promise<void> {
  // A runtime file left by a killed run would point at a dead port.
  rmSync(join(n.dataDir, RUNTIME_FILE), { force: true });
  // The node's own log lines go to its log file; the demo's screen tells the story.
  const log = openSync(n.logFile, 'a', 0o600);
  let proc: ChildProcess;
  try {
    proc = spawn(
      process.execPath,
      [...process.execArgv, MAIN, 'start', '--data-dir', n.dataDir, '--peer-host', '127.0.0.1'],
      { env: demoEnv(), stdio: ['ignore', log, log] },
    );
  } finally {
    closeSync(log);
  }
  n.proc = proc;
  // Without a listener, a failed spawn would crash the demo and orphan the other nodes.
  let spawnError: Error | null = null;
  proc.on('error', (err) => (spawnError = err));
  const runtime = await waitFor(
    `${n.label}'s node to start`,
    async () => {
      if (spawnError !== null) throw spawnError;
      if (proc.exitCode !== null || proc.signalCode !== null) throw startFailure(n);
      return readRuntime(n.dataDir);
    },
    signal,
  );
  const base = `http://${runtime.apiHost}:${runtime.apiPort}`;
  n.admin = { base, token: readApiToken(n.dataDir) };
  if (n.officer.token !== '') n.officer = { base, token: n.officer.token };
  const me = await call(n.admin, 'GET', '/v1/node');
  n.nodeId = String(me.nodeId);
  n.fingerprint = String(me.fingerprint);
}

/**
 * The operator's environment minus every LIAISON_* setting: a demo node must not pick up the
 * real node's ports, data directory or log level from the shell it was started in.
 */
function demoEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('LIAISON_')),
  );
  return { ...env, LIAISON_PASSPHRASE: PASSPHRASE };
}

/** The error a node printed before exiting (`liaison: CODE: ...`), keeping its code. */
function startFailure(n: DemoNode): LiaisonError {
  const printed = [...readLog(n).matchAll(/^liaison: (LIAISON_ERR_[A-Z_]+): /gm)].at(-1)?.[1];
  const code = (printed ?? 'LIAISON_ERR_INTERNAL') as ErrorCode;
  return new LiaisonError(code, `${n.label}'s node exited while starting (its log is above)`);
}

/** SIGTERM, as a service manager stops a node; SIGKILL if it has not exited after a grace time. */
async function stopNode(n: DemoNode): Promise<void> {
  const proc = n.proc;
  n.proc = null;
  if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function readLog(n: DemoNode): string {
  try {
    return readFileSync(n.logFile, 'utf8');
  } catch {
    return '';
  }
}

function printLogTail(n: DemoNode, warn: (line: string) => void): void {
  const log = readLog(n).trimEnd();
  if (log === '') return;
  const lines = log.split('\n').slice(-LOG_TAIL_LINES);
  warn(`--- last lines of ${n.label}'s log (${n.logFile}) ---`);
  for (const line of lines) warn(line);
}

// --- pairing and accounts ---

async function pairAll(s: Story): Promise<void> {
  const { paris, rabat, hague } = s;
  for (const [a, b] of [
    [paris, rabat],
    [paris, hague],
    [rabat, hague],
  ] as const) {
    await pair(s, a, b);
  }
  await waitFor(
    'every link to come up',
    async () => ((await allLinksUp(s.nodes)) ? true : null),
    s.signal,
  );
  step(s, 'All three links are up: WebSocket + Noise, both ends authenticated by pinned keys.');
}

/** `a` invites, `b` accepts; then both operators compare fingerprints over the phone. */
async function pair(s: Story, a: DemoNode, b: DemoNode): Promise<void> {
  const inv = await call(a.admin, 'POST', '/v1/invitations', { label: `for ${b.role.name}` });
  const text = String(inv.invitation);
  step(s, `${a.label} creates a one-time invitation for ${b.label} and hands it over out of band:`);
  s.say(
    `  ${text.slice(0, 40)}… (${text.length} characters, valid until ${String(inv.expiresAt)})`,
  );
  await call(b.admin, 'POST', '/v1/invitations/accept', { invitation: text });
  const seenByB = await pinnedFingerprint(s, b, a);
  const seenByA = await pinnedFingerprint(s, a, b);
  s.say(`  ${b.label} accepts; on the phone, each operator reads out their own fingerprint:`);
  for (const [who, own, other, seen] of [
    [a, a.fingerprint, b, seenByB],
    [b, b.fingerprint, a, seenByA],
  ] as const) {
    if (own !== seen)
      throw new LiaisonError('LIAISON_ERR_NODE_ID_MISMATCH', `${who.label}'s fingerprint differs`);
    s.say(`    ${who.label.padEnd(9)} reads  ${own}`);
    s.say(`    ${other.label.padEnd(9)} sees   ${seen}  match`);
  }
}

/** The fingerprint `viewer` pinned for `peer`, once pairing has recorded it. */
async function pinnedFingerprint(s: Story, viewer: DemoNode, peer: DemoNode): Promise<string> {
  return waitFor(
    `${viewer.label} to pin ${peer.label}`,
    async () => {
      const p = (await peersOf(viewer)).find((x) => x.nodeId === peer.nodeId);
      return p === undefined ? null : String(p.fingerprint);
    },
    s.signal,
  );
}

async function peersOf(n: DemoNode): Promise<Json[]> {
  return (await call(n.admin, 'GET', '/v1/peers')).peers as Json[];
}

async function allLinksUp(nodes: readonly DemoNode[]): Promise<boolean> {
  for (const n of nodes) {
    const peers = await peersOf(n);
    if (peers.length !== nodes.length - 1 || peers.some((p) => p.link !== 'up')) return false;
  }
  return true;
}

async function linkDown(from: DemoNode, to: DemoNode): Promise<true | null> {
  return (await peersOf(from)).some((p) => p.nodeId === to.nodeId && p.link === 'down')
    ? true
    : null;
}

/** Only officers send and read messages (admins cannot): each node gets one, with a token. */
async function addOfficers(s: Story): Promise<void> {
  step(s, 'Each administrator creates a duty officer account (role officer) and issues a token:');
  for (const n of s.nodes) {
    await call(n.admin, 'POST', '/v1/users', { name: n.role.officer, role: 'officer' });
    const tok = await call(n.admin, 'POST', `/v1/users/${n.role.officer}/tokens`, {
      label: 'demo',
    });
    n.officer = { base: n.admin.base, token: String(tok.token) };
    s.say(`  ${n.label.padEnd(9)} ${n.role.officer}`);
  }
}

// --- the story ---

async function urgentRequest(s: Story): Promise<string> {
  const { paris, rabat } = s;
  step(s, `Night duty in Paris: the duty magistrate sends an URGENT preservation request to`);
  s.say(`  Rabat's 24/7 mailbox. The provider deletes its logs after 7 days.`);
  const id = await send(paris, {
    to: [{ nodeId: rabat.nodeId, mailbox: '24-7' }],
    subject: 'Preservation request: subscriber and traffic data, account @example-handle',
    body: 'Please preserve all subscriber, traffic and content data for the account below pending an MLA request. Suspected attack planning.',
    language: 'en',
    caseRef: 'FR-PNAT-2026-0412',
    priority: 'urgent',
    handling: 'H2',
    ttlSeconds: 8 * 3600,
    form: {
      formId: 'preservation-request',
      formVersion: 1,
      fields: {
        provider: 'Example Social Network Ltd',
        account: '@example-handle',
        'data-categories': 'subscriber, traffic, content',
        period: '2026-10-01/2026-11-22',
        'legal-basis': 'Budapest Convention art. 29',
      },
    },
  });
  s.say(`  message ${id}: urgent, handling H2, valid 8 hours`);
  s.say(`  signed by Paris, encrypted for Rabat only, queued in Paris's outbox`);
  const st = await waitStatus(s, paris, id, [[rabat, 'delivered']]);
  const r = recipient(st, rabat);
  const ms = Date.parse(String(r.deliveredAt)) - Date.parse(String(st.createdAt));
  step(s, `Paris's screen: delivered to Rabat ${ms} ms after sending.`);
  s.say(
    `  Rabat's signed receipt names the envelope hash and Rabat's audit-log index ${String(r.remoteLogIndex)}.`,
  );
  await rabatReads(s, id);
  await waitStatus(s, paris, id, [[rabat, 'acknowledged']]);
  step(s, `Paris's screen: acknowledged by Rabat. The magistrate can stop calling Rabat.`);
  return id;
}

async function rabatReads(s: Story, id: string): Promise<void> {
  const { paris, rabat } = s;
  step(s, `Rabat's duty officer opens the 24/7 inbox:`);
  const inbox = await call(rabat.officer, 'GET', '/v1/inbox?mailbox=24-7');
  for (const m of inbox.messages as Json[]) {
    const unread = m.readAt === null ? ', unread' : '';
    s.say(
      `  ${String(m.priority).toUpperCase()}  ${String(m.messageId)}  from ${nameOf(s, m.sender)}, by ${String(m.author)}${unread}`,
    );
  }
  const msg = await call(rabat.officer, 'GET', `/v1/messages/${id}`);
  const c = msg.content as Json;
  const form = c.form as { formId: string; fields: Record<string, string> };
  step(s, `Rabat reads it (the consultation is recorded in Rabat's audit log):`);
  s.say(`  Case     ${String(c.caseRef)}`);
  s.say(`  Subject  ${String(c.subject)}`);
  for (const [i, line] of wrap(String(c.body), BODY_WIDTH).entries())
    s.say(`  ${i === 0 ? 'Body' : ''.padEnd(4)}     ${line}`);
  s.say(`  Form     ${form.formId}`);
  for (const [k, v] of Object.entries(form.fields)) s.say(`    ${k}: ${v}`);
  await call(rabat.officer, 'POST', `/v1/messages/${id}/ack`);
  s.say(`  Rabat acknowledges: a signed acknowledgement travels back to ${paris.label}.`);
}

async function jitUpdate(s: Story): Promise<void> {
  const { paris, rabat, hague } = s;
  step(s, 'Paris sends a JIT update to Rabat and The Hague: one envelope, two recipients.');
  const id = await send(paris, {
    to: [
      { nodeId: rabat.nodeId, mailbox: 'jit-ecto-2026' },
      { nodeId: hague.nodeId, mailbox: 'jit-ecto-2026' },
    ],
    subject: 'JIT update: coordination meeting 12 January',
    body: 'New financial leads; coordinated searches to be planned at the meeting.',
    language: 'en',
    caseRef: 'JIT-2026-007',
    handling: 'H2',
    form: {
      formId: 'jit-update',
      formVersion: 1,
      fields: { summary: 'New financial leads', 'next-steps': 'Coordinated searches' },
    },
  });
  await waitStatus(s, paris, id, [
    [rabat, 'delivered'],
    [hague, 'delivered'],
  ]);
  await call(hague.officer, 'POST', `/v1/messages/${id}/ack`);
  const st = await waitStatus(s, paris, id, [
    [rabat, 'delivered'],
    [hague, 'acknowledged'],
  ]);
  s.say(`  The Hague acknowledges; Rabat has not read it yet. Paris tracks each recipient:`);
  for (const n of [rabat, hague]) {
    const r = recipient(st, n);
    s.say(
      `    ${n.label.padEnd(9)} ${String(r.status).padEnd(12)} (its log index ${String(r.remoteLogIndex)})`,
    );
  }
}

async function outage(s: Story): Promise<void> {
  const { paris, hague } = s;
  step(s, `The Hague's node goes down for maintenance (SIGTERM).`);
  await stopNode(hague);
  await waitFor('Paris to see the link down', () => linkDown(paris, hague), s.signal);
  const id = await send(paris, {
    to: [{ nodeId: hague.nodeId, mailbox: '24-7' }],
    subject: 'Preservation confirmed by Rabat; MLA request follows within 30 days',
    body: 'For your records: Rabat has preserved the data. The formal MLA request follows.',
    caseRef: 'FR-PNAT-2026-0412',
  });
  s.say(`  Paris sends ${id} to The Hague anyway.`);
  // Long enough for a live link to deliver many times over: the status shows the outage.
  await sleep(1000, undefined, { signal: s.signal });
  const before = recipient(await status(paris, id), hague);
  s.say(`  One second later its status is still '${String(before.status)}'. Paris keeps the`);
  s.say('  sealed envelope and hands it over when the link is back.');
  const restartedAt = Date.now();
  await startNode(hague, s.signal);
  step(
    s,
    `The Hague's node is back (pid ${hague.proc?.pid ?? '?'}); it dials its peers and announces its new address.`,
  );
  await waitStatus(s, paris, id, [[hague, 'delivered']]);
  const inbox = await call(hague.officer, 'GET', '/v1/inbox?mailbox=24-7');
  const arrived = (inbox.messages as Json[]).some((m) => m.messageId === id);
  step(
    s,
    `Delivered ${Date.now() - restartedAt} ms after the restart; The Hague's inbox ${arrived ? 'has it' : 'does not show it yet'}. Nothing was lost.`,
  );
}

/**
 * The supervisory authority's auditor: Paris and Rabat sign checkpoints of their audit logs, each
 * cosigned by its peers; both logs are exported, verified offline and joined message by message;
 * an admin discloses the urgent request's content to the auditor, who checks it against the
 * sender's signature.
 */
async function audit(s: Story, urgent: string): Promise<void> {
  const { paris, rabat } = s;
  step(s, 'Months later, the data protection supervisor audits the exchange. Paris and Rabat each');
  s.say('  sign a checkpoint of their audit log (an RFC 6962 Merkle tree head, C2SP format), and');
  s.say('  each peer verifies it is consistent with what it saw before, then cosigns it:');
  for (const n of [paris, rabat]) {
    const cp = await call(n.admin, 'POST', '/v1/audit/checkpoints');
    const peers = s.nodes.filter((p) => p !== n).map((p) => p.nodeId);
    const cosigned = await waitFor(
      `${n.label}'s checkpoint to be cosigned`,
      async () => {
        const now = (await call(n.admin, 'GET', '/v1/audit')).checkpoint as Json | null;
        const by = ((now?.cosignatures as Json[] | undefined) ?? []).map((c) => c.witness);
        return peers.every((p) => by.includes(p)) ? by : null;
      },
      s.signal,
    );
    s.say(
      `  ${n.label.padEnd(9)} ${String(cp.size).padStart(3)} entries, cosigned by ${cosigned.map((w) => nameOf(s, w)).join(' and ')}`,
    );
  }
  const users = [paris, rabat].map((n) =>
    call(n.admin, 'POST', '/v1/users', { name: 'supervisor', role: 'auditor' }).then(() =>
      call(n.admin, 'POST', '/v1/users/supervisor/tokens', { label: 'audit 2026' }),
    ),
  );
  const [parisAuditor, rabatAuditor] = (await Promise.all(users)).map((j, i) => ({
    base: [paris, rabat][i]!.admin.base,
    token: String(j.token),
  }));
  step(s, 'The auditor (role auditor: logs and metadata, never content) exports both logs:');
  const bundles = [];
  for (const [n, who] of [
    [paris, parisAuditor!],
    [rabat, rabatAuditor!],
  ] as const) {
    const bundle = parseBundle(await call(who, 'POST', '/v1/audit/export', {}));
    const v = verifyBundle(bundle, { now: Date.now() });
    s.say(
      `  ${n.label.padEnd(9)} ${v.entries} entries, ${v.checkpoints} signed checkpoints, ${v.receipts} signed receipts: ${v.ok ? 'VERIFIED' : 'PROBLEMS FOUND'}`,
    );
    for (const f of v.findings.filter((x) => x.severity === 'error'))
      s.say(`    ${f.code}: ${f.message}`);
    bundles.push(bundle);
  }
  const report = crossCheck(bundles[0]!, bundles[1]!, { now: Date.now() });
  const faults = report.findings.filter((f) => f.severity === 'error');
  s.say(
    `  Joined: ${report.messages.aToB} message(s) Paris → Rabat and ${report.messages.bToA} Rabat → Paris; every one`,
  );
  s.say(
    faults.length === 0
      ? '  logged as sent by one side is logged as received by the other, with the same hash.'
      : `  NOT: ${faults.map((f) => f.code).join(', ')}`,
  );
  step(s, `Paris's admin discloses the urgent request's content to the auditor, with a reason:`);
  const d = await call(paris.admin, 'POST', '/v1/audit/disclosures', {
    messageId: urgent,
    auditor: 'supervisor',
    justification: 'Supervisory audit 2026-11: lawfulness of an urgent transfer to Rabat',
  });
  const pkg = await call(parisAuditor!, 'GET', `/v1/audit/disclosures/${String(d.id)}`);
  s.say(
    `  disclosure ${String(d.id)}, recorded at index ${String(d.logIndex)} of Paris's log. The auditor`,
  );
  s.say('  checks offline that the content key opens exactly what Paris signed');
  s.say('  (as liaison audit verify-disclosure FILE does):');
  const v = verifyDisclosure(pkg);
  s.say(`    VERIFIED: signed by ${nameOf(s, v.sender)}, envelope ${v.envelopeHash.slice(0, 16)}…`);
  s.say(`    Subject: ${v.payload.subject}`);
}

/** A node's event stream from the start (GET /v1/events?after=0), as `liaison events` shows it. */
async function printEvents(s: Story, n: DemoNode): Promise<void> {
  step(s, `What ${n.label}'s event stream (GET /v1/events, or: liaison events) recorded:`);
  const text = await readEventStream(n.admin, EVENT_READ_MS);
  for (const block of text.split('\n\n')) {
    const f = Object.fromEntries(
      block
        .split('\n')
        .filter((l) => !l.startsWith(':') && l.includes(': '))
        .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
    ) as Record<string, string>;
    if (f.id === undefined || f.data === undefined) continue;
    const { at, ...data } = JSON.parse(f.data) as Json;
    const fields = Object.entries(data).map(([k, v]) => `${k}=${nameOf(s, v)}`);
    s.say(
      `  ${f.id.padStart(3)}  ${String(at).slice(11, 23)}  ${String(f.event).padEnd(17)}${fields.join(' ')}`,
    );
  }
}

/**
 * What the event stream sends in `ms` (it never ends by itself). node:http rather than fetch: an
 * aborted fetch leaves its socket open for seconds, and a node waits for its open API connections
 * before it stops; a destroyed request closes at once.
 */
function readEventStream(t: Target, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(
      `${t.base}/v1/events?after=0`,
      { headers: { authorization: `Bearer ${t.token}`, accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          req.destroy();
          reject(new LiaisonError('LIAISON_ERR_INTERNAL', `event stream: HTTP ${res.statusCode}`));
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        setTimeout(() => {
          req.destroy();
          resolve(text);
        }, ms);
      },
    );
    req.on('error', reject);
  });
}

// --- message helpers ---

async function send(from: DemoNode, body: Json): Promise<string> {
  return String((await call(from.officer, 'POST', '/v1/messages', body)).messageId);
}

/** What the sending officer's screen shows. */
async function status(from: DemoNode, id: string): Promise<Json> {
  return call(from.officer, 'GET', `/v1/messages/${id}/status`);
}

function recipient(st: Json, n: DemoNode): Json {
  const r = (st.recipients as Json[]).find((x) => x.nodeId === n.nodeId);
  if (r === undefined)
    throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `${n.label} is not a recipient`);
  return r;
}

/** Polls the sender's status until every listed recipient has its expected status. */
async function waitStatus(
  s: Story,
  from: DemoNode,
  id: string,
  expected: readonly (readonly [DemoNode, string])[],
): Promise<Json> {
  const what = expected.map(([n, st]) => `${n.label} ${st}`).join(', ');
  return waitFor(
    `${id}: ${what}`,
    async () => {
      const st = await status(from, id);
      return expected.every(([n, want]) => recipient(st, n).status === want) ? st : null;
    },
    s.signal,
  );
}

/** A node ID shown as its authority's label; anything else as it is. */
function nameOf(s: Story, v: unknown): string {
  return s.nodes.find((n) => n.nodeId === v)?.label ?? String(v);
}

// --- printing and waiting ---

function step(s: Story, text: string): void {
  s.say(`\nT+${((Date.now() - s.t0) / 1000).toFixed(1)}s  ${text}`);
}

/**
 * Calls `probe` every POLL_MS until it returns something other than null. Rejects on timeout
 * (LIAISON_ERR_INTERNAL naming what did not happen), on abort, or with the probe's error.
 */
async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null>,
  signal: AbortSignal,
): Promise<T> {
  const until = Date.now() + WAIT_MS;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > until)
      throw new LiaisonError('LIAISON_ERR_INTERNAL', `demo: gave up waiting for ${what}`);
    await sleep(POLL_MS, undefined, { signal });
  }
}

/** How to use the CLI against the running nodes, with their real directories and tokens. */
function printCliGuide(s: Story, root: string, urgent: string): void {
  const { paris, rabat, hague } = s;
  const cli = ['node', ...process.execArgv, relativeIfInside(MAIN)].map(shellQuote).join(' ');
  const as = (n: DemoNode, verb: string): string =>
    `LIAISON_TOKEN=${n.officer.token} ${cli} ${verb} --data-dir ${shellQuote(n.dataDir)}`;
  s.say(`\nThe three nodes keep running. Try the CLI against them (officer tokens shown):`);
  s.say(`\n  # Rabat's duty officer: the inbox, then a message in full`);
  s.say(`  ${as(rabat, 'inbox')}`);
  s.say(`  ${as(rabat, `show ${urgent}`)}`);
  s.say(`\n  # Paris: send to a peer by name, follow the status, watch the event stream`);
  s.say(
    `  ${as(paris, `send --to ${shellQuote(`${rabat.role.name}:24-7`)} --subject 'Hello' --body 'Test' --priority urgent`)}`,
  );
  s.say(`  ${as(paris, `status ${urgent}`)}`);
  s.say(`  ${as(paris, 'events --after 0')}`);
  s.say(`\n  # Peers and links (the admin token is read from the data directory)`);
  s.say(`  ${cli} peers --data-dir ${shellQuote(hague.dataDir)}`);
  s.say(
    `\n  # The audit log: checkpoint and cosignatures, an export, and its offline verification`,
  );
  s.say(`  ${cli} audit status --data-dir ${shellQuote(paris.dataDir)}`);
  s.say(`  ${cli} audit export --out paris-audit.json --data-dir ${shellQuote(paris.dataDir)}`);
  s.say(`  ${cli} audit verify paris-audit.json`);
  s.say(`\nNode logs: ${root}/*/${LOG_FILE}. Press Ctrl-C to stop the nodes and remove ${root}.`);
}

/** Splits text into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

function relativeIfInside(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel;
}

function shellQuote(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
