/**
 * Signed delivery receipts (docs/protocol.md §6).
 *
 * The recipient node signs, for a batch of envelopes it has durably stored from one sender, each
 * envelope's message ID, envelope hash and the index of the audit-log entry that recorded it. A
 * receipt is the sender's evidence that the recipient's log holds the message: an auditor joining
 * both nodes' exports can tell which side dropped what. Batching (up to MAX_RECEIPT_ENTRIES) lets
 * one signature cover many envelopes on a busy link; a single receipt is a batch of one.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { concat, equalBytes } from './bytes.ts';
import { ED25519_SIGNATURE_BYTES, HASH_BYTES } from './crypto.ts';
import type { Ed25519PrivateKey, Ed25519PublicKey } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';
import { asMessageId, asNodeId, MESSAGE_ID_BYTES, NODE_ID_BYTES } from './ids.ts';
import type { MessageId, NodeId } from './ids.ts';
import { MAX_RECEIPT_ENTRIES } from './limits.ts';
import type { Envelope } from './envelope.ts';

export const RECEIPT_TYPE = 0x02;
export const RECEIPT_VERSION = 1;
const ENTRY_BYTES = MESSAGE_ID_BYTES + HASH_BYTES + 8;

export interface ReceiptEntry {
  readonly messageId: MessageId;
  readonly envelopeHash: Uint8Array;
  /** Index of the recipient's audit-log entry recording this envelope. */
  readonly logIndex: number;
}

export interface Receipt {
  /** The node that received the envelopes and signs this receipt. */
  readonly issuerNodeId: NodeId;
  readonly issuerIdentityKey: Uint8Array;
  /** The sender of the envelopes, to whom the receipt is addressed. */
  readonly senderNodeId: NodeId;
  readonly issuedAt: number;
  /** Strictly ascending by logIndex. */
  readonly entries: readonly ReceiptEntry[];
  readonly signature: Uint8Array;
  readonly bytes: Uint8Array;
}

function encodeBody(
  issuerNodeId: NodeId,
  issuerKey: Uint8Array,
  senderNodeId: NodeId,
  issuedAt: number,
  entries: readonly ReceiptEntry[],
): Uint8Array {
  if (entries.length < 1 || entries.length > MAX_RECEIPT_ENTRIES) {
    throw new LiaisonError(
      'LIAISON_ERR_ENCODE_LIMIT',
      `receipt entries: 1 to ${MAX_RECEIPT_ENTRIES}`,
      { field: 'entries' },
    );
  }
  const w = new Writer(110 + entries.length * ENTRY_BYTES)
    .u8(RECEIPT_TYPE)
    .u8(RECEIPT_VERSION)
    .fixed(issuerNodeId, NODE_ID_BYTES, 'issuerNodeId')
    .fixed(issuerKey, 32, 'issuerIdentityKey')
    .fixed(senderNodeId, NODE_ID_BYTES, 'senderNodeId')
    .u64(issuedAt, 'issuedAt')
    .u16(entries.length, 'entryCount');
  let prev = -1;
  for (const e of entries) {
    if (e.logIndex <= prev)
      throw new LiaisonError(
        'LIAISON_ERR_ENCODE_VALUE',
        'receipt entries must be strictly ascending by logIndex',
        { field: 'entries' },
      );
    prev = e.logIndex;
    w.fixed(e.messageId, MESSAGE_ID_BYTES, 'entry.messageId')
      .fixed(e.envelopeHash, HASH_BYTES, 'entry.envelopeHash')
      .u64(e.logIndex, 'entry.logIndex');
  }
  return w.finish();
}

/** Signs a receipt for `entries` (sorted here by logIndex) as `issuerNodeId`. */
export function createReceipt(
  signer: Ed25519PrivateKey,
  issuerNodeId: NodeId,
  senderNodeId: NodeId,
  issuedAt: number,
  entries: readonly ReceiptEntry[],
): Receipt {
  const sorted = [...entries].sort((a, b) => a.logIndex - b.logIndex);
  const body = encodeBody(issuerNodeId, signer.publicKey.bytes, senderNodeId, issuedAt, sorted);
  const signature = signer.sign(concat(DOMAIN.RECEIPT, body));
  return {
    issuerNodeId,
    issuerIdentityKey: signer.publicKey.bytes,
    senderNodeId,
    issuedAt,
    entries: sorted,
    signature,
    bytes: concat(body, signature),
  };
}

/**
 * Decodes a receipt's structure. Verifies nothing: call verifyReceipt with the issuer's pinned key.
 * @throws LIAISON_ERR_DECODE_*
 */
export function decodeReceipt(bytes: Uint8Array): Receipt {
  const r = new Reader(bytes);
  readPreamble(r, RECEIPT_TYPE, RECEIPT_VERSION, 'receipt');
  const issuerNodeId = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, 'receipt.issuerNodeId')));
  const issuerIdentityKey = Uint8Array.from(r.fixed(32, 'receipt.issuerIdentityKey'));
  const senderNodeId = asNodeId(Uint8Array.from(r.fixed(NODE_ID_BYTES, 'receipt.senderNodeId')));
  const issuedAt = r.u64('receipt.issuedAt');
  const count = r.length(2, MAX_RECEIPT_ENTRIES, 'receipt.entryCount', 1);
  const entries: ReceiptEntry[] = [];
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const messageId = asMessageId(
      Uint8Array.from(r.fixed(MESSAGE_ID_BYTES, 'receipt.entry.messageId')),
    );
    const envelopeHash = Uint8Array.from(r.fixed(HASH_BYTES, 'receipt.entry.envelopeHash'));
    const logIndex = r.u64('receipt.entry.logIndex');
    if (logIndex <= prev)
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_ORDER',
        'receipt entries not strictly ascending by logIndex',
        { field: 'receipt.entries' },
      );
    prev = logIndex;
    entries.push({ messageId, envelopeHash, logIndex });
  }
  const signature = Uint8Array.from(r.fixed(ED25519_SIGNATURE_BYTES, 'receipt.signature'));
  r.end('receipt');
  return {
    issuerNodeId,
    issuerIdentityKey,
    senderNodeId,
    issuedAt,
    entries,
    signature,
    bytes: Uint8Array.from(bytes),
  };
}

/**
 * Checks the receipt is signed by `pinnedKey`, the key pinned for its issuer, and addressed to
 * `expectedSender`.
 * @throws LIAISON_ERR_SENDER_KEY_MISMATCH, LIAISON_ERR_SIGNATURE_INVALID, LIAISON_ERR_RECEIPT_MISMATCH
 */
export function verifyReceipt(
  receipt: Receipt,
  pinnedKey: Ed25519PublicKey,
  expectedSender: NodeId,
): void {
  if (!equalBytes(receipt.issuerIdentityKey, pinnedKey.bytes))
    throw new LiaisonError('LIAISON_ERR_SENDER_KEY_MISMATCH', 'receipt issuer key');
  const body = receipt.bytes.subarray(0, receipt.bytes.length - ED25519_SIGNATURE_BYTES);
  if (!pinnedKey.verify(concat(DOMAIN.RECEIPT, body), receipt.signature)) {
    throw new LiaisonError('LIAISON_ERR_SIGNATURE_INVALID', 'receipt');
  }
  if (!equalBytes(receipt.senderNodeId, expectedSender)) {
    throw new LiaisonError('LIAISON_ERR_RECEIPT_MISMATCH', 'receipt addressed to another node');
  }
}

/**
 * Finds the entry of a verified receipt that acknowledges `env`, checking that it names the same
 * envelope hash (the recipient stored exactly what was sent) and that `env` was addressed to the
 * receipt's issuer.
 * @throws LIAISON_ERR_RECEIPT_MISMATCH
 */
export function receiptEntryFor(receipt: Receipt, env: Envelope): ReceiptEntry {
  const entry = receipt.entries.find((e) => equalBytes(e.messageId, env.header.messageId));
  if (entry === undefined)
    throw new LiaisonError('LIAISON_ERR_RECEIPT_MISMATCH', 'message not in receipt');
  if (!equalBytes(entry.envelopeHash, env.envelopeHash))
    throw new LiaisonError('LIAISON_ERR_RECEIPT_MISMATCH', 'envelope hash differs');
  if (!env.header.recipients.some((r) => equalBytes(r.nodeId, receipt.issuerNodeId))) {
    throw new LiaisonError('LIAISON_ERR_RECEIPT_MISMATCH', 'issuer was not a recipient');
  }
  return entry;
}
