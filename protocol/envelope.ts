/**
 * Envelopes: the end-to-end unit that is signed, stored, delivered and audited
 * (docs/protocol.md §5).
 *
 *   envelope     = 0x01 0x01 || u16 len || header || u32 len || ciphertext || wraps || signature
 *   ciphertext   = XChaCha20-Poly1305(contentKey, nonce = 0^24, ad = header, payload)
 *   payloadHash  = BLAKE2b-256(tag(envelope-payload) || ciphertext)
 *   envelopeHash = BLAKE2b-256(tag(envelope) || u16 len || header || payloadHash || wraps)
 *   signature    = Ed25519(sender identity key, tag(envelope-signature) || envelopeHash)
 *   keyCommitment (in the header) = BLAKE2b-256(tag(key-commitment) || messageId || contentKey)
 *
 * The signature covers the payload by its hash so that an auditor can still verify who sent what
 * after the payload has been erased at the end of its retention period: header, payloadHash,
 * wraps and signature suffice (wraps reveal nothing without a recipient's static key). The content key is fresh for every envelope, so the fixed
 * payload nonce never repeats under one key.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { compareBytes, concat, equalBytes } from './bytes.ts';
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  aeadDecryptWith,
  aeadEncryptInto,
  blake2b256Equals,
  blake2b256Parts,
  ED25519_SIGNATURE_BYTES,
  HASH_BYTES,
  randomBytes,
  wipe,
} from './crypto.ts';
import type { Ed25519PublicKey, X25519PrivateKey, X25519PublicKey } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';
import { asMessageId, asNodeId, MESSAGE_ID_BYTES, NODE_ID_BYTES } from './ids.ts';
import type { MessageId, NodeId } from './ids.ts';
import type { LocalIdentity } from './keys.ts';
import type { PairKeyCache } from './key-wrap.ts';
import { unwrapContentKey, WRAP_BYTES, wrapContentKey } from './key-wrap.ts';
import {
  MAX_AUTHOR_BYTES,
  MAX_ENVELOPE_BYTES,
  MAX_ENVELOPE_LIFETIME_MS,
  MAX_HEADER_BYTES,
  MAX_MAILBOX_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_RECIPIENTS,
} from './limits.ts';
import { decodePayload, encodePayloadInto } from './payload.ts';
import type { Payload } from './payload.ts';

export const ENVELOPE_TYPE = 0x01;
export const ENVELOPE_VERSION = 1;

export const KINDS = { message: 1, ack: 2, 'case-event': 3 } as const;
export type EnvelopeKind = keyof typeof KINDS;
export const PRIORITIES = { routine: 0, urgent: 1, emergency: 2 } as const;
export type Priority = keyof typeof PRIORITIES;
/**
 * Handling codes, after the police information-exchange convention: H0 no restriction beyond the
 * law; H1 not to be used as evidence in judicial proceedings without the sender's permission;
 * H2 not to be passed on without the sender's permission; H3 other restrictions stated in the body.
 */
export const HANDLING_CODES = { H0: 0, H1: 1, H2: 2, H3: 3 } as const;
export type HandlingCode = keyof typeof HANDLING_CODES;

const KIND_BY_BYTE = invert(KINDS);
const PRIORITY_BY_BYTE = invert(PRIORITIES);
const HANDLING_BY_BYTE = invert(HANDLING_CODES);
const KIND_BYTES = [...KIND_BY_BYTE.keys()];
const PRIORITY_BYTES = [...PRIORITY_BY_BYTE.keys()];
const HANDLING_BYTES = [...HANDLING_BY_BYTE.keys()];

function invert<K extends string>(m: Readonly<Record<K, number>>): ReadonlyMap<number, K> {
  return new Map(Object.entries(m).map(([k, v]) => [v as number, k as K]));
}

const PAYLOAD_NONCE = new Uint8Array(AEAD_NONCE_BYTES);

/** Scratch for sealEnvelope's header and plaintext encodings; null while a seal is using it. */
const SEAL_SCRATCH_BYTES = 16 * 1024;
let sealScratch: Uint8Array | null = new Uint8Array(SEAL_SCRATCH_BYTES);

export interface Recipient {
  readonly nodeId: NodeId;
  /** The recipient's certified static key the content key was wrapped for. */
  readonly dhKey: Uint8Array;
  /** Per (sender, recipient node) counter, from 1, increasing by 1 per envelope. */
  readonly sequence: number;
  readonly mailbox: string;
}

export interface EnvelopeHeader {
  readonly kind: EnvelopeKind;
  readonly priority: Priority;
  readonly handling: HandlingCode;
  readonly messageId: MessageId;
  readonly senderNodeId: NodeId;
  /** Raw Ed25519 key bytes; verification always uses the key pinned for senderNodeId. */
  readonly senderIdentityKey: Uint8Array;
  readonly senderDhKey: Uint8Array;
  /** Local account name of the authoring user at the sender node. */
  readonly author: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The message this one answers or acknowledges. */
  readonly ref: MessageId | null;
  readonly keyCommitment: Uint8Array;
  /** Strictly ascending by node ID. */
  readonly recipients: readonly Recipient[];
}

/** A decoded envelope with its derived hashes. Decoding verifies nothing cryptographic. */
export interface Envelope {
  readonly header: EnvelopeHeader;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
  /** One 48-byte wrap per recipient, in recipient order. */
  readonly wraps: readonly Uint8Array[];
  readonly signature: Uint8Array;
  readonly payloadHash: Uint8Array;
  /** What the signature covers, receipts name and the audit log records. */
  readonly envelopeHash: Uint8Array;
  /** The whole canonical encoding. */
  readonly bytes: Uint8Array;
}

export interface RecipientSpec {
  readonly nodeId: NodeId;
  readonly dhKey: X25519PublicKey;
  readonly sequence: number;
  readonly mailbox: string;
}

export interface SealParams {
  readonly kind: EnvelopeKind;
  readonly priority: Priority;
  readonly handling: HandlingCode;
  readonly author: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly ref: MessageId | null;
  readonly recipients: readonly RecipientSpec[];
  readonly payload: Payload;
}

export interface SealOptions {
  readonly pairKeys: PairKeyCache;
  /** Source of the message ID and content key; tests inject a deterministic one. */
  readonly random?: (n: number) => Uint8Array;
  /**
   * Receives a copy of the content key, which is otherwise wiped: a sending node keeps it (sealed
   * at rest) so its users can read what they sent and an admin can disclose it to an auditor.
   */
  readonly onContentKey?: (contentKey: Uint8Array) => void;
}

export interface OpenedEnvelope {
  readonly envelope: Envelope;
  readonly payload: Payload;
  /** Disclosing this key to an auditor proves what the envelope said (key commitment). */
  readonly contentKey: Uint8Array;
  /** Index of this node among the recipients. */
  readonly recipientIndex: number;
}

export function keyCommitment(messageId: MessageId, contentKey: Uint8Array): Uint8Array {
  return blake2b256Parts(null, DOMAIN.KEY_COMMITMENT, messageId, contentKey);
}

/** Whether `contentKey` is the key the header commits to (constant time). */
function keyCommitmentMatches(h: EnvelopeHeader, contentKey: Uint8Array): boolean {
  return blake2b256Equals(h.keyCommitment, null, DOMAIN.KEY_COMMITMENT, h.messageId, contentKey);
}

function arg(message: string, field: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_ARGUMENT', message, { field });
}

export function encodeHeader(h: EnvelopeHeader): Uint8Array {
  // Exact size (identifiers are ASCII), so finish() hands back the buffer without a copy.
  let size = 115 + 1 + h.author.length + 16 + 1 + (h.ref === null ? 0 : 16) + 32 + 1;
  for (const r of h.recipients) size += 32 + 32 + 8 + 1 + r.mailbox.length;
  return encodeHeaderInto(new Writer(size), h).finish();
}

/** Appends the encoded header to `w`. */
function encodeHeaderInto(w: Writer, h: EnvelopeHeader): Writer {
  const start = w.length;
  w.u8(KINDS[h.kind], 'kind')
    .u8(PRIORITIES[h.priority], 'priority')
    .u8(HANDLING_CODES[h.handling], 'handling');
  w.fixed(h.messageId, MESSAGE_ID_BYTES, 'messageId');
  w.fixed(h.senderNodeId, NODE_ID_BYTES, 'senderNodeId');
  w.fixed(h.senderIdentityKey, 32, 'senderIdentityKey');
  w.fixed(h.senderDhKey, 32, 'senderDhKey');
  w.ident(h.author, MAX_AUTHOR_BYTES, 'author');
  w.u64(h.createdAt, 'createdAt').u64(h.expiresAt, 'expiresAt');
  w.bool(h.ref !== null);
  if (h.ref !== null) w.fixed(h.ref, MESSAGE_ID_BYTES, 'ref');
  w.fixed(h.keyCommitment, 32, 'keyCommitment');
  if (h.recipients.length < 1 || h.recipients.length > MAX_RECIPIENTS) {
    throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', `recipients: 1 to ${MAX_RECIPIENTS}`, {
      field: 'recipients',
    });
  }
  w.u8(h.recipients.length, 'recipientCount');
  for (const r of h.recipients) {
    w.fixed(r.nodeId, NODE_ID_BYTES, 'recipient.nodeId');
    w.fixed(r.dhKey, 32, 'recipient.dhKey');
    w.u64(r.sequence, 'recipient.sequence');
    w.ident(r.mailbox, MAX_MAILBOX_BYTES, 'recipient.mailbox');
  }
  if (w.length - start > MAX_HEADER_BYTES)
    throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'header too large', { field: 'header' });
  return w;
}

/** @throws LIAISON_ERR_DECODE_* */
export function decodeHeader(bytes: Uint8Array): EnvelopeHeader {
  const r = new Reader(bytes);
  const kind = KIND_BY_BYTE.get(r.enumU8(KIND_BYTES, 'header.kind'))!;
  const priority = PRIORITY_BY_BYTE.get(r.enumU8(PRIORITY_BYTES, 'header.priority'))!;
  const handling = HANDLING_BY_BYTE.get(r.enumU8(HANDLING_BYTES, 'header.handling'))!;
  const messageId = asMessageId(r.fixed(MESSAGE_ID_BYTES, 'header.messageId'));
  const senderNodeId = asNodeId(r.fixed(NODE_ID_BYTES, 'header.senderNodeId'));
  const senderIdentityKey = r.fixed(32, 'header.senderIdentityKey');
  const senderDhKey = r.fixed(32, 'header.senderDhKey');
  const author = r.ident(MAX_AUTHOR_BYTES, 'header.author');
  const createdAt = r.u64('header.createdAt');
  const expiresAt = r.u64('header.expiresAt');
  const ref = r.bool('header.hasRef') ? asMessageId(r.fixed(MESSAGE_ID_BYTES, 'header.ref')) : null;
  const keyCommitment = r.fixed(32, 'header.keyCommitment');
  const count = r.length(1, MAX_RECIPIENTS, 'header.recipientCount', 1);
  const recipients: Recipient[] = [];
  for (let i = 0; i < count; i++) {
    const nodeId = asNodeId(r.fixed(NODE_ID_BYTES, 'header.recipient.nodeId'));
    const prev = recipients[i - 1];
    if (prev !== undefined && compareBytes(prev.nodeId, nodeId) >= 0) {
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_ORDER',
        'header.recipients not strictly ascending by node ID',
        { field: 'header.recipients' },
      );
    }
    const dhKey = r.fixed(32, 'header.recipient.dhKey');
    const sequence = r.u64('header.recipient.sequence');
    if (sequence < 1)
      throw new LiaisonError('LIAISON_ERR_DECODE_VALUE', 'header.recipient.sequence must be >= 1', {
        field: 'header.recipient.sequence',
      });
    const mailbox = r.ident(MAX_MAILBOX_BYTES, 'header.recipient.mailbox');
    recipients.push({ nodeId, dhKey, sequence, mailbox });
  }
  r.end('header');
  if (recipients.some((x) => equalBytes(x.nodeId, senderNodeId))) {
    throw new LiaisonError(
      'LIAISON_ERR_DECODE_VALUE',
      'header: the sender is among the recipients',
      { field: 'header.recipients' },
    );
  }
  return {
    kind,
    priority,
    handling,
    messageId,
    senderNodeId,
    senderIdentityKey,
    senderDhKey,
    author,
    createdAt,
    expiresAt,
    ref,
    keyCommitment,
    recipients,
  };
}

export function payloadHashOf(ciphertext: Uint8Array): Uint8Array {
  return blake2b256Parts(null, DOMAIN.ENVELOPE_PAYLOAD, ciphertext);
}

/** envelopeHash from the parts an auditor keeps after the payload is erased. */
export function envelopeHashOf(
  headerBytes: Uint8Array,
  payloadHash: Uint8Array,
  wrapsBytes: Uint8Array,
): Uint8Array {
  const len = Uint8Array.of(headerBytes.length >>> 8, headerBytes.length & 0xff);
  return blake2b256Parts(null, DOMAIN.ENVELOPE, len, headerBytes, payloadHash, wrapsBytes);
}

/** The exact bytes the sender's identity key signs. */
export function signatureInput(envelopeHash: Uint8Array): Uint8Array {
  return concat(DOMAIN.ENVELOPE_SIGNATURE, envelopeHash);
}

/**
 * signatureInput written into one reused buffer, for sealEnvelope and verifyEnvelopeSignature.
 * A fresh 62-byte array lives inside V8's heap, and node:crypto must move it out (a new backing
 * store and a copy) before OpenSSL can read it; this buffer already lives outside. The bytes are
 * public and the buffer is only read synchronously, before the next use overwrites it.
 */
const SIGNATURE_INPUT = new Uint8Array(
  new ArrayBuffer(DOMAIN.ENVELOPE_SIGNATURE.length + HASH_BYTES),
);
SIGNATURE_INPUT.set(DOMAIN.ENVELOPE_SIGNATURE);

function reusedSignatureInput(envelopeHash: Uint8Array): Uint8Array {
  SIGNATURE_INPUT.set(envelopeHash, DOMAIN.ENVELOPE_SIGNATURE.length);
  return SIGNATURE_INPUT;
}

/**
 * Seals an envelope from `sender` to every recipient: draws a message ID and a content key,
 * encrypts the payload, wraps the key per recipient, signs.
 * @throws LIAISON_ERR_ARGUMENT, LIAISON_ERR_ENCODE_*, LIAISON_ERR_KEY_LOW_ORDER
 */
export function sealEnvelope(
  sender: LocalIdentity,
  params: SealParams,
  options: SealOptions,
): Envelope {
  const random = options.random ?? randomBytes;
  if (params.recipients.length < 1 || params.recipients.length > MAX_RECIPIENTS) {
    throw arg(`between 1 and ${MAX_RECIPIENTS} recipients`, 'recipients');
  }
  if (
    params.expiresAt <= params.createdAt ||
    params.expiresAt - params.createdAt > MAX_ENVELOPE_LIFETIME_MS
  ) {
    throw arg('expiresAt must be after createdAt and within the maximum lifetime', 'expiresAt');
  }
  const recipients = [...params.recipients].sort((a, b) => compareBytes(a.nodeId, b.nodeId));
  for (let i = 0; i < recipients.length; i++) {
    const r = recipients[i]!;
    if (i > 0 && equalBytes(recipients[i - 1]!.nodeId, r.nodeId))
      throw arg('a recipient node is listed twice', 'recipients');
    if (equalBytes(r.nodeId, sender.nodeId))
      throw arg('the sender cannot be a recipient', 'recipients');
    if (!Number.isSafeInteger(r.sequence) || r.sequence < 1)
      throw arg('recipient sequence must be >= 1', 'recipient.sequence');
  }

  const messageId = asMessageId(random(MESSAGE_ID_BYTES));
  const contentKey = random(AEAD_KEY_BYTES);
  // Header and plaintext are encoded one after the other, for messages of a few KiB into a reused
  // scratch buffer; the header is then copied into the envelope and the plaintext encrypted
  // straight into it. (Short-lived buffers of this size live outside the JavaScript heap and each
  // costs about as much to allocate and free as hashing the header.) The size hint allows 1 KiB
  // for the fixed header fields and payload framing, 160 bytes per recipient (at most 137 used)
  // and a byte per character of text; a writer that needs more grows.
  const sizeHint =
    1024 + recipients.length * 160 + params.payload.subject.length + params.payload.body.length;
  const scratch = sizeHint <= SEAL_SCRATCH_BYTES ? sealScratch : null;
  if (scratch !== null) sealScratch = null; // taken: a seal re-entered meanwhile allocates its own
  let w: Writer | null = null;
  try {
    w = new Writer(scratch ?? sizeHint);
    const header: EnvelopeHeader = {
      kind: params.kind,
      priority: params.priority,
      handling: params.handling,
      messageId,
      senderNodeId: sender.nodeId,
      senderIdentityKey: sender.signingKey.publicKey.bytes,
      senderDhKey: sender.dhKey.publicKey.bytes,
      author: params.author,
      createdAt: params.createdAt,
      expiresAt: params.expiresAt,
      ref: params.ref,
      keyCommitment: keyCommitment(messageId, contentKey),
      recipients: recipients.map((r) => ({
        nodeId: r.nodeId,
        dhKey: r.dhKey.bytes,
        sequence: r.sequence,
        mailbox: r.mailbox,
      })),
    };
    const headerLength = encodeHeaderInto(w, header).length;
    const encoded = encodePayloadInto(w, params.payload).finishView();
    const plaintext = encoded.subarray(headerLength);
    const ciphertextLength = plaintext.length + AEAD_TAG_BYTES;
    if (ciphertextLength > MAX_PAYLOAD_BYTES) {
      throw new LiaisonError('LIAISON_ERR_ENCODE_LIMIT', 'payload too large', { field: 'payload' });
    }
    // The envelope is assembled in one exactly sized buffer; the payload is encrypted straight
    // into it and the wraps written in place, so nothing is copied twice.
    const ctAt = 2 + 2 + headerLength + 4;
    const wrapsAt = ctAt + ciphertextLength;
    const sigAt = wrapsAt + recipients.length * WRAP_BYTES;
    const bytes = new Uint8Array(sigAt + ED25519_SIGNATURE_BYTES);
    bytes[0] = ENVELOPE_TYPE;
    bytes[1] = ENVELOPE_VERSION;
    bytes[2] = headerLength >>> 8;
    bytes[3] = headerLength & 0xff;
    const headerBytes = bytes.subarray(4, 4 + headerLength);
    headerBytes.set(encoded.subarray(0, headerLength));
    bytes[ctAt - 4] = ciphertextLength >>> 24;
    bytes[ctAt - 3] = (ciphertextLength >>> 16) & 0xff;
    bytes[ctAt - 2] = (ciphertextLength >>> 8) & 0xff;
    bytes[ctAt - 1] = ciphertextLength & 0xff;
    const ciphertext = bytes.subarray(ctAt, wrapsAt);
    aeadEncryptInto(ciphertext, contentKey, PAYLOAD_NONCE, headerBytes, plaintext);
    const wrapsBytes = bytes.subarray(wrapsAt, sigAt);
    recipients.forEach((r, i) => {
      const pairKey = options.pairKeys.get(sender.dhKey, r.dhKey, 'send');
      wrapsBytes.set(
        wrapContentKey(
          pairKey,
          {
            senderNodeId: sender.nodeId,
            recipientNodeId: r.nodeId,
            messageId,
            keyCommitment: header.keyCommitment,
          },
          contentKey,
        ),
        i * WRAP_BYTES,
      );
    });
    const wraps = splitWraps(wrapsBytes, recipients.length);
    const payloadHash = payloadHashOf(ciphertext);
    const envelopeHash = envelopeHashOf(headerBytes, payloadHash, wrapsBytes);
    const signature = sender.signingKey.sign(reusedSignatureInput(envelopeHash));
    bytes.set(signature, sigAt);
    options.onContentKey?.(contentKey.slice());
    return { header, headerBytes, ciphertext, wraps, signature, payloadHash, envelopeHash, bytes };
  } finally {
    wipe(contentKey);
    // The plaintext, wherever the writer holds it (one that outgrew the scratch zeroed that).
    w?.finishView().fill(0);
    if (scratch !== null) sealScratch = scratch;
  }
}

/**
 * Decodes an envelope's structure and computes its hashes. Verifies nothing cryptographic: call
 * verifyEnvelopeSignature (or acceptEnvelope in validity.ts) before trusting any field.
 * @throws LIAISON_ERR_DECODE_*
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new LiaisonError(
      'LIAISON_ERR_DECODE_LIMIT',
      `envelope: ${bytes.length} > ${MAX_ENVELOPE_BYTES} bytes`,
      { field: 'envelope', limit: MAX_ENVELOPE_BYTES },
    );
  }
  // A private copy: the hashes computed here must describe bytes nobody can change afterwards.
  const own = Uint8Array.from(bytes);
  const r = new Reader(own);
  readPreamble(r, ENVELOPE_TYPE, ENVELOPE_VERSION, 'envelope');
  const headerBytes = r.bytes(2, MAX_HEADER_BYTES, 'envelope.header', 1);
  const header = decodeHeader(headerBytes);
  const ciphertext = r.bytes(4, MAX_PAYLOAD_BYTES, 'envelope.ciphertext', 16);
  const wrapsBytes = r.fixed(header.recipients.length * WRAP_BYTES, 'envelope.wraps');
  const signature = r.fixed(ED25519_SIGNATURE_BYTES, 'envelope.signature');
  r.end('envelope');
  const payloadHash = payloadHashOf(ciphertext);
  const envelopeHash = envelopeHashOf(headerBytes, payloadHash, wrapsBytes);
  const wraps = splitWraps(wrapsBytes, header.recipients.length);
  return {
    header,
    headerBytes,
    ciphertext,
    wraps,
    signature,
    payloadHash,
    envelopeHash,
    bytes: own,
  };
}

function splitWraps(wrapsBytes: Uint8Array, count: number): Uint8Array[] {
  const wraps: Uint8Array[] = [];
  for (let i = 0; i < count; i++)
    wraps.push(wrapsBytes.subarray(i * WRAP_BYTES, (i + 1) * WRAP_BYTES));
  return wraps;
}

/**
 * Checks that the header names `pinnedKey` as the sender's key and that the signature is valid
 * under it. The key carried in the header is never trusted on its own.
 * @throws LIAISON_ERR_SENDER_KEY_MISMATCH, LIAISON_ERR_SIGNATURE_INVALID
 */
export function verifyEnvelopeSignature(env: Envelope, pinnedKey: Ed25519PublicKey): void {
  if (!equalBytes(env.header.senderIdentityKey, pinnedKey.bytes)) {
    throw new LiaisonError('LIAISON_ERR_SENDER_KEY_MISMATCH');
  }
  if (!pinnedKey.verify(reusedSignatureInput(env.envelopeHash), env.signature)) {
    throw new LiaisonError('LIAISON_ERR_SIGNATURE_INVALID', 'envelope');
  }
}

/** Index of `nodeId` among the recipients, or -1. */
export function recipientIndex(header: EnvelopeHeader, nodeId: NodeId): number {
  return header.recipients.findIndex((r) => equalBytes(r.nodeId, nodeId));
}

/**
 * Opens an envelope addressed to `me`: finds the wrap for this node, unwraps the content key,
 * checks it against the signed commitment, decrypts and decodes the payload. Call only after
 * verifyEnvelopeSignature: the commitment is only as good as the signature over it.
 * @throws LIAISON_ERR_NOT_A_RECIPIENT, LIAISON_ERR_RECIPIENT_KEY_UNKNOWN, LIAISON_ERR_UNWRAP_FAILED,
 *   LIAISON_ERR_KEY_COMMITMENT_MISMATCH, LIAISON_ERR_PAYLOAD_DECRYPT_FAILED, LIAISON_ERR_DECODE_*,
 *   LIAISON_ERR_KEY_LOW_ORDER
 */
export function openEnvelope(
  env: Envelope,
  me: LocalIdentity,
  pairKeys: PairKeyCache,
  knownIndex?: number,
): OpenedEnvelope {
  const index = knownIndex ?? recipientIndex(env.header, me.nodeId);
  const entry = env.header.recipients[index];
  if (entry === undefined || !equalBytes(entry.nodeId, me.nodeId)) {
    throw new LiaisonError('LIAISON_ERR_NOT_A_RECIPIENT');
  }
  const own = findDhKey(me, entry.dhKey);
  if (own === null) throw new LiaisonError('LIAISON_ERR_RECIPIENT_KEY_UNKNOWN');
  const pairKey = pairKeys.get(own, env.header.senderDhKey, 'receive');
  const contentKey = unwrapContentKey(
    pairKey,
    {
      senderNodeId: env.header.senderNodeId,
      recipientNodeId: entry.nodeId,
      messageId: env.header.messageId,
      keyCommitment: env.header.keyCommitment,
    },
    env.wraps[index]!,
  );
  if (!keyCommitmentMatches(env.header, contentKey)) {
    wipe(contentKey);
    throw new LiaisonError('LIAISON_ERR_KEY_COMMITMENT_MISMATCH');
  }
  let payload: Payload;
  try {
    payload = decryptPayload(env, contentKey);
  } catch (err) {
    wipe(contentKey);
    throw err;
  }
  return { envelope: env, payload, contentKey, recipientIndex: index };
}

/**
 * Decrypts a payload with a content key, after checking the key against the signed commitment.
 * This is what an auditor runs with a disclosed content key.
 * @throws LIAISON_ERR_KEY_COMMITMENT_MISMATCH, LIAISON_ERR_PAYLOAD_DECRYPT_FAILED, LIAISON_ERR_DECODE_*
 */
export function decryptWithDisclosedKey(env: Envelope, contentKey: Uint8Array): Payload {
  if (contentKey.length !== AEAD_KEY_BYTES || !keyCommitmentMatches(env.header, contentKey)) {
    throw new LiaisonError('LIAISON_ERR_KEY_COMMITMENT_MISMATCH');
  }
  return decryptPayload(env, contentKey);
}

function decryptPayload(env: Envelope, contentKey: Uint8Array): Payload {
  // The payload is decoded straight from the decrypted bytes, which are zeroed afterwards;
  // decodePayload copies every field it returns.
  const payload = aeadDecryptWith(
    contentKey,
    PAYLOAD_NONCE,
    env.headerBytes,
    env.ciphertext,
    decodePayload,
  );
  if (payload === null) throw new LiaisonError('LIAISON_ERR_PAYLOAD_DECRYPT_FAILED');
  return payload;
}

function findDhKey(me: LocalIdentity, publicKey: Uint8Array): X25519PrivateKey | null {
  if (equalBytes(me.dhKey.publicKey.bytes, publicKey)) return me.dhKey;
  return me.previousDhKeys.find((k) => equalBytes(k.publicKey.bytes, publicKey)) ?? null;
}
