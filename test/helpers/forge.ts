/**
 * Assembles envelopes from their parts exactly as docs/protocol.md §5 describes, so tests can
 * build what sealEnvelope refuses to: a malicious sender's envelope with a wrong key commitment,
 * swapped wraps, an over-long lifetime, a payload under another key. Everything is still validly
 * signed by the given key, so what the receiver rejects is the semantics, not the signature.
 */
import {
  aeadEncrypt,
  derivePairKey,
  encodeHeader,
  encodePayload,
  envelopeHashOf,
  keyCommitment,
  payloadHashOf,
  signatureInput,
  wrapContentKey,
  Writer,
  X25519PublicKey,
  concat,
} from '../../protocol/index.ts';
import type {
  Ed25519PrivateKey,
  EnvelopeHeader,
  LocalIdentity,
  Payload,
} from '../../protocol/index.ts';

export interface ForgeParts {
  header: EnvelopeHeader;
  /** Key the payload is encrypted under. */
  payloadKey: Uint8Array;
  /** Key placed in each wrap (defaults to payloadKey). */
  wrappedKey?: Uint8Array;
  payload?: Payload;
  /** Raw plaintext bytes instead of an encoded payload. */
  plaintext?: Uint8Array;
  /** Reorders wraps after computing them (indices into the header's recipients). */
  wrapOrder?: number[];
  signer: Ed25519PrivateKey;
  sender: LocalIdentity;
}

export function forge(p: ForgeParts): Uint8Array {
  const headerBytes = encodeHeader(p.header);
  const plaintext = p.plaintext ?? encodePayload(p.payload!);
  const ciphertext = aeadEncrypt(p.payloadKey, new Uint8Array(24), headerBytes, plaintext);
  const wrapped = p.wrappedKey ?? p.payloadKey;
  const wraps = p.header.recipients.map((r) =>
    wrapContentKey(
      derivePairKey(p.sender.dhKey, X25519PublicKey.fromBytes(r.dhKey), 'send'),
      {
        senderNodeId: p.header.senderNodeId,
        recipientNodeId: r.nodeId,
        messageId: p.header.messageId,
        keyCommitment: p.header.keyCommitment,
      },
      wrapped,
    ),
  );
  const ordered = p.wrapOrder ? p.wrapOrder.map((i) => wraps[i]!) : wraps;
  const wrapsBytes = concat(...ordered);
  const envelopeHash = envelopeHashOf(headerBytes, payloadHashOf(ciphertext), wrapsBytes);
  const signature = p.signer.sign(signatureInput(envelopeHash));
  return new Writer()
    .u8(0x01)
    .u8(0x01)
    .bytes(headerBytes, 2, 0xffff, 'header')
    .bytes(ciphertext, 4, 0xffffffff, 'ciphertext')
    .raw(wrapsBytes)
    .raw(signature)
    .finish();
}

export { keyCommitment };
