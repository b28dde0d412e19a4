/**
 * `liaison inspect`: decodes one Liaison structure and renders it as JSON, for operators,
 * auditors and implementers comparing their own encoder with ours. Input may be raw bytes or hex
 * text (whitespace ignored). Decoding checks structure and self-signatures (key records and
 * rotations); envelope and receipt signatures need the sender's pinned key and are not checked.
 */
import {
  decodeEnvelope,
  decodeKeyRecord,
  decodeKeyRotation,
  decodeReceipt,
  ENVELOPE_TYPE,
  fromHex,
  KEY_RECORD_TYPE,
  KEY_ROTATION_TYPE,
  LiaisonError,
  messageIdToText,
  nodeIdToText,
  RECEIPT_TYPE,
  toHex,
} from '../protocol/index.ts';

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

function asBytes(input: Uint8Array): Uint8Array {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(input).replace(/\s+/g, '');
  return text.length > 0 && /^[0-9a-fA-F]+$/.test(text) ? fromHex(text, 'input') : input;
}

export function inspect(input: Uint8Array): Json {
  const bytes = asBytes(input);
  switch (bytes[0]) {
    case ENVELOPE_TYPE: {
      const e = decodeEnvelope(bytes);
      const h = e.header;
      return {
        type: 'envelope',
        messageId: messageIdToText(h.messageId),
        kind: h.kind,
        priority: h.priority,
        handling: h.handling,
        sender: nodeIdToText(h.senderNodeId),
        senderIdentityKey: toHex(h.senderIdentityKey),
        senderDhKey: toHex(h.senderDhKey),
        author: h.author,
        createdAt: new Date(h.createdAt).toISOString(),
        expiresAt: new Date(h.expiresAt).toISOString(),
        ref: h.ref === null ? null : messageIdToText(h.ref),
        keyCommitment: toHex(h.keyCommitment),
        recipients: h.recipients.map((r) => ({
          nodeId: nodeIdToText(r.nodeId),
          dhKey: toHex(r.dhKey),
          sequence: r.sequence,
          mailbox: r.mailbox,
        })),
        ciphertextBytes: e.ciphertext.length,
        payloadHash: toHex(e.payloadHash),
        envelopeHash: toHex(e.envelopeHash),
        signature: toHex(e.signature),
        signatureChecked: false,
      };
    }
    case RECEIPT_TYPE: {
      const r = decodeReceipt(bytes);
      return {
        type: 'receipt',
        issuer: nodeIdToText(r.issuerNodeId),
        issuerIdentityKey: toHex(r.issuerIdentityKey),
        sender: nodeIdToText(r.senderNodeId),
        issuedAt: new Date(r.issuedAt).toISOString(),
        entries: r.entries.map((x) => ({
          messageId: messageIdToText(x.messageId),
          envelopeHash: toHex(x.envelopeHash),
          logIndex: x.logIndex,
        })),
        signature: toHex(r.signature),
        signatureChecked: false,
      };
    }
    case KEY_RECORD_TYPE: {
      const k = decodeKeyRecord(bytes);
      return {
        type: 'key-record',
        nodeId: nodeIdToText(k.nodeId),
        identityKey: toHex(k.identityKey.bytes),
        dhKey: toHex(k.dhKey.bytes),
        serial: k.serial,
        issuedAt: new Date(k.issuedAt).toISOString(),
        signatureChecked: true,
      };
    }
    case KEY_ROTATION_TYPE: {
      const k = decodeKeyRotation(bytes);
      return {
        type: 'key-rotation',
        nodeId: nodeIdToText(k.nodeId),
        serial: k.serial,
        oldKey: toHex(k.oldKey.bytes),
        newKey: toHex(k.newKey.bytes),
        issuedAt: new Date(k.issuedAt).toISOString(),
        signaturesChecked: true,
      };
    }
    default:
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_TYPE',
        `unknown structure type ${bytes[0] === undefined ? '(empty input)' : `0x${bytes[0].toString(16).padStart(2, '0')}`}`,
      );
  }
}
