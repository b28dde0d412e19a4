/**
 * Audit bundles for tests and benchmarks, built entirely in memory: simulated nodes with real
 * Ed25519 keys keep real audit logs (encodeAuditEntry, RFC 6962 stored hashes), exchange real
 * signed receipts, sign checkpoints and cosign each other's, and export bundles exactly as the
 * bundle format describes (protocol/audit-bundle.ts), ending with their own `log-exported` entry
 * and a final checkpoint at its size.
 *
 * Faults are simulated the way a node (or someone with its database) would cause them, so that a
 * bundle is always internally consistent where the node would make it so: a row deleted from the
 * inbox before export gives a state snapshot whose hash the export entry binds.
 */
import {
  asMessageId,
  auditLeafHash,
  consistencyProof,
  evidenceText,
  cosign,
  createReceipt,
  Ed25519PrivateKey,
  deriveNodeId,
  encodeAuditEntry,
  formatNote,
  formatState,
  initCrypto,
  noteTextBytes,
  originForNode,
  parseNote,
  randomBytes,
  sha256,
  signCheckpoint,
  storedHashesForAppend,
  toHex,
  treeHash,
  BUNDLE_FORMAT,
} from '../../protocol/index.ts';
import type {
  AuditFields,
  AuditKind,
  Bundle,
  BundleEvidence,
  InboxRow,
  MessageId,
  NodeId,
  NoteSignature,
  OutboxRow,
  ReceiptEntry,
  StoredHashReader,
} from '../../protocol/index.ts';

await initCrypto();

/** 2026-01-01T00:00:00Z: simulated clocks start here. */
export const T0 = 1_767_225_600_000;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export interface SimCheckpoint {
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The checkpoint body. */
  readonly text: string;
  /** The node's signature first, then cosignatures. */
  readonly signatures: NoteSignature[];
}

/** One simulated node: its keys, log, checkpoints, receipts and inbox / outbox rows. */
export class SimNode {
  readonly name: string;
  readonly key: Ed25519PrivateKey;
  readonly nodeId: NodeId;
  readonly origin: string;
  readonly entries: Uint8Array[] = [];
  readonly checkpoints: SimCheckpoint[] = [];
  /** Receipts by the index of the entry that records them. */
  readonly receipts = new Map<number, Uint8Array>();
  readonly inbox = new Map<string, InboxRow>();
  readonly outbox = new Map<string, OutboxRow>();
  /** The newest checkpoint of each peer this node cosigned, by peer hex. */
  readonly witnessed = new Map<string, { peer: NodeId; note: string }>();
  readonly evidence: BundleEvidence[] = [];
  readonly peers: SimNode[] = [];
  #levels: Uint8Array[][] = [];
  readonly read: StoredHashReader = (level, index) => {
    const h = this.#levels[level]?.[index];
    if (h === undefined) throw new Error(`no stored hash ${level}/${index}`);
    return h;
  };

  constructor(name: string, key = Ed25519PrivateKey.generate()) {
    this.name = name;
    this.key = key;
    this.nodeId = deriveNodeId(key.publicKey);
    this.origin = originForNode(this.nodeId);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The in-memory append path: encode, leaf hash, stored hashes. Returns the entry's index. */
  append<K extends AuditKind>(kind: K, time: number, fields: AuditFields<K>): number {
    return this.appendBytes(encodeAuditEntry({ kind, time, fields }));
  }

  appendBytes(bytes: Uint8Array): number {
    const n = this.entries.length;
    for (const h of storedHashesForAppend(n, auditLeafHash(bytes), this.read)) {
      (this.#levels[h.level] ??= [])[h.index] = h.hash;
    }
    this.entries.push(bytes);
    return n;
  }

  root(size = this.size): Uint8Array {
    return treeHash(size, this.read);
  }

  /** Signs a checkpoint at the current size (no cosignatures yet). */
  signCheckpoint(): SimCheckpoint {
    const size = this.size;
    const rootHash = this.root(size);
    const note = parseNote(
      signCheckpoint({ origin: this.origin, size, rootHash, extensions: [] }, this.key),
    );
    const c: SimCheckpoint = { size, rootHash, text: note.text, signatures: [...note.signatures] };
    this.checkpoints.push(c);
    return c;
  }

  /** Empties the log and its stored hashes, returning the entries (to rebuild a history). */
  reset(): Uint8Array[] {
    this.#levels = [];
    return this.entries.splice(0);
  }

  /** The hashes of the perfect subtrees covering [0, size), largest first. */
  frontier(size: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let lo = 0;
    for (let level = 53; level >= 0; level--) {
      const width = 2 ** level;
      if (lo + width <= size) {
        out.push(this.read(level, lo / width));
        lo += width;
      }
    }
    return out;
  }

  state(): string {
    return formatState([...this.inbox.values()], [...this.outbox.values()]);
  }
}

export interface WorldOptions {
  /** Envelopes per receipt; a batch is signed when full or at settle(). Default 1. */
  readonly receiptBatch?: number;
  /** A node signs a checkpoint (cosigned by its peers) when it has grown this much; 0: never. */
  readonly checkpointEvery?: number;
}

export interface SendOptions {
  /** false: the envelope never reaches the recipients (a link down); default true. */
  readonly deliver?: boolean;
  /** With deliver false: the sender gives up and logs delivery-failed `expired`. */
  readonly expire?: boolean;
  /**
   * A faulty recipient: `omit-entry` stores the message and receipts it at the index the entry
   * should have had, but never logs it; `alter-hash` logs, stores and receipts another hash.
   */
  readonly receiver?: 'omit-entry' | 'alter-hash';
}

export interface SentMessage {
  readonly messageId: MessageId;
  readonly envelopeHash: Uint8Array;
  /** Index of the message-sent entry in the sender's log. */
  readonly sentIndex: number;
  /** Index of the message-received entry in each recipient's log, by recipient name. */
  readonly receivedIndex: Map<string, number>;
}

interface PendingReceipt {
  readonly receiver: SimNode;
  readonly sender: SimNode;
  readonly entries: ReceiptEntry[];
}

/** A federation of simulated nodes sharing one clock, every pair paired. */
export class SimWorld {
  now = T0;
  readonly nodes: SimNode[];
  readonly #batch: number;
  readonly #every: number;
  readonly #pending = new Map<string, PendingReceipt>();
  readonly #sequences = new Map<string, number>();

  constructor(names: readonly string[], options: WorldOptions = {}) {
    this.#batch = options.receiptBatch ?? 1;
    this.#every = options.checkpointEvery ?? 0;
    this.nodes = names.map((n) => new SimNode(n));
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b) continue;
        a.peers.push(b);
        a.append('peer-changed', this.tick(), { peer: b.nodeId, change: 'paired', user: 'admin' });
      }
    }
  }

  tick(ms = 1): number {
    this.now += ms;
    return this.now;
  }

  node(name: string): SimNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** A message from `from` to `to`, logged, stored and receipted as the options say. */
  send(from: SimNode, to: readonly SimNode[], options: SendOptions = {}): SentMessage {
    const messageId = asMessageId(randomBytes(16));
    const envelopeHash = randomBytes(32);
    const sentIndex = from.append('message-sent', this.tick(), {
      messageId,
      envelopeHash,
      author: 'officer',
      recipients: to.length,
    });
    const receivedIndex = new Map<string, number>();
    for (const r of to) {
      const seqKey = `${from.name}>${r.name}`;
      const sequence = (this.#sequences.get(seqKey) ?? 0) + 1;
      this.#sequences.set(seqKey, sequence);
      from.append('message-recipient', this.now, { messageId, recipient: r.nodeId, sequence });
      from.outbox.set(hex(messageId) + hex(r.nodeId), {
        messageId,
        envelopeHash,
        recipient: r.nodeId,
        status: 'queued',
      });
      if (options.deliver === false) {
        if (options.expire === true) {
          from.append('delivery-failed', this.tick(), {
            messageId,
            recipient: r.nodeId,
            status: 'expired',
            code: 'LIAISON_ERR_ENVELOPE_EXPIRED',
          });
          from.outbox.set(hex(messageId) + hex(r.nodeId), {
            messageId,
            envelopeHash,
            recipient: r.nodeId,
            status: 'expired',
          });
        }
        continue;
      }
      const stored = options.receiver === 'alter-hash' ? randomBytes(32) : envelopeHash;
      const time = this.tick();
      const logIndex =
        options.receiver === 'omit-entry'
          ? r.size
          : r.append('message-received', time, {
              sender: from.nodeId,
              messageId,
              envelopeHash: stored,
              sequence,
            });
      receivedIndex.set(r.name, logIndex);
      r.inbox.set(hex(from.nodeId) + hex(messageId), {
        sender: from.nodeId,
        messageId,
        envelopeHash: stored,
        sequence,
        logIndex,
      });
      if (options.receiver === 'omit-entry') {
        // Something else takes the index the receipt names.
        r.append('message-consulted', this.tick(), {
          user: 'officer',
          sender: from.nodeId,
          messageId,
        });
      }
      const key = `${r.name}<${from.name}`;
      const p = this.#pending.get(key) ?? { receiver: r, sender: from, entries: [] };
      p.entries.push({ messageId, envelopeHash: stored, logIndex });
      this.#pending.set(key, p);
      if (p.entries.length >= this.#batch) this.#flush(key);
    }
    this.#autoCheckpoint();
    return { messageId, envelopeHash, sentIndex, receivedIndex };
  }

  /** The recipient logs and stores a message `sender` never sent. */
  fabricateReceived(receiver: SimNode, sender: SimNode): { messageId: MessageId; index: number } {
    const messageId = asMessageId(randomBytes(16));
    const envelopeHash = randomBytes(32);
    const index = receiver.append('message-received', this.tick(), {
      sender: sender.nodeId,
      messageId,
      envelopeHash,
      sequence: 1_000_000,
    });
    receiver.inbox.set(hex(sender.nodeId) + hex(messageId), {
      sender: sender.nodeId,
      messageId,
      envelopeHash,
      sequence: 1_000_000,
      logIndex: index,
    });
    return { messageId, index };
  }

  /** A user of `node` reads a message (a consultation entry). */
  consult(node: SimNode, sender: NodeId, messageId: MessageId): number {
    const i = node.append('message-consulted', this.tick(), { user: 'officer', sender, messageId });
    this.#autoCheckpoint();
    return i;
  }

  /** Someone deletes an inbox row directly in the node's database. */
  deleteInboxRow(node: SimNode, sender: SimNode, messageId: MessageId): void {
    if (!node.inbox.delete(hex(sender.nodeId) + hex(messageId))) throw new Error('no such row');
  }

  /** Signs every pending receipt batch. */
  settle(): void {
    for (const key of [...this.#pending.keys()]) this.#flush(key);
    this.#autoCheckpoint();
  }

  #flush(key: string): void {
    const p = this.#pending.get(key);
    this.#pending.delete(key);
    if (p === undefined || p.entries.length === 0) return;
    const receipt = createReceipt(
      p.receiver.key,
      p.receiver.nodeId,
      p.sender.nodeId,
      this.tick(),
      p.entries,
    );
    const receiptHash = sha256(receipt.bytes);
    const issued = p.receiver.append('receipt-issued', this.now, {
      sender: p.sender.nodeId,
      receiptHash,
      entries: p.entries.length,
    });
    p.receiver.receipts.set(issued, receipt.bytes);
    const got = p.sender.append('receipt-received', this.tick(), {
      issuer: p.receiver.nodeId,
      receiptHash,
      entries: p.entries.length,
    });
    p.sender.receipts.set(got, receipt.bytes);
    for (const e of p.entries) {
      const k = hex(e.messageId) + hex(p.receiver.nodeId);
      const row = p.sender.outbox.get(k);
      if (row !== undefined) p.sender.outbox.set(k, { ...row, status: 'delivered' });
    }
  }

  #checkpointing = false;
  #autoCheckpoint(): void {
    if (this.#every <= 0 || this.#checkpointing) return;
    this.#checkpointing = true;
    try {
      for (const n of this.nodes) {
        const last = n.checkpoints[n.checkpoints.length - 1]?.size ?? 0;
        if (n.size - last >= this.#every) this.checkpoint(n);
      }
    } finally {
      this.#checkpointing = false;
    }
  }

  /**
   * `node` signs a checkpoint; each peer cosigns it, logs checkpoint-cosigned and keeps it as
   * witnessed; `node` logs cosignature-received for each unless `logCosignatures` is false.
   */
  checkpoint(node: SimNode, logCosignatures = true): SimCheckpoint {
    const c = node.signCheckpoint();
    const seconds = Math.floor(this.now / 1000);
    const note = formatNote(c.text, c.signatures);
    for (const w of node.peers) {
      c.signatures.push(cosign(c.text, w.origin, w.key, seconds));
      w.append('checkpoint-cosigned', this.tick(), {
        peer: node.nodeId,
        size: c.size,
        rootHash: c.rootHash,
      });
      w.witnessed.set(hex(node.nodeId), { peer: node.nodeId, note });
    }
    if (logCosignatures) {
      for (const w of node.peers) {
        node.append('cosignature-received', this.tick(), {
          witness: w.nodeId,
          size: c.size,
          rootHash: c.rootHash,
          cosignedAt: seconds,
        });
      }
    }
    return c;
  }

  /**
   * `node` replaces entry `index` and re-signs every checkpoint over the new history, without
   * cosignatures (no honest peer would cosign the fork).
   */
  rewrite(node: SimNode, index: number, entry: Uint8Array): void {
    node.entries[index] = entry;
    const sizes = node.checkpoints.splice(0).map((c) => c.size);
    const saved = node.reset();
    for (const e of saved) {
      node.appendBytes(e);
      while (sizes[0] === node.size) {
        sizes.shift();
        node.signCheckpoint();
      }
    }
  }

  /**
   * `node` throws away every entry from `size` on, and the checkpoints beyond it, as if it had
   * restored an old backup; its peers keep what they witnessed.
   */
  truncate(node: SimNode, size: number): void {
    const kept = node.reset().slice(0, size);
    for (const e of kept) node.appendBytes(e);
    const cps = node.checkpoints.splice(0).filter((c) => c.size <= size);
    node.checkpoints.push(...cps);
    for (const [k, row] of node.inbox) if (row.logIndex >= size) node.inbox.delete(k);
    for (const [i] of node.receipts) if (i >= size) node.receipts.delete(i);
  }

  /**
   * `node` shows `witness` a checkpoint that forks the one `witness` holds (same size, another
   * root); `witness` keeps the evidence and logs equivocation-detected.
   */
  equivocate(node: SimNode, witness: SimNode): BundleEvidence {
    const held = witness.witnessed.get(hex(node.nodeId));
    if (held === undefined) throw new Error('the witness holds no checkpoint of that node');
    const size = parseNote(held.note).text.split('\n')[1]!;
    const presentedNote = signCheckpoint(
      { origin: node.origin, size: Number(size), rootHash: randomBytes(32), extensions: [] },
      node.key,
    );
    const evidence: BundleEvidence = {
      peer: node.nodeId,
      finding: 'fork',
      detectedAt: this.tick(),
      heldNote: held.note,
      presentedNote,
      proof: [],
    };
    witness.evidence.push(evidence);
    witness.append('equivocation-detected', this.now, {
      peer: node.nodeId,
      finding: 'fork',
      heldSize: Number(size),
      presentedSize: Number(size),
      evidenceHash: sha256(noteTextBytes(evidenceText('fork', held.note, presentedNote, []))),
    });
    return evidence;
  }

  /**
   * `node` exports [from, size): it logs log-exported binding its state snapshot, signs a final
   * checkpoint at the new size (cosigned, not logged, so that the export entry stays last) and
   * assembles the bundle.
   */
  export(node: SimNode, from = 0): Bundle {
    const state = node.state();
    const to = node.size + 1;
    node.append('log-exported', this.tick(), {
      user: 'auditor',
      from,
      to,
      stateHash: sha256(noteTextBytes(state)),
    });
    this.checkpoint(node, false);
    return this.bundle(node, from, to, state);
  }

  /** The bundle of entries [from, to) as the node holds them now. */
  bundle(node: SimNode, from: number, to: number, state = node.state()): Bundle {
    const cps = node.checkpoints.filter((c) => c.size >= from && c.size <= to);
    const consistency = [];
    for (let i = 1; i < cps.length; i++) {
      const a = cps[i - 1]!.size;
      const b = cps[i]!.size;
      consistency.push({ from: a, to: b, proof: consistencyProof(a, b, node.read) });
    }
    const receipts: Uint8Array[] = [];
    for (const [index, bytes] of node.receipts)
      if (index >= from && index < to) receipts.push(bytes);
    return {
      format: BUNDLE_FORMAT,
      createdAt: this.now,
      node: {
        nodeId: node.nodeId,
        origin: node.origin,
        identityKey: node.key.publicKey.bytes,
        rotations: [],
        keyRecords: [],
      },
      peers: node.peers.map((p) => ({
        nodeId: p.nodeId,
        name: p.name,
        identityKey: p.key.publicKey.bytes,
      })),
      from,
      to,
      frontier: node.frontier(from),
      entries: node.entries.slice(from, to),
      checkpoints: cps.map((c) => formatNote(c.text, c.signatures)),
      consistency,
      receipts,
      witnessed: [...node.witnessed.values()],
      evidence: [...node.evidence],
      state,
    };
  }
}

export interface TrafficOptions extends WorldOptions {
  /** Messages each way between a and b (default 10). */
  readonly messages?: number;
  /** Instead: keep going until b's log holds this many entries before its export entry. */
  readonly entries?: number;
}

/**
 * Two nodes, `a` and `b`, exchanging messages both ways with receipts, consultations and
 * checkpoints; everything settled. Export is left to the caller.
 */
export function buildPair(options: TrafficOptions = {}): {
  world: SimWorld;
  a: SimNode;
  b: SimNode;
} {
  const world = new SimWorld(['a', 'b'], {
    receiptBatch: options.receiptBatch ?? 1,
    checkpointEvery: options.checkpointEvery ?? 16,
  });
  const a = world.node('a');
  const b = world.node('b');
  const step = (i: number): void => {
    const m = world.send(a, [b]);
    if (i % 4 === 0) world.consult(b, a.nodeId, m.messageId);
    world.send(b, [a]);
  };
  if (options.entries !== undefined) {
    const target = options.entries - 1;
    let i = 0;
    // Stop early enough that settling and padding land exactly on the target.
    while (b.size < target - 4 * (options.receiptBatch ?? 1) - 16) step(i++);
    world.settle();
    const none = asMessageId(new Uint8Array(16));
    // Padding straight into the log: consult() could trigger a checkpoint and overshoot.
    while (b.size < target)
      b.append('message-consulted', world.tick(), {
        user: 'officer',
        sender: a.nodeId,
        messageId: none,
      });
    if (b.size !== target) throw new Error(`overshot: ${b.size} entries, wanted ${target}`);
  } else {
    for (let i = 0; i < (options.messages ?? 10); i++) step(i);
    world.settle();
  }
  return { world, a, b };
}

/** Hex of bytes, for assertions on evidence. */
export function hexOf(b: Uint8Array): string {
  return toHex(b);
}
