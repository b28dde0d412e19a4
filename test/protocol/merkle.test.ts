/**
 * RFC 6962 Merkle trees: stored-hash tree hashes and proofs against a direct, recursive reading
 * of RFC 6962 §2.1 for every size up to 70, the streaming frontier, tampered proofs refused with
 * their code, and published vectors (test/vectors/rfc6962-merkle.json).
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  consistencyProof,
  EMPTY_TREE_HASH,
  fromHex,
  inclusionProof,
  initCrypto,
  MerkleFrontier,
  merkleLeafHash,
  merkleNodeHash,
  rootFromInclusionProof,
  storedHashesForAppend,
  toHex,
  treeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../protocol/index.ts';
import type { StoredHashReader } from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';

await initCrypto();

/** RFC 6962 §2.1 MTH, read literally. */
function mth(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_TREE_HASH;
  if (leaves.length === 1) return merkleLeafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return merkleNodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** RFC 6962 §2.1.1 PATH, read literally. */
function path(m: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return m < k
    ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** RFC 6962 §2.1.2 SUBPROOF, read literally. */
function subproof(m: number, leaves: readonly Uint8Array[], b: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return b ? [] : [mth(leaves)];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return m <= k
    ? [...subproof(m, leaves.slice(0, k), b), mth(leaves.slice(k))]
    : [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))];
}

const leaves = Array.from({ length: 70 }, (_, i) => Uint8Array.of(i, i >> 8, 0x5a));
const stored = new Map<string, Uint8Array>();
const read: StoredHashReader = (level, index) => {
  const h = stored.get(`${level}/${index}`);
  if (h === undefined) throw new Error(`missing stored hash ${level}/${index}`);
  return h;
};
const hex = (hs: readonly Uint8Array[]) => hs.map(toHex);

t.test('stored hashes give RFC 6962 roots and proofs for every size up to 70', async (t) => {
  const frontier = new MerkleFrontier();
  t.equal(toHex(treeHash(0, read)), toHex(EMPTY_TREE_HASH), 'empty tree');
  for (let n = 0; n < leaves.length; n++) {
    const added = storedHashesForAppend(n, merkleLeafHash(leaves[n]!), read);
    for (const h of added) stored.set(`${h.level}/${h.index}`, h.hash);
    t.ok(added.length <= Math.log2(n + 1) + 1, `append ${n} stores at most log2 + 1 hashes`);
    frontier.append(merkleLeafHash(leaves[n]!));
    const size = n + 1;
    const root = mth(leaves.slice(0, size));
    t.equal(toHex(treeHash(size, read)), toHex(root), `root of ${size}`);
    t.equal(toHex(frontier.root()), toHex(root), `frontier root of ${size}`);
    for (let m = 0; m < size; m++) {
      const proof = inclusionProof(m, size, read);
      t.same(hex(proof), hex(path(m, leaves.slice(0, size))), `PATH(${m}, ${size})`);
      verifyInclusion(m, size, merkleLeafHash(leaves[m]!), proof, root);
    }
    for (let m = 1; m <= size; m++) {
      const proof = consistencyProof(m, size, read);
      t.same(
        hex(proof),
        hex(m === size ? [] : subproof(m, leaves.slice(0, size), true)),
        `PROOF(${m}, ${size})`,
      );
      verifyConsistency(m, size, proof, mth(leaves.slice(0, m)), root);
    }
  }
});

t.test('a frontier rebuilt from its hashes continues the same tree', async (t) => {
  const a = new MerkleFrontier();
  for (let i = 0; i < 37; i++) a.append(merkleLeafHash(leaves[i]!));
  const mid = a.hashes();
  const b = MerkleFrontier.fromHashes(37, mid);
  for (let i = 37; i < 70; i++) {
    a.append(merkleLeafHash(leaves[i]!));
    b.append(merkleLeafHash(leaves[i]!));
  }
  t.equal(toHex(b.root()), toHex(mth(leaves)), 'same root');
  rejects(
    t,
    () => MerkleFrontier.fromHashes(36, mid),
    'LIAISON_ERR_AUDIT_PROOF_INVALID',
    'count must match the size',
  );
});

t.test('tampered or misapplied proofs are refused', async (t) => {
  const size = 45;
  const root = treeHash(size, read);
  const leaf = merkleLeafHash(leaves[13]!);
  const proof = inclusionProof(13, size, read);
  const flipped = proof.map((h, i) =>
    i === 2 ? Uint8Array.from(h, (b, j) => (j === 0 ? b ^ 1 : b)) : h,
  );
  const code = 'LIAISON_ERR_AUDIT_PROOF_INVALID';
  rejects(t, () => verifyInclusion(13, size, leaf, flipped, root), code, 'flipped hash');
  rejects(t, () => verifyInclusion(14, size, leaf, proof, root), code, 'wrong index');
  rejects(t, () => verifyInclusion(13, 20, leaf, proof, root), code, 'wrong size');
  rejects(t, () => verifyInclusion(13, size, leaf, proof.slice(1), root), code, 'short proof');
  rejects(t, () => verifyInclusion(13, size, leaf, [...proof, root], root), code, 'long proof');
  rejects(t, () => rootFromInclusionProof(45, size, leaf, proof), code, 'index past the end');
  rejects(t, () => verifyInclusion(13, size, leaf, [Uint8Array.of(1)], root), code, 'short hash');
  const c = consistencyProof(20, size, read);
  const old = treeHash(20, read);
  rejects(t, () => verifyConsistency(20, size, c, old, treeHash(44, read)), code, 'wrong new root');
  rejects(
    t,
    () => verifyConsistency(20, size, c, treeHash(19, read), root),
    code,
    'wrong old root',
  );
  rejects(t, () => verifyConsistency(21, size, c, old, root), code, 'wrong old size');
  rejects(t, () => verifyConsistency(20, size, c.slice(0, -1), old, root), code, 'short proof');
  rejects(t, () => verifyConsistency(20, size, [...c, old], old, root), code, 'long proof');
  rejects(t, () => verifyConsistency(size, size, [], old, root), code, 'same size, other root');
  rejects(t, () => verifyConsistency(46, size, [], old, root), code, 'old above new');
  rejects(t, () => verifyConsistency(0, size, c, old, root), code, 'non-empty proof from 0');
  verifyConsistency(0, size, [], EMPTY_TREE_HASH, root);
  verifyConsistency(32, 32, [], treeHash(32, read), treeHash(32, read));
});

interface InclusionCase {
  readonly source?: { readonly path: string };
  readonly desc?: string;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leafHash: string;
  readonly root: string;
  readonly proof: readonly string[];
  readonly wantErr?: boolean;
}

interface ConsistencyCase {
  readonly source?: { readonly path: string };
  readonly desc?: string;
  readonly size1: number;
  readonly size2: number;
  readonly root1: string;
  readonly root2: string;
  readonly proof: readonly string[];
  readonly wantErr?: boolean;
}

interface MerkleVectors {
  readonly hashing: {
    readonly emptyTreeRoot: string;
    readonly leafHashOfEmptyData: string;
    readonly leafHashOfL123456: { readonly dataUtf8: string; readonly hash: string };
    readonly nodeHashOfN123_N456: {
      readonly leftUtf8: string;
      readonly rightUtf8: string;
      readonly hash: string;
    };
    readonly goTlogRecordHashHelloWorld: {
      readonly dataUtf8: string;
      readonly hashBase64: string;
      readonly hash: string;
    };
  };
  readonly tree: {
    readonly leafInputs: readonly string[];
    readonly leafHashes: readonly string[];
    readonly rootsBySize: readonly { readonly size: number; readonly root: string }[];
    readonly nodeHashesByLevel: readonly (readonly string[])[];
  };
  readonly inclusion: readonly InclusionCase[];
  readonly consistency: readonly ConsistencyCase[];
  readonly derived: {
    readonly inclusion: readonly InclusionCase[];
    readonly consistency: readonly ConsistencyCase[];
  };
  readonly sunlightRecord300: {
    readonly treeSize: number;
    readonly root: string;
    readonly rootBase64: string;
  };
}

t.test('published RFC 6962 vectors', async (t) => {
  const url = new URL('../vectors/rfc6962-merkle.json', import.meta.url);
  let doc: MerkleVectors;
  try {
    doc = JSON.parse(readFileSync(url, 'utf8')) as MerkleVectors;
  } catch {
    t.fail('test/vectors/rfc6962-merkle.json is missing');
    return;
  }
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const PROOF = 'LIAISON_ERR_AUDIT_PROOF_INVALID';
  const ARG = 'LIAISON_ERR_ARGUMENT';

  // Hashing primitives (transparency-dev/merkle rfc6962_test.go, Go tlog RecordHash).
  const h = doc.hashing;
  t.equal(toHex(EMPTY_TREE_HASH), h.emptyTreeRoot, 'empty tree hash');
  t.equal(toHex(merkleLeafHash(new Uint8Array(0))), h.leafHashOfEmptyData, 'leaf hash of ""');
  t.equal(
    toHex(merkleLeafHash(utf8(h.leafHashOfL123456.dataUtf8))),
    h.leafHashOfL123456.hash,
    'leaf hash of L123456',
  );
  const n = h.nodeHashOfN123_N456;
  t.equal(toHex(merkleNodeHash(utf8(n.leftUtf8), utf8(n.rightUtf8))), n.hash, 'node hash framing');
  const go = h.goTlogRecordHashHelloWorld;
  const goHash = merkleLeafHash(utf8(go.dataUtf8));
  t.equal(toHex(goHash), go.hash, 'Go tlog.RecordHash("hello world")');
  t.equal(Buffer.from(goHash).toString('base64'), go.hashBase64, 'same, base64');

  // The 8-leaf test tree: leaf hashes, stored hashes per level, the root of every size.
  const tree = new Map<string, Uint8Array>();
  const treeRead: StoredHashReader = (level, index) => {
    const v = tree.get(`${level}/${index}`);
    if (v === undefined) throw new Error(`missing stored hash ${level}/${index}`);
    return v;
  };
  const frontier = new MerkleFrontier();
  const treeLeaves = doc.tree.leafInputs.map((x) => merkleLeafHash(fromHex(x)));
  t.same(hex(treeLeaves), doc.tree.leafHashes, 'leaf hashes of the test tree');
  t.equal(doc.tree.rootsBySize.length, treeLeaves.length + 1, 'a root for every size 0..8');
  const rootOf = new Map<number, string>();
  for (const r of doc.tree.rootsBySize) rootOf.set(r.size, r.root);
  t.equal(toHex(treeHash(0, treeRead)), rootOf.get(0), 'root of size 0 (stored hashes)');
  t.equal(toHex(frontier.root()), rootOf.get(0), 'root of size 0 (frontier)');
  treeLeaves.forEach((leaf, i) => {
    for (const s of storedHashesForAppend(i, leaf, treeRead)) {
      tree.set(`${s.level}/${s.index}`, s.hash);
    }
    frontier.append(leaf);
    t.equal(toHex(treeHash(i + 1, treeRead)), rootOf.get(i + 1), `root of size ${i + 1} (stored)`);
    t.equal(toHex(frontier.root()), rootOf.get(i + 1), `root of size ${i + 1} (frontier)`);
  });
  doc.tree.nodeHashesByLevel.forEach((level, l) => {
    t.same(
      level.map((_, i) => toHex(treeRead(l, i))),
      level,
      `stored hashes at level ${l} are the published node hashes`,
    );
  });
  const onTree = (size: number, root: string) => size <= 8 && rootOf.get(size) === root;
  const label = (c: { source?: { path: string }; desc?: string }, fallback: string) =>
    c.source ? `${c.source.path} (${c.desc ?? ''})` : fallback;

  // Inclusion: upstream probes, then the derived all-pairs set.
  let generated = 0;
  const inclusion = (c: InclusionCase, name: string) => {
    const leaf = fromHex(c.leafHash);
    const root = fromHex(c.root);
    const proof = c.proof.map((x) => fromHex(x));
    const placeholder = [leaf, root, ...proof].some((x) => x.length !== 32);
    if (c.wantErr === true || placeholder) {
      const why = c.wantErr === true ? 'wantErr' : 'upstream ok, but non-32-byte hash';
      rejects(
        t,
        () => verifyInclusion(c.leafIndex, c.treeSize, leaf, proof, root),
        PROOF,
        `${name}: ${why}`,
      );
      const m = c.leafIndex;
      if (!Number.isSafeInteger(m) || m < 0 || m >= c.treeSize) {
        rejects(
          t,
          () => inclusionProof(m, c.treeSize, treeRead),
          ARG,
          `${name}: cannot be generated`,
        );
      }
      return;
    }
    verifyInclusion(c.leafIndex, c.treeSize, leaf, proof, root);
    t.pass(`${name}: verifies`);
    // A one-leaf tree whose leaf is not from the test tree: its reader serves only that leaf.
    const read: StoredHashReader = onTree(c.treeSize, c.root)
      ? treeRead
      : (level, index) => {
          if (level !== 0 || index !== 0 || c.treeSize !== 1) throw new Error('not a test tree');
          return leaf;
        };
    t.same(hex(inclusionProof(c.leafIndex, c.treeSize, read)), c.proof, `${name}: same proof`);
    generated += 1;
  };
  doc.inclusion.forEach((c, i) => inclusion(c, label(c, `inclusion[${i}]`)));
  t.equal(doc.derived.inclusion.length, 36, 'derived inclusion: every 0 <= m < n <= 8');
  for (const c of doc.derived.inclusion) {
    t.equal(c.root, rootOf.get(c.treeSize), `derived PATH(${c.leafIndex}, ${c.treeSize}) root`);
    inclusion(c, `derived PATH(${c.leafIndex}, ${c.treeSize})`);
  }

  // Consistency: upstream probes, then the derived all-pairs set.
  const consistency = (c: ConsistencyCase, name: string) => {
    const root1 = fromHex(c.root1);
    const root2 = fromHex(c.root2);
    const proof = c.proof.map((x) => fromHex(x));
    const placeholder = [root1, root2, ...proof].some((x) => x.length !== 32);
    if (c.wantErr === true || placeholder) {
      const why = c.wantErr === true ? 'wantErr' : 'upstream ok, but non-32-byte roots';
      rejects(
        t,
        () => verifyConsistency(c.size1, c.size2, proof, root1, root2),
        PROOF,
        `${name}: ${why}`,
      );
      if (c.size1 < 0 || c.size1 > c.size2) {
        rejects(
          t,
          () => consistencyProof(c.size1, c.size2, treeRead),
          ARG,
          `${name}: cannot be generated`,
        );
      }
      return;
    }
    verifyConsistency(c.size1, c.size2, proof, root1, root2);
    t.pass(`${name}: verifies`);
    if (onTree(c.size1, c.root1) && onTree(c.size2, c.root2)) {
      t.same(hex(consistencyProof(c.size1, c.size2, treeRead)), c.proof, `${name}: same proof`);
      generated += 1;
    } else {
      t.fail(`${name}: a happy path off the test tree`);
    }
  };
  doc.consistency.forEach((c, i) => consistency(c, label(c, `consistency[${i}]`)));
  t.equal(doc.derived.consistency.length, 36, 'derived consistency: every 1 <= m <= n <= 8');
  for (const c of doc.derived.consistency) {
    consistency(c, `derived PROOF(${c.size1}, ${c.size2})`);
  }
  t.equal(generated, 83, 'every happy path (72 derived, 11 upstream) regenerated byte for byte');

  // A larger tree: Sunlight's 300 leaves "record <i>" (a cosigned checkpoint's root).
  const big = new Map<string, Uint8Array>();
  const bigRead: StoredHashReader = (level, index) => big.get(`${level}/${index}`)!;
  const bigFrontier = new MerkleFrontier();
  const sun = doc.sunlightRecord300;
  for (let i = 0; i < sun.treeSize; i++) {
    const leaf = merkleLeafHash(utf8(`record ${i}`));
    for (const s of storedHashesForAppend(i, leaf, bigRead))
      big.set(`${s.level}/${s.index}`, s.hash);
    bigFrontier.append(leaf);
  }
  t.equal(toHex(treeHash(sun.treeSize, bigRead)), sun.root, 'Sunlight 300-leaf root (stored)');
  t.equal(toHex(bigFrontier.root()), sun.root, 'Sunlight 300-leaf root (frontier)');
  t.equal(Buffer.from(bigFrontier.root()).toString('base64'), sun.rootBase64, 'same, base64');
});
