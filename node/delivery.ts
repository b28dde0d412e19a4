/**
 * Delivery (docs/protocol.md §13, docs/operations.md §Delivery): durable store-and-forward of
 * envelopes between paired nodes, exactly once, in order per sender, with signed receipts.
 *
 * Sender side. Submit seals the envelope and, in one transaction, stores it, assigns each
 * recipient its next sequence number, queues one delivery per recipient and appends the audit
 * entries; only then does the API answer. A pump per peer sends queued envelopes in sequence
 * order over the peer's link whenever it is up, and starts again from the oldest undelivered one
 * after every reconnection or restart. A delivery is `queued` until written to a link, `sent`
 * until the recipient's signed receipt for exactly that envelope hash arrives (`delivered`), then
 * `acknowledged` when the recipient's user acknowledges it; or `expired` / `rejected` (with the
 * recipient's error code).
 *
 * Receiver side. Each envelope passes every acceptance check of protocol/validity.ts; the accepted
 * ones of a batch are stored with their audit entries and the receipt for them, in one
 * transaction, and the receipt is sent after the commit. An envelope that arrives again (the
 * sender crashed, or the receipt was lost) is recognised by its exact envelope hash and receipted
 * again without being stored twice: that is what makes delivery exactly once.
 */
import {
  acceptDecoded,
  aeadDecrypt,
  aeadEncrypt,
  AEAD_NONCE_BYTES,
  asMessageId,
  blake2b256,
  concat,
  createReceipt,
  decodeDeliveryMessage,
  decodeEnvelope,
  decodeReceipt,
  decryptWithDisclosedKey,
  Ed25519PublicKey,
  encodeEnvelopes,
  encodeReceiptMessage,
  encodeRejects,
  equalBytes,
  isLiaisonError,
  LiaisonError,
  MAX_ENVELOPE_LIFETIME_MS,
  MAX_RECEIPT_ENTRIES,
  MAX_RECIPIENTS,
  messageIdFromText,
  messageIdToText,
  nodeIdFromText,
  nodeIdToText,
  PairKeyCache,
  PartAssembler,
  randomBytes,
  sealEnvelope,
  sha256,
  toHex,
  utf8,
  verifyReceipt,
  wipe,
  X25519PublicKey,
} from '../protocol/index.ts';
import type {
  Envelope,
  EnvelopeKind,
  HandlingCode,
  LocalIdentity,
  MessageId,
  NodeId,
  Payload,
  Priority,
  ReceiptEntry,
  ReceiverView,
  Rejection,
} from '../protocol/index.ts';
import type { AuditLog } from './audit-log.ts';
import type { Clock } from './clock.ts';
import type { EventLog } from './events.ts';
import { GroupCommit } from './group-commit.ts';
import type { Store } from './store.ts';

/** Envelopes read from the outbox per pump step. */
export const PUMP_BATCH = 512;
/** Envelope bytes read from the outbox per pump step (a batch of large messages stops early). */
export const PUMP_BATCH_BYTES = 8 * 1024 * 1024;
/** Refusals audited and logged one by one per batch; beyond it the peer is cut off. */
export const MAX_REFUSALS_PER_BATCH = 32;
/** What listings and metadata read: never the envelope or the sealed key. */
const META_COLUMNS = `row_id, direction, sender, message_id, kind, priority, handling, author,
  created_at, expires_at, ref, envelope_hash, log_index, stored_at, mailbox, sequence, gap_from,
  gap_to, read_at, read_by, acked_at, acked_by`;
/** Envelopes sent to one peer and not yet receipted; the pump waits beyond this. */
export const MAX_IN_FLIGHT_PER_PEER = 4096;
/** Delay before a pump blocked by a full link send queue tries again. */
export const PUMP_RETRY_MS = 20;
/** How often expired deliveries are swept and stalled pumps retried. */
export const DELIVERY_SWEEP_INTERVAL_MS = 1000;
/** Default envelope lifetime when the sender names none. */
export const DEFAULT_MESSAGE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const STORAGE_KEY_CONTEXT = 'liaison/v1/local-storage-key';

export const DELIVERY_STATUSES = [
  'queued',
  'sent',
  'delivered',
  'acknowledged',
  'expired',
  'rejected',
] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** What the link layer offers delivery. */
export interface LinkPort {
  send(peerId: string, body: Uint8Array): boolean;
  isUp(peerId: string): boolean;
  /** Closes the peer's link with an error code (it reconnects and the sender resends). */
  close(peerId: string, code: string): void;
}

/** What delivery needs to know about peers. */
export interface PeerPort {
  /** Identity key and current static key of a paired, unblocked peer; null otherwise. */
  paired(nodeId: string): { identityKey: Uint8Array; dhKey: Uint8Array } | null;
  /** Whether `dhKey` is a static key the peer certified. */
  isCertifiedDhKey(nodeId: string, dhKey: Uint8Array): boolean;
}

export interface DeliveryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DeliveryDeps {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly events: EventLog;
  readonly clock: Clock;
  readonly identity: () => LocalIdentity;
  readonly peers: PeerPort;
  readonly links: LinkPort;
  readonly log: DeliveryLogger;
}

export interface RecipientAddress {
  readonly nodeId: string;
  readonly mailbox: string;
}

export interface SubmitRequest {
  readonly author: string;
  readonly recipients: readonly RecipientAddress[];
  readonly kind: EnvelopeKind;
  readonly priority: Priority;
  readonly handling: HandlingCode;
  readonly ttlMs: number;
  readonly ref: string | null;
  readonly payload: Payload;
}

export interface Submitted {
  readonly messageId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly recipients: readonly { nodeId: string; mailbox: string; sequence: number }[];
}

export interface RecipientStatus {
  readonly nodeId: string;
  readonly mailbox: string;
  readonly sequence: number;
  readonly status: DeliveryStatus;
  readonly reason: string | null;
  readonly updatedAt: number;
  readonly sentAt: number | null;
  readonly deliveredAt: number | null;
  readonly acknowledgedAt: number | null;
  /** The recipient's audit-log index for this envelope, from its signed receipt. */
  readonly remoteLogIndex: number | null;
}

export interface MessageMeta {
  readonly messageId: string;
  readonly direction: 'in' | 'out';
  readonly sender: string;
  readonly kind: EnvelopeKind;
  readonly priority: Priority;
  readonly handling: HandlingCode;
  readonly author: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly ref: string | null;
  readonly envelopeHash: string;
  readonly logIndex: number;
  readonly storedAt: number;
  /** Inbox only. */
  readonly mailbox: string | null;
  readonly sequence: number | null;
  readonly gap: { from: number; to: number } | null;
  readonly readAt: number | null;
  readonly readBy: string | null;
  readonly acknowledgedAt: number | null;
  readonly acknowledgedBy: string | null;
}

export interface InboxQuery {
  readonly direction: 'in' | 'out';
  readonly sender?: string;
  readonly mailbox?: string;
  readonly priority?: Priority;
  readonly kind?: EnvelopeKind;
  readonly unread?: boolean;
  /** Rows strictly before this cursor (a row ID from a previous page), newest first. */
  readonly before?: number;
  readonly limit: number;
}

type Outcome =
  | {
      kind: 'accepted';
      env: Envelope;
      contentKey: Uint8Array;
      mailbox: string;
      sequence: number;
      gap: { from: number; to: number } | null;
    }
  /** logIndex -1: a repeat of an envelope accepted earlier in the same batch. */
  | { kind: 'duplicate'; env: Envelope; logIndex: number }
  | { kind: 'rejected'; code: string; messageId: MessageId | null; bytes: Uint8Array };

interface PeerState {
  /** Highest sequence handed to the current link; 0 after every reconnection. */
  cursor: number;
  /** Encoded bodies up to `cursor` the link has not taken yet (back-pressure). */
  backlog: Uint8Array[];
  pumping: boolean;
  retry: NodeJS.Timeout | null;
  parts: PartAssembler;
}

function int(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}
function intOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : int(v);
}

export class Delivery {
  readonly #d: DeliveryDeps;
  readonly #db: Store['database'];
  readonly #commit: GroupCommit;
  readonly #pairKeys = new PairKeyCache();
  readonly #peers = new Map<string, PeerState>();
  readonly #keys = new Map<string, Ed25519PublicKey>();
  readonly #inbound = new Map<string, { envelopes: Uint8Array[]; receipts: Uint8Array[] }>();
  #inboundScheduled = false;
  /** Peers that got new deliveries in the current group commit: pumped right after it. */
  readonly #submittedTo = new Set<string>();
  #storageKey: Uint8Array;
  /**
   * No open delivery expires before this (ms): the sweep's scan is skipped until then. Unknown
   * (-Infinity) at start; lowered by every submit, recomputed after every scan.
   */
  #nextExpiry = -Infinity;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #s: ReturnType<typeof prepare>;

  constructor(d: DeliveryDeps) {
    this.#d = d;
    this.#db = d.store.database;
    this.#s = prepare(this.#db);
    this.#commit = new GroupCommit(d.store, () => {
      for (const peer of this.#submittedTo) this.#pump(peer);
      this.#submittedTo.clear();
    });
    this.#storageKey = deriveStorageKey(d.identity());
  }

  start(): void {
    this.#timer = setInterval(() => this.#sweep(), DELIVERY_SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const st of this.#peers.values()) if (st.retry !== null) clearTimeout(st.retry);
    wipe(this.#storageKey);
  }

  // --- sender side ------------------------------------------------------------------------

  /**
   * Seals and queues a message; resolves once it is durably stored (outbox, audit log).
   * @throws LIAISON_ERR_VALIDATION (field named), LIAISON_ERR_RECIPIENT_UNKNOWN, LIAISON_ERR_ENCODE_*
   */
  async submit(req: SubmitRequest): Promise<Submitted> {
    const ref = checkSubmit(req);
    return this.#commit.run(() => this.#seal(req, ref), req.priority !== 'routine');
  }

  /** Seals and queues, inside the caller's transaction (a group-commit job). */
  #seal(req: SubmitRequest, ref: MessageId | null): Submitted {
    const me = this.#d.identity();
    const now = this.#d.clock.now();
    const captured: { key: Uint8Array | null } = { key: null };
    const specs = req.recipients.map((r) => {
      const peer = this.#d.peers.paired(r.nodeId);
      if (peer === null)
        throw new LiaisonError(
          'LIAISON_ERR_RECIPIENT_UNKNOWN',
          `${r.nodeId} is not a paired, unblocked peer`,
          { field: 'recipients' },
        );
      const sequence = this.#nextOutSequence(r.nodeId);
      return {
        nodeId: nodeIdFromText(r.nodeId),
        dhKey: X25519PublicKey.fromBytes(peer.dhKey),
        sequence,
        mailbox: r.mailbox,
      };
    });
    const env = sealEnvelope(
      me,
      {
        kind: req.kind,
        priority: req.priority,
        handling: req.handling,
        author: req.author,
        createdAt: now,
        expiresAt: now + req.ttlMs,
        ref,
        recipients: specs,
        payload: req.payload,
      },
      { pairKeys: this.#pairKeys, onContentKey: (k) => (captured.key = k) },
    );
    const h = env.header;
    // A job that rolls back leaves an earlier bound than needed: one scan for nothing.
    if (h.expiresAt < this.#nextExpiry) this.#nextExpiry = h.expiresAt;
    const sender = nodeIdToText(me.nodeId);
    const contentKey = captured.key;
    if (contentKey === null) throw new LiaisonError('LIAISON_ERR_INTERNAL', 'no content key');
    const logIndex = this.#d.audit.append('message-sent', now, {
      messageId: h.messageId,
      envelopeHash: env.envelopeHash,
      author: req.author,
      recipients: h.recipients.length,
    });
    const row = this.#insertMessage('out', sender, env, contentKey, logIndex, now, null);
    wipe(contentKey);
    for (const r of h.recipients) {
      const peer = nodeIdToText(r.nodeId);
      this.#d.audit.append('message-recipient', now, {
        messageId: h.messageId,
        recipient: r.nodeId,
        sequence: r.sequence,
      });
      this.#s.insertDelivery.run(row, peer, r.sequence, r.mailbox, now);
      // A job that rolls back leaves a harmless extra pump (it finds nothing new).
      this.#submittedTo.add(peer);
      this.#d.events.record('message.status', {
        messageId: messageIdToText(h.messageId),
        recipient: peer,
        status: 'queued',
      });
    }
    return {
      messageId: messageIdToText(h.messageId),
      createdAt: now,
      expiresAt: h.expiresAt,
      recipients: h.recipients.map((r) => ({
        nodeId: nodeIdToText(r.nodeId),
        mailbox: r.mailbox,
        sequence: r.sequence,
      })),
    };
  }

  #nextOutSequence(peer: string): number {
    const r = this.#s.bumpOut.get(peer) as { last_out: unknown };
    return int(r.last_out);
  }

  #insertMessage(
    direction: 'in' | 'out',
    sender: string,
    env: Envelope,
    contentKey: Uint8Array,
    logIndex: number,
    now: number,
    inbox: { mailbox: string; sequence: number; gap: { from: number; to: number } | null } | null,
  ): number {
    const h = env.header;
    const nonce = randomBytes(AEAD_NONCE_BYTES);
    const sealed = concat(
      nonce,
      aeadEncrypt(this.#storageKey, nonce, concat(utf8(sender), h.messageId), contentKey),
    );
    const r = this.#s.insertMessage.get(
      direction,
      sender,
      h.messageId,
      h.kind,
      h.priority,
      h.handling,
      h.author,
      h.createdAt,
      h.expiresAt,
      h.ref,
      env.bytes,
      env.envelopeHash,
      sealed,
      logIndex,
      now,
      inbox?.mailbox ?? null,
      inbox?.sequence ?? null,
      inbox?.gap?.from ?? null,
      inbox?.gap?.to ?? null,
    ) as { row_id: unknown };
    return int(r.row_id);
  }

  /** A link came up: start again from the oldest undelivered envelope (the peer dedupes). */
  onPeerUp(peerId: string): void {
    const st = this.#state(peerId);
    st.cursor = 0;
    st.backlog = [];
    st.parts = new PartAssembler();
    this.#pump(peerId);
  }

  onPeerDown(peerId: string): void {
    const st = this.#state(peerId);
    st.cursor = 0;
    st.backlog = [];
    st.parts = new PartAssembler();
  }

  #state(peerId: string): PeerState {
    let st = this.#peers.get(peerId);
    if (st === undefined) {
      st = { cursor: 0, backlog: [], pumping: false, retry: null, parts: new PartAssembler() };
      this.#peers.set(peerId, st);
    }
    return st;
  }

  /** Every peer whose link came up; #pump returns at once for one with nothing to send. */
  #pumpAll(): void {
    for (const peer of this.#peers.keys()) this.#pump(peer);
  }

  /**
   * Sends what is queued for `peerId`, in sequence order, while the link takes it and the
   * in-flight window allows; marks what it wrote as `sent` in one transaction per step.
   */
  #pump(peerId: string): void {
    if (this.#stopped || !this.#d.links.isUp(peerId)) return;
    const st = this.#state(peerId);
    if (st.pumping) return;
    st.pumping = true;
    try {
      for (;;) {
        // Bodies encoded earlier that the link did not take yet go first, in order: a split
        // envelope must never restart on the same link (the receiver holds its first parts).
        while (st.backlog.length > 0) {
          if (!this.#d.links.send(peerId, st.backlog[0]!)) {
            this.#retrySoon(peerId);
            return;
          }
          st.backlog.shift();
        }
        const oldest = this.#s.oldestPending.get(peerId) as { sequence: unknown } | undefined;
        if (oldest === undefined) return;
        const window = int(oldest.sequence) + MAX_IN_FLIGHT_PER_PEER - 1 - st.cursor;
        if (window <= 0) return;
        const now = this.#d.clock.now();
        const rows = this.#s.nextToSend.all(
          peerId,
          st.cursor,
          now,
          Math.min(PUMP_BATCH, window),
        ) as {
          sequence: unknown;
          size: unknown;
          status: string;
          message_id: Uint8Array;
        }[];
        // Sizes first, envelopes after: a step never holds more than PUMP_BATCH_BYTES of them.
        let bytes = 0;
        const cut = rows.findIndex((r, i) => (bytes += int(r.size)) > PUMP_BATCH_BYTES && i > 0);
        if (cut > 0) rows.length = cut;
        if (rows.length === 0) return;
        const first = int(rows[0]!.sequence);
        const last = int(rows.at(-1)!.sequence);
        // The same conditions over the same sequence range: exactly the envelopes of `rows`.
        const envelopes = this.#s.envelopesToSend.all(peerId, first, last, now) as Uint8Array[];
        st.backlog.push(...encodeEnvelopes(envelopes));
        st.cursor = last;
        const fresh = rows.filter((r) => r.status === 'queued');
        if (fresh.length > 0) {
          // Not fsync'd: a lost 'sent' mark only means the envelope is sent again (deduped).
          this.#d.store.relaxedTransaction(() => {
            for (const r of fresh) {
              this.#s.markSent.run(now, now, peerId, r.sequence);
              this.#d.events.record('message.status', {
                messageId: messageIdToText(asMessageId(new Uint8Array(r.message_id))),
                recipient: peerId,
                status: 'sent',
              });
            }
          });
        }
      }
    } catch (err) {
      this.#d.log.warn({ peer: peerId, err: String(err) }, 'delivery pump failed; will retry');
    } finally {
      st.pumping = false;
    }
  }

  /** The link is backed up: try again shortly (its queue drains at network speed). */
  #retrySoon(peerId: string): void {
    const st = this.#state(peerId);
    if (st.retry !== null) return;
    st.retry = setTimeout(() => {
      st.retry = null;
      this.#pump(peerId);
    }, PUMP_RETRY_MS);
    st.retry.unref();
  }

  /** Expires what can no longer be delivered, and retries pumps that stalled on back-pressure. */
  #sweep(): void {
    if (this.#stopped) return;
    const now = this.#d.clock.now();
    // Scanning every open delivery each second cost tens of milliseconds of the event loop with a
    // backlog of thousands: scan only once the earliest open expiry has passed.
    if (now >= this.#nextExpiry)
      try {
        const next = this.#d.store.transaction(() => {
          for (const r of this.#s.expiredOpen.all(now) as Record<string, unknown>[]) {
            const peer = String(r.peer);
            this.#s.setFinal.run('expired', 'LIAISON_ERR_ENVELOPE_EXPIRED', now, peer, r.sequence);
            this.#d.audit.append('delivery-failed', now, {
              messageId: asMessageId(new Uint8Array(r.message_id as Uint8Array)),
              recipient: nodeIdFromText(peer),
              status: 'expired',
              code: 'LIAISON_ERR_ENVELOPE_EXPIRED',
            });
            this.#d.events.record('message.status', {
              messageId: messageIdToText(asMessageId(new Uint8Array(r.message_id as Uint8Array))),
              recipient: peer,
              status: 'expired',
              reason: 'LIAISON_ERR_ENVELOPE_EXPIRED',
            });
          }
          return this.#s.nextOpenExpiry.get() as number | null;
        });
        // Only once committed: rolled back, the same deliveries are scanned again next time.
        this.#nextExpiry = next ?? Infinity;
      } catch (err) {
        this.#d.log.warn({ err: String(err) }, 'expiry sweep failed');
      }
    this.#pumpAll();
    this.#d.events.prune();
  }

  // --- both directions: what arrives on a link ---------------------------------------------

  /**
   * One DATA body from `peerId`'s authenticated link. A malformed delivery message is a protocol
   * violation (the caller closes the link); a bad envelope is refused alone.
   * @throws LIAISON_ERR_DELIVERY_PROTOCOL, LIAISON_ERR_DECODE_*
   */
  onData(peerId: string, body: Uint8Array): void {
    const msg = decodeDeliveryMessage(body);
    const st = this.#state(peerId);
    switch (msg.type) {
      case 'ENVELOPES':
        if (st.parts.busy)
          throw new LiaisonError(
            'LIAISON_ERR_DELIVERY_PROTOCOL',
            'envelopes inside a split envelope',
            { field: 'type' },
          );
        this.#queueIn(peerId).envelopes.push(...msg.envelopes);
        return;
      case 'PART': {
        const whole = st.parts.add(msg);
        if (whole !== null) this.#queueIn(peerId).envelopes.push(whole);
        return;
      }
      case 'RECEIPT':
        this.#queueIn(peerId).receipts.push(msg.receipt);
        return;
      case 'REJECTS':
        this.#onRejects(peerId, msg.rejections);
        return;
    }
  }

  /**
   * What arrived in this turn of the event loop, per peer. Frames that arrive together (one
   * socket read holds many) are stored in one transaction: a commit costs an fsync whatever it
   * holds, so this is what bounds delivery throughput on a busy disk.
   */
  #queueIn(peerId: string): { envelopes: Uint8Array[]; receipts: Uint8Array[] } {
    let q = this.#inbound.get(peerId);
    if (q === undefined) {
      q = { envelopes: [], receipts: [] };
      this.#inbound.set(peerId, q);
    }
    if (!this.#inboundScheduled) {
      this.#inboundScheduled = true;
      setImmediate(() => this.#flushInbound());
    }
    return q;
  }

  #flushInbound(): void {
    this.#inboundScheduled = false;
    const all = [...this.#inbound];
    this.#inbound.clear();
    for (const [peerId, q] of all) {
      if (this.#stopped) return;
      if (q.envelopes.length > 0) {
        try {
          this.#receive(peerId, q.envelopes);
        } catch (err) {
          // Nothing of the batch was stored: cut the link; the sender resends on reconnection.
          const code = isLiaisonError(err) ? err.code : 'LIAISON_ERR_INTERNAL';
          this.#d.log.warn({ peer: peerId, code }, 'received envelopes not stored; closing link');
          this.#d.links.close(peerId, code);
        }
      }
      if (q.receipts.length > 0) {
        try {
          this.#d.store.transaction(() => {
            for (const r of q.receipts) this.#onReceipt(peerId, r);
          });
        } catch (err) {
          this.#d.log.warn({ peer: peerId, err: String(err) }, 'storing receipts failed');
        }
        this.#pump(peerId);
      }
    }
  }

  // --- receiver side -----------------------------------------------------------------------

  #receive(peerId: string, envelopes: readonly Uint8Array[]): void {
    const me = this.#d.identity();
    const now = this.#d.clock.now();
    const from = nodeIdFromText(peerId);
    /** Envelope hash of each message ID accepted in this batch (hex ID). */
    const batchHashes = new Map<string, Uint8Array>();
    // The stored row for the ID being checked, looked up once: it answers both "is this a
    // resend" (same envelope hash) and the replay rule (same ID, another envelope).
    let looked: { id: MessageId; stored: boolean } | null = null;
    let lastIn = int(
      (this.#s.lastIn.get(peerId) as { last_in: unknown } | undefined)?.last_in ?? 0,
    );
    // Looked up once per batch: a batch comes from one link, so from one peer.
    const pinned = this.#pinnedKey(peerId);
    const certified = new Map<string, boolean>();
    const view: ReceiverView = {
      pinnedIdentityKey: (n) => (equalBytes(n, from) ? pinned : null),
      isCertifiedDhKey: (n, k) => {
        if (!equalBytes(n, from)) return false;
        const hex = toHex(k);
        let ok = certified.get(hex);
        if (ok === undefined) certified.set(hex, (ok = this.#d.peers.isCertifiedDhKey(peerId, k)));
        return ok;
      },
      hasSeen: (_s, id) =>
        batchHashes.has(toHex(id)) ||
        (looked?.id === id ? looked.stored : this.#s.findIn.get(peerId, id) !== undefined),
      lastSequence: () => lastIn,
    };
    const outcomes: Outcome[] = [];
    for (const bytes of envelopes) {
      let env: Envelope | null = null;
      try {
        env = decodeEnvelope(bytes);
        const h = env.header;
        // The same envelope again (a resend after a crash or a lost receipt): receipt it again.
        const idHex = toHex(h.messageId);
        if (equalBytes(h.senderNodeId, from)) {
          const earlier = batchHashes.get(idHex);
          if (earlier !== undefined && equalBytes(earlier, env.envelopeHash)) {
            // Repeated within this batch: receipted with the log index its first copy gets.
            outcomes.push({ kind: 'duplicate', env, logIndex: -1 });
            continue;
          }
          const prior = this.#s.findIn.get(peerId, h.messageId) as
            { envelope_hash: Uint8Array; log_index: unknown } | undefined;
          looked = { id: h.messageId, stored: prior !== undefined };
          if (
            prior !== undefined &&
            equalBytes(new Uint8Array(prior.envelope_hash), env.envelopeHash)
          ) {
            outcomes.push({ kind: 'duplicate', env, logIndex: int(prior.log_index) });
            continue;
          }
        }
        const a = acceptDecoded(env, me, view, now, this.#pairKeys, from);
        const r = h.recipients[a.recipientIndex]!;
        batchHashes.set(idHex, env.envelopeHash);
        lastIn = r.sequence;
        outcomes.push({
          kind: 'accepted',
          env,
          contentKey: a.contentKey,
          mailbox: r.mailbox,
          sequence: r.sequence,
          gap:
            a.sequence.kind === 'gap'
              ? { from: a.sequence.missingFrom, to: a.sequence.missingTo }
              : null,
        });
      } catch (err) {
        const code = isLiaisonError(err) ? err.code : 'LIAISON_ERR_INTERNAL';
        if (!isLiaisonError(err))
          this.#d.log.warn({ peer: peerId, err: String(err) }, 'envelope check failed');
        outcomes.push({ kind: 'rejected', code, messageId: env?.header.messageId ?? null, bytes });
      }
    }
    let receipts: Uint8Array[] = [];
    try {
      receipts = this.#d.store.transaction(() =>
        this.#storeReceived(peerId, from, me, now, outcomes),
      );
    } catch (err) {
      // Nothing of the batch is stored; the sender resends it on the next reconnection.
      this.#d.log.warn({ peer: peerId, err: String(err) }, 'storing received envelopes failed');
      throw new LiaisonError('LIAISON_ERR_INTERNAL', 'could not store received envelopes');
    } finally {
      for (const o of outcomes) if (o.kind === 'accepted') wipe(o.contentKey);
    }
    const rejections: Rejection[] = [];
    let refused = 0;
    for (const o of outcomes) {
      if (o.kind !== 'rejected') continue;
      refused += 1;
      if (refused <= MAX_REFUSALS_PER_BATCH)
        this.#d.log.warn(
          {
            peer: peerId,
            code: o.code,
            messageId: o.messageId === null ? null : messageIdToText(o.messageId),
          },
          'envelope rejected',
        );
      if (o.messageId !== null) rejections.push({ messageId: o.messageId, code: o.code });
    }
    const replies = [...receipts.map(encodeReceiptMessage), ...encodeRejects(rejections)];
    // A reply the link cannot take (its send queue is full) must not vanish: the sender would
    // wait for it forever. Cutting the link makes the sender resend, and resends are receipted.
    if (!replies.every((body) => this.#d.links.send(peerId, body)))
      this.#d.links.close(peerId, 'LIAISON_ERR_LINK_OVERLOADED');
    else if (refused > MAX_REFUSALS_PER_BATCH) {
      // A peer that sends mostly garbage is cut off, with one line for the rest.
      this.#d.log.warn({ peer: peerId, refused }, 'too many envelopes refused in one batch');
      this.#d.links.close(peerId, 'LIAISON_ERR_LINK_RATE_LIMIT');
    }
  }

  /** Inside one transaction: inbox rows, audit entries, sequence state, events, receipts. */
  #storeReceived(
    peerId: string,
    from: NodeId,
    me: LocalIdentity,
    now: number,
    outcomes: readonly Outcome[],
  ): Uint8Array[] {
    const entries: ReceiptEntry[] = [];
    const storedAt = new Map<string, number>();
    let lastIn: number | null = null;
    // Beyond this many refusals the link is cut (see #receive): the rest are not audited one
    // by one, so a peer cannot fill the log with junk.
    let refusals = 0;
    for (const o of outcomes) {
      if (o.kind === 'duplicate') {
        const logIndex = o.logIndex >= 0 ? o.logIndex : storedAt.get(toHex(o.env.header.messageId));
        if (logIndex === undefined) continue;
        entries.push({
          messageId: o.env.header.messageId,
          envelopeHash: o.env.envelopeHash,
          logIndex,
        });
      } else if (o.kind === 'accepted') {
        const h = o.env.header;
        if (o.gap !== null) {
          this.#d.audit.append('sequence-gap', now, {
            sender: from,
            from: o.gap.from,
            to: o.gap.to,
          });
          this.#d.events.record('message.gap', { sender: peerId, from: o.gap.from, to: o.gap.to });
        }
        const logIndex = this.#d.audit.append('message-received', now, {
          sender: from,
          messageId: h.messageId,
          envelopeHash: o.env.envelopeHash,
          sequence: o.sequence,
        });
        this.#insertMessage('in', peerId, o.env, o.contentKey, logIndex, now, {
          mailbox: o.mailbox,
          sequence: o.sequence,
          gap: o.gap,
        });
        lastIn = o.sequence;
        storedAt.set(toHex(h.messageId), logIndex);
        entries.push({ messageId: h.messageId, envelopeHash: o.env.envelopeHash, logIndex });
        this.#d.events.record('message.received', {
          messageId: messageIdToText(h.messageId),
          sender: peerId,
          mailbox: o.mailbox,
          kind: h.kind,
          priority: h.priority,
          author: h.author,
        });
        if (h.kind === 'ack' && h.ref !== null) this.#onAck(peerId, h.ref, now);
      } else if (++refusals <= MAX_REFUSALS_PER_BATCH) {
        this.#d.audit.append('envelope-rejected', now, {
          peer: from,
          bytesHash: sha256(o.bytes),
          code: o.code.slice(0, 255),
        });
      }
    }
    if (lastIn !== null) this.#s.setLastIn.run(peerId, lastIn, lastIn);
    // Receipt entries must ascend by log index and be unique (a batch may repeat an envelope).
    const unique = new Map<number, ReceiptEntry>();
    for (const e of entries) unique.set(e.logIndex, e);
    const sorted = [...unique.values()].sort((a, b) => a.logIndex - b.logIndex);
    const receipts: Uint8Array[] = [];
    for (let i = 0; i < sorted.length; i += MAX_RECEIPT_ENTRIES) {
      const part = sorted.slice(i, i + MAX_RECEIPT_ENTRIES);
      const receipt = createReceipt(me.signingKey, me.nodeId, from, now, part);
      const receiptHash = sha256(receipt.bytes);
      const logIndex = this.#d.audit.append('receipt-issued', now, {
        sender: from,
        receiptHash,
        entries: part.length,
      });
      this.#s.insertReceipt.run('issued', peerId, now, receipt.bytes, receiptHash, logIndex);
      receipts.push(receipt.bytes);
    }
    return receipts;
  }

  /** A recipient's user acknowledged one of our messages (its signed ack envelope arrived). */
  #onAck(peerId: string, ref: MessageId, now: number): void {
    const me = nodeIdToText(this.#d.identity().nodeId);
    const changed = this.#s.markAcknowledged.run(now, now, me, ref, peerId).changes;
    if (changed > 0)
      this.#d.events.record('message.status', {
        messageId: messageIdToText(ref),
        recipient: peerId,
        status: 'acknowledged',
      });
  }

  #pinnedKey(peerId: string): Ed25519PublicKey | null {
    const p = this.#d.peers.paired(peerId);
    if (p === null) return null;
    const id = toHex(p.identityKey);
    let k = this.#keys.get(id);
    if (k === undefined) {
      k = Ed25519PublicKey.fromBytes(p.identityKey);
      this.#keys.set(id, k);
    }
    return k;
  }

  // --- sender side: what comes back --------------------------------------------------------

  #onReceipt(peerId: string, bytes: Uint8Array): void {
    const me = this.#d.identity();
    const now = this.#d.clock.now();
    try {
      const receipt = decodeReceipt(bytes);
      if (!equalBytes(receipt.issuerNodeId, nodeIdFromText(peerId)))
        throw new LiaisonError('LIAISON_ERR_RECEIPT_MISMATCH', 'receipt issued by another node');
      const key = this.#pinnedKey(peerId);
      if (key === null)
        throw new LiaisonError('LIAISON_ERR_PEER_UNKNOWN', 'receipt from an unpaired peer');
      verifyReceipt(receipt, key, me.nodeId);
      const sender = nodeIdToText(me.nodeId);
      this.#d.store.transaction(() => {
        const receiptHash = sha256(receipt.bytes);
        let receiptRow: number | null = null;
        for (const e of receipt.entries) {
          const d = this.#s.findDelivery.get(sender, e.messageId, peerId) as
            | { status: string; envelope_hash: Uint8Array; sequence: unknown; receipt_row: unknown }
            | undefined;
          if (d === undefined || !equalBytes(new Uint8Array(d.envelope_hash), e.envelopeHash)) {
            this.#d.log.warn(
              {
                peer: peerId,
                code: 'LIAISON_ERR_RECEIPT_MISMATCH',
                messageId: messageIdToText(e.messageId),
              },
              'receipt entry names no envelope we sent to this peer',
            );
            continue;
          }
          // Already receipted. (An acknowledgement can overtake the receipt: the receipt is
          // still recorded, as evidence, without moving the status back.)
          if (d.receipt_row !== null) continue;
          if (receiptRow === null) {
            const logIndex = this.#d.audit.append('receipt-received', now, {
              issuer: receipt.issuerNodeId,
              receiptHash,
              entries: receipt.entries.length,
            });
            receiptRow = int(
              (
                this.#s.insertReceipt.get(
                  'received',
                  peerId,
                  receipt.issuedAt,
                  receipt.bytes,
                  receiptHash,
                  logIndex,
                ) as {
                  row_id: unknown;
                }
              ).row_id,
            );
          }
          this.#s.markDelivered.run(now, now, receiptRow, e.logIndex, peerId, d.sequence);
          if (d.status !== 'acknowledged')
            this.#d.events.record('message.status', {
              messageId: messageIdToText(e.messageId),
              recipient: peerId,
              status: 'delivered',
            });
        }
      });
    } catch (err) {
      const code = isLiaisonError(err) ? err.code : 'LIAISON_ERR_INTERNAL';
      this.#d.log.warn({ peer: peerId, code }, 'receipt refused');
    }
  }

  #onRejects(peerId: string, rejections: readonly Rejection[]): void {
    const sender = nodeIdToText(this.#d.identity().nodeId);
    const now = this.#d.clock.now();
    this.#d.store.transaction(() => {
      for (const r of rejections) {
        const d = this.#s.findDelivery.get(sender, r.messageId, peerId) as
          { status: string; sequence: unknown } | undefined;
        if (d === undefined || (d.status !== 'queued' && d.status !== 'sent')) continue;
        this.#s.setFinal.run('rejected', r.code, now, peerId, d.sequence);
        this.#d.audit.append('delivery-failed', now, {
          messageId: r.messageId,
          recipient: nodeIdFromText(peerId),
          status: 'rejected',
          code: r.code,
        });
        this.#d.events.record('message.status', {
          messageId: messageIdToText(r.messageId),
          recipient: peerId,
          status: 'rejected',
          reason: r.code,
        });
        this.#d.log.warn(
          { peer: peerId, code: r.code, messageId: messageIdToText(r.messageId) },
          'recipient rejected a message',
        );
      }
    });
    this.#pump(peerId);
  }

  // --- reading -----------------------------------------------------------------------------

  /** Message metadata (no content), or null. `sender` defaults to any. */
  meta(messageId: string, direction?: 'in' | 'out', sender?: string): MessageMeta | null {
    const row = this.#findRow(messageId, direction, sender);
    return row === null ? null : toMeta(row);
  }

  /**
   * The row of a message by ID. IDs are unique per sender only, so a peer could reuse another
   * sender's ID (it cannot forge that sender's signature, but it can try to shadow the message):
   * with more than one match the caller must name the sender.
   * @throws LIAISON_ERR_CONFLICT when the ID is ambiguous
   */
  #findRow(
    messageId: string,
    direction?: 'in' | 'out',
    sender?: string,
  ): Record<string, unknown> | null {
    const id = messageIdFromText(messageId);
    const me = nodeIdToText(this.#d.identity().nodeId);
    const rows = (this.#s.byMessageId.all(id) as Record<string, unknown>[]).filter(
      (x) =>
        (direction === undefined || x.direction === direction) &&
        (sender === undefined || x.sender === sender) &&
        // A message we sent is ours alone: another node's envelope cannot pose as one.
        (x.direction === 'in' || x.sender === me),
    );
    if (rows.length > 1)
      throw new LiaisonError(
        'LIAISON_ERR_CONFLICT',
        `several messages have ID ${messageId}; name the sender`,
        { field: 'sender', senders: rows.map((r) => String(r.sender)).join(',') },
      );
    return rows[0] ?? null;
  }

  list(q: InboxQuery): { messages: (MessageMeta & { rowId: number })[]; next: number | null } {
    const where = ['direction = ?'];
    const args: unknown[] = [q.direction];
    if (q.sender !== undefined) {
      where.push('sender = ?');
      args.push(q.sender);
    }
    if (q.mailbox !== undefined) {
      where.push('mailbox = ?');
      args.push(q.mailbox);
    }
    if (q.priority !== undefined) {
      where.push('priority = ?');
      args.push(q.priority);
    }
    if (q.kind !== undefined) {
      where.push('kind = ?');
      args.push(q.kind);
    }
    if (q.unread === true) where.push('read_at IS NULL');
    if (q.unread === false) where.push('read_at IS NOT NULL');
    if (q.before !== undefined) {
      where.push('row_id < ?');
      args.push(q.before);
    }
    const rows = this.#db
      .prepare(
        `SELECT ${META_COLUMNS} FROM messages WHERE ${where.join(' AND ')} ORDER BY row_id DESC LIMIT ?`,
      )
      .all(...args, q.limit + 1) as Record<string, unknown>[];
    const page = rows.slice(0, q.limit);
    return {
      messages: page.map((r) => ({ ...toMeta(r), rowId: int(r.row_id) })),
      next: rows.length > q.limit ? int(page.at(-1)!.row_id) : null,
    };
  }

  /**
   * A stored message's envelope and its content key, unsealed from storage. The caller wipes
   * the key. Used to read a message and to disclose one to an auditor.
   * @throws LIAISON_ERR_NOT_FOUND, LIAISON_ERR_CONFLICT (ambiguous ID without a sender)
   */
  sealedMessage(
    messageId: string,
    sender?: string,
  ): { rowId: number; sender: string; envelope: Uint8Array; contentKey: Uint8Array } {
    const row = this.#findRow(messageId, undefined, sender);
    if (row === null)
      throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no message ${messageId}`, {
        field: 'messageId',
      });
    const { envelopeBytes, contentKey } = this.#unseal(row);
    return {
      rowId: int(row.row_id),
      sender: String(row.sender),
      envelope: envelopeBytes,
      contentKey,
    };
  }

  /** The stored envelope of a message row and its content key, unsealed. */
  #unseal(row: Record<string, unknown>): {
    envelope: Envelope;
    envelopeBytes: Uint8Array;
    contentKey: Uint8Array;
  } {
    const stored = this.#s.sealedOf.get(row.row_id) as {
      envelope: Uint8Array;
      sealed_key: Uint8Array;
    };
    const envelopeBytes = new Uint8Array(stored.envelope);
    const env = decodeEnvelope(envelopeBytes);
    const sealed = new Uint8Array(stored.sealed_key);
    const key = aeadDecrypt(
      this.#storageKey,
      sealed.subarray(0, AEAD_NONCE_BYTES),
      concat(utf8(String(row.sender)), env.header.messageId),
      sealed.subarray(AEAD_NONCE_BYTES),
    );
    if (key === null)
      throw new LiaisonError('LIAISON_ERR_STORE_SCHEMA', 'stored content key does not open', {
        table: 'messages',
        column: 'sealed_key',
      });
    return { envelope: env, envelopeBytes, contentKey: key };
  }

  /**
   * Decrypts a message for `user` and records the consultation (audit entry, first-read mark)
   * in one transaction before returning the content.
   * @throws LIAISON_ERR_NOT_FOUND
   */
  read(messageId: string, user: string, sender?: string): { meta: MessageMeta; payload: Payload } {
    const row = this.#findRow(messageId, undefined, sender);
    if (row === null)
      throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no message ${messageId}`, {
        field: 'messageId',
      });
    const { envelope: env, contentKey: key } = this.#unseal(row);
    let payload: Payload;
    try {
      payload = decryptWithDisclosedKey(env, key);
    } finally {
      wipe(key);
    }
    const now = this.#d.clock.now();
    this.#d.store.transaction(() => {
      this.#d.audit.append('message-consulted', now, {
        user,
        sender: env.header.senderNodeId,
        messageId: env.header.messageId,
      });
      this.#s.markRead.run(now, user, row.row_id);
    });
    const meta = toMeta(row);
    return {
      meta: { ...meta, readAt: meta.readAt ?? now, readBy: meta.readBy ?? user },
      payload,
    };
  }

  /** Per-recipient delivery status of a message this node sent. @throws LIAISON_ERR_NOT_FOUND */
  status(messageId: string): { meta: MessageMeta; recipients: RecipientStatus[] } {
    const row = this.#findRow(messageId, 'out');
    if (row === null)
      throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no sent message ${messageId}`, {
        field: 'messageId',
      });
    const recipients = (this.#s.deliveriesOf.all(row.row_id) as Record<string, unknown>[]).map(
      (d) => ({
        nodeId: String(d.peer),
        mailbox: String(d.mailbox),
        sequence: int(d.sequence),
        status: d.status as DeliveryStatus,
        reason: d.reason === null ? null : String(d.reason),
        updatedAt: int(d.updated_at),
        sentAt: intOrNull(d.sent_at),
        deliveredAt: intOrNull(d.delivered_at),
        acknowledgedAt: intOrNull(d.acknowledged_at),
        remoteLogIndex: intOrNull(d.remote_log_index),
      }),
    );
    return { meta: toMeta(row), recipients };
  }

  /**
   * A user acknowledges a received message: records it and sends the sender a signed `ack`
   * envelope naming the user, which moves the sender's status to `acknowledged`.
   * @throws LIAISON_ERR_NOT_FOUND, LIAISON_ERR_CONFLICT (already acknowledged, or not a message)
   */
  async acknowledge(messageId: string, user: string, from?: string): Promise<Submitted> {
    const row = this.#findRow(messageId, 'in', from);
    if (row === null)
      throw new LiaisonError('LIAISON_ERR_NOT_FOUND', `no received message ${messageId}`, {
        field: 'messageId',
      });
    if (row.kind !== 'message')
      throw new LiaisonError('LIAISON_ERR_CONFLICT', 'only messages are acknowledged');
    if (row.acked_at !== null)
      throw new LiaisonError(
        'LIAISON_ERR_CONFLICT',
        `already acknowledged by ${String(row.acked_by)}`,
      );
    const sender = String(row.sender);
    const req: SubmitRequest = {
      author: user,
      recipients: [{ nodeId: sender, mailbox: String(row.mailbox) }],
      kind: 'ack',
      priority: row.priority as Priority,
      handling: 'H0',
      ttlMs: DEFAULT_MESSAGE_TTL_MS,
      ref: messageId,
      payload: {
        subject: 'acknowledged',
        body: '',
        language: null,
        caseRef: null,
        form: null,
        attachments: [],
      },
    };
    const ref = checkSubmit(req);
    // One job: the acknowledgement is recorded if and only if its ack envelope is queued.
    return this.#commit.run(() => {
      const now = this.#d.clock.now();
      if (this.#s.markAcked.run(now, user, row.row_id).changes === 0)
        throw new LiaisonError('LIAISON_ERR_CONFLICT', 'already acknowledged');
      this.#d.audit.append('message-acknowledged', now, {
        user,
        sender: nodeIdFromText(sender),
        messageId: asMessageId(new Uint8Array(row.message_id as Uint8Array)),
      });
      return this.#seal(req, ref);
    }, req.priority !== 'routine');
  }
}

/**
 * Checks a submission before it joins a group commit; returns the decoded `ref`.
 * @throws LIAISON_ERR_VALIDATION, LIAISON_ERR_DECODE_* for a malformed `ref`
 */
function checkSubmit(req: SubmitRequest): MessageId | null {
  if (req.recipients.length === 0 || req.recipients.length > MAX_RECIPIENTS)
    throw new LiaisonError('LIAISON_ERR_VALIDATION', `recipients: 1 to ${MAX_RECIPIENTS}`, {
      field: 'recipients',
    });
  if (!Number.isSafeInteger(req.ttlMs) || req.ttlMs < 1000 || req.ttlMs > MAX_ENVELOPE_LIFETIME_MS)
    throw new LiaisonError('LIAISON_ERR_VALIDATION', 'ttlSeconds out of range', {
      field: 'ttlSeconds',
    });
  const seen = new Set<string>();
  for (const r of req.recipients) {
    if (seen.has(r.nodeId))
      throw new LiaisonError('LIAISON_ERR_VALIDATION', `recipient ${r.nodeId} named twice`, {
        field: 'recipients',
      });
    seen.add(r.nodeId);
  }
  return req.ref === null ? null : messageIdFromText(req.ref);
}

/** The key that seals content keys at rest: derived from the identity seed, never stored. */
function deriveStorageKey(me: LocalIdentity): Uint8Array {
  const seed = me.signingKey.exportSeed();
  try {
    return blake2b256(utf8(STORAGE_KEY_CONTEXT), seed);
  } finally {
    wipe(seed);
  }
}

function toMeta(r: Record<string, unknown>): MessageMeta {
  return {
    messageId: messageIdToText(asMessageId(new Uint8Array(r.message_id as Uint8Array))),
    direction: r.direction as 'in' | 'out',
    sender: String(r.sender),
    kind: r.kind as EnvelopeKind,
    priority: r.priority as Priority,
    handling: r.handling as HandlingCode,
    author: String(r.author),
    createdAt: int(r.created_at),
    expiresAt: int(r.expires_at),
    ref: r.ref === null ? null : messageIdToText(asMessageId(new Uint8Array(r.ref as Uint8Array))),
    envelopeHash: toHex(new Uint8Array(r.envelope_hash as Uint8Array)),
    logIndex: int(r.log_index),
    storedAt: int(r.stored_at),
    mailbox: r.mailbox === null ? null : String(r.mailbox),
    sequence: intOrNull(r.sequence),
    gap: r.gap_from === null ? null : { from: int(r.gap_from), to: int(r.gap_to) },
    readAt: intOrNull(r.read_at),
    readBy: r.read_by === null ? null : String(r.read_by),
    acknowledgedAt: intOrNull(r.acked_at),
    acknowledgedBy: r.acked_by === null ? null : String(r.acked_by),
  };
}

function prepare(db: Store['database']) {
  const p = (sql: string) => db.prepare(sql).safeIntegers(false);
  return {
    bumpOut: p(
      `INSERT INTO sequences (peer, last_out) VALUES (?, 1)
       ON CONFLICT (peer) DO UPDATE SET last_out = last_out + 1 RETURNING last_out`,
    ),
    lastIn: p('SELECT last_in FROM sequences WHERE peer = ?'),
    setLastIn: p(
      `INSERT INTO sequences (peer, last_in) VALUES (?, ?)
       ON CONFLICT (peer) DO UPDATE SET last_in = max(last_in, ?)`,
    ),
    insertMessage: p(
      `INSERT INTO messages (direction, sender, message_id, kind, priority, handling, author,
         created_at, expires_at, ref, envelope, envelope_hash, sealed_key, log_index, stored_at,
         mailbox, sequence, gap_from, gap_to)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING row_id`,
    ),
    insertDelivery: p(
      `INSERT INTO deliveries (message_row, peer, sequence, mailbox, status, updated_at)
       VALUES (?, ?, ?, ?, 'queued', ?)`,
    ),
    nextOpenExpiry: p(
      `SELECT MIN(m.expires_at) FROM deliveries d JOIN messages m ON m.row_id = d.message_row
       WHERE d.status IN ('queued', 'sent')`,
    ).pluck(),
    oldestPending: p(
      "SELECT sequence FROM deliveries WHERE peer = ? AND status IN ('queued', 'sent') ORDER BY sequence LIMIT 1",
    ),
    nextToSend: p(
      `SELECT d.sequence, d.status, length(m.envelope) AS size, m.message_id FROM deliveries d
       JOIN messages m ON m.row_id = d.message_row
       WHERE d.peer = ? AND d.status IN ('queued', 'sent') AND d.sequence > ? AND m.expires_at > ?
       ORDER BY d.sequence LIMIT ?`,
    ),
    envelopesToSend: p(
      `SELECT m.envelope FROM deliveries d JOIN messages m ON m.row_id = d.message_row
       WHERE d.peer = ? AND d.status IN ('queued', 'sent') AND d.sequence BETWEEN ? AND ?
         AND m.expires_at > ?
       ORDER BY d.sequence`,
    ).pluck(),
    markSent: p(
      "UPDATE deliveries SET status = 'sent', sent_at = ?, updated_at = ? WHERE peer = ? AND sequence = ? AND status = 'queued'",
    ),
    expiredOpen: p(
      `SELECT d.peer, d.sequence, m.message_id FROM deliveries d JOIN messages m ON m.row_id = d.message_row
       WHERE d.status IN ('queued', 'sent') AND m.expires_at <= ?`,
    ),
    setFinal: p(
      'UPDATE deliveries SET status = ?, reason = ?, updated_at = ? WHERE peer = ? AND sequence = ?',
    ),
    findIn: p(
      "SELECT envelope_hash, log_index FROM messages WHERE sender = ? AND message_id = ? AND direction = 'in'",
    ),
    findDelivery: p(
      `SELECT d.status, d.sequence, d.receipt_row, m.envelope_hash FROM deliveries d JOIN messages m ON m.row_id = d.message_row
       WHERE m.sender = ? AND m.message_id = ? AND m.direction = 'out' AND d.peer = ?`,
    ),
    // A receipt is proof of delivery even after the sender gave up waiting (expired).
    markDelivered: p(
      `UPDATE deliveries SET status = CASE status WHEN 'acknowledged' THEN status ELSE 'delivered' END,
         reason = NULL, delivered_at = ?, updated_at = ?, receipt_row = ?, remote_log_index = ?
       WHERE peer = ? AND sequence = ?`,
    ),
    markAcknowledged: p(
      `UPDATE deliveries SET status = 'acknowledged', acknowledged_at = ?, updated_at = ?
       WHERE message_row = (SELECT row_id FROM messages
                            WHERE sender = ? AND message_id = ? AND direction = 'out' AND kind = 'message')
         AND peer = ? AND status IN ('queued', 'sent', 'delivered', 'expired')`,
    ),
    insertReceipt: p(
      `INSERT INTO receipts (direction, peer, issued_at, receipt, receipt_hash, log_index)
       VALUES (?, ?, ?, ?, ?, ?) RETURNING row_id`,
    ),
    byMessageId: p(`SELECT ${META_COLUMNS} FROM messages WHERE message_id = ? ORDER BY row_id`),
    sealedOf: p('SELECT envelope, sealed_key FROM messages WHERE row_id = ?'),
    deliveriesOf: p('SELECT * FROM deliveries WHERE message_row = ? ORDER BY peer'),
    markRead: p(
      'UPDATE messages SET read_at = coalesce(read_at, ?), read_by = coalesce(read_by, ?) WHERE row_id = ?',
    ),
    markAcked: p(
      'UPDATE messages SET acked_at = ?, acked_by = ? WHERE row_id = ? AND acked_at IS NULL',
    ),
  };
}
