/**
 * Link-layer wire pieces: hellos and identity bundles, first-message framing, transport frames,
 * invitations. Each bad input refused with its code.
 */
import t from 'tap';
import {
  createKeyRecord,
  createKeyRotation,
  decodeFirstMessage,
  decodeFrame,
  decodeFrames,
  decodeHello,
  decodeInvitation,
  Ed25519PrivateKey,
  encodeBatch,
  encodeFirstMessage,
  encodeFrame,
  FRAME,
  encodeHello,
  encodeInvitation,
  INVITATION_PREFIX,
  NOISE_MAX_PAYLOAD_BYTES,
  toHex,
  X25519PrivateKey,
} from '../../protocol/index.ts';
import type { Hello, Invitation } from '../../protocol/index.ts';
import { alice, bob, T0 } from '../helpers/fixtures.ts';
import { rejects } from '../helpers/assert.ts';

const hello: Hello = {
  identity: {
    nodeId: alice.nodeId,
    identityKey: alice.signingKey.publicKey,
    rotations: [],
    keyRecord: alice.keyRecord,
    name: 'Parquet national antiterroriste',
  },
  address: 'wss://liaison.example.fr:7800',
};

t.test('hello round trip and self-consistency', async (t) => {
  const back = decodeHello(encodeHello(hello), T0);
  t.equal(back.identity.name, hello.identity.name);
  t.equal(back.address, hello.address);
  t.equal(decodeHello(encodeHello({ ...hello, address: null }), T0).address, null);
  const bytes = encodeHello(hello);
  const trailing = new Uint8Array(bytes.length + 1);
  trailing.set(bytes);
  rejects(t, () => decodeHello(trailing, T0), 'LIAISON_ERR_DECODE_TRAILING', 'trailing byte');
  rejects(
    t,
    () => decodeHello(bytes.subarray(0, 40), T0),
    'LIAISON_ERR_DECODE_TRUNCATED',
    'truncated',
  );
  // Bob's key record in Alice's bundle: it certifies another node.
  rejects(
    t,
    () =>
      decodeHello(
        encodeHello({ ...hello, identity: { ...hello.identity, keyRecord: bob.keyRecord } }),
        T0,
      ),
    'LIAISON_ERR_LINK_HELLO_INVALID',
    'key record of another node',
  );
  // Alice's node ID with Bob's identity key: the genesis key does not hash to the node ID.
  rejects(
    t,
    () =>
      decodeHello(
        encodeHello({
          ...hello,
          identity: {
            ...hello.identity,
            identityKey: bob.signingKey.publicKey,
            keyRecord: createKeyRecord(bob.signingKey, alice.nodeId, bob.dhKey.publicKey, 1, T0),
          },
        }),
        T0,
      ),
    'LIAISON_ERR_LINK_HELLO_INVALID',
    'node ID not derived from the key',
  );
  rejects(
    t,
    () => encodeHello({ ...hello, address: 'http://example.org' }),
    'LIAISON_ERR_ENCODE_VALUE',
    'not a ws URL',
  );
});

t.test('a rotated identity carries its chain', async (t) => {
  const k1 = Ed25519PrivateKey.fromSeed(new Uint8Array(32).fill(21));
  const rot = createKeyRotation(alice.nodeId, 1, alice.signingKey, k1, T0 + 10);
  const dh = X25519PrivateKey.fromBytes(new Uint8Array(32).fill(22));
  const rec = createKeyRecord(k1, alice.nodeId, dh.publicKey, 2, T0 + 10);
  const rotated: Hello = {
    identity: {
      nodeId: alice.nodeId,
      identityKey: k1.publicKey,
      rotations: [rot],
      keyRecord: rec,
      name: 'Rotated',
    },
    address: null,
  };
  t.equal(decodeHello(encodeHello(rotated), T0 + 20).identity.rotations.length, 1);
  rejects(
    t,
    () =>
      decodeHello(
        encodeHello({ ...rotated, identity: { ...rotated.identity, rotations: [] } }),
        T0 + 20,
      ),
    'LIAISON_ERR_LINK_HELLO_INVALID',
    'chain missing',
  );
  rejects(
    t,
    () => decodeHello(encodeHello(rotated), T0 - 400_000),
    'LIAISON_ERR_LINK_HELLO_INVALID',
    'rotation dated in the future',
  );
});

t.test('first message and frames', async (t) => {
  const noise = new Uint8Array(96).fill(3);
  t.same(
    decodeFirstMessage(encodeFirstMessage({ mode: 'paired', invitationId: null, noise })).mode,
    'paired',
  );
  const inv = decodeFirstMessage(
    encodeFirstMessage({ mode: 'invitation', invitationId: new Uint8Array(16).fill(1), noise }),
  );
  t.equal(inv.invitationId?.length, 16);
  t.equal(inv.noise.length, 96);
  rejects(
    t,
    () => decodeFirstMessage(Uint8Array.of(9, 1, 2)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'unknown mode',
  );
  rejects(
    t,
    () => decodeFirstMessage(Uint8Array.of(2, 1, 2)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'invitation mode, too short',
  );
  rejects(
    t,
    () => decodeFirstMessage(new Uint8Array(0)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'empty',
  );
  for (const f of [
    { type: 'READY' },
    { type: 'PING', nonce: 7 },
    { type: 'PONG', nonce: 7 },
    { type: 'CLOSE', code: 'SHUTDOWN' },
  ] as const) {
    t.same(decodeFrame(encodeFrame(f)), f, f.type);
  }
  t.same(
    [
      ...(
        decodeFrame(encodeFrame({ type: 'DATA', body: Uint8Array.of(1, 2) })) as {
          body: Uint8Array;
        }
      ).body,
    ],
    [1, 2],
  );
  t.equal(
    (decodeFrame(encodeFrame({ type: 'KEY_RECORD', record: alice.keyRecord })) as { type: string })
      .type,
    'KEY_RECORD',
  );
  rejects(
    t,
    () => decodeFrame(Uint8Array.of(0x77)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'unknown frame type',
  );
  rejects(t, () => decodeFrame(new Uint8Array(0)), 'LIAISON_ERR_LINK_FRAME_INVALID', 'empty frame');
  rejects(
    t,
    () => decodeFrame(Uint8Array.of(0x02, 0, 0)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'short PING',
  );
  rejects(
    t,
    () => decodeFrame(Uint8Array.of(0x01, 0)),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'READY with a body',
  );
});

t.test('invitations', async (t) => {
  const inv: Invitation = {
    id: new Uint8Array(16).fill(5),
    secret: new Uint8Array(32).fill(6),
    expiresAt: T0 + 3_600_000,
    inviter: hello.identity,
    address: 'ws://127.0.0.1:7800',
  };
  const text = encodeInvitation(inv);
  t.ok(text.startsWith(INVITATION_PREFIX));
  const back = decodeInvitation(`  ${text}\n`, T0);
  t.same([...back.secret], [...inv.secret]);
  t.equal(back.address, inv.address);
  t.equal(
    decodeInvitation(
      text.toUpperCase().replace(INVITATION_PREFIX.toUpperCase(), INVITATION_PREFIX),
      T0,
    ).expiresAt,
    inv.expiresAt,
    'case-insensitive body',
  );
  rejects(
    t,
    () => decodeInvitation(text, inv.expiresAt),
    'LIAISON_ERR_INVITATION_EXPIRED',
    'at expiry',
  );
  const typo = text.slice(0, 60) + (text[60] === 'a' ? 'b' : 'a') + text.slice(61);
  rejects(
    t,
    () => decodeInvitation(typo, T0),
    'LIAISON_ERR_INVITATION_INVALID',
    'one character mistyped',
  );
  rejects(
    t,
    () => decodeInvitation(text.slice(0, -8), T0),
    'LIAISON_ERR_INVITATION_INVALID',
    'copied incompletely',
  );
  rejects(
    t,
    () => decodeInvitation('liaison-invite-v2:abc', T0),
    'LIAISON_ERR_INVITATION_INVALID',
    'wrong prefix',
  );
  rejects(
    t,
    () => decodeInvitation(INVITATION_PREFIX + 'x'.repeat(9000), T0),
    'LIAISON_ERR_INVITATION_INVALID',
    'too long',
  );
  rejects(
    t,
    () => decodeInvitation(INVITATION_PREFIX + '1!', T0),
    'LIAISON_ERR_INVITATION_INVALID',
    'not base32',
  );
});

t.test('BATCH: several frames in one transport message', async (t) => {
  const ping = encodeFrame({ type: 'PING', nonce: 7 });
  const data = encodeFrame({ type: 'DATA', body: Uint8Array.of(1, 2, 3) });
  const entry = (f: Uint8Array) => [f.length >> 8, f.length & 0xff, ...f];
  const batch = (...entries: number[][]) => Uint8Array.of(FRAME.BATCH, ...entries.flat());

  // Byte-exact: 0x06, then u16 length || frame per entry.
  const encoded = encodeBatch([
    { type: 'PING', nonce: 7 },
    { type: 'DATA', body: Uint8Array.of(1, 2, 3) },
  ]);
  t.same([...encoded], [...batch(entry(ping), entry(data))]);
  t.equal(toHex(encoded), '0600090200000000000000070004100102' + '03');
  const frames = decodeFrames(encoded);
  t.same(
    frames.map((f) => f.type),
    ['PING', 'DATA'],
  );
  t.same([...(frames[1] as { body: Uint8Array }).body], [1, 2, 3]);
  // A lone frame is itself, without BATCH framing.
  t.same(decodeFrames(ping), [{ type: 'PING', nonce: 7 }]);
  // An empty DATA body is a 1-byte entry, the smallest there is.
  const empty = encodeFrame({ type: 'DATA', body: new Uint8Array(0) });
  t.equal(decodeFrames(batch(entry(empty), entry(empty), entry(empty))).length, 3);
  // Every frame type but READY and BATCH may ride in a BATCH; KEY_RECORD keeps its own codes.
  const key = encodeFrame({ type: 'KEY_RECORD', record: alice.keyRecord });
  const close = encodeFrame({ type: 'CLOSE', code: 'SHUTDOWN' });
  t.same(
    decodeFrames(batch(entry(key), entry(data), entry(close))).map((f) => f.type),
    ['KEY_RECORD', 'DATA', 'CLOSE'],
  );
  const badKey = Uint8Array.from(key);
  badKey[badKey.length - 1]! ^= 1;
  rejects(
    t,
    () => decodeFrames(batch(entry(data), entry(badKey))),
    'LIAISON_ERR_KEY_RECORD_INVALID',
    'a KEY_RECORD with a bad signature inside a BATCH',
  );
  // The largest BATCH: a Noise transport payload.
  const fill = encodeFrame({ type: 'DATA', body: new Uint8Array(NOISE_MAX_PAYLOAD_BYTES - 7) });
  const full = batch(entry(fill), entry(empty));
  t.equal(full.length, NOISE_MAX_PAYLOAD_BYTES);
  t.equal(decodeFrames(full).length, 2, 'a BATCH of a whole Noise payload');

  const bad: [string, Uint8Array][] = [
    ['no entries', batch()],
    ['one entry', batch(entry(ping))],
    ['a length byte, no more', Uint8Array.of(...batch(entry(ping), entry(data)), 0)],
    ['a length, no frame', Uint8Array.of(...batch(entry(ping), entry(data)), 0, 9)],
    ['an entry longer than the rest', batch(entry(ping), [0, 5, FRAME.DATA, 1, 2])],
    ['an entry of length 0', batch(entry(ping), [0, 0], entry(data))],
    ['a nested BATCH', batch(entry(ping), entry(batch(entry(ping), entry(data))))],
    ['a READY', batch(entry(Uint8Array.of(FRAME.READY)), entry(ping))],
    ['an inner frame with trailing bytes', batch(entry(Uint8Array.of(...ping, 0)), entry(data))],
    ['an inner frame of unknown type', batch(entry(ping), entry(Uint8Array.of(0x77)))],
    ['an inner PING too short', batch(entry(ping.subarray(0, 5)), entry(data))],
  ];
  for (const [label, bytes] of bad)
    rejects(t, () => decodeFrames(bytes), 'LIAISON_ERR_LINK_FRAME_INVALID', label);
  rejects(
    t,
    () => decodeFrame(encoded),
    'LIAISON_ERR_LINK_FRAME_INVALID',
    'a BATCH where one frame is expected (READY, or nested)',
  );

  rejects(
    t,
    () => encodeBatch([{ type: 'PING', nonce: 1 }]),
    'LIAISON_ERR_ENCODE_VALUE',
    'encode: one frame',
  );
  rejects(
    t,
    () => encodeBatch([{ type: 'READY' }, { type: 'PING', nonce: 1 }]),
    'LIAISON_ERR_ENCODE_VALUE',
    'encode: a READY',
  );
  rejects(
    t,
    () =>
      encodeBatch([
        { type: 'DATA', body: new Uint8Array(NOISE_MAX_PAYLOAD_BYTES - 7) },
        { type: 'PING', nonce: 1 },
      ]),
    'LIAISON_ERR_ENCODE_LIMIT',
    'encode: more than a Noise payload',
  );
});
