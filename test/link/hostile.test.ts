/**
 * Hostile peers against a real node process: each attack is refused or disconnected with its
 * close code and a logged reason, and all the while the node keeps its link to a good peer and
 * keeps answering its API.
 */
import t from 'tap';
import WebSocket from 'ws';
import {
  createLocalIdentity,
  decodeInvitation,
  encodeBatch,
  encodeFirstMessage,
  encodeFrame,
  FRAME,
  fromHex,
  HandshakeState,
  initCrypto,
  LINK_PATH,
  LINK_PROLOGUE,
  LINK_SUBPROTOCOL,
  randomBytes,
} from '../../protocol/index.ts';
import type { LocalIdentity } from '../../protocol/index.ts';
import { dial, helloOf } from '../../node/link/handshake.ts';
import type { Established, LinkSelf } from '../../node/link/handshake.ts';
import { Cluster } from '../harness/cluster.ts';
import type { TestNode } from '../harness/cluster.ts';

await initCrypto();

const LIMITS = {
  LIAISON_HANDSHAKE_TIMEOUT_MS: '800',
  LIAISON_MAX_PENDING_HANDSHAKES: '8',
  LIAISON_MAX_FRAMES_PER_SECOND: '100',
};

function url(node: TestNode): string {
  return `ws://127.0.0.1:${node.peerPort}${LINK_PATH}`;
}

/** Opens a raw WebSocket with the Liaison subprotocol. */
function open(node: TestNode): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url(node), LINK_SUBPROTOCOL);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves with the close code the node sent. */
function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function attacker(): LocalIdentity {
  return createLocalIdentity(randomBytes(32), randomBytes(32), Date.now());
}

function selfOf(id: LocalIdentity, address: string | null = null): LinkSelf {
  return { identity: id, rotations: [], name: 'attacker', address };
}

/** The initiator side of an IK handshake, kept so a test can finish (or not) by hand. */
function ikStart(id: LocalIdentity, rs: Uint8Array, address: string | null = null) {
  const hs = new HandshakeState({
    pattern: 'IK',
    initiator: true,
    prologue: LINK_PROLOGUE,
    s: id.dhKey,
    rs,
  });
  const first = encodeFirstMessage({
    mode: 'paired',
    invitationId: null,
    noise: hs.writeMessage(helloOf(selfOf(id, address))),
  });
  return { hs, first };
}

/** A valid IK first message from `id` to `target` (whose static key is `rs`). */
function ikFirstMessage(
  id: LocalIdentity,
  rs: Uint8Array,
  address: string | null = null,
): Uint8Array {
  return ikStart(id, rs, address).first;
}

function nextMessage(ws: WebSocket): Promise<Uint8Array> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(new Uint8Array(d as Buffer))));
}

t.test('hostile peers', async (t) => {
  const c = await Cluster.create(t, 0);
  const target = await c.add('target', { env: LIMITS });
  const good = await c.add('good');
  await c.pair(target, good);
  await c.waitFor(
    async () => (await target.linkUp(good)) && (await good.linkUp(target)),
    'good link up',
  );
  const info = (await target.api('GET', '/v1/node')).body;
  const targetStatic = fromHex(info.dhKey as string);
  const refusedWith = (code: string) =>
    c.waitFor(
      () => target.logged('inbound handshake refused').some((l) => l.code === code),
      `a logged refusal ${code}`,
    );

  await t.test('connects and never completes the handshake', async (t) => {
    const ws = await open(target);
    t.equal(await closed(ws), 4008, 'closed for handshake timeout');
    await refusedWith('LIAISON_ERR_LINK_HANDSHAKE_TIMEOUT');
  });

  await t.test('garbage instead of a handshake', async (t) => {
    const ws = await open(target);
    ws.send(randomBytes(200).map((b, i) => (i === 0 ? 0x7e : b)));
    t.equal(await closed(ws), 4400, 'unknown mode');
    const ws2 = await open(target);
    ws2.send('hello, is this the 24/7 desk?');
    t.equal(await closed(ws2), 4400, 'a text message');
    await refusedWith('LIAISON_ERR_LINK_FRAME_INVALID');
  });

  await t.test('a handshake to a wrong static key', async (t) => {
    const ws = await open(target);
    ws.send(ikFirstMessage(attacker(), randomBytes(32)));
    t.equal(await closed(ws), 4007);
    await refusedWith('LIAISON_ERR_NOISE_DECRYPT');
  });

  await t.test('a valid handshake from an unknown node', async (t) => {
    const ws = await open(target);
    ws.send(ikFirstMessage(attacker(), targetStatic));
    t.equal(await closed(ws), 4002);
    await refusedWith('LIAISON_ERR_PEER_UNKNOWN');
  });

  // A node that really pairs with the target, so the later attacks come from inside.
  const mallory = attacker();
  const inv = (await target.api('POST', '/v1/invitations', { label: 'mallory' })).body
    .invitation as string;
  const invitation = decodeInvitation(inv, Date.now());
  const pairWith = (): Promise<Established> =>
    dial({
      url: `ws://127.0.0.1:${target.peerPort}`,
      mode: 'invitation',
      remoteStatic: invitation.inviter.keyRecord.dhKey.bytes,
      psk: invitation.secret,
      invitationId: invitation.id,
      self: selfOf(mallory),
      now: () => Date.now(),
      timeoutMs: 5000,
      verify: () => undefined,
    });
  const first = await pairWith();
  first.ws.close();

  await t.test('a reused invitation', async (t) => {
    await t.rejects(
      pairWith(),
      { code: 'LIAISON_ERR_INVITATION_USED' },
      'the initiator learns why from the close code',
    );
    await refusedWith('LIAISON_ERR_INVITATION_USED');
  });

  await t.test('a replayed first handshake message never yields a link', async (t) => {
    const msg1 = ikFirstMessage(mallory, targetStatic);
    const linksBefore = target.logged('link up').length;
    for (let i = 0; i < 2; i++) {
      const ws = await open(target);
      ws.send(msg1);
      // The target answers message 2, but without READY (which needs the ephemeral secret the
      // replayer does not have) it never commits anything and times out.
      t.equal(await closed(ws), 4008, `replay ${i + 1} times out`);
    }
    t.equal(target.logged('link up').length, linksBefore, 'no link came up');
  });

  await t.test(
    'a replayed or unfinished message 1 changes nothing the peer record says',
    async (t) => {
      // Mallory (paired) starts a handshake announcing a new address and never confirms it.
      const ws = await open(target);
      ws.send(ikFirstMessage(mallory, targetStatic, 'ws://127.0.0.1:9/probe'));
      t.equal(await closed(ws), 4008, 'no READY: timed out');
      const peers = (await target.api('GET', '/v1/peers')).body.peers as {
        nodeId: string;
        address: string | null;
      }[];
      t.ok(peers.length >= 2, 'the listing has the peers');
      t.notOk(
        peers.some((p) => p.address === 'ws://127.0.0.1:9/probe'),
        'the unconfirmed address was not stored',
      );
    },
  );

  await t.test('a block that lands while a handshake is in flight wins', async (t) => {
    const ws = await open(target);
    const { hs, first } = ikStart(mallory, targetStatic);
    ws.send(first);
    hs.readMessage(await nextMessage(ws)); // message 2: the target has answered
    const mallorysId = (await target.api('GET', '/v1/peers')).body.peers as {
      nodeId: string;
      name: string;
    }[];
    const id = mallorysId.find((p) => p.name === 'attacker')!.nodeId;
    t.equal(
      (await target.api('POST', `/v1/peers/${id}/block`)).status,
      200,
      'the operator blocks mallory now',
    );
    ws.send(hs.result.send.encryptWithAd(new Uint8Array(0), encodeFrame({ type: 'READY' })));
    t.equal(await closed(ws), 4003, 'closed as blocked instead of coming up');
    t.notOk(
      await target
        .api('GET', '/v1/peers')
        .then((r) =>
          (r.body.peers as { nodeId: string; link: string }[]).some(
            (p) => p.nodeId === id && p.link === 'up',
          ),
        ),
      'no link',
    );
    t.equal(
      (await target.api('POST', `/v1/peers/${id}/unblock`)).status,
      200,
      'unblocked for the tests that follow',
    );
  });

  const established = (): Promise<Established> =>
    dial({
      url: `ws://127.0.0.1:${target.peerPort}`,
      mode: 'paired',
      remoteStatic: targetStatic,
      self: selfOf(mallory),
      now: () => Date.now(),
      timeoutMs: 5000,
      verify: () => undefined,
    });

  await t.test('garbage frames on an established link', async (t) => {
    const e = await established();
    e.ws.send(randomBytes(100));
    t.equal(await closed(e.ws), 4007, 'does not authenticate');
  });

  await t.test('an oversized frame', async (t) => {
    const e = await established();
    e.ws.send(new Uint8Array(70_000));
    t.equal(await closed(e.ws), 1009, 'message too big');
  });

  await t.test('a flood above the frame rate limit', async (t) => {
    const e = await established();
    const done = closed(e.ws);
    for (let i = 0; i < 1000 && e.ws.readyState === WebSocket.OPEN; i++) {
      e.ws.send(
        e.transport.send.encryptWithAd(new Uint8Array(0), encodeFrame({ type: 'PING', nonce: i })),
      );
    }
    t.equal(await done, 4029);
    await c.waitFor(
      () => target.logged('link down').some((l) => l.reason === 'LIAISON_ERR_LINK_RATE_LIMIT'),
      'logged rate limit',
    );
  });

  await t.test('one BATCH carrying more frames than the rate limit allows', async (t) => {
    // 250 PINGs in one message: the burst is 2 x 100 frames, and the limit counts frames.
    const e = await established();
    const pings = Array.from({ length: 250 }, (_, i) => ({ type: 'PING', nonce: i }) as const);
    e.ws.send(e.transport.send.encryptWithAd(new Uint8Array(0), encodeBatch(pings)));
    t.equal(await closed(e.ws), 4029);
  });

  await t.test('a malformed BATCH', async (t) => {
    // One entry only: a lone frame must travel as itself (§12.4).
    const e = await established();
    const ping = encodeFrame({ type: 'PING', nonce: 1 });
    e.ws.send(
      e.transport.send.encryptWithAd(
        new Uint8Array(0),
        Uint8Array.of(FRAME.BATCH, 0, ping.length, ...ping),
      ),
    );
    t.equal(await closed(e.ws), 4400);
    await c.waitFor(
      () => target.logged('link down').some((l) => l.reason === 'LIAISON_ERR_LINK_FRAME_INVALID'),
      'logged as a malformed frame',
    );
  });

  await t.test('many half-open connections', async (t) => {
    const sockets: WebSocket[] = [];
    let refused = 0;
    await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<void>((resolve) => {
            const ws = new WebSocket(url(target), LINK_SUBPROTOCOL);
            sockets.push(ws);
            ws.once('open', () => resolve());
            ws.once('unexpected-response', (_req, res) => {
              if (res.statusCode === 503) refused += 1;
              resolve();
            });
            ws.once('error', () => resolve());
          }),
      ),
    );
    t.ok(refused >= 12, `at most 8 pending handshakes: ${refused} of 20 refused at the upgrade`);
    await Promise.all(sockets.filter((s) => s.readyState === WebSocket.OPEN).map((s) => closed(s)));
  });

  await t.test('a burst of bad handshakes does not become a burst of log lines', async (t) => {
    const before = target.logged('inbound handshake refused').length;
    const burst = 60;
    for (let i = 0; i < burst; i++) {
      const ws = await open(target);
      ws.send(Uint8Array.of(0x7e, 1, 2, 3));
      await closed(ws);
    }
    await c
      .waitFor(
        () =>
          target.logged('inbound handshake refusals not logged individually').length > 0 ||
          target.logged('inbound handshake refused').length - before >= burst,
        'refusals logged',
        5000,
      )
      .catch(() => undefined);
    const lines = target.logged('inbound handshake refused').length - before;
    t.ok(lines < burst, `${lines} individual lines for ${burst} refusals`);
  });

  await t.test('through all of it, the good peer kept its link and the API answered', async (t) => {
    await new Promise((r) => setTimeout(r, 200));
    t.equal(target.crash, null, 'the target never crashed');
    t.ok(await target.linkUp(good), 'target still linked to the good peer');
    t.ok(await good.linkUp(target), 'and the good peer to the target');
    t.equal((await target.api('GET', '/v1/node')).status, 200);
    t.notOk(
      target.logs.some((l) => l.peer === good.nodeId && l.msg === 'link down'),
      'the good link never went down',
    );
  });
});
