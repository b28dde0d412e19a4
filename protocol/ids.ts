/**
 * Identifiers and their text forms (docs/protocol.md §3).
 *
 * Binary IDs are branded Uint8Arrays so that a MessageId can never be passed where a NodeId is
 * expected. Text forms are canonical (one text per ID) so they can key maps and appear in logs.
 */
import { fromBase32, toBase32 } from './bytes.ts';
import { LiaisonError } from './errors.ts';

export const NODE_ID_BYTES = 32;
export const MESSAGE_ID_BYTES = 16;
export const NODE_ID_TEXT_PREFIX = 'ln';
export const MESSAGE_ID_TEXT_PREFIX = 'lm';

export type NodeId = Uint8Array & { readonly __brand: 'NodeId' };
export type MessageId = Uint8Array & { readonly __brand: 'MessageId' };

/** @throws LIAISON_ERR_NODE_ID_INVALID when `bytes` is not 32 bytes. */
export function asNodeId(bytes: Uint8Array): NodeId {
  if (bytes.length !== NODE_ID_BYTES) {
    throw new LiaisonError('LIAISON_ERR_NODE_ID_INVALID', `must be ${NODE_ID_BYTES} bytes`);
  }
  return bytes as NodeId;
}

/** @throws LIAISON_ERR_ARGUMENT when `bytes` is not 16 bytes. */
export function asMessageId(bytes: Uint8Array): MessageId {
  if (bytes.length !== MESSAGE_ID_BYTES) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', `message ID must be ${MESSAGE_ID_BYTES} bytes`, {
      field: 'messageId',
    });
  }
  return bytes as MessageId;
}

/** `ln` + 52 lowercase base32 characters. */
export function nodeIdToText(id: NodeId): string {
  return NODE_ID_TEXT_PREFIX + toBase32(id);
}

/** @throws LIAISON_ERR_NODE_ID_INVALID */
export function nodeIdFromText(text: string): NodeId {
  if (!text.startsWith(NODE_ID_TEXT_PREFIX) || text.length !== NODE_ID_TEXT_PREFIX.length + 52) {
    throw new LiaisonError('LIAISON_ERR_NODE_ID_INVALID', 'expected ln + 52 base32 characters');
  }
  try {
    return asNodeId(fromBase32(text.slice(NODE_ID_TEXT_PREFIX.length), 'node ID'));
  } catch {
    throw new LiaisonError('LIAISON_ERR_NODE_ID_INVALID', 'not canonical base32');
  }
}

/** `lm` + 26 lowercase base32 characters. */
export function messageIdToText(id: MessageId): string {
  return MESSAGE_ID_TEXT_PREFIX + toBase32(id);
}

/** @throws LIAISON_ERR_ARGUMENT */
export function messageIdFromText(text: string): MessageId {
  if (
    !text.startsWith(MESSAGE_ID_TEXT_PREFIX) ||
    text.length !== MESSAGE_ID_TEXT_PREFIX.length + 26
  ) {
    throw new LiaisonError(
      'LIAISON_ERR_ARGUMENT',
      'message ID: expected lm + 26 base32 characters',
      { field: 'messageId' },
    );
  }
  return asMessageId(fromBase32(text.slice(MESSAGE_ID_TEXT_PREFIX.length), 'messageId'));
}
