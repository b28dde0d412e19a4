/**
 * Domain-separation tags (docs/protocol.md §1.3). Every hash and signature input starts with one,
 * encoded as a length byte followed by the ASCII tag, so no input of one kind can be read as an
 * input of another. Changing a tag is a protocol version change.
 */

function tag(name: string): Uint8Array {
  const ascii = new TextEncoder().encode(name);
  if (ascii.length > 255) throw new Error('tag too long');
  const out = new Uint8Array(1 + ascii.length);
  out[0] = ascii.length;
  out.set(ascii, 1);
  return out;
}

export const DOMAIN_NAMES = {
  NODE_ID: 'liaison/v1/node-id',
  FINGERPRINT: 'liaison/v1/fingerprint',
  KEY_RECORD: 'liaison/v1/key-record',
  KEY_ROTATION: 'liaison/v1/key-rotation',
  ENVELOPE_PAYLOAD: 'liaison/v1/envelope-payload',
  ENVELOPE: 'liaison/v1/envelope',
  ENVELOPE_SIGNATURE: 'liaison/v1/envelope-signature',
  KEY_COMMITMENT: 'liaison/v1/key-commitment',
  PAIR_KEY: 'liaison/v1/pair-key',
  WRAP: 'liaison/v1/wrap',
  RECEIPT: 'liaison/v1/receipt',
  LINK_PROLOGUE: 'liaison/v1/link',
  INVITATION_CHECKSUM: 'liaison/v1/invitation-checksum',
} as const;

export type DomainName = keyof typeof DOMAIN_NAMES;

export const DOMAIN: Readonly<Record<DomainName, Uint8Array>> = Object.fromEntries(
  Object.entries(DOMAIN_NAMES).map(([k, v]) => [k, tag(v)]),
) as Record<DomainName, Uint8Array>;
