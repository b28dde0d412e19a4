/**
 * A paired peer that controls its own log, against a real node acting as its witness:
 *
 * - an honest first checkpoint and an honest extension are cosigned (and the cosignature verifies
 *   under the witness's key);
 * - a wrong old size is answered with CONFLICT and the size held;
 * - a fork (same size, other root), a smaller checkpoint and a junk consistency proof are refused
 *   with LIAISON_ERR_CHECKPOINT_INCONSISTENT and kept as evidence; 20 junk proofs cannot crowd out
 *   a later real fork (evidence is bounded per finding);
 * - answers to requests never made (REFUSED, CONFLICT, COSIGNATURE) raise nothing;
 * - a malformed witness message closes the link with LIAISON_ERR_WITNESS_PROTOCOL;
 * and the node keeps serving throughout.
 */
import t from 'tap';
import {
  closeCodeFor,
  cosign,
  formatSignatureLine,
  consistencyProof,
  createLocalIdentity,
  decodeInvitation,
  Ed25519PublicKey,
  encodeWitnessMessage,
  fromHex,
  nodeIdFromText,
  nodeIdToText,
  originForNode,
  parseSignatureLines,
  randomBytes,
  sha256,
  signCheckpoint,
  storedHashesForAppend,
  treeHash,
  merkleLeafHash,
  verifyCosignature,
} from '../../protocol/index.ts';
import type { LocalIdentity, WitnessMessage } from '../../protocol/index.ts';
import { dial } from '../../node/link/handshake.ts';
import type { LinkSelf } from '../../node/link/handshake.ts';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';
import { ScriptedPeer } from '../helpers/hostile-peer.ts';

/** The scripted peer's own log: leaf hashes in memory, with RFC 6962 stored hashes. */
class FakeLog {
  readonly #stored = new Map<string, Uint8Array>();
  size = 0;
  readonly read = (level: number, index: number): Uint8Array =>
    this.#stored.get(`${level}/${index}`)!;

  grow(n: number): void {
    for (let i = 0; i < n; i++) {
      const leaf = merkleLeafHash(randomBytes(40));
      this.#stored.set(`0/${this.size}`, leaf);
      for (const h of storedHashesForAppend(this.size, leaf, this.read))
        this.#stored.set(`${h.level}/${h.index}`, h.hash);
      this.size += 1;
    }
  }

  root(size = this.size): Uint8Array {
    return treeHash(size, this.read);
  }
}

t.test('a peer controlling its own log, against a real witness', async (t) => {
  const c = await Cluster.create(t, 0);
  const target = await c.add('witness', { env: { LIAISON_CHECKPOINT_INTERVAL_MS: '200' } });
  const info = (await target.api('GET', '/v1/node')).body;
  const targetKey = Ed25519PublicKey.fromBytes(fromHex(String(info.identityKey)));

  const mallory: LocalIdentity = createLocalIdentity(randomBytes(32), randomBytes(32), Date.now());
  const malloryId = nodeIdToText(mallory.nodeId);
  const self: LinkSelf = { identity: mallory, rotations: [], name: 'mallory', address: null };
  const inv = await target.api('POST', '/v1/invitations', { label: 'mallory' });
  const invitation = decodeInvitation(String(inv.body.invitation), Date.now());
  const peer = new ScriptedPeer(
    await dial({
      url: `ws://127.0.0.1:${target.peerPort}`,
      mode: 'invitation',
      remoteStatic: invitation.inviter.keyRecord.dhKey.bytes,
      psk: invitation.secret,
      invitationId: invitation.id,
      self,
      now: () => Date.now(),
      timeoutMs: 5000,
      verify: () => undefined,
    }),
  );
  t.teardown(() => peer.close());
  const malloryNode = { nodeId: malloryId } as TestNode;
  await c.waitFor(() => target.linkUp(malloryNode), 'scripted link up');

  const origin = originForNode(mallory.nodeId);
  const log = new FakeLog();
  const note = (size: number, root = log.root(size)) =>
    signCheckpoint({ origin, size, rootHash: root, extensions: [] }, mallory.signingKey);
  let seen = 0;
  /** Sends a request and waits for the witness's answer to it. */
  const ask = async (oldSize: number, proof: Uint8Array[], n: string): Promise<WitnessMessage> => {
    seen = peer.witness.length;
    peer.sendData(
      encodeWitnessMessage({ type: 'ADD_CHECKPOINT', request: { oldSize, proof, note: n } }),
    );
    await c.waitFor(
      () => peer.witness.slice(seen).some((m) => m.type !== 'ADD_CHECKPOINT'),
      'a witness answer',
      5000,
    );
    return peer.witness.slice(seen).find((m) => m.type !== 'ADD_CHECKPOINT')!;
  };
  const evidence = async () =>
    (await target.api('GET', '/v1/audit/evidence')).body.evidence as {
      peer: string;
      finding: string;
    }[];

  // Honest: a first checkpoint, then an extension with its consistency proof.
  log.grow(5);
  const first = await ask(0, [], note(5));
  t.equal(first.type, 'COSIGNATURE', 'the first checkpoint is cosigned');
  if (first.type === 'COSIGNATURE') {
    const text = note(5).slice(0, note(5).indexOf('\n\n') + 1);
    const [sig] = parseSignatureLines(first.lines);
    t.type(
      verifyCosignature(sig!, text, originForNode(nodeIdFromText(String(info.nodeId))), targetKey),
      'number',
      "the cosignature verifies under the witness's identity key",
    );
  }
  log.grow(4);
  t.equal(
    (await ask(5, consistencyProof(5, 9, log.read), note(9))).type,
    'COSIGNATURE',
    'extended',
  );

  const stale = await ask(3, [], note(9));
  t.same(stale, { type: 'CONFLICT', size: 9 }, 'a wrong old size: CONFLICT with the size held');

  // Contradictions: refused, kept as evidence.
  const refused = { type: 'REFUSED', code: 'LIAISON_ERR_CHECKPOINT_INCONSISTENT' };
  t.same(await ask(9, [], note(9, sha256(randomBytes(8)))), refused, 'a fork is refused');
  t.same(await ask(9, [], note(7)), refused, 'a smaller checkpoint is refused');
  log.grow(3);
  const junk = [sha256(randomBytes(8)), sha256(randomBytes(8))];
  for (let i = 0; i < 20; i++) await ask(9, junk, note(12));
  t.same(await ask(9, [], note(9, sha256(randomBytes(9)))), refused, 'a second fork is refused');
  const found = await evidence();
  t.ok(
    found.every((e) => e.peer === malloryId),
    'all about mallory',
  );
  t.equal(found.filter((e) => e.finding === 'fork').length, 2, 'both forks kept');
  t.equal(found.filter((e) => e.finding === 'rollback').length, 1, 'the rollback kept');
  t.equal(found.filter((e) => e.finding === 'inconsistent').length, 16, 'junk bounded at 16');
  const held = (await target.api('GET', '/v1/audit/witnessed')).body.witnessed as {
    size: number;
  }[];
  t.same(
    held.map((w) => w.size),
    [9],
    'the witness still holds the honest checkpoint',
  );

  // Answers to requests never made raise nothing.
  const refusalsBefore = target.logged('peer refused to cosign our checkpoint').length;
  await c.waitFor(() => peer.witness.some((m) => m.type === 'ADD_CHECKPOINT'), 'target pushed');
  // Whatever the target has in flight gets one answer; everything after it is unsolicited.
  peer.sendData(
    encodeWitnessMessage({ type: 'REFUSED', code: 'LIAISON_ERR_CHECKPOINT_INCONSISTENT' }),
  );
  for (let i = 0; i < 50; i++) {
    peer.sendData(
      encodeWitnessMessage({ type: 'REFUSED', code: 'LIAISON_ERR_CHECKPOINT_INCONSISTENT' }),
    );
    peer.sendData(encodeWitnessMessage({ type: 'CONFLICT', size: Number.MAX_SAFE_INTEGER }));
    peer.sendData(
      encodeWitnessMessage({
        type: 'COSIGNATURE',
        lines: first.type === 'COSIGNATURE' ? first.lines : '',
      }),
    );
  }
  t.equal((await target.api('GET', '/v1/audit')).status, 200, 'the node still answers');
  t.ok(
    target.logged('peer refused to cosign our checkpoint').length - refusalsBefore <= 1,
    'at most the one answer in flight was taken; the rest were ignored',
  );
  t.equal(
    target.logged('audit log is smaller than a checkpoint a peer already cosigned').length,
    0,
    'no false rollback alarm',
  );

  // As the target's witness: a cosignature dated far in the future is not stored (it could never
  // be superseded, and would break every view of the time); one dated now is.
  const pushes = () => peer.witness.filter((m) => m.type === 'ADD_CHECKPOINT');
  const forced = await target.api('POST', '/v1/audit/checkpoints');
  await c.waitFor(
    () => pushes().some((m) => m.type === 'ADD_CHECKPOINT' && m.request.note === forced.body.note),
    'the target offers its new checkpoint',
  );
  const offered = pushes().at(-1)!;
  if (offered.type === 'ADD_CHECKPOINT') {
    const text = offered.request.note.slice(0, offered.request.note.indexOf('\n\n') + 1);
    const line = (time: number) =>
      `${formatSignatureLine(cosign(text, origin, mallory.signingKey, time))}\n`;
    const mine = async () =>
      (
        (await target.api('GET', '/v1/audit')).body.checkpoint as {
          cosignatures: { witness: string }[];
        }
      ).cosignatures.filter((x) => x.witness === malloryId);
    peer.sendData(encodeWitnessMessage({ type: 'COSIGNATURE', lines: line(2 ** 52) }));
    const status = await target.api('GET', '/v1/audit');
    t.equal(status.status, 200, 'the status view still works');
    t.same(await mine(), [], 'a far-future cosignature is not stored');
    await c.waitFor(
      () => pushes().length > 1 && pushes().at(-1) !== offered,
      'the target offers it again',
      10_000,
    );
    peer.sendData(
      encodeWitnessMessage({ type: 'COSIGNATURE', lines: line(Math.floor(Date.now() / 1000)) }),
    );
    await c.waitFor(async () => (await mine()).length === 1, 'a cosignature dated now is stored');
  }

  // A malformed witness message closes the link, with its code.
  peer.sendData(Uint8Array.of(0x40, 0x6f, 0x6c, 0x64));
  const closed = await peer.waitClosed();
  t.equal(closed.code, closeCodeFor('LIAISON_ERR_WITNESS_PROTOCOL'), 'closed');
  t.equal(closed.closeFrame, 'LIAISON_ERR_WITNESS_PROTOCOL', 'the CLOSE frame names the code');
  t.equal((await target.api('GET', '/v1/audit')).status, 200, 'and the node serves on');
});
