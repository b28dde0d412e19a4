/**
 * RFC 6962 Merkle trees (docs/protocol.md §15.1): tree hashes, inclusion and consistency proofs.
 *
 * The tree over leaf hashes d[0..n) is RFC 6962 §2.1's MTH with SHA-256, 0x00 leaf and 0x01 node
 * prefixes; proofs are RFC 6962 §2.1.1 PATH and §2.1.2 PROOF (the same bytes as RFC 9162 §2.1.3
 * and Go's golang.org/x/mod/sumdb/tlog).
 *
 * Storage never recomputes the tree: a node keeps the hash of every complete, aligned subtree
 * ("stored hashes", level L and index i covering leaves [i·2^L, (i+1)·2^L)). Appending leaf n
 * stores at most log2(n)+1 new hashes; any tree hash or proof then needs O(log² n) of them. The
 * hash source is an interface so that SQLite, a bundle in memory or a test can serve it.
 */
import { equalBytes } from './bytes.ts';
import { HASH_BYTES, sha256 } from './crypto.ts';
import { LiaisonError } from './errors.ts';

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/**
 * Largest tree size a proof or tree hash is computed for: 2^53 - 1 keeps every index an exact
 * JavaScript number, and a proof then has at most 2·53 hashes.
 */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;

/** Longest proof accepted from anyone: 2·⌈log2(MAX_TREE_SIZE)⌉. */
export const MAX_PROOF_HASHES = 106;

/** SHA-256 of the empty string: RFC 6962's hash of the empty tree. */
export const EMPTY_TREE_HASH: Uint8Array = sha256();

export function merkleLeafHash(leaf: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, leaf);
}

export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

/** Reads the stored hash of the complete subtree at `level`, `index`. Throws if it is absent. */
export type StoredHashReader = (level: number, index: number) => Uint8Array;

export interface StoredHash {
  readonly level: number;
  readonly index: number;
  readonly hash: Uint8Array;
}

/** Largest power of two strictly below n (n ≥ 2): RFC 6962's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** L when n = 2^L, else -1. Exact for every safe integer (Math.log2 rounds near 2^53). */
function exactLog2(n: number): number {
  let level = 0;
  for (let v = n; v > 1; v /= 2) {
    if (v % 2 !== 0) return -1;
    level += 1;
  }
  return n >= 1 ? level : -1;
}

function checkSize(n: number, label: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_TREE_SIZE) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', `${label} must be a tree size`, {
      field: label,
    });
  }
}

/**
 * The hashes to store when leaf `n` (0-based) with hash `leafHash` is appended to a tree of size
 * n: the leaf itself at level 0 and every subtree it completes. `read` is asked only for left
 * siblings, which are complete already.
 */
export function storedHashesForAppend(
  n: number,
  leafHash: Uint8Array,
  read: StoredHashReader,
): StoredHash[] {
  checkSize(n + 1, 'size');
  const out: StoredHash[] = [{ level: 0, index: n, hash: leafHash }];
  let hash = leafHash;
  let index = n;
  let level = 0;
  // While the subtree just completed is a right child, its parent completes too.
  while (index % 2 === 1) {
    hash = merkleNodeHash(read(level, index - 1), hash);
    index = (index - 1) / 2;
    level += 1;
    out.push({ level, index, hash });
  }
  return out;
}

/**
 * MTH(d[lo:hi)) from stored hashes. A range that is an aligned power of two is one read; any
 * other is split as RFC 6962 §2.1 splits it.
 */
export function rangeHash(lo: number, hi: number, read: StoredHashReader): Uint8Array {
  const n = hi - lo;
  if (n === 0) return EMPTY_TREE_HASH;
  const level = exactLog2(n);
  if (level >= 0 && lo % n === 0) return read(level, lo / n);
  const k = splitPoint(n);
  return merkleNodeHash(rangeHash(lo, lo + k, read), rangeHash(lo + k, hi, read));
}

/** The root hash of the tree of size n. */
export function treeHash(n: number, read: StoredHashReader): Uint8Array {
  checkSize(n, 'size');
  return rangeHash(0, n, read);
}

/** RFC 6962 §2.1.1 PATH(m, D[n]): the audit path of leaf m in the tree of size n. */
export function inclusionProof(m: number, n: number, read: StoredHashReader): Uint8Array[] {
  checkSize(n, 'size');
  if (!Number.isSafeInteger(m) || m < 0 || m >= n) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'leaf index must be below the tree size', {
      field: 'index',
    });
  }
  const proof: Uint8Array[] = [];
  const path = (m: number, lo: number, hi: number): void => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      path(m, lo, lo + k);
      proof.push(rangeHash(lo + k, hi, read));
    } else {
      path(m - k, lo + k, hi);
      proof.push(rangeHash(lo, lo + k, read));
    }
  };
  path(m, 0, n);
  return proof;
}

/** RFC 6962 §2.1.2 PROOF(m, D[n]): proves the tree of size m is a prefix of the tree of size n. */
export function consistencyProof(m: number, n: number, read: StoredHashReader): Uint8Array[] {
  checkSize(n, 'size');
  if (!Number.isSafeInteger(m) || m < 0 || m > n) {
    throw new LiaisonError('LIAISON_ERR_ARGUMENT', 'old size must be at most the new size', {
      field: 'oldSize',
    });
  }
  const proof: Uint8Array[] = [];
  if (m === 0 || m === n) return proof;
  const subproof = (m: number, lo: number, hi: number, whole: boolean): void => {
    const n = hi - lo;
    if (m === n) {
      if (!whole) proof.push(rangeHash(lo, hi, read));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      subproof(m, lo, lo + k, whole);
      proof.push(rangeHash(lo + k, hi, read));
    } else {
      subproof(m - k, lo + k, hi, false);
      proof.push(rangeHash(lo, lo + k, read));
    }
  };
  subproof(m, 0, n, true);
  return proof;
}

function proofFault(message: string): LiaisonError {
  return new LiaisonError('LIAISON_ERR_AUDIT_PROOF_INVALID', message);
}

function checkProofShape(proof: readonly Uint8Array[]): void {
  if (proof.length > MAX_PROOF_HASHES) throw proofFault('too many hashes');
  for (const h of proof) if (h.length !== HASH_BYTES) throw proofFault('a hash is not 32 bytes');
}

/** Leaf hashes and roots are SHA-256 outputs; anything else (e.g. two empty arrays) is refused. */
function checkHash(h: Uint8Array, what: string): void {
  if (h.length !== HASH_BYTES) throw proofFault(`${what} is not 32 bytes`);
}

/**
 * The root that an inclusion proof for leaf m of a tree of size n implies (RFC 9162 §2.1.3.2).
 * @throws LIAISON_ERR_AUDIT_PROOF_INVALID when the proof has the wrong length or shape.
 */
export function rootFromInclusionProof(
  m: number,
  n: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  checkProofShape(proof);
  checkHash(leafHash, 'leaf hash');
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || m < 0 || m >= n) {
    throw proofFault('leaf index outside the tree');
  }
  let fn = m;
  let sn = n - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw proofFault('proof longer than the path');
    if (fn % 2 === 1 || fn === sn) {
      r = merkleNodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = merkleNodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofFault('proof shorter than the path');
  return r;
}

/** @throws LIAISON_ERR_AUDIT_PROOF_INVALID unless leaf m is in the tree of size n with `root`. */
export function verifyInclusion(
  m: number,
  n: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash(root, 'root');
  if (!equalBytes(rootFromInclusionProof(m, n, leafHash, proof), root)) {
    throw proofFault('inclusion proof does not lead to the root');
  }
}

/**
 * Checks that the tree of size m with root `oldRoot` is a prefix of the tree of size n with root
 * `newRoot` (RFC 9162 §2.1.4.2).
 * @throws LIAISON_ERR_AUDIT_PROOF_INVALID when it is not, or the proof is malformed.
 */
export function verifyConsistency(
  m: number,
  n: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
): void {
  checkProofShape(proof);
  checkHash(oldRoot, 'old root');
  checkHash(newRoot, 'new root');
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(m) || m < 0 || m > n) {
    throw proofFault('old size above new size');
  }
  if (m === n) {
    if (proof.length !== 0) throw proofFault('a proof between equal sizes must be empty');
    if (!equalBytes(oldRoot, newRoot)) throw proofFault('same size, different roots');
    return;
  }
  if (m === 0) {
    // Every tree extends the empty tree; RFC 9162 requires the proof to be empty.
    if (proof.length !== 0) throw proofFault('a proof from the empty tree must be empty');
    return;
  }
  if (proof.length === 0) throw proofFault('empty proof between different sizes');
  let path = proof;
  // When m is a power of two the old root itself is the first node of the path.
  if (exactLog2(m) >= 0) path = [oldRoot, ...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw proofFault('proof longer than the path');
    if (fn % 2 === 1 || fn === sn) {
      fr = merkleNodeHash(c, fr);
      sr = merkleNodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = merkleNodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw proofFault('proof shorter than the path');
  if (!equalBytes(fr, oldRoot)) throw proofFault('proof does not lead to the old root');
  if (!equalBytes(sr, newRoot)) throw proofFault('proof does not lead to the new root');
}

/**
 * Builds roots over a stream of leaf hashes with O(log n) memory: the "compact range" of the
 * perfect subtrees covering [0, size). Offline verification appends every leaf of a bundle and
 * asks for the root at each checkpoint size.
 */
export class MerkleFrontier {
  /** Perfect-subtree hashes, largest first; their sizes are the set bits of `size`. */
  readonly #stack: Uint8Array[] = [];
  #size = 0;

  /**
   * A frontier at `size` from the hashes of its perfect subtrees, largest first: what a bundle
   * that starts mid-log carries for the leaves before its first entry.
   * @throws LIAISON_ERR_AUDIT_PROOF_INVALID when the count does not match the size's bits.
   */
  static fromHashes(size: number, hashes: readonly Uint8Array[]): MerkleFrontier {
    checkSize(size, 'size');
    checkProofShape(hashes);
    let bits = 0;
    for (let s = size; s > 0; s = Math.floor(s / 2)) bits += s % 2;
    if (bits !== hashes.length) throw proofFault('frontier does not match its size');
    const f = new MerkleFrontier();
    f.#stack.push(...hashes);
    f.#size = size;
    return f;
  }

  get size(): number {
    return this.#size;
  }

  /** The perfect-subtree hashes, largest first (a copy). */
  hashes(): Uint8Array[] {
    return [...this.#stack];
  }

  append(leafHash: Uint8Array): void {
    let h = leafHash;
    // Merge while the lowest subtree has the same size as the new one (a carry in binary).
    for (let s = this.#size; s % 2 === 1; s = Math.floor(s / 2)) {
      h = merkleNodeHash(this.#stack.pop()!, h);
    }
    this.#stack.push(h);
    this.#size += 1;
  }

  root(): Uint8Array {
    if (this.#stack.length === 0) return EMPTY_TREE_HASH;
    let r = this.#stack[this.#stack.length - 1]!;
    for (let i = this.#stack.length - 2; i >= 0; i--) r = merkleNodeHash(this.#stack[i]!, r);
    return r;
  }
}
