/**
 * Witnessing between peers (docs/protocol.md §15.5, docs/audit.md §Witnessing). Every node is a
 * witness for its peers and is witnessed by them:
 *
 * - as a log, it sends each connected peer its newest checkpoint with a consistency proof from
 *   the last checkpoint that peer cosigned, and stores the cosignature that comes back;
 * - as a witness, it verifies a peer's checkpoint (signature by the peer's pinned identity key,
 *   consistency with the checkpoint it holds from that peer), keeps it, and cosigns it.
 *
 * A checkpoint that contradicts the one held (same size with another root, a smaller size, or no
 * valid consistency proof) is kept as evidence with both signed notes, recorded in the audit log
 * and raised as an `audit.alert` event, and is not cosigned. Nothing a peer sends here can change
 * this node's own log or state beyond those records, which are bounded per peer.
 */
import type Database from 'better-sqlite3';
import {
  cosign,
  decodeWitnessMessage,
  Ed25519PublicKey,
  encodeWitnessMessage,
  EMPTY_TREE_HASH,
  equalBytes,
  evidenceText,
  formatNote,
  formatSignatureLine,
  NOTE_KEY_TYPE_ED25519,
  signaturesBy,
  isLiaisonError,
  nodeIdFromText,
  openCheckpoint,
  originForNode,
  parseSignatureLines,
  sha256,
  utf8,
  verifyConsistency,
  verifyCosignature,
} from '../protocol/index.ts';
import type {
  AddCheckpoint,
  EvidenceFinding,
  LocalIdentity,
  WitnessMessage,
} from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Checkpoints, StoredCheckpoint } from './checkpoints.ts';
import type { Clock } from './clock.ts';
import { MAX_EVIDENCE_PER_PEER, WITNESS_TIMEOUT_MS } from './constants.ts';
import { MAX_CLOCK_SKEW_MS } from '../protocol/index.ts';
import type { LinkPort, PeerPort } from './delivery.ts';
import type { EventLog } from './events.ts';
import type { Store } from './store.ts';

export interface WitnessingLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WitnessingDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly events: EventLog;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
  readonly checkpoints: Checkpoints;
  readonly peers: PeerPort;
  readonly links: LinkPort;
  readonly log: WitnessingLogger;
}

export interface WitnessedCheckpoint {
  readonly peer: string;
  readonly size: number;
  readonly rootHash: Uint8Array;
  readonly note: string;
  readonly updatedAt: number;
}

export interface StoredEvidence {
  readonly id: number;
  readonly peer: string;
  readonly finding: EvidenceFinding;
  readonly detectedAt: number;
  readonly heldNote: string;
  readonly presentedNote: string;
  readonly proof: readonly Uint8Array[];
}

/** A request in flight to one peer: the checkpoint sent and the old size it was proved from. */
interface InFlight {
  readonly checkpoint: StoredCheckpoint;
  readonly oldSize: number;
  readonly sentAt: number;
  conflicts: number;
}

export class Witnessing {
  readonly #d: WitnessingDeps;
  readonly #inFlight = new Map<string, InFlight>();
  /** The checkpoint size each peer last refused to cosign. */
  readonly #refused = new Map<string, number>();
  /** (peer, size) pairs already reported as larger than this log: reported once. */
  readonly #rollbackSeen = new Set<string>();
  readonly #s: Record<
    | 'progress'
    | 'setProgress'
    | 'held'
    | 'setHeld'
    | 'allHeld'
    | 'insertEvidence'
    | 'evidenceCount'
    | 'evidence'
    | 'forget',
    Database.Statement
  >;

  constructor(d: WitnessingDeps) {
    this.#d = d;
    const p = (sql: string) => d.store.database.prepare(sql).safeIntegers(false);
    this.#s = {
      progress: p('SELECT size FROM witness_progress WHERE peer = ?').pluck(),
      setProgress: p(
        `INSERT INTO witness_progress (peer, size) VALUES (?, ?)
         ON CONFLICT (peer) DO UPDATE SET size = excluded.size`,
      ),
      held: p('SELECT peer, size, root, note, updated_at FROM witnessed WHERE peer = ?'),
      setHeld: p(
        `INSERT INTO witnessed (peer, size, root, note, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (peer) DO UPDATE SET size = excluded.size, root = excluded.root,
           note = excluded.note, updated_at = excluded.updated_at`,
      ),
      allHeld: p('SELECT peer, size, root, note, updated_at FROM witnessed ORDER BY peer'),
      insertEvidence: p(
        `INSERT INTO witness_evidence (peer, finding, detected_at, held_note, presented_note, proof)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      forget: p('DELETE FROM witnessed WHERE peer = ?'),
      evidenceCount: p(
        'SELECT COUNT(*) FROM witness_evidence WHERE peer = ? AND finding = ?',
      ).pluck(),
      evidence: p(
        'SELECT id, peer, finding, detected_at, held_note, presented_note, proof FROM witness_evidence ORDER BY id',
      ),
    };
  }

  // --- as a log --------------------------------------------------------------------------------

  /** Sends the newest checkpoint to every connected peer that has not cosigned it. */
  pushAll(peers: readonly string[]): void {
    for (const peer of peers) this.push(peer);
  }

  /**
   * Sends the newest checkpoint to `peer` unless a request is in flight, or the peer already
   * cosigned it, or it refused this very checkpoint. `force` (a link that just came up) sends it
   * anyway, so a peer learns at once of a log that shrank while the link was down.
   */
  push(peer: string, force = false): void {
    const { links, checkpoints, clock } = this.#d;
    const pending = this.#inFlight.get(peer);
    if (pending !== undefined) {
      if (clock.now() - pending.sentAt < WITNESS_TIMEOUT_MS) return;
      this.#inFlight.delete(peer);
    }
    if (!links.isUp(peer) || this.#d.peers.paired(peer) === null) return;
    const checkpoint = checkpoints.latest();
    if (checkpoint === null) return;
    const cosigned = (this.#s.progress.get(peer) as number | undefined) ?? 0;
    if (!force) {
      if (cosigned === checkpoint.size && this.#hasCosignature(checkpoint, peer)) return;
      // Asking again on every tick would only repeat the refusal (and its alert).
      if (this.#refused.get(peer) === checkpoint.size) return;
    }
    this.#send(peer, checkpoint, cosigned, 0);
  }

  #hasCosignature(checkpoint: StoredCheckpoint, peer: string): boolean {
    return this.#d.checkpoints.cosignatures(checkpoint.size).some((c) => c.witness === peer);
  }

  #send(peer: string, checkpoint: StoredCheckpoint, oldSize: number, conflicts: number): void {
    let proof: Uint8Array[] = [];
    if (oldSize <= checkpoint.size) {
      proof = this.#d.audit.consistencyProof(oldSize, checkpoint.size);
    } else {
      // The peer holds a larger checkpoint of this log than the log now is: a restored backup or
      // an edit. Our own record of what it cosigned makes that an incident; a size only the peer
      // claims (CONFLICT) is logged, once. Either way the request goes out without a proof, and
      // the peer keeps its evidence.
      const ours = (this.#s.progress.get(peer) as number | undefined) ?? 0;
      const key = `${peer} ${oldSize}`;
      if (!this.#rollbackSeen.has(key)) {
        this.#rollbackSeen.add(key);
        const detail = { peer, cosigned: oldSize, size: checkpoint.size };
        if (ours > checkpoint.size) {
          this.#d.log.error(
            detail,
            'audit log is smaller than a checkpoint a peer already cosigned',
          );
          this.#alert({ peer, finding: 'local-rollback', heldSize: ours, size: checkpoint.size });
        } else {
          this.#d.log.warn(detail, 'a peer claims to hold a larger checkpoint of our audit log');
        }
      }
    }
    const request: AddCheckpoint = { oldSize, proof, note: checkpoint.note };
    const sent = this.#d.links.send(
      peer,
      encodeWitnessMessage({ type: 'ADD_CHECKPOINT', request }),
    );
    if (sent)
      this.#inFlight.set(peer, { checkpoint, oldSize, sentAt: this.#d.clock.now(), conflicts });
  }

  #onCosignature(peer: string, lines: string): void {
    const req = this.#inFlight.get(peer);
    if (req === undefined) return;
    this.#inFlight.delete(peer);
    const key = this.#peerKey(peer);
    if (key === null) return;
    const name = originForNode(nodeIdFromText(peer));
    const text = req.checkpoint.note.slice(0, req.checkpoint.note.indexOf('\n\n') + 1);
    let best: { sig: ReturnType<typeof parseSignatureLines>[number]; time: number } | null = null;
    // A cosignature's time is the witness's clock: it must fall between sending the request and
    // now, give or take the allowed skew. A time far in the future could never be superseded.
    const earliest = Math.floor((req.sentAt - MAX_CLOCK_SKEW_MS) / 1000);
    const latest = Math.ceil((this.#d.clock.now() + MAX_CLOCK_SKEW_MS) / 1000);
    for (const sig of parseSignatureLines(lines)) {
      let time: number | undefined;
      try {
        time = verifyCosignature(sig, text, name, key);
      } catch {
        continue; // a line by the peer's key that does not verify: as if absent
      }
      if (time === undefined || time < earliest || time > latest) continue;
      if (best === null || time > best.time) best = { sig, time };
    }
    if (best === null) {
      // A late answer to an abandoned request, or a bad signature: nothing is stored, and the
      // link (which carries deliveries too) stays up; the next push asks again.
      this.#d.log.warn(
        { peer, size: req.checkpoint.size, code: 'LIAISON_ERR_NOTE_SIGNATURE' },
        'witness answer has no valid cosignature of our checkpoint',
      );
      return;
    }
    this.#d.store.transaction(() => {
      this.#s.setProgress.run(peer, req.checkpoint.size);
      this.#d.checkpoints.addCosignature(req.checkpoint, peer, best.sig, best.time);
    });
    this.push(peer);
  }

  #onConflict(peer: string, size: number): void {
    const req = this.#inFlight.get(peer);
    if (req === undefined) return;
    this.#inFlight.delete(peer);
    // One retry from the size the witness says it holds. A second conflict for the same
    // checkpoint is treated as a refusal: not sent again until the link comes up anew.
    if (req.conflicts >= 1) {
      this.#refused.set(peer, req.checkpoint.size);
      return;
    }
    this.#send(peer, req.checkpoint, size, req.conflicts + 1);
  }

  #onRefused(peer: string, code: string): void {
    const req = this.#inFlight.get(peer);
    // An answer to nothing is ignored: a peer must not be able to raise alerts at will.
    if (req === undefined) return;
    this.#inFlight.delete(peer);
    if (this.#refused.get(peer) === req.checkpoint.size) return;
    this.#refused.set(peer, req.checkpoint.size);
    this.#d.log.warn(
      { peer, code, size: req?.checkpoint.size },
      'peer refused to cosign our checkpoint',
    );
    if (code === 'LIAISON_ERR_CHECKPOINT_INCONSISTENT')
      this.#alert({ peer, finding: 'refused-as-inconsistent', size: req?.checkpoint.size ?? null });
  }

  onPeerDown(peer: string): void {
    this.#inFlight.delete(peer);
    this.#refused.delete(peer);
  }

  /**
   * Forgets the checkpoint held from `peer` (it was unpaired): witnessing starts afresh if it is
   * paired again. Evidence against it is kept.
   */
  forget(peer: string): void {
    this.#s.forget.run(peer);
    this.#inFlight.delete(peer);
    this.#refused.delete(peer);
  }

  // --- as a witness ----------------------------------------------------------------------------

  #onAddCheckpoint(peer: string, req: AddCheckpoint): WitnessMessage {
    const key = this.#peerKey(peer);
    if (key === null) return { type: 'REFUSED', code: 'LIAISON_ERR_PEER_UNKNOWN' };
    let opened;
    try {
      opened = openCheckpoint(req.note, originForNode(nodeIdFromText(peer)), key);
    } catch (err) {
      return {
        type: 'REFUSED',
        code: isLiaisonError(err) ? err.code : 'LIAISON_ERR_CHECKPOINT_INVALID',
      };
    }
    const held = this.held(peer);
    const heldSize = held?.size ?? 0;
    if (req.oldSize !== heldSize) return { type: 'CONFLICT', size: heldSize };
    const cp = opened.checkpoint;
    if (cp.size === 0 && !equalBytes(cp.rootHash, EMPTY_TREE_HASH))
      return { type: 'REFUSED', code: 'LIAISON_ERR_CHECKPOINT_INVALID' };
    // Keep the checkpoint with the log's own signature only: the note as received may carry
    // other lines, which are not ours to vouch for.
    const origin = originForNode(nodeIdFromText(peer));
    const note = formatNote(
      opened.text,
      signaturesBy(opened.note, origin, NOTE_KEY_TYPE_ED25519, key.bytes),
    );
    if (held !== null) {
      if (cp.size < held.size) return this.#evidence(peer, 'rollback', held, note, req.proof);
      if (cp.size === held.size) {
        if (!equalBytes(cp.rootHash, held.rootHash))
          return this.#evidence(peer, 'fork', held, note, req.proof);
        // The same checkpoint again: no proof is needed, and a proof is a malformed request.
        if (req.proof.length !== 0)
          return { type: 'REFUSED', code: 'LIAISON_ERR_AUDIT_PROOF_INVALID' };
      } else {
        try {
          verifyConsistency(held.size, cp.size, req.proof, held.rootHash, cp.rootHash);
        } catch {
          return this.#evidence(peer, 'inconsistent', held, note, req.proof);
        }
      }
    } else if (req.proof.length !== 0) {
      return { type: 'REFUSED', code: 'LIAISON_ERR_AUDIT_PROOF_INVALID' };
    }
    const me = this.#d.identity();
    const now = this.#d.clock.now();
    const sig = cosign(
      opened.text,
      originForNode(me.nodeId),
      me.signingKey,
      Math.floor(now / 1000),
    );
    if (held === null || cp.size > held.size) {
      this.#d.store.transaction(() => {
        this.#s.setHeld.run(peer, cp.size, cp.rootHash, note, now);
        this.#d.audit.append('checkpoint-cosigned', now, {
          peer: nodeIdFromText(peer),
          size: cp.size,
          rootHash: cp.rootHash,
        });
      });
    }
    return { type: 'COSIGNATURE', lines: `${formatSignatureLine(sig)}\n` };
  }

  #evidence(
    peer: string,
    finding: EvidenceFinding,
    held: WitnessedCheckpoint,
    presentedNote: string,
    proof: readonly Uint8Array[],
  ): WitnessMessage {
    const now = this.#d.clock.now();
    const presentedSize = Number(presentedNote.split('\n')[1]);
    this.#d.log.error(
      { peer, finding, heldSize: held.size, presentedSize },
      'peer presented a checkpoint that contradicts the one we hold: evidence kept',
    );
    this.#d.store.transaction(() => {
      // Bounded: a peer that keeps equivocating cannot fill the disk with evidence.
      // Counted per finding, so junk of one kind cannot crowd out a real fork.
      if ((this.#s.evidenceCount.get(peer, finding) as number) >= MAX_EVIDENCE_PER_PEER) return;
      const proofText = proof.map((h) => Buffer.from(h).toString('base64')).join('\n');
      this.#s.insertEvidence.run(peer, finding, now, held.note, presentedNote, proofText);
      this.#d.audit.append('equivocation-detected', now, {
        peer: nodeIdFromText(peer),
        finding,
        heldSize: held.size,
        presentedSize,
        evidenceHash: sha256(utf8(evidenceText(finding, held.note, presentedNote, proof))),
      });
      this.#d.events.record('audit.alert', { peer, finding, heldSize: held.size, presentedSize });
    });
    return { type: 'REFUSED', code: 'LIAISON_ERR_CHECKPOINT_INCONSISTENT' };
  }

  /** The checkpoint this node holds from `peer` as its witness. */
  held(peer: string): WitnessedCheckpoint | null {
    const r = this.#s.held.get(peer) as Record<string, unknown> | undefined;
    return r === undefined ? null : toWitnessed(r);
  }

  allHeld(): WitnessedCheckpoint[] {
    return (this.#s.allHeld.all() as Record<string, unknown>[]).map(toWitnessed);
  }

  evidence(): StoredEvidence[] {
    return (this.#s.evidence.all() as Record<string, unknown>[]).map((r) => ({
      id: r.id as number,
      peer: r.peer as string,
      finding: r.finding as EvidenceFinding,
      detectedAt: r.detected_at as number,
      heldNote: r.held_note as string,
      presentedNote: r.presented_note as string,
      proof:
        (r.proof as string) === ''
          ? []
          : (r.proof as string).split('\n').map((l) => new Uint8Array(Buffer.from(l, 'base64'))),
    }));
  }

  // --- dispatch --------------------------------------------------------------------------------

  /**
   * Handles one witness message from `peer`. A malformed message throws
   * LIAISON_ERR_WITNESS_PROTOCOL (the caller closes the link); a checkpoint it cannot cosign is
   * answered with REFUSED or CONFLICT.
   */
  onMessage(peer: string, body: Uint8Array): void {
    const m = decodeWitnessMessage(body);
    switch (m.type) {
      case 'ADD_CHECKPOINT': {
        const answer = this.#onAddCheckpoint(peer, m.request);
        this.#d.links.send(peer, encodeWitnessMessage(answer));
        return;
      }
      case 'COSIGNATURE':
        this.#onCosignature(peer, m.lines);
        return;
      case 'CONFLICT':
        this.#onConflict(peer, m.size);
        return;
      case 'REFUSED':
        this.#onRefused(peer, m.code);
        return;
    }
  }

  #peerKey(peer: string): Ed25519PublicKey | null {
    const p = this.#d.peers.paired(peer);
    return p === null ? null : Ed25519PublicKey.fromBytes(p.identityKey);
  }

  #alert(data: Record<string, unknown>): void {
    this.#d.store.transaction(() => this.#d.events.record('audit.alert', data));
  }
}

function toWitnessed(r: Record<string, unknown>): WitnessedCheckpoint {
  const root = r.root as Buffer;
  return {
    peer: r.peer as string,
    size: r.size as number,
    rootHash: new Uint8Array(root.buffer, root.byteOffset, root.length),
    note: r.note as string,
    updatedAt: r.updated_at as number,
  };
}
