/**
 * Content-key wraps (docs/protocol.md §5.3).
 *
 * Each recipient gets the envelope's content key encrypted under a key derived from the static
 * X25519 keys of sender and recipient:
 *
 *   pairKey  = BLAKE2b-256(key = X25519(a, B), tag("liaison/v1/pair-key") || A || B)
 *   wrapKey  = BLAKE2b-256(key = pairKey, tag("liaison/v1/wrap") || senderNodeId || recipientNodeId
 *                          || messageId || keyCommitment)
 *   wrap     = XChaCha20-Poly1305(wrapKey, nonce = 0^24, ad = "", contentKey)      (48 bytes)
 *
 * with A, B the sender's and recipient's static public keys (in that order, so the two directions
 * of a pair use different keys). Why static-static and not a sealed box per recipient: a sealed box
 * costs two X25519 operations per recipient per message (about 3,000 wrap + unwrap/s here, as
 * bench/protocol.ts prints),
 * which alone would cap delivery below the Ed25519 verify rate; the pair key is computed once per
 * peer and cached, and a wrap then costs one BLAKE2b and one 32-byte AEAD. The wrap key changes
 * with the key commitment, so a sender that re-seals a message ID with a fresh content key never
 * reuses a (key, nonce) pair; the same commitment means the same content key, hence the same
 * plaintext and an identical wrap. The signature covers the wraps, so they cannot be swapped.
 */
import { concat, equalBytes } from './bytes.ts';
import {
  aeadDecryptWithDerivedKey,
  aeadEncryptWithDerivedKey,
  AEAD_NONCE_BYTES,
  blake2b256,
  wipe,
  X25519PublicKey,
} from './crypto.ts';
import type { X25519PrivateKey } from './crypto.ts';
import { DOMAIN } from './domains.ts';
import { LiaisonError } from './errors.ts';

export const WRAP_BYTES = 48;
/** Pair keys kept by a default cache: a node has at most a few hundred peers. */
export const DEFAULT_PAIR_KEY_CACHE_ENTRIES = 4096;
/** Entries checked by direct comparison before the map (see PairKeyCache). */
const RECENT_PAIR_KEYS = 8;

const ZERO_NONCE = new Uint8Array(AEAD_NONCE_BYTES);
const NO_AD = new Uint8Array(0);

/** pairKey for the direction sender -> recipient, computed from either side's private key. */
export function derivePairKey(
  own: X25519PrivateKey,
  peer: X25519PublicKey,
  direction: 'send' | 'receive',
): Uint8Array {
  const shared = own.agree(peer);
  const [a, b] =
    direction === 'send' ? [own.publicKey.bytes, peer.bytes] : [peer.bytes, own.publicKey.bytes];
  try {
    return blake2b256(concat(DOMAIN.PAIR_KEY, a, b), shared);
  } finally {
    wipe(shared);
  }
}

/**
 * A bounded cache of pair keys, owned by whoever owns the private key (the node's keystore).
 * Least-recently-inserted entries are evicted first; a miss costs one X25519.
 */
export class PairKeyCache {
  /** Per own private key (a stable object in LocalIdentity), then per direction + peer key. */
  readonly #byOwnKey = new WeakMap<X25519PrivateKey, Map<string, Uint8Array>>();
  #size = 0;
  readonly #order: { own: X25519PrivateKey; id: string; key: Uint8Array }[] = [];
  /**
   * The most recently used entries, compared byte for byte before any map lookup: a node talks
   * to a handful of peers at a time, and building a string key costs more than a few compares.
   */
  readonly #recent: {
    own: X25519PrivateKey;
    direction: string;
    peer: Uint8Array;
    key: Uint8Array;
  }[] = [];

  constructor(private readonly maxEntries = DEFAULT_PAIR_KEY_CACHE_ENTRIES) {}

  /** The pair key for `direction` between `own` and `peer` (a key or its 32 raw bytes). */
  get(
    own: X25519PrivateKey,
    peer: X25519PublicKey | Uint8Array,
    direction: 'send' | 'receive',
  ): Uint8Array {
    const peerBytes = peer instanceof Uint8Array ? peer : peer.bytes;
    for (const e of this.#recent) {
      if (e.own === own && e.direction === direction && equalBytes(e.peer, peerBytes)) return e.key;
    }
    let forOwn = this.#byOwnKey.get(own);
    if (forOwn === undefined) {
      forOwn = new Map();
      this.#byOwnKey.set(own, forOwn);
    }
    const id =
      direction +
      Buffer.from(peerBytes.buffer, peerBytes.byteOffset, peerBytes.length).toString('latin1');
    let key = forOwn.get(id);
    if (key === undefined) {
      const peerKey = peer instanceof Uint8Array ? X25519PublicKey.fromBytes(peer) : peer;
      key = derivePairKey(own, peerKey, direction);
      if (this.#size >= this.maxEntries) this.#evictOldest();
      forOwn.set(id, key);
      this.#order.push({ own, id, key });
      this.#size += 1;
    }
    this.#recent.unshift({ own, direction, peer: Uint8Array.from(peerBytes), key });
    if (this.#recent.length > RECENT_PAIR_KEYS) this.#recent.pop();
    return key;
  }

  #evictOldest(): void {
    const oldest = this.#order.shift();
    if (oldest === undefined) return;
    this.#byOwnKey.get(oldest.own)?.delete(oldest.id);
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      if (this.#recent[i]!.key === oldest.key) this.#recent.splice(i, 1);
    }
    wipe(oldest.key);
    this.#size -= 1;
  }

  /** Forgets every pair key (after a static-key rotation or on shutdown). */
  clear(): void {
    while (this.#order.length > 0) this.#evictOldest();
  }
}

/**
 * What a wrap is bound to. The node IDs matter: the pair key depends only on the two static
 * keys, and a node may certify any static key it likes, including (maliciously) someone else's.
 * Binding both node IDs means a wrap made for (sender A, recipient B) never unwraps as one from
 * any other node, so a co-recipient cannot replay A's wrap under its own name.
 */
export interface WrapContext {
  readonly senderNodeId: Uint8Array;
  readonly recipientNodeId: Uint8Array;
  readonly messageId: Uint8Array;
  readonly keyCommitment: Uint8Array;
}

/** What the wrap key is derived from, after the pair key (§5.3). */
function wrapKeyInput(c: WrapContext): Uint8Array[] {
  return [DOMAIN.WRAP, c.senderNodeId, c.recipientNodeId, c.messageId, c.keyCommitment];
}

export function wrapContentKey(
  pairKey: Uint8Array,
  context: WrapContext,
  contentKey: Uint8Array,
): Uint8Array {
  return aeadEncryptWithDerivedKey(pairKey, wrapKeyInput(context), ZERO_NONCE, NO_AD, contentKey);
}

/** @throws LIAISON_ERR_UNWRAP_FAILED */
export function unwrapContentKey(
  pairKey: Uint8Array,
  context: WrapContext,
  wrap: Uint8Array,
): Uint8Array {
  const key =
    wrap.length === WRAP_BYTES
      ? aeadDecryptWithDerivedKey(pairKey, wrapKeyInput(context), ZERO_NONCE, NO_AD, wrap)
      : null;
  if (key === null) throw new LiaisonError('LIAISON_ERR_UNWRAP_FAILED');
  return key;
}
