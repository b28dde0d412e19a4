/**
 * The Noise Protocol Framework (revision 34, https://noiseprotocol.org/noise.html), for the
 * patterns Liaison uses on its links, with DH 25519, cipher ChaChaPoly and hash BLAKE2b:
 *
 *   IK      paired peers: the initiator already knows the responder's static key
 *   IKpsk2  first contact through an invitation: IK plus the invitation secret as PSK
 *
 * NN, KK, XX and XXpsk3 are implemented by the same token interpreter so that the published
 * test vectors for them exercise it too. Pure: no I/O, no clock; ephemeral keys come from an
 * injectable generator so vectors can fix them.
 */
import { concat } from './bytes.ts';
import {
  AEAD_KEY_BYTES,
  AEAD_TAG_BYTES,
  blake2b512Parts,
  chachaPolyDecrypt,
  chachaPolyEncrypt,
  hmacBlake2b512,
  wipe,
  X25519PrivateKey,
  X25519PublicKey,
  X25519_KEY_BYTES,
} from './crypto.ts';
import { LiaisonError } from './errors.ts';

/** Noise §3: the largest Noise message. One WebSocket message carries one Noise message. */
export const NOISE_MAX_MESSAGE_BYTES = 65_535;
/** Largest transport payload: a message minus its 16-byte tag. */
export const NOISE_MAX_PAYLOAD_BYTES = NOISE_MAX_MESSAGE_BYTES - AEAD_TAG_BYTES;
const HASHLEN = 64;
const DHLEN = X25519_KEY_BYTES;
const PSK_BYTES = 32;
/** Nonces stop here, well before 2^64 - 1 (reserved by Noise §5.1); rekeying does not reset them. */
export const NOISE_MAX_NONCE = Number.MAX_SAFE_INTEGER - 1;

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';

interface PatternDef {
  /** Pre-message tokens: what the initiator and the responder already know of each other. */
  readonly preInitiator: readonly Token[];
  readonly preResponder: readonly Token[];
  /** Message patterns, alternating initiator -> responder, responder -> initiator, ... */
  readonly messages: readonly (readonly Token[])[];
}

// Noise §7.4, §7.5 and §9.4.
const PATTERNS = {
  NN: { preInitiator: [], preResponder: [], messages: [['e'], ['e', 'ee']] },
  KK: {
    preInitiator: ['s'],
    preResponder: ['s'],
    messages: [
      ['e', 'es', 'ss'],
      ['e', 'ee', 'se'],
    ],
  },
  IK: {
    preInitiator: [],
    preResponder: ['s'],
    messages: [
      ['e', 'es', 's', 'ss'],
      ['e', 'ee', 'se'],
    ],
  },
  XX: {
    preInitiator: [],
    preResponder: [],
    messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']],
  },
  IKpsk2: {
    preInitiator: [],
    preResponder: ['s'],
    messages: [
      ['e', 'es', 's', 'ss'],
      ['e', 'ee', 'se', 'psk'],
    ],
  },
  XXpsk3: {
    preInitiator: [],
    preResponder: [],
    messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se', 'psk']],
  },
} as const satisfies Record<string, PatternDef>;

export type NoisePattern = keyof typeof PATTERNS;

export function noiseProtocolName(pattern: NoisePattern): string {
  return `Noise_${pattern}_25519_ChaChaPoly_BLAKE2b`;
}

function fail(
  code:
    | 'LIAISON_ERR_NOISE_STATE'
    | 'LIAISON_ERR_NOISE_MESSAGE_SIZE'
    | 'LIAISON_ERR_NOISE_DECRYPT'
    | 'LIAISON_ERR_NOISE_CONFIG'
    | 'LIAISON_ERR_NOISE_NONCE_EXHAUSTED',
  why: string,
): LiaisonError {
  return new LiaisonError(code, why);
}

/** Noise §5.1: a key and a nonce. */
export class CipherState {
  #k: Uint8Array | null = null;
  #n = 0;
  readonly #nonce = new Uint8Array(12);
  /** Kept, not made per message: a DataView per call cost ~60 ns of a ~3 us transport message. */
  readonly #nonceView = new DataView(this.#nonce.buffer);

  initializeKey(key: Uint8Array | null): void {
    if (this.#k !== null) wipe(this.#k);
    this.#k = key === null ? null : Uint8Array.from(key);
    this.#n = 0;
  }

  hasKey(): boolean {
    return this.#k !== null;
  }

  /** The next nonce to be used; exposed so that a link can rekey on a schedule both sides share. */
  get nonce(): number {
    return this.#n;
  }

  #setNonce(n: number): void {
    // 32 bits of zeros, then the 64-bit counter little-endian (Noise §12.3).
    this.#nonceView.setUint32(4, n >>> 0, true);
    this.#nonceView.setUint32(8, Math.floor(n / 0x100000000), true);
  }

  /** Encrypts the concatenation of `plaintext` (one array, or parts). */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array | readonly Uint8Array[]): Uint8Array {
    if (this.#k === null) return plaintext instanceof Uint8Array ? plaintext : concat(...plaintext);
    if (this.#n >= NOISE_MAX_NONCE)
      throw fail('LIAISON_ERR_NOISE_NONCE_EXHAUSTED', 'rekey or reconnect');
    this.#setNonce(this.#n);
    const out = chachaPolyEncrypt(this.#k, this.#nonce, ad, plaintext);
    this.#n += 1;
    return out;
  }

  /** @throws LIAISON_ERR_NOISE_DECRYPT; the nonce advances only on success (Noise §5.1). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    return this.#decrypt(ad, ciphertext, false);
  }

  /**
   * decryptWithAd that writes the plaintext over the start of `ciphertext` and returns a view of
   * it, so a transport message costs no allocation. Only for a buffer the caller owns and no
   * longer needs as ciphertext (a handshake message is still hashed afterwards: not there).
   * `ciphertext` is unchanged when it fails to authenticate.
   * @throws LIAISON_ERR_NOISE_DECRYPT
   */
  decryptWithAdInPlace(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    return this.#decrypt(ad, ciphertext, true);
  }

  #decrypt(ad: Uint8Array, ciphertext: Uint8Array, inPlace: boolean): Uint8Array {
    if (this.#k === null) return ciphertext;
    if (this.#n >= NOISE_MAX_NONCE)
      throw fail('LIAISON_ERR_NOISE_NONCE_EXHAUSTED', 'rekey or reconnect');
    this.#setNonce(this.#n);
    const out = inPlace
      ? chachaPolyDecrypt(
          this.#k,
          this.#nonce,
          ad,
          ciphertext,
          ciphertext.subarray(0, Math.max(0, ciphertext.length - AEAD_TAG_BYTES)),
        )
      : chachaPolyDecrypt(this.#k, this.#nonce, ad, ciphertext);
    if (out === null) throw fail('LIAISON_ERR_NOISE_DECRYPT', 'message does not authenticate');
    this.#n += 1;
    return out;
  }

  /** Noise §11.3: k = first 32 bytes of ENCRYPT(k, 2^64 - 1, "", zeros(32)); n is unchanged. */
  rekey(): void {
    if (this.#k === null) throw fail('LIAISON_ERR_NOISE_STATE', 'rekey without a key');
    const maxNonce = Uint8Array.of(0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    const out = chachaPolyEncrypt(
      this.#k,
      maxNonce,
      new Uint8Array(0),
      new Uint8Array(AEAD_KEY_BYTES),
    );
    const next = out.slice(0, AEAD_KEY_BYTES);
    wipe(out);
    wipe(this.#k);
    this.#k = next;
  }

  /** Forgets the key. */
  destroy(): void {
    if (this.#k !== null) wipe(this.#k);
    this.#k = null;
  }
}

/** Noise §4.3: HKDF with HMAC-BLAKE2b, 2 or 3 outputs of HASHLEN bytes. */
function hkdf(ck: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const tempKey = hmacBlake2b512(ck, ikm);
  const o1 = hmacBlake2b512(tempKey, Uint8Array.of(1));
  const o2 = hmacBlake2b512(tempKey, o1, Uint8Array.of(2));
  const out = [o1, o2];
  if (outputs === 3) out.push(hmacBlake2b512(tempKey, o2, Uint8Array.of(3)));
  wipe(tempKey);
  return out;
}

/** Noise §5.2. */
class SymmetricState {
  readonly cipher = new CipherState();
  ck: Uint8Array;
  h: Uint8Array;

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASHLEN) {
      this.h = new Uint8Array(HASHLEN);
      this.h.set(name);
    } else {
      this.h = blake2b512Parts(name);
    }
    this.ck = Uint8Array.from(this.h);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.ck, ikm, 2);
    this.ck = ck!;
    this.cipher.initializeKey(tempK!.subarray(0, AEAD_KEY_BYTES));
    wipe(tempK!);
  }

  mixHash(data: Uint8Array): void {
    this.h = blake2b512Parts(this.h, data);
  }

  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.ck, ikm, 3);
    this.ck = ck!;
    this.mixHash(tempH!);
    this.cipher.initializeKey(tempK!.subarray(0, AEAD_KEY_BYTES));
    wipe(tempK!);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const c = this.cipher.encryptWithAd(this.h, plaintext);
    this.mixHash(c);
    return c;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const p = this.cipher.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return p;
  }

  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.ck, new Uint8Array(0), 2);
    const c1 = new CipherState();
    const c2 = new CipherState();
    c1.initializeKey(k1!.subarray(0, AEAD_KEY_BYTES));
    c2.initializeKey(k2!.subarray(0, AEAD_KEY_BYTES));
    wipe(k1!);
    wipe(k2!);
    wipe(this.ck);
    this.cipher.destroy();
    return [c1, c2];
  }
}

export interface HandshakeOptions {
  readonly pattern: NoisePattern;
  readonly initiator: boolean;
  readonly prologue: Uint8Array;
  /** Our static key pair, for patterns that send or pre-share it. */
  readonly s?: X25519PrivateKey;
  /** The remote static public key, where the pattern pre-shares it (IK, KK: the initiator). */
  readonly rs?: Uint8Array;
  /** The 32-byte pre-shared key for psk patterns. */
  readonly psk?: Uint8Array;
  /** Ephemeral key source (tests fix it; default: fresh random keys). */
  readonly ephemeral?: () => X25519PrivateKey;
}

export interface TransportPair {
  readonly send: CipherState;
  readonly receive: CipherState;
  /** Noise §11.2: the handshake hash, for channel binding. */
  readonly handshakeHash: Uint8Array;
  /** The peer's static public key as authenticated by the handshake. */
  readonly remoteStatic: Uint8Array | null;
}

/**
 * Noise §5.3. Call writeMessage / readMessage in the order the pattern dictates; after the last
 * handshake message, `result` holds the transport cipher states.
 */
export class HandshakeState {
  readonly #ss: SymmetricState;
  readonly #def: PatternDef;
  readonly #initiator: boolean;
  readonly #s: X25519PrivateKey | null;
  #e: X25519PrivateKey | null = null;
  #rs: Uint8Array | null;
  #re: Uint8Array | null = null;
  readonly #psk: Uint8Array | null;
  readonly #psked: boolean;
  readonly #ephemeral: () => X25519PrivateKey;
  #index = 0;
  #result: TransportPair | null = null;
  #failed = false;

  constructor(o: HandshakeOptions) {
    this.#def = PATTERNS[o.pattern];
    this.#initiator = o.initiator;
    this.#s = o.s ?? null;
    this.#rs = o.rs === undefined ? null : Uint8Array.from(o.rs);
    this.#psk = o.psk === undefined ? null : Uint8Array.from(o.psk);
    this.#psked = o.pattern.includes('psk');
    this.#ephemeral = o.ephemeral ?? (() => X25519PrivateKey.generate());
    if (this.#psked !== (this.#psk !== null))
      throw fail(
        'LIAISON_ERR_NOISE_CONFIG',
        this.#psked ? 'pattern needs a PSK' : 'PSK given for a pattern without one',
      );
    if (this.#psk !== null && this.#psk.length !== PSK_BYTES)
      throw fail('LIAISON_ERR_NOISE_CONFIG', 'PSK must be 32 bytes');
    if (this.#rs !== null && this.#rs.length !== DHLEN)
      throw fail('LIAISON_ERR_NOISE_CONFIG', 'remote static key must be 32 bytes');
    const sends = this.#def.messages.filter((_, i) => (i % 2 === 0) === o.initiator).flat();
    if (
      (sends.includes('s') ||
        (o.initiator ? this.#def.preInitiator : this.#def.preResponder).includes('s')) &&
      this.#s === null
    ) {
      throw fail('LIAISON_ERR_NOISE_CONFIG', 'pattern needs our static key');
    }
    const remotePre = o.initiator ? this.#def.preResponder : this.#def.preInitiator;
    if (remotePre.includes('s') && this.#rs === null)
      throw fail('LIAISON_ERR_NOISE_CONFIG', 'pattern needs the remote static key');

    this.#ss = new SymmetricState(noiseProtocolName(o.pattern));
    this.#ss.mixHash(o.prologue);
    // Pre-messages, initiator's first (Noise §7.1).
    for (const [side, tokens] of [
      ['initiator', this.#def.preInitiator],
      ['responder', this.#def.preResponder],
    ] as const) {
      for (const t of tokens) {
        if (t !== 's') throw fail('LIAISON_ERR_NOISE_CONFIG', `unsupported pre-message token ${t}`);
        const mine = (side === 'initiator') === o.initiator;
        this.#ss.mixHash(mine ? this.#s!.publicKey.bytes : this.#rs!);
      }
    }
  }

  /** True when it is this side's turn to write. */
  get isMyTurn(): boolean {
    return this.#result === null && !this.#failed && (this.#index % 2 === 0) === this.#initiator;
  }

  get isComplete(): boolean {
    return this.#result !== null;
  }

  /** The remote static key once known (pre-shared, or read from a message), else null. */
  get remoteStatic(): Uint8Array | null {
    return this.#rs === null ? null : Uint8Array.from(this.#rs);
  }

  /** The transport states after the last handshake message. */
  get result(): TransportPair {
    if (this.#result === null) throw fail('LIAISON_ERR_NOISE_STATE', 'handshake not complete');
    return this.#result;
  }

  /** Noise §5.3 WriteMessage. */
  writeMessage(payload: Uint8Array): Uint8Array {
    if (!this.isMyTurn) throw fail('LIAISON_ERR_NOISE_STATE', 'not our turn to write');
    const tokens = this.#def.messages[this.#index]!;
    const parts: Uint8Array[] = [];
    for (const t of tokens) {
      switch (t) {
        case 'e':
          this.#e = this.#ephemeral();
          parts.push(this.#e.publicKey.bytes);
          this.#ss.mixHash(this.#e.publicKey.bytes);
          if (this.#psked) this.#ss.mixKey(this.#e.publicKey.bytes);
          break;
        case 's':
          parts.push(this.#ss.encryptAndHash(this.#s!.publicKey.bytes));
          break;
        case 'psk':
          this.#ss.mixKeyAndHash(this.#psk!);
          break;
        default:
          this.#dh(t);
      }
    }
    parts.push(this.#ss.encryptAndHash(payload));
    const message = concat(...parts);
    if (message.length > NOISE_MAX_MESSAGE_BYTES)
      throw fail('LIAISON_ERR_NOISE_MESSAGE_SIZE', 'handshake message over 65535 bytes');
    this.#advance();
    return message;
  }

  /**
   * Noise §5.3 ReadMessage. Any failure leaves the handshake unusable: a peer gets one try.
   * @throws LIAISON_ERR_NOISE_STATE, LIAISON_ERR_NOISE_MESSAGE_SIZE, LIAISON_ERR_NOISE_DECRYPT,
   *   LIAISON_ERR_KEY_LOW_ORDER
   */
  readMessage(message: Uint8Array): Uint8Array {
    if (this.#result !== null || this.#failed || (this.#index % 2 === 0) === this.#initiator) {
      throw fail('LIAISON_ERR_NOISE_STATE', 'not expecting a handshake message');
    }
    try {
      if (message.length > NOISE_MAX_MESSAGE_BYTES)
        throw fail('LIAISON_ERR_NOISE_MESSAGE_SIZE', 'over 65535 bytes');
      const tokens = this.#def.messages[this.#index]!;
      let at = 0;
      const take = (n: number): Uint8Array => {
        if (message.length - at < n)
          throw fail('LIAISON_ERR_NOISE_MESSAGE_SIZE', 'handshake message too short');
        const out = message.subarray(at, at + n);
        at += n;
        return out;
      };
      for (const t of tokens) {
        switch (t) {
          case 'e':
            this.#re = Uint8Array.from(take(DHLEN));
            this.#ss.mixHash(this.#re);
            if (this.#psked) this.#ss.mixKey(this.#re);
            break;
          case 's': {
            const len = this.#ss.cipher.hasKey() ? DHLEN + AEAD_TAG_BYTES : DHLEN;
            this.#rs = Uint8Array.from(this.#ss.decryptAndHash(take(len)));
            break;
          }
          case 'psk':
            this.#ss.mixKeyAndHash(this.#psk!);
            break;
          default:
            this.#dh(t);
        }
      }
      const rest = message.subarray(at);
      if (this.#ss.cipher.hasKey() && rest.length < AEAD_TAG_BYTES)
        throw fail('LIAISON_ERR_NOISE_MESSAGE_SIZE', 'payload shorter than a tag');
      const payload = this.#ss.decryptAndHash(rest);
      this.#advance();
      return payload;
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  #dh(t: Token): void {
    // Noise §5.3: for "es" the initiator uses e with rs, the responder s with re; "se" mirrors it.
    const pick = (): [X25519PrivateKey, Uint8Array] => {
      const i = this.#initiator;
      switch (t) {
        case 'ee':
          return [this.#e!, this.#re!];
        case 'ss':
          return [this.#s!, this.#rs!];
        case 'es':
          return i ? [this.#e!, this.#rs!] : [this.#s!, this.#re!];
        case 'se':
          return i ? [this.#s!, this.#re!] : [this.#e!, this.#rs!];
        default:
          throw fail('LIAISON_ERR_NOISE_CONFIG', `not a DH token: ${t}`);
      }
    };
    const [own, remote] = pick();
    const shared = own.agree(X25519PublicKey.fromBytes(remote));
    this.#ss.mixKey(shared);
    wipe(shared);
  }

  #advance(): void {
    this.#index += 1;
    if (this.#index === this.#def.messages.length) {
      const handshakeHash = Uint8Array.from(this.#ss.h);
      const [c1, c2] = this.#ss.split();
      this.#result = {
        send: this.#initiator ? c1 : c2,
        receive: this.#initiator ? c2 : c1,
        handshakeHash,
        remoteStatic: this.#rs,
      };
    }
  }
}
