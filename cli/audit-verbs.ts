/**
 * `liaison audit …` (docs/cli.md §Audit). Verbs against a running node (auditor or admin token):
 *
 *   status, checkpoint, log, proof, export, witnessed, evidence, disclose, disclosures, disclosure
 *
 * and offline verbs that need only files: verify, cross-check (cli/audit-offline.ts) and
 * verify-disclosure, which checks a disclosed message against its sender's signature.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initCrypto, verifyDisclosure } from '../protocol/index.ts';
import { auditOffline, safe } from './audit-offline.ts';
import { UsageError } from './api-verbs.ts';
import { call, CLIENT_FLAGS, target, when } from './client.ts';
import type { Json } from './client.ts';

export const AUDIT_USAGE = `liaison audit status                      the log: size, verifier keys, newest checkpoint
  liaison audit checkpoint                  sign a checkpoint now and send it to witnesses
  liaison audit log [--from N] [--limit N]  entries, decoded (recorded as a consultation)
  liaison audit proof inclusion INDEX [--size N] | consistency FROM [TO]
  liaison audit export [--from N] [--out FILE]   a verifiable bundle (recorded)
  liaison audit witnessed | evidence        peers' checkpoints held; equivocation evidence
  liaison audit disclose MESSAGE --auditor NAME --justification TEXT [--sender NODE]   (admin)
  liaison audit disclosures | disclosure ID [--out FILE]                              (auditor)
  liaison audit verify BUNDLE [--key KEY]... [--witness KEY]... [--json]
                                            offline: check a bundle (pin the node and its witnesses)
  liaison audit cross-check BUNDLE_A BUNDLE_B [--key-a KEY] [--key-b KEY] [--witness KEY]... [--json]
                                            offline: join two nodes' bundles message by message
  liaison audit verify-disclosure FILE [--json]                offline: check disclosed content`;

/** Runs an audit verb; returns the process exit code. */
export async function auditVerb(args: string[], say: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'verify' || sub === 'cross-check') {
    await initCrypto();
    return auditOffline(sub, rest);
  }
  if (sub === 'verify-disclosure') {
    await initCrypto();
    return verifyDisclosureFile(rest, say);
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      from: { type: 'string' },
      limit: { type: 'string' },
      size: { type: 'string' },
      out: { type: 'string' },
      auditor: { type: 'string' },
      justification: { type: 'string' },
      sender: { type: 'string' },
    },
  });
  const int = (v: string | undefined, flag: string): string | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d{1,15}$/.test(v)) throw new UsageError(`${flag} must be a whole number`);
    return v;
  };
  const needs = (n: number): void => {
    if (positionals.length !== n) throw new UsageError(`usage:\n  ${AUDIT_USAGE}`);
  };
  const t = target(values);
  const out = (j: Json, human: () => void): number => {
    if (values.json) say(JSON.stringify(j, null, 2));
    else human();
    return 0;
  };
  const query = (pairs: Record<string, string | undefined>): string => {
    const q = Object.entries(pairs).filter((e): e is [string, string] => e[1] !== undefined);
    return q.length === 0 ? '' : `?${new URLSearchParams(q).toString()}`;
  };
  const printCheckpoint = (c: Json): void => {
    say(`Checkpoint of size ${c.size as number}, signed ${when(c.issuedAt)}`);
    const cos = c.cosignatures as Json[];
    say(
      cos.length === 0
        ? '  not cosigned by any peer yet'
        : `  cosigned by ${cos.length} peer(s): ${cos.map((x) => `${x.witness as string} at ${when(x.cosignedAt)}`).join(', ')}`,
    );
    say('');
    for (const line of (c.note as string).trimEnd().split('\n')) say(`  ${line}`);
  };

  switch (sub) {
    case 'status': {
      needs(0);
      const j = await call(t, 'GET', '/v1/audit');
      return out(j, () => {
        say(`Audit log of ${j.origin as string}: ${j.size as number} entries`);
        say(`  checkpoint verifier key: ${j.verifierKey as string}`);
        say(`  cosigner verifier key:   ${j.cosignerKey as string}`);
        if (j.checkpoint === null) say('  no checkpoint yet');
        else printCheckpoint(j.checkpoint as Json);
      });
    }
    case 'checkpoint': {
      needs(0);
      const j = await call(t, 'POST', '/v1/audit/checkpoints');
      return out(j, () => printCheckpoint(j));
    }
    case 'log': {
      needs(0);
      const j = await call(
        t,
        'GET',
        `/v1/audit/entries${query({ from: int(values.from, '--from'), limit: int(values.limit, '--limit') })}`,
      );
      return out(j, () => {
        for (const e of j.entries as Json[]) {
          const fields = Object.entries(e.fields as Json)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(' ');
          say(`${String(e.index).padStart(7)}  ${when(e.time)}  ${e.kind as string}  ${fields}`);
        }
        say(`(${j.from as number}–${(j.to as number) - 1} of ${j.size as number} entries)`);
      });
    }
    case 'proof': {
      const [kind, a, b] = positionals;
      if (kind === 'inclusion' && a !== undefined && b === undefined) {
        const j = await call(
          t,
          'GET',
          `/v1/audit/proofs/inclusion${query({ index: int(a, 'INDEX'), size: int(values.size, '--size') })}`,
        );
        return out(j, () => {
          say(
            `Entry ${j.index as number} in the tree of size ${j.size as number} (root ${j.rootHash as string}):`,
          );
          for (const h of j.proof as string[]) say(`  ${h}`);
        });
      }
      if (kind === 'consistency' && a !== undefined) {
        const j = await call(
          t,
          'GET',
          `/v1/audit/proofs/consistency${query({ from: int(a, 'FROM'), to: int(b, 'TO') })}`,
        );
        return out(j, () => {
          say(
            `Tree ${j.from as number} (${j.fromRoot as string}) is a prefix of tree ${j.to as number} (${j.toRoot as string}):`,
          );
          for (const h of j.proof as string[]) say(`  ${h}`);
        });
      }
      throw new UsageError(`usage:\n  ${AUDIT_USAGE}`);
    }
    case 'export': {
      needs(0);
      const from = int(values.from, '--from');
      const bundle = await call(
        t,
        'POST',
        '/v1/audit/export',
        from === undefined ? {} : { from: Number(from) },
      );
      const node = (bundle.node as Json).nodeId as string;
      const file =
        values.out ??
        `liaison-audit-${node.slice(0, 12)}-${new Date().toISOString().slice(0, 10)}.json`;
      writeFileSync(file, `${JSON.stringify(bundle)}\n`, { mode: 0o600 });
      const checkpoints = bundle.checkpoints as string[];
      say(
        `Wrote ${file}: entries ${bundle.from as number}–${(bundle.to as number) - 1}, ${checkpoints.length} checkpoint(s).`,
      );
      say(`Check it anywhere with: liaison audit verify ${file}`);
      return 0;
    }
    case 'witnessed': {
      needs(0);
      const j = await call(t, 'GET', '/v1/audit/witnessed');
      return out(j, () => {
        const w = j.witnessed as Json[];
        if (w.length === 0) say('This node holds no peer checkpoint yet.');
        for (const x of w)
          say(
            `${x.peer as string}  size ${x.size as number}  root ${x.rootHash as string}  (${when(x.updatedAt)})`,
          );
      });
    }
    case 'evidence': {
      needs(0);
      const j = await call(t, 'GET', '/v1/audit/evidence');
      return out(j, () => {
        const ev = j.evidence as Json[];
        if (ev.length === 0) say('No equivocation evidence: every peer checkpoint was consistent.');
        for (const e of ev)
          say(
            `#${e.id as number}  ${when(e.detectedAt)}  ${e.peer as string}  ${e.finding as string}`,
          );
      });
    }
    case 'disclose': {
      needs(1);
      if (values.auditor === undefined || values.justification === undefined)
        throw new UsageError('disclose needs --auditor NAME and --justification TEXT');
      const j = await call(t, 'POST', '/v1/audit/disclosures', {
        messageId: positionals[0]!,
        auditor: values.auditor,
        justification: values.justification,
        ...(values.sender === undefined ? {} : { sender: values.sender }),
      });
      return out(j, () => {
        say(
          `Disclosure ${j.id as string}: ${j.messageId as string} to auditor ${j.auditor as string} (log entry ${j.logIndex as number}).`,
        );
        say(`The auditor fetches it with: liaison audit disclosure ${j.id as string}`);
      });
    }
    case 'disclosures': {
      needs(0);
      const j = await call(t, 'GET', '/v1/audit/disclosures');
      return out(j, () => {
        const list = j.disclosures as Json[];
        if (list.length === 0) say('No disclosures.');
        for (const d of list)
          say(
            `${d.id as string}  ${when(d.createdAt)}  ${d.messageId as string}  to ${d.auditor as string} by ${d.disclosedBy as string}: ${d.justification as string}`,
          );
      });
    }
    case 'disclosure': {
      needs(1);
      const j = await call(
        t,
        'GET',
        `/v1/audit/disclosures/${encodeURIComponent(positionals[0]!)}`,
      );
      const file = values.out ?? `liaison-disclosure-${j.id as string}.json`;
      writeFileSync(file, `${JSON.stringify(j, null, 2)}\n`, { mode: 0o600 });
      say(`Wrote ${file} (it holds a content key: keep it as you would the message).`);
      say(`Check it with: liaison audit verify-disclosure ${file}`);
      return 0;
    }
    default:
      throw new UsageError(`usage:\n  ${AUDIT_USAGE}`);
  }
}

/**
 * Offline check of a disclosure package: the sender key hashes to the sender's node ID, the
 * envelope is signed by it, and the content key opens the payload and matches the signed key
 * commitment. Then the plaintext is exactly what the sender signed.
 */
function verifyDisclosureFile(args: string[], say: (s: string) => void): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 1) throw new UsageError('usage: liaison audit verify-disclosure FILE');
  let pkg: Json;
  try {
    pkg = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Json;
  } catch (err) {
    say(`liaison: cannot read ${positionals[0]!}: ${(err as Error).message}`);
    return 2;
  }
  const v = verifyDisclosure(pkg);
  const result = {
    verified: true,
    ...v,
    createdAt: new Date(v.createdAt).toISOString(),
    justification: pkg.justification,
    content: v.payload,
  };
  const { payload, envelopeHash: hash } = v;
  if (values.json) {
    say(JSON.stringify(result, null, 2));
    return 0;
  }
  // Everything the package or the message says is escaped (no control character reaches the
  // terminal) and indented; the verdict comes last, from constants only, so that no content can
  // forge or hide it.
  say(`Disclosed message from ${safe(result.sender)}`);
  say(
    `  message ${safe(result.messageId)}, envelope hash ${safe(hash)}, created ${result.createdAt}`,
  );
  say(
    `  disclosed to ${safe(String(pkg.auditor))} by ${safe(String(pkg.disclosedBy))}: ` +
      safe(String(pkg.justification)),
  );
  say(`  the envelope hash appears in both nodes' audit logs (liaison audit log / verify).`);
  say('');
  say(`  Subject: ${safe(payload.subject)}`);
  if (payload.caseRef !== null) say(`  Case:    ${safe(payload.caseRef)}`);
  say('');
  for (const line of payload.body.split(/\r?\n/)) say(`    ${safe(line)}`);
  say('');
  say('Verdict: VERIFIED: the disclosed content above is exactly what its sender signed.');
  return 0;
}
