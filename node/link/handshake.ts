/**
 * The two sides of a link handshake over an open WebSocket (docs/protocol.md §12.3):
 *
 *   initiator                                responder
 *   mode [id] || Noise1(hello_i)   ------>   pick pattern (IK, or IKpsk2 with the invitation's
 *                                            secret), read, verify hello_i against its keys
 *                       <------    Noise2(hello_r)
 *   verify hello_r, READY frame    ------>   READY proves the initiator finished: only now does
 *                                            the responder commit anything (pairing, last seen)
 *
 * Each side gets one try: any fault closes the socket with a close code. Messages that arrive
 * after READY, before the caller attaches its PeerLink, are kept in `pending`, never dropped.
 */
import WebSocket from 'ws';
import {
  closeCodeFor,
  decodeFirstMessage,
  equalBytes,
  decodeFrame,
  decodeHello,
  encodeFirstMessage,
  encodeFrame,
  encodeHello,
  reasonForClose,
  HandshakeState,
  isLiaisonError,
  LiaisonError,
  LINK_PATH,
  LINK_PROLOGUE,
  LINK_SUBPROTOCOL,
  NOISE_MAX_MESSAGE_BYTES,
} from '../../protocol/index.ts';
import type {
  ErrorCode,
  Hello,
  KeyRotation,
  LinkMode,
  LocalIdentity,
  TransportPair,
  X25519PrivateKey,
} from '../../protocol/index.ts';

const EMPTY = new Uint8Array(0);
/** Messages kept between READY and the PeerLink taking over; more and the socket is cut. */
export const MAX_PENDING_MESSAGES = 256;

/** A WebSocket message may carry one Noise message plus the mode byte and invitation ID. */
export const MAX_WS_MESSAGE_BYTES = NOISE_MAX_MESSAGE_BYTES + 17;

/** What a node says about itself in its hello. */
export interface LinkSelf {
  readonly identity: LocalIdentity;
  readonly rotations: readonly KeyRotation[];
  readonly name: string;
  /** The address peers should dial (null: this node does not accept links). */
  readonly address: string | null;
}

export interface Established {
  readonly ws: WebSocket;
  readonly transport: TransportPair;
  readonly hello: Hello;
  /** Transport messages that arrived after READY, in order. */
  readonly pending: Buffer[];
}

export function helloOf(self: LinkSelf): Uint8Array {
  return encodeHello({
    identity: {
      nodeId: self.identity.nodeId,
      identityKey: self.identity.signingKey.publicKey,
      rotations: self.rotations,
      keyRecord: self.identity.keyRecord,
      name: self.name,
    },
    address: self.address,
  });
}

/**
 * Detaches the handshake's listeners once it succeeded. A socket must never be without an
 * 'error' listener (an unhandled one would crash the node): until the PeerLink attaches its own,
 * any error (an oversized frame, a reset) just terminates the socket, and the PeerLink sees it
 * closed.
 */
function handOver(ws: WebSocket): void {
  ws.removeAllListeners('close');
  ws.removeAllListeners('error');
  ws.on('error', () => ws.terminate());
}

/**
 * One try per handshake: the first failure (or the timeout) refuses the socket and rejects; after
 * success or failure nothing else settles it.
 */
function oneTry(ws: WebSocket, timeoutMs: number, reject: (err: LiaisonError) => void) {
  let settled = false;
  const timer = setTimeout(
    () => state.fail(new LiaisonError('LIAISON_ERR_LINK_HANDSHAKE_TIMEOUT')),
    timeoutMs,
  );
  timer.unref();
  const state = {
    get settled(): boolean {
      return settled;
    },
    fail(err: unknown): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(refuse(ws, err));
    },
    succeed(): void {
      settled = true;
      clearTimeout(timer);
    },
  };
  return state;
}

/** Closes a socket for `reason` (an error code) and returns the error to throw. */
function refuse(ws: WebSocket, err: unknown): LiaisonError {
  const e = isLiaisonError(err)
    ? err
    : new LiaisonError('LIAISON_ERR_LINK_FRAME_INVALID', String(err));
  // A refused socket is not read any further: whatever else it sends costs nothing.
  ws.removeAllListeners('message');
  if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
    ws.close(closeCodeFor(e.code), e.code);
    setTimeout(() => ws.terminate(), 1000).unref();
  }
  return e;
}

export interface DialOptions {
  readonly url: string;
  readonly mode: LinkMode;
  /** The responder's static key we expect (pinned, or from the invitation). */
  readonly remoteStatic: Uint8Array;
  readonly psk?: Uint8Array;
  readonly invitationId?: Uint8Array;
  readonly self: LinkSelf;
  readonly now: () => number;
  readonly timeoutMs: number;
  /** Accepts or refuses the responder's verified hello (throws a LiaisonError to refuse). */
  readonly verify: (hello: Hello) => void;
  /** TLS options for wss:// (an operator CA, say). */
  readonly tls?: { readonly ca?: string | Buffer };
}

/** Dials a peer and runs the initiator side. Resolves once READY is sent. */
export function dial(o: DialOptions): Promise<Established> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(new URL(LINK_PATH, o.url), LINK_SUBPROTOCOL, {
      maxPayload: MAX_WS_MESSAGE_BYTES,
      handshakeTimeout: o.timeoutMs,
      perMessageDeflate: false,
      ...(o.tls?.ca === undefined ? {} : { ca: o.tls.ca }),
    });
    const once = oneTry(ws, o.timeoutMs, reject);
    const fail = once.fail;
    const hs = new HandshakeState({
      pattern: o.mode === 'paired' ? 'IK' : 'IKpsk2',
      initiator: true,
      prologue: LINK_PROLOGUE,
      s: o.self.identity.dhKey,
      rs: o.remoteStatic,
      ...(o.psk === undefined ? {} : { psk: o.psk }),
    });
    ws.on('error', (err) => fail(new LiaisonError('LIAISON_ERR_LINK_CLOSED', err.message)));
    ws.on('close', (code, reason) => {
      // The responder says why it refused with a close code: surface that as the error itself.
      const mapped = reasonForClose(code);
      const text = `closed by peer: ${code} ${reason.toString()}`;
      fail(
        mapped !== null && mapped.startsWith('LIAISON_ERR_')
          ? new LiaisonError(mapped as ErrorCode, text)
          : new LiaisonError('LIAISON_ERR_LINK_CLOSED', text),
      );
    });
    ws.on('open', () => {
      try {
        if (ws.protocol !== LINK_SUBPROTOCOL)
          throw new LiaisonError(
            'LIAISON_ERR_LINK_FRAME_INVALID',
            'peer did not agree to the liaison subprotocol',
          );
        const noise = hs.writeMessage(helloOf(o.self));
        ws.send(encodeFirstMessage({ mode: o.mode, invitationId: o.invitationId ?? null, noise }));
      } catch (err) {
        fail(err);
      }
    });
    ws.once('message', (data, isBinary) => {
      try {
        if (!isBinary) throw new LiaisonError('LIAISON_ERR_LINK_FRAME_INVALID', 'text message');
        const hello = decodeHello(hs.readMessage(new Uint8Array(data as Buffer)), o.now());
        o.verify(hello);
        const transport = hs.result;
        ws.send(transport.send.encryptWithAd(EMPTY, encodeFrame({ type: 'READY' })));
        once.succeed();
        handOver(ws);
        resolve({ ws, transport, hello, pending: [] });
      } catch (err) {
        fail(err);
      }
    });
  });
}

export interface RespondOptions {
  readonly self: LinkSelf;
  /** Our static keys, current first: an initiator that has not yet learned of a rotation still gets through. */
  readonly staticKeys: readonly X25519PrivateKey[];
  readonly now: () => number;
  readonly timeoutMs: number;
  /** The secret of a usable invitation; throws LIAISON_ERR_INVITATION_* otherwise. */
  readonly invitationSecret: (id: Uint8Array) => Uint8Array;
  /** Refuses a claimed node ID and identity key before the hello is verified (throws to refuse). */
  readonly precheck: (
    claim: { nodeId: Uint8Array; identityKey: Uint8Array },
    mode: LinkMode,
  ) => void;
  /** Accepts or refuses the initiator's verified hello for this mode (throws to refuse). */
  readonly verify: (hello: Hello, mode: LinkMode) => void;
}

/** The node ID and identity key a hello claims, read without verifying anything (§12.3). */
function peekHelloIdentity(payload: Uint8Array): { nodeId: Uint8Array; identityKey: Uint8Array } {
  if (payload.length < 2 + 64) throw new LiaisonError('LIAISON_ERR_DECODE_TRUNCATED', 'hello');
  return { nodeId: payload.subarray(2, 34), identityKey: payload.subarray(34, 66) };
}

export interface Responded extends Established {
  readonly mode: LinkMode;
  readonly invitationId: Uint8Array | null;
}

/** Runs the responder side on an accepted WebSocket. Resolves once READY has arrived. */
export function respond(ws: WebSocket, o: RespondOptions): Promise<Responded> {
  return new Promise((resolve, reject) => {
    const once = oneTry(ws, o.timeoutMs, reject);
    const fail = once.fail;
    ws.on('error', (err) => fail(new LiaisonError('LIAISON_ERR_LINK_CLOSED', err.message)));
    ws.on('close', () =>
      fail(new LiaisonError('LIAISON_ERR_LINK_CLOSED', 'closed during handshake')),
    );
    let step: 'first' | 'ready' | 'done' = 'first';
    let state: {
      transport: TransportPair;
      hello: Hello;
      mode: LinkMode;
      invitationId: Uint8Array | null;
    } | null = null;
    const pending: Buffer[] = [];
    ws.on('message', (data, isBinary) => {
      const buf = data as Buffer;
      if (step === 'done') {
        // Kept for the PeerLink; a peer that sends more before the link exists is cut off.
        if (pending.length >= MAX_PENDING_MESSAGES) ws.terminate();
        else pending.push(buf);
        return;
      }
      if (once.settled) return;
      try {
        if (!isBinary) throw new LiaisonError('LIAISON_ERR_LINK_FRAME_INVALID', 'text message');
        if (step === 'first') {
          const read = readFirst(new Uint8Array(buf), o);
          state = read;
          ws.send(read.noiseReply);
          step = 'ready';
          return;
        }
        const s = state!;
        const frame = decodeFrame(s.transport.receive.decryptWithAd(EMPTY, new Uint8Array(buf)));
        if (frame.type !== 'READY')
          throw new LiaisonError(
            'LIAISON_ERR_LINK_FRAME_INVALID',
            `expected READY, got ${frame.type}`,
          );
        step = 'done';
        once.succeed();
        handOver(ws);
        resolve({
          ws,
          transport: s.transport,
          hello: s.hello,
          pending,
          mode: s.mode,
          invitationId: s.invitationId,
        });
      } catch (err) {
        fail(err);
      }
    });
  });
}

function readFirst(bytes: Uint8Array, o: RespondOptions) {
  const first = decodeFirstMessage(bytes);
  const psk = first.mode === 'invitation' ? o.invitationSecret(first.invitationId!) : undefined;
  // Try our static keys, current first. A wrong key fails authentication of message 1 (the
  // encrypted static key), so trying costs at most a few X25519 per connection.
  let lastError: unknown = null;
  for (const key of o.staticKeys) {
    const hs = new HandshakeState({
      pattern: first.mode === 'paired' ? 'IK' : 'IKpsk2',
      initiator: false,
      prologue: LINK_PROLOGUE,
      s: key,
      ...(psk === undefined ? {} : { psk }),
    });
    let payload: Uint8Array;
    try {
      payload = hs.readMessage(first.noise);
    } catch (err) {
      lastError = err;
      if (isLiaisonError(err, 'LIAISON_ERR_NOISE_DECRYPT')) continue;
      throw err;
    }
    // Cheap first: who does the hello claim to be, and may that node connect at all? Only then
    // pay for verifying its key history and key record.
    o.precheck(peekHelloIdentity(payload), first.mode);
    const hello = decodeHello(payload, o.now());
    const rs = hs.remoteStatic!;
    if (!equalBytes(hello.identity.keyRecord.dhKey.bytes, rs)) {
      throw new LiaisonError(
        'LIAISON_ERR_LINK_HELLO_INVALID',
        'the key record does not certify the Noise static key',
      );
    }
    o.verify(hello, first.mode);
    const noiseReply = hs.writeMessage(helloOf(o.self));
    return {
      transport: hs.result,
      hello,
      mode: first.mode,
      invitationId: first.invitationId,
      noiseReply,
    };
  }
  throw lastError ?? new LiaisonError('LIAISON_ERR_NOISE_DECRYPT');
}
