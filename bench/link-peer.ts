/**
 * One side of bench/link.ts, run as its own process. Roles:
 *   server MODE          listen on 127.0.0.1:0, print {"port", "staticKey"}, count frames, answer "done"
 *   client MODE PORT KEY FRAMES SIZE   send FRAMES frames of SIZE bytes, print {"seconds"} when done
 * MODE is "noise" (the Liaison link: Noise IK handshake, then PeerLink transport frames) or "raw"
 * (plain ws binary messages of the same size: the baseline).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  createLocalIdentity,
  fromHex,
  initCrypto,
  LINK_PATH,
  LINK_SUBPROTOCOL,
  randomBytes,
  toHex,
} from '../protocol/index.ts';
import type { Frame } from '../protocol/index.ts';
import { systemClock } from '../node/clock.ts';
import { dial, MAX_WS_MESSAGE_BYTES, respond } from '../node/link/handshake.ts';
import type { LinkSelf } from '../node/link/handshake.ts';
import { DEFAULT_LINK_LIMITS, PeerLink } from '../node/link/peer-link.ts';

await initCrypto();
const [role, mode, ...rest] = process.argv.slice(2);
const identity = createLocalIdentity(randomBytes(32), randomBytes(32), Date.now());
const self: LinkSelf = { identity, rotations: [], name: `bench ${role}`, address: null };
// Benchmarks measure throughput, so the per-peer rate limit must not be the bottleneck.
const limits = {
  ...DEFAULT_LINK_LIMITS,
  maxFramesPerSecond: 1e9,
  frameBurst: 1e9,
  maxSendQueueBytes: 64 * 1024 * 1024,
};
const DONE = new TextEncoder().encode('done');
/** Keep at most this much queued in the socket, like a real sender reacting to back-pressure. */
const HIGH_WATER = 4 * 1024 * 1024;

function waitForDrain(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (ws.bufferedAmount < HIGH_WATER / 2 ? resolve() : setImmediate(poll));
    poll();
  });
}

if (role === 'server') {
  const server = createServer();
  const wss = new WebSocketServer({
    server,
    path: LINK_PATH,
    maxPayload: MAX_WS_MESSAGE_BYTES,
    perMessageDeflate: false,
    handleProtocols: () => LINK_SUBPROTOCOL,
  });
  wss.on('connection', (ws) => {
    let count = 0;
    let expected = Infinity;
    if (mode === 'raw') {
      ws.on('message', (data) => {
        const b = data as Buffer;
        if (expected === Infinity) {
          expected = b.readUInt32BE(0);
          count = 0;
          return;
        }
        if (++count === expected) {
          expected = Infinity;
          ws.send(DONE);
        }
      });
      return;
    }
    void respond(ws, {
      self,
      staticKeys: [identity.dhKey],
      now: () => Date.now(),
      timeoutMs: 10_000,
      invitationSecret: () => new Uint8Array(32),
      precheck: () => undefined,
      verify: () => undefined,
    }).then((r) => {
      const link = new PeerLink(r.ws, r.transport, {
        peerId: 'client',
        initiator: false,
        clock: systemClock,
        pending: r.pending,
        limits,
        handlers: {
          onFrame: (l, f: Frame) => {
            if (f.type !== 'DATA') return;
            if (expected === Infinity) {
              expected = new DataView(f.body.buffer, f.body.byteOffset).getUint32(0);
              count = 0;
              return;
            }
            if (++count === expected) {
              expected = Infinity;
              l.send({ type: 'DATA', body: DONE });
            }
          },
          onClose: () => undefined,
        },
      });
      link.start();
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(
      `${JSON.stringify({ port: (server.address() as AddressInfo).port, staticKey: toHex(identity.dhKey.publicKey.bytes) })}\n`,
    );
  });
} else {
  const [port, key, framesArg, sizeArg] = rest;
  const frames = Number(framesArg);
  const body = randomBytes(Number(sizeArg));
  let finished: () => void = () => undefined;
  let send: (b: Uint8Array) => void;
  let socket: WebSocket;
  if (mode === 'raw') {
    socket = new WebSocket(`ws://127.0.0.1:${port}${LINK_PATH}`, LINK_SUBPROTOCOL, {
      perMessageDeflate: false,
    });
    await new Promise((r) => socket.once('open', r));
    socket.on('message', () => finished());
    send = (b) => socket.send(b);
  } else {
    const est = await dial({
      url: `ws://127.0.0.1:${port}`,
      mode: 'paired',
      remoteStatic: fromHex(key!),
      self,
      now: () => Date.now(),
      timeoutMs: 10_000,
      verify: () => undefined,
    });
    socket = est.ws;
    const link = new PeerLink(est.ws, est.transport, {
      peerId: 'server',
      initiator: true,
      clock: systemClock,
      pending: est.pending,
      limits,
      handlers: { onFrame: () => finished(), onClose: () => undefined },
    });
    link.start();
    send = (b) => link.send({ type: 'DATA', body: b });
  }
  /** Sends `count` frames and waits until the receiver confirmed all of them. */
  const phase = async (count: number): Promise<void> => {
    const done = new Promise<void>((r) => (finished = r));
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, count);
    send(header);
    for (let i = 0; i < count; i++) {
      if (socket.bufferedAmount > HIGH_WATER) await waitForDrain(socket);
      send(body);
    }
    await done;
  };
  // Untimed warm-up, so both processes' JIT has settled before the clock starts.
  await phase(Math.max(100, Math.floor(frames / 4)));
  const start = performance.now();
  await phase(frames);
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(`${JSON.stringify({ seconds })}\n`);
  socket.close();
  process.exit(0);
}
