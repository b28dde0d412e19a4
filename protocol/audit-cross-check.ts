/**
 * Cross-checking two nodes' audit bundles (docs/audit.md §Cross-checking): the bilateral evidence
 * of DESIGN.md §Audit log. For each message between A and B, in both directions, the sender's log
 * says "sent" (message-sent, message-recipient), the receiver's signed receipt held by the sender
 * says "received at index i", and the receiver's log and inbox say "received". Joined, they show
 * which side dropped, altered or invented what:
 *
 * - `sent-but-not-received` (error): the receiver's log or inbox lacks a message the sender has
 *   evidence of delivering. `reason`: `deleted-from-inbox` (logged, then removed from the inbox),
 *   `receipt-contradicts-log` (the receiver signed "recorded at i" and entry i is something else),
 *   `no-record` (the sender records delivery, the receiver has nothing);
 * - `received-but-not-sent` (error): the receiver logged a message the sender has no record of;
 * - `altered` (error): envelope hashes differ between the two logs, or a receipt disagrees;
 * - `undelivered` (warning): no receipt and no record at the receiver; the sender's status says
 *   why (queued, expired, rejected);
 * - `log-rewritten` (error): a checkpoint of one node that the other cosigned or holds as witness
 *   is not the root of the exported log at that size, or is larger than the log was at export;
 * - `peer-equivocation` (error): one node holds verified evidence that the other signed
 *   contradicting checkpoints (a fork, a rollback, a tree it could not prove consistent);
 * - `peer-key-mismatch` (error): one node pins a key for the other that is not in its history;
 * - `not-covered` (info): the evidence lies outside the other bundle's range, which proves nothing
 *   either way.
 *
 * Each bundle is verified first (protocol/audit-verify.ts) and its verdict included: a
 * cross-check of a bundle that does not verify is still run, but its findings rest on that log.
 *
 * Decisions about time use signed times only: entry times, and the time of each bundle's own
 * final `log-exported` entry (committed to by its last checkpoint). Never the bundle's unsigned
 * `createdAt`, which anyone holding the file can edit.
 */
import { equalBytes, toHex } from './bytes.ts';
import { parseNote } from './note.ts';
import { AUDIT_KINDS, decodeAuditEntry } from './audit-entry.ts';
import type { AuditFields } from './audit-entry.ts';
import type { Bundle, InboxRow, OutboxRow } from './audit-bundle.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { messageIdToText, nodeIdToText } from './ids.ts';
import { MAX_CLOCK_SKEW_MS } from './limits.ts';
import {
  analyseBundle,
  auditKindName,
  coveringSize,
  FindingList,
  hexKey,
  peerSizeKey,
  TRUNCATED_MESSAGE,
} from './audit-verify.ts';
import type {
  BundleFacts,
  FailedDelivery,
  Finding,
  HeldReceipt,
  LoggedMessage,
  PinnedKey,
  Severity,
  Verdict,
} from './audit-verify.ts';

export const CROSS_FINDINGS = {
  'sent-but-not-received': 'error',
  'received-but-not-sent': 'error',
  altered: 'error',
  undelivered: 'warning',
  'log-rewritten': 'error',
  'peer-equivocation': 'error',
  'peer-key-mismatch': 'error',
  'not-covered': 'info',
  'findings-truncated': 'info',
} as const satisfies Record<string, Severity>;

export type CrossFindingCode = keyof typeof CROSS_FINDINGS;

export interface CrossFinding extends Finding<CrossFindingCode> {
  /** `a-to-b`: about A as sender (or A's claims about B's log); `b-to-a` the other way. */
  readonly direction: 'a-to-b' | 'b-to-a';
}

export interface CrossReport {
  /** Both bundles verify and no cross finding is an error. */
  readonly ok: boolean;
  readonly a: Verdict;
  readonly b: Verdict;
  /** Messages from A to B, and from B to A, that either side records. */
  readonly messages: { readonly aToB: number; readonly bToA: number };
  readonly findings: readonly CrossFinding[];
}

export interface CrossCheckOptions {
  readonly now: number;
  readonly pinnedA?: readonly PinnedKey[];
  readonly pinnedB?: readonly PinnedKey[];
  /** Witness keys pinned for both bundles (VerifyOptions.pinnedWitnessKeys). */
  readonly pinnedWitnesses?: readonly PinnedKey[];
}

const DELIVERED = new Set(['delivered', 'acknowledged']);
const KIND_CODE = {
  checkpointCosigned: AUDIT_KINDS['checkpoint-cosigned'].code,
};

class CrossFindings extends FindingList<CrossFinding> {
  constructor() {
    super((suppressed) => ({
      code: 'findings-truncated',
      severity: 'info',
      direction: 'a-to-b',
      message: TRUNCATED_MESSAGE,
      evidence: { suppressed },
    }));
  }

  add(
    direction: CrossFinding['direction'],
    code: CrossFindingCode,
    message: string,
    evidence: Record<string, unknown>,
  ): void {
    this.push({ code, severity: CROSS_FINDINGS[code], direction, message, evidence });
  }
}

/**
 * The tree sizes of `subject`'s log that `other` makes claims about: its checkpoint-cosigned
 * entries and the witnessed checkpoints it holds. Read cheaply (kind byte first) so that the
 * subject's single verification pass can compute the roots at these sizes too.
 */
function claimedSizes(other: Bundle, subject: Bundle): number[] {
  const sizes: number[] = [];
  for (const bytes of other.entries) {
    if (bytes[2] !== KIND_CODE.checkpointCosigned) continue;
    try {
      const v = decodeAuditEntry(bytes).fields as AuditFields<'checkpoint-cosigned'>;
      if (equalBytes(v.peer, subject.node.nodeId)) sizes.push(v.size);
    } catch {
      // reported by the other bundle's own verification
    }
  }
  const seen = new Set<string>(); // a note repeated in the bundle is read once
  for (const w of other.witnessed) {
    if (!equalBytes(w.peer, subject.node.nodeId) || seen.has(w.note)) continue;
    seen.add(w.note);
    try {
      sizes.push(parseCheckpoint(parseNote(w.note).text).size);
    } catch {
      // reported as witnessed-invalid
    }
  }
  return sizes;
}

/** Joins two bundles; see the file comment. Pure, and never throws on bad content. */
export function crossCheck(a: Bundle, b: Bundle, options: CrossCheckOptions): CrossReport {
  const witnesses =
    options.pinnedWitnesses === undefined ? {} : { pinnedWitnessKeys: options.pinnedWitnesses };
  const fa = analyseBundle(a, {
    now: options.now,
    rootSizes: claimedSizes(b, a),
    ...(options.pinnedA === undefined ? {} : { pinnedIdentityKeys: options.pinnedA }),
    ...witnesses,
  });
  const fb = analyseBundle(b, {
    now: options.now,
    rootSizes: claimedSizes(a, b),
    ...(options.pinnedB === undefined ? {} : { pinnedIdentityKeys: options.pinnedB }),
    ...witnesses,
  });
  const f = new CrossFindings();
  checkPeerKeys(fa, fb, 'a-to-b', f);
  checkPeerKeys(fb, fa, 'b-to-a', f);
  const aToB = messages(fa, fb, 'a-to-b', f);
  const bToA = messages(fb, fa, 'b-to-a', f);
  checkClaims(fa, fb, 'a-to-b', f);
  checkClaims(fb, fa, 'b-to-a', f);
  checkEquivocations(fa, fb, 'a-to-b', f);
  checkEquivocations(fb, fa, 'b-to-a', f);
  const findings = f.finish();
  return {
    ok: fa.verdict.ok && fb.verdict.ok && !findings.some((x) => x.severity === 'error'),
    a: fa.verdict,
    b: fb.verdict,
    messages: { aToB, bToA },
    findings,
  };
}

/** The key `s` pins for `r` must be one of `r`'s own history. */
function checkPeerKeys(
  s: BundleFacts,
  r: BundleFacts,
  direction: CrossFinding['direction'],
  f: CrossFindings,
): void {
  const peer = s.bundle.peers.find((p) => equalBytes(p.nodeId, r.bundle.node.nodeId));
  if (peer === undefined) return;
  if (r.keys.some((k) => equalBytes(k, peer.identityKey))) return;
  f.add(direction, 'peer-key-mismatch', `${s.verdict.nodeId} pins a key the other does not hold`, {
    holder: s.verdict.nodeId,
    peer: r.verdict.nodeId,
    pinnedKey: Buffer.from(peer.identityKey).toString('base64'),
    peerKeys: r.keys.map((k) => Buffer.from(k).toString('base64')),
  });
}

function at(facts: BundleFacts, index: number): Record<string, unknown> {
  return { index, checkpointSize: coveringSize(facts.checkpointSizes, index) };
}

function receiptEvidence(h: HeldReceipt, logIndex: number): Record<string, unknown> {
  return {
    receipt: h.base64,
    receiptIssuer: nodeIdToText(h.receipt.issuerNodeId),
    receiptLogIndex: logIndex,
  };
}

/**
 * Every message from S (sender) to R (receiver), both ways round: what S's log, S's receipts
 * from R, R's log and R's inbox say. Returns how many messages either side records.
 */
function messages(
  s: BundleFacts,
  r: BundleFacts,
  direction: CrossFinding['direction'],
  f: CrossFindings,
): number {
  const sNode = s.bundle.node.nodeId;
  const rNode = r.bundle.node.nodeId;
  const sText = s.verdict.nodeId;
  const rText = r.verdict.nodeId;

  // R's receipts held by S, by message ID.
  const receipts = new Map<string, { held: HeldReceipt; logIndex: number; hash: Uint8Array }>();
  for (const h of s.receipts) {
    if (!equalBytes(h.receipt.issuerNodeId, rNode) || !equalBytes(h.receipt.senderNodeId, sNode))
      continue;
    for (const e of h.receipt.entries)
      receipts.set(hexKey(e.messageId), { held: h, logIndex: e.logIndex, hash: e.envelopeHash });
  }
  const inbox = new Map<string, InboxRow>();
  for (const row of r.inbox ?? [])
    if (equalBytes(row.sender, sNode)) inbox.set(hexKey(row.messageId), row);
  const outbox = new Map<string, OutboxRow>();
  for (const row of s.outbox ?? [])
    if (equalBytes(row.recipient, rNode)) outbox.set(hexKey(row.messageId), row);
  const sentTo = new Map<string, LoggedMessage>();
  for (const m of s.recipients) if (equalBytes(m.peer, rNode)) sentTo.set(hexKey(m.messageId), m);
  const sentAll = new Map<string, LoggedMessage>();
  for (const m of s.sent) sentAll.set(hexKey(m.messageId), m);
  const receivedFrom = new Map<string, LoggedMessage>();
  for (const m of r.received) {
    const k = hexKey(m.messageId);
    if (equalBytes(m.peer, sNode) && !receivedFrom.has(k)) receivedFrom.set(k, m);
  }
  const failures = new Map<string, FailedDelivery>();
  for (const x of s.failed)
    if (equalBytes(x.recipient, rNode)) failures.set(hexKey(x.messageId), x);

  const skew = MAX_CLOCK_SKEW_MS;
  const sStart = s.bundle.from > 0 ? s.firstTime : undefined;
  let count = 0;

  for (const [mid, m] of sentTo) {
    count += 1;
    const midText = messageIdToText(m.messageId);
    const sentHash =
      m.envelopeHash ?? sentAll.get(mid)?.envelopeHash ?? outbox.get(mid)?.envelopeHash;
    const base = {
      messageId: midText,
      sender: sText,
      receiver: rText,
      sent: at(s, m.index),
      sentEnvelopeHash: sentHash === undefined ? null : toHex(sentHash),
    };
    const rc = receipts.get(mid);
    const rv = receivedFrom.get(mid);
    const row = inbox.get(mid);
    const rcEvidence = rc === undefined ? {} : receiptEvidence(rc.held, rc.logIndex);

    if (rv !== undefined) {
      const got = {
        ...base,
        received: at(r, rv.index),
        receivedEnvelopeHash: toHex(rv.envelopeHash!),
        ...rcEvidence,
      };
      if (sentHash !== undefined && !equalBytes(sentHash, rv.envelopeHash!)) {
        f.add(direction, 'altered', `${midText}: the two logs record different envelopes`, got);
      } else if (
        rc !== undefined &&
        (rc.logIndex !== rv.index || !equalBytes(rc.hash, rv.envelopeHash!))
      ) {
        f.add(direction, 'altered', `${midText}: the receipt disagrees with the receiver's log`, {
          ...got,
          reason: 'receipt-contradicts-log',
          receiptEnvelopeHash: toHex(rc.hash),
        });
      }
      if (row === undefined || row.logIndex !== rv.index) {
        f.add(
          direction,
          'sent-but-not-received',
          `${midText}: logged as received at ${rv.index}, not in the receiver's inbox`,
          { ...got, reason: 'deleted-from-inbox' },
        );
      }
      continue;
    }

    if (rc !== undefined) {
      if (sentHash !== undefined && !equalBytes(sentHash, rc.hash)) {
        f.add(direction, 'altered', `${midText}: the receipt names another envelope`, {
          ...base,
          ...rcEvidence,
          receiptEnvelopeHash: toHex(rc.hash),
        });
      }
      const i = rc.logIndex;
      const issuedBeforeExport =
        r.exportTime === undefined || rc.held.receipt.issuedAt <= r.exportTime + skew;
      if (i < r.bundle.from || (i >= r.end && !issuedBeforeExport)) {
        f.add(
          direction,
          'not-covered',
          `${midText}: receipted at ${i}, outside the receiver's bundle`,
          {
            ...base,
            ...rcEvidence,
            receiverRange: { from: r.bundle.from, to: r.end },
          },
        );
      } else {
        const kind = i < r.end ? auditKindName(r.kinds[i - r.bundle.from]!) : 'beyond the log';
        f.add(
          direction,
          'sent-but-not-received',
          `${midText}: the receiver signed "recorded at ${i}", its entry ${i} is ${kind}`,
          {
            ...base,
            ...rcEvidence,
            reason: 'receipt-contradicts-log',
            receiverEntry: i < r.end ? { ...at(r, i), kind } : kind,
          },
        );
      }
      continue;
    }

    // No receipt, nothing in the receiver's log.
    if (row !== undefined) {
      // Stored before the range (or its entry is missing, which the receiver's verdict reports).
      if (sentHash !== undefined && !equalBytes(sentHash, row.envelopeHash)) {
        f.add(direction, 'altered', `${midText}: the receiver's inbox holds another envelope`, {
          ...base,
          inboxEnvelopeHash: toHex(row.envelopeHash),
          inboxLogIndex: row.logIndex,
        });
      }
      continue;
    }
    const status = outbox.get(mid)?.status ?? null;
    const failed = failures.get(mid);
    if (status === null || !DELIVERED.has(status)) {
      f.add(direction, 'undelivered', `${midText}: never delivered (${status ?? 'no status'})`, {
        ...base,
        status,
        ...(failed === undefined
          ? {}
          : { failure: { ...at(s, failed.index), status: failed.status, code: failed.code } }),
      });
    } else if (
      s.exportTime !== undefined &&
      r.exportTime !== undefined &&
      s.exportTime + skew <= r.exportTime
    ) {
      // The sender knew it delivered before the receiver exported: the receiver's state, which
      // is complete at export, must hold it.
      f.add(
        direction,
        'sent-but-not-received',
        `${midText}: the sender records it ${status}, the receiver has no record`,
        { ...base, reason: 'no-record', status },
      );
    } else {
      f.add(direction, 'not-covered', `${midText}: delivered after the receiver's export`, {
        ...base,
        status,
      });
    }
  }

  // What R logged as received from S that S never logged as sent to R.
  for (const [mid, rv] of receivedFrom) {
    if (sentTo.has(mid)) continue;
    count += 1;
    const midText = messageIdToText(rv.messageId);
    const evidence = {
      messageId: midText,
      sender: sText,
      receiver: rText,
      received: at(r, rv.index),
      receivedEnvelopeHash: toHex(rv.envelopeHash!),
    };
    const sentElsewhere = sentAll.get(mid);
    if (sentElsewhere !== undefined) {
      f.add(
        direction,
        'received-but-not-sent',
        `${midText}: the sender's log does not address it to the receiver`,
        { ...evidence, sent: at(s, sentElsewhere.index) },
      );
      continue;
    }
    const row = outbox.get(mid);
    const outside =
      s.exportTime === undefined ||
      rv.time > s.exportTime + skew ||
      (sStart !== undefined && rv.time < sStart + skew);
    if (outside || (row !== undefined && s.bundle.from > 0)) {
      f.add(direction, 'not-covered', `${midText}: received outside the sender's bundle`, {
        ...evidence,
        senderOutboxStatus: row?.status ?? null,
      });
      continue;
    }
    f.add(
      direction,
      'received-but-not-sent',
      `${midText}: the receiver logged it from ${sText}, whose log has no such message`,
      { ...evidence, senderOutboxStatus: row?.status ?? null },
    );
  }
  return count;
}

/**
 * S's cosigned and witnessed checkpoints of R against the roots of R's exported log. A claim
 * larger than R's log is a rewrite if S witnessed it before R's export, by signed times only:
 * S's `checkpoint-cosigned` entry for that size; for a witnessed note whose entry lies before
 * S's range, S's first entry in range (the entry came earlier); else S's own export time (S held
 * the note when it exported). Without such a time the claim is not covered.
 */
function checkClaims(
  s: BundleFacts,
  r: BundleFacts,
  direction: CrossFinding['direction'],
  f: CrossFindings,
): void {
  const rNode = r.bundle.node.nodeId;
  const claims: {
    source: Record<string, unknown>;
    size: number;
    root: Uint8Array;
    time: number | undefined;
  }[] = [];
  for (const c of s.cosigned) {
    if (!equalBytes(c.peer, rNode)) continue;
    claims.push({
      source: { cosignedEntry: at(s, c.index) },
      size: c.size,
      root: c.rootHash,
      time: c.time,
    });
  }
  const heldBy = s.bundle.from > 0 ? s.firstTime : s.exportTime;
  for (const w of s.witnessed) {
    if (!equalBytes(w.peer, rNode)) continue;
    const entry = s.cosignedAt.get(peerSizeKey(rNode, w.checkpoint.size));
    claims.push({
      source: {
        witnessed: w.note,
        ...(entry === undefined ? {} : { cosignedEntry: at(s, entry.index) }),
      },
      size: w.checkpoint.size,
      root: w.checkpoint.rootHash,
      time: entry?.time ?? heldBy,
    });
  }
  for (const c of claims) {
    const evidence = {
      holder: s.verdict.nodeId,
      log: r.verdict.nodeId,
      size: c.size,
      claimedRoot: toHex(c.root),
      ...c.source,
    };
    const root = r.roots.get(c.size);
    if (root !== undefined) {
      if (!equalBytes(root, c.root)) {
        f.add(
          direction,
          'log-rewritten',
          `the exported log's root at size ${c.size} is not the one ${s.verdict.nodeId} witnessed`,
          {
            ...evidence,
            bundleRoot: toHex(root),
          },
        );
      }
      continue;
    }
    // Larger than the exported log: a rewrite if it was witnessed before the export.
    const before = c.time !== undefined && r.exportTime !== undefined && c.time <= r.exportTime;
    if (c.size > r.end && before) {
      f.add(
        direction,
        'log-rewritten',
        `a checkpoint of size ${c.size} was witnessed before an export of ${r.end} entries`,
        {
          ...evidence,
          exportedSize: r.end,
          exportedAt: r.exportTime ?? null,
          witnessedAt: c.time ?? null,
        },
      );
    } else {
      f.add(direction, 'not-covered', `witnessed size ${c.size} is outside the other bundle`, {
        ...evidence,
        range: { from: r.bundle.from, to: r.end },
      });
    }
  }
}

/** Evidence S holds, verified under R's key, that R signed contradicting checkpoints. */
function checkEquivocations(
  s: BundleFacts,
  r: BundleFacts,
  direction: CrossFinding['direction'],
  f: CrossFindings,
): void {
  const rNode = r.bundle.node.nodeId;
  for (const e of s.equivocations) {
    if (!equalBytes(e.peer, rNode)) continue;
    f.add(
      direction,
      'peer-equivocation',
      `${s.verdict.nodeId} holds proof that ${r.verdict.nodeId} signed contradicting checkpoints (${e.finding})`,
      {
        holder: s.verdict.nodeId,
        log: r.verdict.nodeId,
        evidence: e.position,
        finding: e.finding,
        detectedAt: e.detectedAt,
        heldSize: e.heldSize,
        heldRoot: toHex(e.heldRoot),
        presentedSize: e.presentedSize,
        presentedRoot: toHex(e.presentedRoot),
      },
    );
  }
}
