/**
 * PeerLink in one process, over a real WebSocket on loopback: frames sent in one turn of the event
 * loop are coalesced into BATCH messages (docs/protocol.md §12.4) byte for byte as specified,
 * arrive in order, keep CLOSE after them, count against the peer's frame rate one by one, and
 * count against the send queue bound while they wait.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import {
  createLocalIdentity,
  decodeFrames,
  encodeBatch,
  encodeFrame,
  initCrypto,
  LINK_PATH,
  LINK_SUBPROTOCOL,
  NOISE_MAX_PAYLOAD_BYTES,
  randomBytes,
  toHex,
} from '../../protocol/index.ts';
import type { CipherState, Frame } from '../../protocol/index.ts';
import { ManualClock, systemClock } from '../../node/clock.ts';
import type { Clock } from '../../node/clock.ts';
import { dial, MAX_WS_MESSAGE_BYTES, respond } from '../../node/link/handshake.ts';
import type { LinkSelf, Responded } from '../../node/link/handshake.ts';
import { DEFAULT_LINK_LIMITS, PeerLink } from '../../node/link/peer-link.ts';
import type { LinkLimits } from '../../node/link/peer-link.ts';

await initCrypto();

function self(name: string): LinkSelf {
  return {
    identity: createLocalIdentity(randomBytes(32), randomBytes(32), Date.now()),
    rotations: [],
    name,
    address: null,
  };
}

/** A handshake on loopback: the initiator's socket and keys, and the responder's. */
async function handshake(
  t: Test,
): Promise<{ initiator: Awaited<ReturnType<typeof dial>>; responder: Responded }> {
  const a = self('sender');
  const b = self('receiver');
  const server = createServer();
  const wss = new WebSocketServer({
    server,
    path: LINK_PATH,
    maxPayload: MAX_WS_MESSAGE_BYTES,
    perMessageDeflate: false,
    handleProtocols: () => LINK_SUBPROTOCOL,
  });
  const responded = new Promise<Responded>((resolve, reject) =>
    wss.once('connection', (ws) =>
      respond(ws, {
        self: b,
        staticKeys: [b.identity.dhKey],
        now: () => Date.now(),
        timeoutMs: 5000,
        invitationSecret: () => new Uint8Array(32),
        precheck: () => undefined,
        verify: () => undefined,
      }).then(resolve, reject),
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
      }),
  );
  const initiator = await dial({
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mode: 'paired',
    remoteStatic: b.identity.dhKey.publicKey.bytes,
    self: a,
    now: () => Date.now(),
    timeoutMs: 5000,
    verify: () => undefined,
  });
  return { initiator, responder: await responded };
}

interface Receiver {
  readonly link: PeerLink;
  readonly frames: Frame[];
  /** WebSocket messages that reached the receiver. */
  messages: number;
  readonly closed: Promise<string>;
}

/** A sending PeerLink (the initiator) and a receiving one with its own limits and clock. */
async function linkPair(
  t: Test,
  o: { receiverLimits?: LinkLimits; receiverClock?: Clock; senderLimits?: LinkLimits } = {},
): Promise<{ sender: PeerLink; receiver: Receiver }> {
  const { initiator, responder } = await handshake(t);
  const sender = new PeerLink(initiator.ws, initiator.transport, {
    peerId: 'receiver',
    initiator: true,
    clock: systemClock,
    pending: initiator.pending,
    limits: o.senderLimits ?? DEFAULT_LINK_LIMITS,
    handlers: { onFrame: () => undefined, onClose: () => undefined },
  });
  const frames: Frame[] = [];
  let onClose: (reason: string) => void = () => undefined;
  const closed = new Promise<string>((resolve) => (onClose = resolve));
  const link = new PeerLink(responder.ws, responder.transport, {
    peerId: 'sender',
    initiator: false,
    clock: o.receiverClock ?? systemClock,
    pending: responder.pending,
    limits: o.receiverLimits ?? DEFAULT_LINK_LIMITS,
    handlers: { onFrame: (_l, f) => frames.push(f), onClose: (_l, reason) => onClose(reason) },
  });
  const receiver: Receiver = { link, frames, messages: 0, closed };
  responder.ws.on('message', () => (receiver.messages += 1));
  sender.start();
  link.start();
  t.teardown(() => {
    sender.close('SHUTDOWN');
    link.close('SHUTDOWN');
  });
  return { sender, receiver };
}

/** A 1 KiB DATA body that says which frame it is. */
function body(i: number): Uint8Array {
  const b = new Uint8Array(1024).fill(i & 0xff);
  new DataView(b.buffer).setUint32(0, i);
  return b;
}

const indexOf = (f: Frame) =>
  f.type === 'DATA' ? new DataView(f.body.buffer, f.body.byteOffset).getUint32(0) : -1;

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Decrypts what a socket receives with the receiving cipher state, one plaintext per message. */
function tap(ws: WebSocket, receive: CipherState, pending: Buffer[]): Uint8Array[] {
  const plaintexts: Uint8Array[] = [];
  const open = (d: Buffer) => plaintexts.push(receive.decryptWithAd(new Uint8Array(0), d));
  for (const d of pending) open(d);
  ws.on('message', (d) => open(d as Buffer));
  return plaintexts;
}

t.test('the first frame of a turn goes alone; the rest of the turn in BATCHes', async (t) => {
  const { initiator, responder } = await handshake(t);
  const plaintexts = tap(responder.ws, responder.transport.receive, responder.pending);
  const sender = new PeerLink(initiator.ws, initiator.transport, {
    peerId: 'receiver',
    initiator: true,
    clock: systemClock,
    handlers: { onFrame: () => undefined, onClose: () => undefined },
  });
  sender.start();
  t.teardown(() => sender.close('SHUTDOWN'));
  const sent: Frame[] = Array.from({ length: 200 }, (_, i) =>
    i === 100 ? { type: 'PING', nonce: 5 } : { type: 'DATA', body: body(i) },
  );
  t.ok(
    sent.every((f) => sender.send(f)),
    '200 frames taken in one turn',
  );
  // Greedy packing: a BATCH takes frames until the next would pass a Noise payload (65,519 bytes);
  // 1 KiB DATA entries are 2 + 1 + 1024 bytes, so 63 fill one (64 with the PING, 11 bytes).
  const batches: Frame[][] = [];
  let size = NOISE_MAX_PAYLOAD_BYTES;
  for (const f of sent.slice(1)) {
    const entry = 2 + encodeFrame(f).length;
    if (size + entry > NOISE_MAX_PAYLOAD_BYTES) {
      batches.push([]);
      size = 1;
    }
    batches[batches.length - 1]!.push(f);
    size += entry;
  }
  t.same(
    batches.map((b) => b.length),
    [63, 64, 63, 9],
  );
  await until('5 messages', () => plaintexts.length === 5);
  t.ok(
    toHex(plaintexts[0]!) === toHex(encodeFrame(sent[0]!)),
    'the first frame is sent at once, exactly as a lone frame',
  );
  batches.forEach((frames, i) =>
    t.ok(
      toHex(plaintexts[i + 1]!) === toHex(encodeBatch(frames)),
      `message ${i + 2}: a BATCH of ${frames.length} frames, the bytes encodeBatch gives`,
    ),
  );
  t.same(
    plaintexts.flatMap((p) => decodeFrames(p)).map(indexOf),
    sent.map(indexOf),
    'every frame, in order',
  );
  // A later turn starts afresh: its one frame goes alone.
  await new Promise((r) => setImmediate(r));
  sender.send({ type: 'DATA', body: body(1000) });
  await until('6 messages', () => plaintexts.length === 6);
  t.equal(toHex(plaintexts[5]!), toHex(encodeFrame({ type: 'DATA', body: body(1000) })));
  // Two frames in a later turn: the first alone, then the second alone (one entry is no BATCH).
  sender.send({ type: 'PONG', nonce: 1 });
  sender.send({ type: 'PONG', nonce: 2 });
  await until('8 messages', () => plaintexts.length === 8);
  t.same(
    plaintexts.slice(6).map((p) => toHex(p)),
    [1, 2].map((nonce) => toHex(encodeFrame({ type: 'PONG', nonce }))),
  );
});

t.test('many frames in one turn arrive in order, and a CLOSE after them', async (t) => {
  const { sender, receiver } = await linkPair(t);
  const n = 500;
  let accepted = 0;
  for (let i = 0; i < n; i++) if (sender.send({ type: 'DATA', body: body(i) })) accepted += 1;
  t.equal(accepted, n);
  sender.close('SHUTDOWN');
  t.equal(await receiver.closed, 'PEER:SHUTDOWN', 'the CLOSE came last');
  t.same(
    receiver.frames.map(indexOf),
    Array.from({ length: n }, (_, i) => i),
    'every frame before it, in order',
  );
  t.ok(receiver.messages <= 10, `${n} frames in ${receiver.messages} messages`);
});

t.test('the frame rate limit counts the frames inside a BATCH', async (t) => {
  // A burst of 100 frames and no refill: the clock stands still.
  const { sender, receiver } = await linkPair(t, {
    receiverLimits: { ...DEFAULT_LINK_LIMITS, frameBurst: 100, maxFramesPerSecond: 1 },
    receiverClock: new ManualClock(Date.now()),
  });
  for (let i = 0; i < 60; i++) sender.send({ type: 'DATA', body: body(i) });
  await until('60 frames', () => receiver.frames.length === 60);
  t.equal(receiver.messages, 2, '60 frames in 2 messages (a lone frame, a BATCH of 59)');
  t.ok(receiver.link.isOpen, '60 tokens of 100 spent');
  await new Promise((r) => setImmediate(r));
  // Another 60 in 2 messages: per message, 4 tokens would do; per frame, 120 exceed the burst.
  for (let i = 60; i < 120; i++) sender.send({ type: 'DATA', body: body(i) });
  t.equal(await receiver.closed, 'LIAISON_ERR_LINK_RATE_LIMIT');
  t.equal(receiver.messages, 4);
  t.equal(
    receiver.frames.length,
    61,
    'the lone frame passed; no frame of the BATCH that overdrew the bucket was handled',
  );
});

t.test('frames waiting for the end of the turn count against the send queue bound', async (t) => {
  const maxSendQueueBytes = 10_000;
  const { sender, receiver } = await linkPair(t, {
    senderLimits: { ...DEFAULT_LINK_LIMITS, maxSendQueueBytes },
  });
  let accepted = 0;
  while (accepted < 100 && sender.send({ type: 'DATA', body: body(accepted) })) accepted += 1;
  t.ok(accepted < 100, `refused after ${accepted} frames`);
  t.ok(sender.queuedBytes > maxSendQueueBytes, 'the waiting frames are counted as queued');
  t.ok(accepted <= 12, 'no more than the bound (and one frame) was taken');
  await until(`${accepted} frames`, () => receiver.frames.length === accepted);
  t.same(
    receiver.frames.map(indexOf),
    Array.from({ length: accepted }, (_, i) => i),
  );
  t.equal(sender.queuedBytes, 0, 'all sent');
  t.ok(sender.send({ type: 'DATA', body: body(accepted) }), 'taken again once drained');
});
