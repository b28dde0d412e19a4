/**
 * C2SP signed notes, checkpoints, cosignatures and tlog-witness bodies against the published
 * known-answer vectors in test/vectors/c2sp-note.json (Go golang.org/x/mod/sumdb/note and tlog,
 * C2SP examples, transparency-dev/formats, Sunlight and torchwood test data): key hashes and
 * verifier keys, notes signed byte for byte, Go's malformed notes refused with their code,
 * cosignatures reproduced from published seeds, witness bodies parsed and re-encoded exactly.
 * Then a Liaison checkpoint round trip and the witness link message framing.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  concat,
  consistencyProof,
  cosign,
  cosignatureMessage,
  cosignatureTime,
  decodeWitnessMessage,
  deriveNodeId,
  Ed25519PrivateKey,
  Ed25519PublicKey,
  encodeWitnessMessage,
  formatAddCheckpoint,
  formatCheckpoint,
  formatNote,
  formatSignatureLine,
  formatVerifierKey,
  fromHex,
  initCrypto,
  isWitnessMessage,
  LiaisonError,
  MAX_NOTE_SIGNATURES,
  MAX_WITNESS_PROOF_LINES,
  merkleLeafHash,
  NOTE_KEY_TYPE_COSIGNATURE_V1,
  NOTE_KEY_TYPE_ED25519,
  noteKeyHash,
  noteTextBytes,
  openCheckpoint,
  originForNode,
  parseAddCheckpoint,
  parseCheckpoint,
  parseNote,
  parseSignatureLines,
  parseVerifierKey,
  sha256,
  signaturesBy,
  signCheckpoint,
  storedHashesForAppend,
  toHex,
  treeHash,
  verifyConsistency,
  verifyCosignature,
  WITNESS,
} from '../../protocol/index.ts';
import type {
  AddCheckpoint,
  Checkpoint,
  Note,
  NoteSignature,
  StoredHashReader,
  WitnessMessage,
} from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';

await initCrypto();

// --- the vector file ------------------------------------------------------------------------

interface KeyVector {
  readonly name: string;
  readonly vkey: string;
  readonly keyType: number;
  readonly keyId: string;
  readonly publicKeyHex: string;
  readonly skey?: string;
  readonly seedHex?: string;
  readonly keyIdPreimageHex: string;
}

interface SignatureVector {
  readonly keyName: string;
  readonly keyId: string;
  readonly signatureBase64: string;
  readonly ed25519SignatureHex: string;
  readonly ed25519ValidUnder?: string;
  readonly valid?: boolean;
}

interface OpenExpectation {
  readonly open: 'ok' | 'error';
  readonly error?: string;
  readonly sigs?: readonly string[];
  readonly unverifiedSigs?: readonly string[];
}

interface NoteVector {
  readonly id: string;
  readonly text: string;
  readonly signedNote: string;
  readonly signedNoteHex: string;
  readonly signatures: readonly SignatureVector[];
  readonly verifierKeys: readonly string[];
  readonly expect: OpenExpectation;
}

interface NegativeNoteVector {
  readonly id: string;
  readonly signedNoteHex: string;
  readonly verifierKeys: readonly string[];
  readonly expect: OpenExpectation;
}

interface CosignatureVector {
  readonly id: string;
  readonly cosignerName: string;
  readonly vkey: string;
  readonly keyType: number;
  readonly keyId: string;
  readonly seedDerivation: string;
  readonly seedHex: string;
  readonly publicKeyHex: string;
  readonly keyIdPreimageHex: string;
  readonly checkpointText: string;
  readonly timestamp: number;
  readonly signedMessage: string;
  readonly signedMessageHex: string;
  readonly signatureLine: string;
  readonly signatureBase64: string;
  readonly signatureBytes: {
    readonly keyIdHex: string;
    readonly timestampHex: string;
    readonly ed25519SignatureHex: string;
  };
  readonly cosignedNote: string;
}

interface Vectors {
  readonly keys: readonly KeyVector[];
  readonly notes: readonly NoteVector[];
  readonly negativeNotes: readonly NegativeNoteVector[];
  readonly badVerifierKeys: readonly { readonly vkey: string; readonly why: string }[];
  readonly checkpoints: {
    readonly goFormatTree: {
      readonly N: number;
      readonly recordHashOf: string;
      readonly hashBase64: string;
      readonly text: string;
    };
    readonly goParseTreeBad: { readonly texts: readonly string[] };
    readonly c2spCheckpointExample: { readonly text: string; readonly signatureLine: string };
  };
  readonly cosignatures: readonly CosignatureVector[];
  readonly cosignatureMisc: readonly {
    readonly id: string;
    readonly vkey?: string;
    readonly convertedCosignatureVkey?: string;
    readonly signatureBase64?: string;
    readonly signatureLine?: string;
    readonly keyIdHex?: string;
    readonly timestamp?: number;
  }[];
  readonly witness: readonly { readonly id: string; readonly body?: string }[];
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/c2sp-note.json', import.meta.url), 'utf8'),
) as Vectors;

// --- helpers --------------------------------------------------------------------------------

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** The base64 of a signature line as it appears in the note: key hash ‖ payload. */
function lineBase64(s: NoteSignature): string {
  const head = new Uint8Array(4);
  new DataView(head.buffer).setUint32(0, s.keyHash);
  return b64(concat(head, s.payload));
}

function vectorById<T extends { readonly id: string }>(list: readonly T[], id: string): T {
  const v = list.find((x) => x.id === id);
  if (v === undefined) throw new Error(`vector ${id} missing`);
  return v;
}

function ed25519KeyFor(name: string): Ed25519PrivateKey | undefined {
  const k = vectors.keys.find((x) => x.name === name && x.seedHex !== undefined);
  return k === undefined ? undefined : Ed25519PrivateKey.fromSeed(fromHex(k.seedHex!));
}

/**
 * Go's note.Open with Ed25519 verifier keys, built from our pieces (parseVerifierKey,
 * signaturesBy, Ed25519PublicKey.verify): the first line of each known key is verified and a bad
 * one fails the whole note; repeats of a known key are skipped; unknown lines are kept (identical
 * ones once); no verified signature fails. Failures are LIAISON_ERR_NOTE_SIGNATURE.
 */
function openWith(
  note: Note,
  verifierKeys: readonly string[],
): { sigs: string[]; unverified: string[] } {
  const message = noteTextBytes(note.text);
  const known = new Set<NoteSignature>();
  const verified: NoteSignature[] = [];
  for (const vk of verifierKeys.map((k) => parseVerifierKey(k))) {
    const mine = signaturesBy(note, vk.name, vk.type, vk.publicKey);
    for (const s of mine) known.add(s);
    if (mine.length === 0) continue;
    if (!Ed25519PublicKey.fromBytes(vk.publicKey).verify(message, mine[0]!.payload)) {
      throw new LiaisonError('LIAISON_ERR_NOTE_SIGNATURE', `invalid signature for ${vk.name}`);
    }
    verified.push(mine[0]!);
  }
  if (verified.length === 0) {
    throw new LiaisonError('LIAISON_ERR_NOTE_SIGNATURE', 'no verifiable signatures');
  }
  const seen = new Set<string>();
  const unverified: string[] = [];
  for (const s of note.signatures) {
    const line = formatSignatureLine(s);
    if (known.has(s) || seen.has(line)) continue;
    seen.add(line);
    unverified.push(s.name);
  }
  const order = (s: NoteSignature) => note.signatures.indexOf(s);
  return { sigs: verified.sort((a, b) => order(a) - order(b)).map((s) => s.name), unverified };
}

// --- signed notes ---------------------------------------------------------------------------

t.test('key hashes and verifier keys', async (t) => {
  t.ok(vectors.keys.length >= 13, `${vectors.keys.length} published keys`);
  for (const k of vectors.keys) {
    const pub = fromHex(k.publicKeyHex);
    const id = noteKeyHash(k.name, k.keyType, pub);
    t.equal(hex8(id), k.keyId, `${k.name}: key hash`);
    t.equal(
      toHex(sha256(fromHex(k.keyIdPreimageHex)).subarray(0, 4)),
      k.keyId,
      `${k.name}: preimage`,
    );
    t.equal(formatVerifierKey(k.name, k.keyType, pub), k.vkey, `${k.name}: verifier key text`);
    const parsed = parseVerifierKey(k.vkey);
    t.same(
      [parsed.name, parsed.keyHash, parsed.type, toHex(parsed.publicKey)],
      [k.name, id, k.keyType, k.publicKeyHex],
      `${k.name}: parseVerifierKey`,
    );
    if (k.seedHex !== undefined) {
      const key = Ed25519PrivateKey.fromSeed(fromHex(k.seedHex));
      t.equal(toHex(key.publicKey.bytes), k.publicKeyHex, `${k.name}: seed gives the public key`);
      // Go's skey: PRIVATE+KEY+name+hash+base64(type ‖ seed), hash of the public key.
      const skey = `PRIVATE+KEY+${k.name}+${k.keyId}+${b64(concat(Uint8Array.of(1), fromHex(k.seedHex)))}`;
      t.equal(skey, k.skey, `${k.name}: Go signer key text`);
    }
  }
  const sum = vectors.keys.find((k) => k.name === 'sum.golang.org')!;
  t.ok(sum.vkey.split('+').length > 3, 'sum.golang.org key has "+" in its base64');
  t.equal(parseVerifierKey(sum.vkey).name, 'sum.golang.org', 'split at the first two "+" only');

  for (const bad of vectors.badVerifierKeys) {
    rejects(
      t,
      () => parseVerifierKey(bad.vkey),
      'LIAISON_ERR_NOTE_INVALID',
      `bad vkey: ${bad.why}`,
    );
  }
  const peter = vectors.keys[0]!.vkey;
  for (const [label, vkey] of [
    ['uppercase hash (we emit and accept lowercase only)', peter.replace('c74f20a3', 'C74F20A3')],
    ['hash mismatch', peter.replace('c74f20a3', 'c74f20a4')],
    ['no key', 'PeterNeumann+c74f20a3'],
    ['name with space', `Peter Neumann${peter.slice('PeterNeumann'.length)}`],
    ['unpadded base64', peter.replace(/=*$/, '').slice(0, -1)],
  ] as const) {
    rejects(t, () => parseVerifierKey(vkey), 'LIAISON_ERR_NOTE_INVALID', `bad vkey: ${label}`);
  }
});

t.test('Go and C2SP notes: sign byte for byte, parse, verify', async (t) => {
  t.equal(vectors.notes.length, 9, 'nine positive notes');
  for (const v of vectors.notes) {
    const { id } = v;
    t.equal(toHex(utf8(v.signedNote)), v.signedNoteHex, `${id}: hex and text agree`);
    const note = parseNote(v.signedNote);
    const fromBytes = parseNote(fromHex(v.signedNoteHex));
    t.equal(note.text, v.text, `${id}: text`);
    t.same(
      fromBytes.signatures.map(lineBase64),
      note.signatures.map(lineBase64),
      `${id}: bytes parse as the string does`,
    );
    t.same(
      note.signatures.map((s) => [s.name, hex8(s.keyHash), lineBase64(s)]),
      v.signatures.map((s) => [s.keyName, s.keyId, s.signatureBase64]),
      `${id}: the listed signature lines`,
    );
    t.same(
      note.signatures.map((s) => toHex(s.payload)),
      v.signatures.map((s) => s.ed25519SignatureHex),
      `${id}: Ed25519 signatures after the key hash`,
    );
    t.equal(
      formatNote(note.text, note.signatures),
      v.signedNote,
      `${id}: re-encoded byte for byte`,
    );

    for (const s of v.signatures) {
      if (s.ed25519ValidUnder === undefined) continue;
      const vk = parseVerifierKey(s.ed25519ValidUnder);
      const mine = signaturesBy(note, vk.name, NOTE_KEY_TYPE_ED25519, vk.publicKey);
      t.ok(
        mine.some((m) => lineBase64(m) === s.signatureBase64),
        `${id}: signaturesBy finds ${s.keyName}`,
      );
      const ok = Ed25519PublicKey.fromBytes(vk.publicKey).verify(
        noteTextBytes(note.text),
        fromHex(s.ed25519SignatureHex),
      );
      t.equal(
        ok,
        s.valid === true,
        `${id}: ${s.keyName} signature ${s.valid ? 'verifies' : 'fails'}`,
      );
    }

    if (v.expect.open === 'ok') {
      const opened = openWith(note, v.verifierKeys);
      t.same(opened.sigs, v.expect.sigs, `${id}: verified signatures (Go Open Sigs)`);
      if (v.expect.unverifiedSigs !== undefined) {
        t.same(
          opened.unverified,
          v.expect.unverifiedSigs.map((s) => s.split(' ')[0]),
          `${id}: unknown signatures kept (Go Open UnverifiedSigs)`,
        );
      }
    } else {
      rejects(
        t,
        () => openWith(note, v.verifierKeys),
        'LIAISON_ERR_NOTE_SIGNATURE',
        `${id}: signature-level refusal (${v.expect.error})`,
      );
    }

    // Signing: every key that signed this note has a published seed -> same bytes as Go's Sign.
    const signers = v.signatures.map((s) => ed25519KeyFor(s.keyName));
    if (
      signers.every((k) => k !== undefined) &&
      new Set(v.signatures.map((s) => s.keyName)).size === signers.length
    ) {
      const sigs = signers.map((key, i) => ({
        name: v.signatures[i]!.keyName,
        keyHash: noteKeyHash(v.signatures[i]!.keyName, NOTE_KEY_TYPE_ED25519, key!.publicKey.bytes),
        payload: key!.sign(noteTextBytes(v.text)),
      }));
      t.equal(
        formatNote(v.text, sigs),
        v.signedNote,
        `${id}: signing with the seeds reproduces it`,
      );
    }
  }

  // The sigsum checkpoint is signed under its own origin, so openCheckpoint applies as is.
  const sigsum = vectorById(vectors.notes, 'sigsum-checkpoint-size1');
  const sigsumKey = parseVerifierKey(sigsum.verifierKeys[0]!);
  const opened = openCheckpoint(
    sigsum.signedNote,
    sigsumKey.name,
    Ed25519PublicKey.fromBytes(sigsumKey.publicKey),
  );
  t.equal(opened.checkpoint.size, 1, 'sigsum checkpoint opens with openCheckpoint');
});

t.test('malformed and unverifiable notes are refused', async (t) => {
  const peter = parseVerifierKey(vectors.keys[0]!.vkey);
  const peterKey = Ed25519PublicKey.fromBytes(peter.publicKey);
  for (const v of vectors.negativeNotes) {
    const bytes = fromHex(v.signedNoteHex);
    if (v.expect.error === 'malformed note') {
      rejects(
        t,
        () => parseNote(bytes),
        'LIAISON_ERR_NOTE_INVALID',
        `${v.id}: parse-level (malformed note)`,
      );
      // Go decodes the note as a Go string; the string form must be refused too (unless not UTF-8).
      const asText = Buffer.from(bytes).toString('utf8');
      if (utf8(asText).length === bytes.length) {
        rejects(
          t,
          () => parseNote(asText),
          'LIAISON_ERR_NOTE_INVALID',
          `${v.id}: parse-level (as text)`,
        );
      }
    } else {
      const note = parseNote(bytes);
      t.equal(note.signatures.length, 1, `${v.id}: well-formed, so parseNote accepts it`);
      rejects(
        t,
        () => openWith(note, v.verifierKeys),
        'LIAISON_ERR_NOTE_SIGNATURE',
        `${v.id}: signature-level (${v.expect.error})`,
      );
      t.same(
        signaturesBy(note, peter.name, peter.type, peter.publicKey).map((s) =>
          peterKey.verify(noteTextBytes(note.text), s.payload),
        ),
        [false],
        `${v.id}: the known key's line does not verify`,
      );
    }
  }
  // The 101-line note minus one line is within Go's limit.
  const many = Buffer.from(
    fromHex(vectorById(vectors.negativeNotes, '101-signature-lines').signedNoteHex),
  ).toString('utf8');
  const cut = many.slice(0, many.lastIndexOf('\u2014'));
  t.equal(
    parseNote(cut).signatures.length,
    MAX_NOTE_SIGNATURES,
    '100 signature lines are accepted',
  );
  t.equal(openWith(parseNote(cut), [vectors.keys[0]!.vkey]).sigs.length, 1, 'and verify once');
});

// --- checkpoints ----------------------------------------------------------------------------

t.test('checkpoints: C2SP and real ones round-trip byte for byte', async (t) => {
  const { goFormatTree, goParseTreeBad, c2spCheckpointExample } = vectors.checkpoints;
  const texts: [string, string][] = [
    ['C2SP tlog-checkpoint example', c2spCheckpointExample.text],
    ['Go tlog.FormatTree', goFormatTree.text],
    ...vectors.notes
      .filter((n) => n.id.startsWith('sumdb') || n.id.startsWith('sigsum'))
      .map((n): [string, string] => [n.id, n.text]),
    ...vectors.cosignatures.map((c): [string, string] => [c.id, c.checkpointText]),
  ];
  for (const [label, text] of texts) {
    const c = parseCheckpoint(text);
    t.equal(formatCheckpoint(c), text, `${label}: parse + format is the identity`);
    t.equal(c.extensions.length, 0, `${label}: no extension lines`);
  }
  const example = parseCheckpoint(c2spCheckpointExample.text);
  t.same(
    [example.origin, example.size, b64(example.rootHash)],
    ['example.com/behind-the-sofa', 20852163, 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I='],
    'C2SP example fields',
  );
  const exampleNote = `${c2spCheckpointExample.text}\n${c2spCheckpointExample.signatureLine}\n`;
  t.equal(parseNote(exampleNote).signatures[0]!.name, example.origin, 'its signature line parses');
  rejects(
    t,
    () => openCheckpoint(exampleNote, example.origin, Ed25519PrivateKey.generate().publicKey),
    'LIAISON_ERR_NOTE_SIGNATURE',
    'C2SP example under a key we do not hold: signature-level (unknown key)',
  );

  // Go's tlog.FormatTree(Tree{N, RecordHash("hello world")}).
  const goTree: Checkpoint = {
    origin: 'go.sum database tree',
    size: goFormatTree.N,
    rootHash: merkleLeafHash(utf8(goFormatTree.recordHashOf)),
    extensions: [],
  };
  t.equal(b64(goTree.rootHash), goFormatTree.hashBase64, 'Go RecordHash("hello world")');
  t.equal(formatCheckpoint(goTree), goFormatTree.text, 'formatCheckpoint = Go FormatTree');

  // Go's ParseTree refusals. The first one only fails ParseTree's hard-coded origin: any C2SP
  // parser reads it, and our origin check (openCheckpoint's expected origin) refuses it.
  const [otherOrigin, hexSize, longHash] = goParseTreeBad.texts as [string, string, string];
  t.equal(parseCheckpoint(otherOrigin).origin, 'not-go.sum database tree', 'generic origin parses');
  const sumdb = parseVerifierKey(
    vectorById(vectors.notes, 'sumdb-real-checkpoint').verifierKeys[0]!,
  );
  const fake = formatNote(otherOrigin, [
    { name: sumdb.name, keyHash: sumdb.keyHash, payload: new Uint8Array(64) },
  ]);
  rejects(
    t,
    () => openCheckpoint(fake, 'go.sum database tree', Ed25519PublicKey.fromBytes(sumdb.publicKey)),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'Go ParseTree bad origin: wrong expected origin',
  );
  rejects(
    t,
    () => parseCheckpoint(hexSize),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'Go ParseTree bad: hex size',
  );
  rejects(
    t,
    () => parseCheckpoint(longHash),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'Go ParseTree bad: hash',
  );

  // Go's ParseTree ignores anything after line 3; C2SP requires "\n"-terminated non-empty
  // extension lines, which is what we enforce (stricter than ParseTree, like torchwood).
  rejects(
    t,
    () => parseCheckpoint(`${goFormatTree.text}JOE`),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'junk without newline',
  );
  t.same(
    parseCheckpoint(`${goFormatTree.text}JOE\n`).extensions,
    ['JOE'],
    'a junk line is an extension',
  );
  for (const [label, text] of [
    ['leading zero', goFormatTree.text.replace('\n1234', '\n01234')],
    ['signed size', goFormatTree.text.replace('\n1234', '\n+1234')],
    ['empty origin', goFormatTree.text.replace('go.sum database tree', '')],
    ['no final newline', goFormatTree.text.slice(0, -1)],
    ['empty extension line', `${goFormatTree.text}\n`],
    ['unpadded root', goFormatTree.text.replace('=\n', '\n')],
  ] as const) {
    rejects(t, () => parseCheckpoint(text), 'LIAISON_ERR_CHECKPOINT_INVALID', `refused: ${label}`);
  }
});

// --- cosignatures ---------------------------------------------------------------------------

t.test('cosignature/v1: Sunlight signatures reproduced from the published seeds', async (t) => {
  t.equal(vectors.cosignatures.length, 3, 'three Sunlight cosignatures');
  for (const v of vectors.cosignatures) {
    const { id } = v;
    const phrase = /SHA-256\("(.*)"\)/.exec(v.seedDerivation)![1]!;
    t.equal(toHex(sha256(utf8(phrase))), v.seedHex, `${id}: seed = SHA-256("${phrase}")`);
    const key = Ed25519PrivateKey.fromSeed(fromHex(v.seedHex));
    const pub = key.publicKey;
    t.equal(toHex(pub.bytes), v.publicKeyHex, `${id}: public key`);
    t.equal(
      hex8(noteKeyHash(v.cosignerName, NOTE_KEY_TYPE_COSIGNATURE_V1, pub.bytes)),
      v.keyId,
      `${id}: key hash with type 0x04`,
    );
    t.equal(toHex(sha256(fromHex(v.keyIdPreimageHex)).subarray(0, 4)), v.keyId, `${id}: preimage`);
    t.equal(
      formatVerifierKey(v.cosignerName, NOTE_KEY_TYPE_COSIGNATURE_V1, pub.bytes),
      v.vkey,
      `${id}: verifier key`,
    );
    t.equal(parseVerifierKey(v.vkey).type, NOTE_KEY_TYPE_COSIGNATURE_V1, `${id}: vkey parses`);
    const message = cosignatureMessage(v.timestamp, v.checkpointText);
    t.equal(toHex(message), v.signedMessageHex, `${id}: signed message`);
    t.equal(new TextDecoder().decode(message), v.signedMessage, `${id}: signed message text`);

    const sig = cosign(v.checkpointText, v.cosignerName, key, v.timestamp);
    t.equal(
      `${formatSignatureLine(sig)}\n`,
      v.signatureLine,
      `${id}: signature line byte for byte`,
    );
    t.equal(lineBase64(sig), v.signatureBase64, `${id}: base64`);
    const b = v.signatureBytes;
    t.equal(toHex(sig.payload), b.timestampHex + b.ed25519SignatureHex, `${id}: timestamp ‖ sig`);

    const note = parseNote(v.cosignedNote);
    t.equal(note.text, v.checkpointText, `${id}: cosigned note text`);
    t.equal(cosignatureTime(note, v.cosignerName, pub), v.timestamp, `${id}: cosignatureTime`);
    const line = note.signatures.find((s) => s.name === v.cosignerName)!;
    t.equal(
      verifyCosignature(line, v.checkpointText, v.cosignerName, pub),
      v.timestamp,
      `${id}: verifies`,
    );
    for (const other of note.signatures.filter((s) => s !== line)) {
      t.equal(
        verifyCosignature(other, v.checkpointText, v.cosignerName, pub),
        undefined,
        `${id}: the log's own line (another key) is ignored`,
      );
    }

    const flipped = Uint8Array.from(line.payload);
    flipped[8 + 17]! ^= 0x04;
    rejects(
      t,
      () => verifyCosignature({ ...line, payload: flipped }, v.checkpointText, v.cosignerName, pub),
      'LIAISON_ERR_NOTE_SIGNATURE',
      `${id}: one bit changed`,
    );
    const later = Uint8Array.from(line.payload);
    new DataView(later.buffer).setBigUint64(0, BigInt(v.timestamp + 1));
    rejects(
      t,
      () => verifyCosignature({ ...line, payload: later }, v.checkpointText, v.cosignerName, pub),
      'LIAISON_ERR_NOTE_SIGNATURE',
      `${id}: wrong timestamp`,
    );
    rejects(
      t,
      () =>
        verifyCosignature(
          line,
          v.checkpointText.replace('\n300\n', '\n301\n'),
          v.cosignerName,
          pub,
        ),
      'LIAISON_ERR_NOTE_SIGNATURE',
      `${id}: another checkpoint`,
    );
  }

  const misc = (id: string) => vectorById(vectors.cosignatureMisc, id);
  const remora = parseVerifierKey(misc('formats-native-0x04-vkey').vkey!);
  t.equal(remora.type, NOTE_KEY_TYPE_COSIGNATURE_V1, 'transparency-dev 0x04 vkey parses');
  t.equal(
    formatVerifierKey(remora.name, remora.type, remora.publicKey),
    misc('formats-native-0x04-vkey').vkey,
    'and re-encodes',
  );
  const conv = misc('formats-0x01-vkey-converted');
  const test = parseVerifierKey(conv.vkey!);
  t.equal(
    formatVerifierKey(test.name, NOTE_KEY_TYPE_COSIGNATURE_V1, test.publicKey),
    conv.convertedCosignatureVkey,
    'a 0x01 key as a cosignature key: key hash recomputed with 0x04',
  );
  const ts = misc('formats-cosig-timestamp');
  const [tsSig] = parseSignatureLines(`\u2014 w ${ts.signatureBase64!}\n`);
  t.equal(hex8(tsSig!.keyHash), ts.keyIdHex, 'transparency-dev cosignature: key hash');
  t.equal(
    Number(new DataView(tsSig!.payload.buffer, tsSig!.payload.byteOffset).getBigUint64(0)),
    ts.timestamp,
    'and timestamp',
  );
  const ex = misc('c2sp-tlog-cosignature-example');
  const [exSig] = parseSignatureLines(`${ex.signatureLine!}\n`);
  t.same(
    [exSig!.name, hex8(exSig!.keyHash), exSig!.payload.length],
    ['witness.example.com/w1', ex.keyIdHex, 72],
    'C2SP tlog-cosignature example line',
  );
  t.equal(
    Number(new DataView(exSig!.payload.buffer, exSig!.payload.byteOffset).getBigUint64(0)),
    ex.timestamp,
    'and its timestamp',
  );
});

// --- tlog-witness bodies ----------------------------------------------------------------------

t.test('tlog-witness add-checkpoint bodies and responses', async (t) => {
  const w = (id: string) => vectorById(vectors.witness, id).body!;
  const body = w('c2sp-add-checkpoint-request-example');
  const req = parseAddCheckpoint(body);
  t.equal(req.oldSize, 20852014, 'C2SP request: old size');
  t.same(
    req.proof.map(b64),
    [
      'PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=',
      'jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=',
      '5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=',
      '/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=',
    ],
    'C2SP request: proof hashes',
  );
  t.equal(req.note, body.slice(body.indexOf('\n\n') + 2), 'C2SP request: the note as sent');
  const reqNote = parseNote(req.note);
  t.equal(reqNote.signatures.length, 2, 'C2SP request: a note with two signatures');
  t.equal(
    formatCheckpoint(parseCheckpoint(reqNote.text)),
    vectors.checkpoints.c2spCheckpointExample.text,
    'same checkpoint as the tlog-checkpoint example',
  );
  t.equal(formatAddCheckpoint(req), body, 'C2SP request: re-encoded byte for byte');

  const response = w('c2sp-add-checkpoint-response-example');
  const lines = parseSignatureLines(response);
  t.same(
    lines.map((s) => s.name),
    ['witness.example/w1', 'witness.example/w1', 'witness.example/w2'],
    'C2SP response: three lines',
  );
  t.same(
    lines.map((s) => s.payload.length),
    [72, 72, 72],
    'C2SP response: cosignature/v1 payloads',
  );
  t.equal(
    lines.map((s) => `${formatSignatureLine(s)}\n`).join(''),
    response,
    'C2SP response: re-encoded',
  );

  // torchwood litewitness exchanges with a real sigsum log key.
  const sigsum = parseVerifierKey(
    vectorById(vectors.notes, 'sigsum-checkpoint-size1').verifierKeys[0]!,
  );
  const logKey = Ed25519PublicKey.fromBytes(sigsum.publicKey);
  for (const id of [
    'litewitness-old0-size1',
    'litewitness-bad-sig',
    'litewitness-unknown-origin',
    'litewitness-empty-proof-old1',
  ]) {
    t.equal(formatAddCheckpoint(parseAddCheckpoint(w(id))), w(id), `${id}: round trip`);
  }
  const first = parseAddCheckpoint(w('litewitness-old0-size1'));
  t.same([first.oldSize, first.proof.length], [0, 0], 'old 0: no proof lines');
  const size1 = openCheckpoint(first.note, sigsum.name, logKey).checkpoint;
  t.equal(size1.size, 1, 'old 0: the log signature verifies (200)');
  // torchwood mangled the last base64 character ("6go=" -> "6gx="), which leaves non-zero
  // padding bits: Go's non-strict StdEncoding decodes it and fails the signature (403); we refuse
  // non-canonical base64 outright, so this one is parse-level for us.
  const mangled = parseAddCheckpoint(w('litewitness-bad-sig')).note;
  rejects(
    t,
    () => openCheckpoint(mangled, sigsum.name, logKey),
    'LIAISON_ERR_NOTE_INVALID',
    'bad log signature (non-canonical base64): parse-level (Go: 403)',
  );
  // The same checkpoint with a canonical but wrong signature is signature-level.
  const good = parseAddCheckpoint(w('litewitness-empty-proof-old1')).note;
  t.equal(mangled.replace('6gx=', '6go='), good, 'the mangled note differs in one character');
  const at = good.lastIndexOf(' ') + 20;
  const wrong = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
  rejects(
    t,
    () => openCheckpoint(wrong, sigsum.name, logKey),
    'LIAISON_ERR_NOTE_SIGNATURE',
    'bad log signature (canonical base64): signature-level (bad signature, 403)',
  );
  const unknown = parseAddCheckpoint(w('litewitness-unknown-origin'));
  rejects(
    t,
    () => openCheckpoint(unknown.note, sigsum.name, logKey),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'unknown origin: wrong expected origin (404)',
  );
  rejects(
    t,
    () =>
      openCheckpoint(unknown.note, parseCheckpoint(parseNote(unknown.note).text).origin, logKey),
    'LIAISON_ERR_NOTE_SIGNATURE',
    'unknown origin under its own name: signature-level (unknown key)',
  );
  const empty = parseAddCheckpoint(w('litewitness-empty-proof-old1'));
  const size3 = openCheckpoint(empty.note, sigsum.name, logKey).checkpoint;
  rejects(
    t,
    () => verifyConsistency(empty.oldSize, size3.size, empty.proof, size1.rootHash, size3.rootHash),
    'LIAISON_ERR_AUDIT_PROOF_INVALID',
    'old 1 -> 3 with no proof lines: proof refused (422)',
  );

  // The spec's cap: at most 63 proof lines.
  const hash = `${b64(new Uint8Array(32))}\n`;
  const withLines = (n: number) => `old 7\n${hash.repeat(n)}\n${req.note}`;
  t.equal(MAX_WITNESS_PROOF_LINES, 63, 'tlog-witness caps proof lines at 63');
  t.equal(parseAddCheckpoint(withLines(63)).proof.length, 63, '63 proof lines accepted');
  rejects(
    t,
    () => parseAddCheckpoint(withLines(64)),
    'LIAISON_ERR_WITNESS_PROTOCOL',
    '64 proof lines refused',
  );
});

// --- Liaison --------------------------------------------------------------------------------

t.test('a Liaison checkpoint: sign, open, cosign, verify as Go would', async (t) => {
  const key = Ed25519PrivateKey.generate();
  const origin = originForNode(deriveNodeId(key.publicKey));
  t.match(origin, /^liaison\/ln[a-z2-7]{52}$/, 'origin is liaison/ln…');
  const stored = new Map<string, Uint8Array>();
  const read: StoredHashReader = (l, i) => stored.get(`${l}/${i}`)!;
  for (let i = 0; i < 5; i++) {
    for (const s of storedHashesForAppend(i, merkleLeafHash(Uint8Array.of(i)), read)) {
      stored.set(`${s.level}/${s.index}`, s.hash);
    }
  }
  const cp: Checkpoint = { origin, size: 5, rootHash: treeHash(5, read), extensions: [] };
  const signed = signCheckpoint(cp, key);
  const opened = openCheckpoint(signed, origin, key.publicKey);
  t.equal(formatCheckpoint(opened.checkpoint), formatCheckpoint(cp), 'opens with the right key');
  t.equal(
    signed,
    `${opened.text}\n${formatSignatureLine(opened.note.signatures[0]!)}\n`,
    'one line',
  );
  const vkey = formatVerifierKey(origin, NOTE_KEY_TYPE_ED25519, key.publicKey.bytes);
  t.same(openWith(parseNote(signed), [vkey]).sigs, [origin], 'verifies as Go note.Open would');
  rejects(
    t,
    () => openCheckpoint(signed, origin, Ed25519PrivateKey.generate().publicKey),
    'LIAISON_ERR_NOTE_SIGNATURE',
    'wrong key',
  );
  const other = originForNode(deriveNodeId(Ed25519PrivateKey.generate().publicKey));
  rejects(
    t,
    () => openCheckpoint(signed, other, key.publicKey),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'wrong expected origin',
  );
  rejects(
    t,
    () => signCheckpoint({ ...cp, origin: 'go.sum database tree' }, key),
    'LIAISON_ERR_CHECKPOINT_INVALID',
    'cannot sign under an origin that is not a key name',
  );

  // A witness cosigns; both lines are in one note that Go would parse.
  const witness = Ed25519PrivateKey.generate();
  const wname = originForNode(deriveNodeId(witness.publicKey));
  const cosig = cosign(opened.text, wname, witness, 1_767_139_200);
  const both = parseNote(formatNote(opened.text, [...opened.note.signatures, cosig]));
  t.equal(cosignatureTime(both, wname, witness.publicKey), 1_767_139_200, 'cosignature verifies');
  t.equal(
    openCheckpoint(formatNote(both.text, both.signatures), origin, key.publicKey).note.signatures
      .length,
    2,
    'log key still opens it',
  );
});

t.test('witness link messages: encode/decode round trip, malformed bodies refused', async (t) => {
  const key = Ed25519PrivateKey.generate();
  const origin = originForNode(deriveNodeId(key.publicKey));
  const stored = new Map<string, Uint8Array>();
  const read: StoredHashReader = (l, i) => stored.get(`${l}/${i}`)!;
  for (let i = 0; i < 9; i++) {
    for (const s of storedHashesForAppend(i, merkleLeafHash(Uint8Array.of(i)), read)) {
      stored.set(`${s.level}/${s.index}`, s.hash);
    }
  }
  const note = signCheckpoint(
    { origin, size: 9, rootHash: treeHash(9, read), extensions: [] },
    key,
  );
  const cosig = cosign(parseNote(note).text, 'witness.example/w1', key, 1_700_000_000);
  const request: AddCheckpoint = { oldSize: 3, proof: consistencyProof(3, 9, read), note };
  const messages: WitnessMessage[] = [
    { type: 'ADD_CHECKPOINT', request },
    { type: 'ADD_CHECKPOINT', request: { oldSize: 0, proof: [], note } },
    { type: 'COSIGNATURE', lines: `${formatSignatureLine(cosig)}\n` },
    { type: 'CONFLICT', size: 20852014 },
    { type: 'REFUSED', code: 'LIAISON_ERR_AUDIT_PROOF_INVALID' },
  ];
  const show = (m: WitnessMessage) =>
    m.type === 'ADD_CHECKPOINT'
      ? { ...m, request: { ...m.request, proof: m.request.proof.map(toHex) } }
      : m;
  for (const m of messages) {
    const wire = encodeWitnessMessage(m);
    t.equal(wire[0], WITNESS[m.type], `${m.type}: type byte`);
    t.ok(isWitnessMessage(wire), `${m.type}: recognised`);
    t.same(show(decodeWitnessMessage(wire)), show(m), `${m.type}: round trip`);
  }
  t.equal(
    new TextDecoder().decode(encodeWitnessMessage(messages[0]!).subarray(1)),
    formatAddCheckpoint(request),
    'ADD_CHECKPOINT body is the tlog-witness body',
  );

  const text = (type: number, s: string) => concat(Uint8Array.of(type), utf8(s));
  const hash = `${b64(new Uint8Array(32))}\n`;
  const bad: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['unknown type 0x44', Uint8Array.of(0x44, 0)],
    [
      'ADD_CHECKPOINT without a blank line',
      text(WITNESS.ADD_CHECKPOINT, `old 0\n${note}`.replace('\n\n', '\n')),
    ],
    [
      'ADD_CHECKPOINT old with a leading zero',
      text(WITNESS.ADD_CHECKPOINT, `old 03\n${hash}\n${note}`),
    ],
    ['ADD_CHECKPOINT "old" missing', text(WITNESS.ADD_CHECKPOINT, `${hash}\n${note}`)],
    ['ADD_CHECKPOINT short proof hash', text(WITNESS.ADD_CHECKPOINT, `old 3\nAAAA\n\n${note}`)],
    [
      'ADD_CHECKPOINT unpadded proof hash',
      text(WITNESS.ADD_CHECKPOINT, `old 3\n${hash.replace('=', '')}\n${note}`),
    ],
    [
      'ADD_CHECKPOINT 64 proof lines',
      text(WITNESS.ADD_CHECKPOINT, `old 3\n${hash.repeat(64)}\n${note}`),
    ],
    ['ADD_CHECKPOINT not UTF-8', Uint8Array.of(WITNESS.ADD_CHECKPOINT, 0xff, 0x0a, 0x0a)],
    ['COSIGNATURE not a signature line', text(WITNESS.COSIGNATURE, 'hello\n')],
    ['COSIGNATURE without final newline', text(WITNESS.COSIGNATURE, formatSignatureLine(cosig))],
    ['COSIGNATURE empty', Uint8Array.of(WITNESS.COSIGNATURE)],
    ['CONFLICT truncated', Uint8Array.of(WITNESS.CONFLICT, 0, 0, 0, 0, 0, 0, 1)],
    ['CONFLICT trailing byte', Uint8Array.of(WITNESS.CONFLICT, 0, 0, 0, 0, 0, 0, 0, 1, 0)],
    ['REFUSED not an error code', text(WITNESS.REFUSED, '\u0005hello')],
    ['REFUSED length past the end', text(WITNESS.REFUSED, '\u0020LIAISON_ERR_X')],
    ['REFUSED empty code', Uint8Array.of(WITNESS.REFUSED, 0)],
  ];
  for (const [label, body] of bad) {
    rejects(t, () => decodeWitnessMessage(body), 'LIAISON_ERR_WITNESS_PROTOCOL', label);
  }
});
