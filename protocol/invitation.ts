/**
 * Invitations (docs/protocol.md §12.1): how two authorities pair without a central server. Node A
 * creates one and hands the string to B's operator out of band (a secure channel, or read over
 * the phone as a file); B's node dials A with Noise IKpsk2 using the one-time secret as the PSK.
 * The invitation carries A's verified identity, so B pins A's keys from it; A pins B's from B's
 * hello once the handshake proves B held the secret.
 *
 *   text  = "liaison-invite-v1:" || base32(bytes)           (RFC 4648 lowercase, unpadded)
 *   bytes = 0x30 0x01 || id[16] || secret[32] || u64 expiresAt || identity (inviter)
 *           || text<1> address || checksum[4]
 *   checksum = BLAKE2b-256(tag(invitation-checksum) || all preceding bytes)[0..4]
 *
 * The checksum only catches transcription errors; the security comes from the secret and keys.
 */
import { Reader, Writer, readPreamble } from './codec.ts';
import { fromBase32, toBase32 } from './bytes.ts';
import { blake2b256Parts, constantTimeEqual } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError, isLiaisonError } from './errors.ts';
import {
  decodeIdentity,
  encodeIdentity,
  INVITATION_ID_BYTES,
  INVITATION_SECRET_BYTES,
  isLinkAddress,
  MAX_ADDRESS_BYTES,
} from './link.ts';
import type { IdentityBundle } from './link.ts';

export const INVITATION_PREFIX = 'liaison-invite-v1:';
const INVITATION_TYPE = 0x30;
const INVITATION_VERSION = 1;
const CHECKSUM_BYTES = 4;
/** Longest invitation text accepted, checked before decoding. */
export const MAX_INVITATION_TEXT = 8192;

export interface Invitation {
  readonly id: Uint8Array;
  readonly secret: Uint8Array;
  readonly expiresAt: number;
  readonly inviter: IdentityBundle;
  /** Where the inviter accepts links (ws:// or wss://). */
  readonly address: string;
}

function checksum(body: Uint8Array): Uint8Array {
  return blake2b256Parts(null, DOMAIN.INVITATION_CHECKSUM, body).subarray(0, CHECKSUM_BYTES);
}

export function encodeInvitation(inv: Invitation): string {
  const w = new Writer(1024).u8(INVITATION_TYPE).u8(INVITATION_VERSION);
  w.fixed(inv.id, INVITATION_ID_BYTES, 'id')
    .fixed(inv.secret, INVITATION_SECRET_BYTES, 'secret')
    .u64(inv.expiresAt, 'expiresAt');
  encodeIdentity(w, inv.inviter);
  if (!isLinkAddress(inv.address))
    throw new LiaisonError('LIAISON_ERR_ENCODE_VALUE', 'address is not a ws:// or wss:// URL', {
      field: 'address',
    });
  w.text(inv.address, 1, MAX_ADDRESS_BYTES, 'address', 1);
  const body = w.finish();
  return (
    INVITATION_PREFIX + toBase32(new Writer(body.length + 4).raw(body).raw(checksum(body)).finish())
  );
}

/**
 * Parses and verifies an invitation string at `now`. Surrounding white space is ignored (it is
 * pasted by people).
 * @throws LIAISON_ERR_INVITATION_INVALID (with the reason), LIAISON_ERR_INVITATION_EXPIRED
 */
export function decodeInvitation(text: string, now: number): Invitation {
  const t = text.trim();
  if (t.length > MAX_INVITATION_TEXT) throw invalid('too long');
  if (!t.startsWith(INVITATION_PREFIX)) throw invalid(`does not start with ${INVITATION_PREFIX}`);
  let bytes: Uint8Array;
  try {
    bytes = fromBase32(t.slice(INVITATION_PREFIX.length).toLowerCase(), 'invitation');
  } catch {
    throw invalid('not base32');
  }
  if (bytes.length < 2 + CHECKSUM_BYTES) throw invalid('too short');
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  if (!constantTimeEqual(checksum(body), bytes.subarray(bytes.length - CHECKSUM_BYTES)))
    throw invalid('checksum mismatch (copied incompletely?)');
  let inv: Invitation;
  try {
    const r = new Reader(body);
    readPreamble(r, INVITATION_TYPE, INVITATION_VERSION, 'invitation');
    const id = Uint8Array.from(r.fixed(INVITATION_ID_BYTES, 'invitation.id'));
    const secret = Uint8Array.from(r.fixed(INVITATION_SECRET_BYTES, 'invitation.secret'));
    const expiresAt = r.u64('invitation.expiresAt');
    const inviter = decodeIdentity(r, now);
    const address = r.text(1, MAX_ADDRESS_BYTES, 'invitation.address', 1);
    r.end('invitation');
    // The node will dial this: only the address syntax of §12.1 (no credentials, no other schemes).
    if (!isLinkAddress(address))
      throw new LiaisonError(
        'LIAISON_ERR_DECODE_VALUE',
        'invitation.address is not a ws:// or wss:// URL',
      );
    inv = { id, secret, expiresAt, inviter, address };
  } catch (err) {
    if (isLiaisonError(err)) throw invalid(`${err.code}: ${err.message}`);
    throw err;
  }
  if (now >= inv.expiresAt) throw new LiaisonError('LIAISON_ERR_INVITATION_EXPIRED');
  return inv;
}

function invalid(why: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_INVITATION_INVALID', why);
}
