/**
 * Noise: the published cacophony vectors (BLAKE2b suites) byte for byte, then the handshake state
 * machine's bad inputs, each with its code.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  fromHex,
  HandshakeState,
  initCrypto,
  NOISE_MAX_MESSAGE_BYTES,
  toHex,
  X25519PrivateKey,
} from '../../protocol/index.ts';
import type { NoisePattern } from '../../protocol/index.ts';
import { rejects } from '../helpers/assert.ts';

await initCrypto();

interface Vector {
  protocol_name: string;
  init_prologue: string;
  resp_prologue: string;
  init_psks?: string[];
  resp_psks?: string[];
  init_static?: string;
  resp_static?: string;
  init_ephemeral: string;
  resp_ephemeral: string;
  init_remote_static?: string;
  resp_remote_static?: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const file = JSON.parse(
  readFileSync(new URL('../vectors/noise-cacophony.json', import.meta.url), 'utf8'),
) as { vectors: Vector[] };
const ours = file.vectors.filter((v) => v.protocol_name.endsWith('_25519_ChaChaPoly_BLAKE2b'));

function side(v: Vector, initiator: boolean): HandshakeState {
  const p = initiator ? 'init' : 'resp';
  const pattern = v.protocol_name.split('_')[1] as NoisePattern;
  const get = (k: string) =>
    (v as unknown as Record<string, string | string[] | undefined>)[`${p}_${k}`];
  const s = get('static') as string | undefined;
  const rs = get('remote_static') as string | undefined;
  const psks = get('psks') as string[] | undefined;
  const e = X25519PrivateKey.fromBytes(fromHex(get('ephemeral') as string));
  return new HandshakeState({
    pattern,
    initiator,
    prologue: fromHex(get('prologue') as string),
    ...(s === undefined ? {} : { s: X25519PrivateKey.fromBytes(fromHex(s)) }),
    ...(rs === undefined ? {} : { rs: fromHex(rs) }),
    ...(psks === undefined ? {} : { psk: fromHex(psks[0]!) }),
    ephemeral: () => e,
  });
}

t.test('cacophony vectors', async (t) => {
  t.ok(
    ours.some((v) => v.protocol_name === 'Noise_IK_25519_ChaChaPoly_BLAKE2b'),
    'IK present',
  );
  t.ok(
    ours.some((v) => v.protocol_name === 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b'),
    'IKpsk2 present',
  );
  for (const v of ours) {
    t.test(v.protocol_name, async (t) => {
      const init = side(v, true);
      const resp = side(v, false);
      let i = 0;
      // Handshake: alternate writers until both complete.
      while (!init.isComplete || !resp.isComplete) {
        const msg = v.messages[i]!;
        const [w, r] = i % 2 === 0 ? [init, resp] : [resp, init];
        const c = w.writeMessage(fromHex(msg.payload));
        t.equal(toHex(c), msg.ciphertext, `handshake message ${i}`);
        t.equal(toHex(r.readMessage(c)), msg.payload, `handshake payload ${i}`);
        i++;
      }
      t.equal(toHex(init.result.handshakeHash), v.handshake_hash, 'handshake hash (initiator)');
      t.equal(toHex(resp.result.handshakeHash), v.handshake_hash, 'handshake hash (responder)');
      // Transport: the vectors alternate initiator -> responder -> initiator ...
      for (; i < v.messages.length; i++) {
        const msg = v.messages[i]!;
        const [w, r] = i % 2 === 0 ? [init.result, resp.result] : [resp.result, init.result];
        const c = w.send.encryptWithAd(new Uint8Array(0), fromHex(msg.payload));
        t.equal(toHex(c), msg.ciphertext, `transport message ${i}`);
        t.equal(toHex(r.receive.decryptWithAd(new Uint8Array(0), c)), msg.payload);
      }
    });
  }
});

// A fresh IK / IKpsk2 pair for the bad-input table.
const rStatic = X25519PrivateKey.fromBytes(new Uint8Array(32).fill(7));
const iStatic = X25519PrivateKey.fromBytes(new Uint8Array(32).fill(8));
const prologue = new TextEncoder().encode('liaison/v1 link');
const psk = new Uint8Array(32).fill(9);
const ik = () => ({
  init: new HandshakeState({
    pattern: 'IK',
    initiator: true,
    prologue,
    s: iStatic,
    rs: rStatic.publicKey.bytes,
  }),
  resp: new HandshakeState({ pattern: 'IK', initiator: false, prologue, s: rStatic }),
});

t.test('IK completes and authenticates both statics', async (t) => {
  const { init, resp } = ik();
  resp.readMessage(init.writeMessage(new Uint8Array(0)));
  init.readMessage(resp.writeMessage(new Uint8Array(0)));
  t.equal(
    toHex(resp.result.remoteStatic!),
    toHex(iStatic.publicKey.bytes),
    'responder learned the initiator static',
  );
  t.equal(toHex(init.result.handshakeHash), toHex(resp.result.handshakeHash));
  const c = init.result.send.encryptWithAd(new Uint8Array(0), Uint8Array.of(1, 2, 3));
  t.same([...resp.result.receive.decryptWithAd(new Uint8Array(0), c)], [1, 2, 3]);
});

t.test('handshake bad inputs', async (t) => {
  {
    const { init } = ik();
    rejects(
      t,
      () => init.readMessage(new Uint8Array(48)),
      'LIAISON_ERR_NOISE_STATE',
      'initiator reads before writing',
    );
  }
  {
    const { resp } = ik();
    rejects(
      t,
      () => resp.writeMessage(new Uint8Array(0)),
      'LIAISON_ERR_NOISE_STATE',
      'responder writes first',
    );
  }
  {
    const { init, resp } = ik();
    const m1 = init.writeMessage(new Uint8Array(0));
    rejects(
      t,
      () => init.writeMessage(new Uint8Array(0)),
      'LIAISON_ERR_NOISE_STATE',
      'initiator writes twice',
    );
    rejects(
      t,
      () => resp.readMessage(m1.subarray(0, 40)),
      'LIAISON_ERR_NOISE_MESSAGE_SIZE',
      'truncated first message',
    );
    rejects(
      t,
      () => resp.readMessage(m1),
      'LIAISON_ERR_NOISE_STATE',
      'a failed handshake cannot continue',
    );
  }
  {
    const { init, resp } = ik();
    const m1 = init.writeMessage(new Uint8Array(0));
    m1[40]! ^= 1; // inside the encrypted static key
    rejects(
      t,
      () => resp.readMessage(m1),
      'LIAISON_ERR_NOISE_DECRYPT',
      'bad MAC on the static key',
    );
  }
  {
    const { init, resp } = ik();
    const m1 = init.writeMessage(new Uint8Array(0));
    m1[0]! ^= 1; // the ephemeral key: every later key changes
    rejects(t, () => resp.readMessage(m1), 'LIAISON_ERR_NOISE_DECRYPT', 'altered ephemeral');
  }
  {
    // An initiator who believes in another responder key fails at the responder.
    const wrong = new HandshakeState({
      pattern: 'IK',
      initiator: true,
      prologue,
      s: iStatic,
      rs: iStatic.publicKey.bytes,
    });
    const { resp } = ik();
    rejects(
      t,
      () => resp.readMessage(wrong.writeMessage(new Uint8Array(0))),
      'LIAISON_ERR_NOISE_DECRYPT',
      'wrong responder static key',
    );
  }
  {
    const other = new HandshakeState({
      pattern: 'IK',
      initiator: false,
      prologue: new TextEncoder().encode('other'),
      s: rStatic,
    });
    const { init } = ik();
    rejects(
      t,
      () => other.readMessage(init.writeMessage(new Uint8Array(0))),
      'LIAISON_ERR_NOISE_DECRYPT',
      'different prologue',
    );
  }
  {
    const { init, resp } = ik();
    const m1 = init.writeMessage(new Uint8Array(0));
    resp.readMessage(m1);
    const m2 = resp.writeMessage(new Uint8Array(0));
    init.readMessage(m2);
    rejects(
      t,
      () => init.readMessage(m2),
      'LIAISON_ERR_NOISE_STATE',
      'replayed handshake message after completion',
    );
    const replayTarget = ik().resp;
    // A replayed first message starts a handshake the replayer cannot finish: the responder's
    // reply is keyed to a fresh ephemeral the attacker does not know.
    t.doesNotThrow(() => replayTarget.readMessage(m1));
  }
  rejects(
    t,
    () => ik().resp.readMessage(new Uint8Array(NOISE_MAX_MESSAGE_BYTES + 1)),
    'LIAISON_ERR_NOISE_MESSAGE_SIZE',
    'oversized',
  );
  rejects(
    t,
    () => new HandshakeState({ pattern: 'IK', initiator: true, prologue, s: iStatic }),
    'LIAISON_ERR_NOISE_CONFIG',
    'IK initiator without rs',
  );
  rejects(
    t,
    () =>
      new HandshakeState({
        pattern: 'IKpsk2',
        initiator: true,
        prologue,
        s: iStatic,
        rs: rStatic.publicKey.bytes,
      }),
    'LIAISON_ERR_NOISE_CONFIG',
    'IKpsk2 without PSK',
  );
  rejects(
    t,
    () => new HandshakeState({ pattern: 'IK', initiator: false, prologue, s: rStatic, psk }),
    'LIAISON_ERR_NOISE_CONFIG',
    'PSK for IK',
  );
  rejects(
    t,
    () =>
      new HandshakeState({
        pattern: 'IKpsk2',
        initiator: false,
        prologue,
        s: rStatic,
        psk: psk.subarray(0, 16),
      }),
    'LIAISON_ERR_NOISE_CONFIG',
    'short PSK',
  );
});

t.test(
  'IKpsk2: a wrong invitation secret fails at the initiator, after the responder answered',
  async (t) => {
    const init = new HandshakeState({
      pattern: 'IKpsk2',
      initiator: true,
      prologue,
      s: iStatic,
      rs: rStatic.publicKey.bytes,
      psk,
    });
    const resp = new HandshakeState({
      pattern: 'IKpsk2',
      initiator: false,
      prologue,
      s: rStatic,
      psk: new Uint8Array(32).fill(1),
    });
    resp.readMessage(init.writeMessage(new Uint8Array(0)));
    rejects(
      t,
      () => init.readMessage(resp.writeMessage(new Uint8Array(0))),
      'LIAISON_ERR_NOISE_DECRYPT',
      'mismatched PSK',
    );
  },
);

t.test('transport: order, replay, tampering, rekey', async (t) => {
  const { init, resp } = ik();
  resp.readMessage(init.writeMessage(new Uint8Array(0)));
  init.readMessage(resp.writeMessage(new Uint8Array(0)));
  const a = init.result.send;
  const b = resp.result.receive;
  const none = new Uint8Array(0);
  const m0 = a.encryptWithAd(none, Uint8Array.of(0));
  const m1 = a.encryptWithAd(none, Uint8Array.of(1));
  rejects(t, () => b.decryptWithAd(none, m1), 'LIAISON_ERR_NOISE_DECRYPT', 'out of order');
  t.same(
    [...b.decryptWithAd(none, m0)],
    [0],
    'in order after a refused one (nonce did not advance)',
  );
  rejects(t, () => b.decryptWithAd(none, m0), 'LIAISON_ERR_NOISE_DECRYPT', 'replayed');
  t.same([...b.decryptWithAd(none, m1)], [1]);
  const m2 = a.encryptWithAd(none, Uint8Array.of(2));
  m2[0]! ^= 1;
  rejects(t, () => b.decryptWithAd(none, m2), 'LIAISON_ERR_NOISE_DECRYPT', 'tampered');
  rejects(
    t,
    () => b.decryptWithAd(none, new Uint8Array(5)),
    'LIAISON_ERR_NOISE_DECRYPT',
    'shorter than a tag',
  );
  m2[0]! ^= 1;
  t.same([...b.decryptWithAd(none, m2)], [2], 'the untampered message still opens');
  // In place: the plaintext lands at the start of the message buffer, which is left alone when
  // the message fails to authenticate; both decryptions advance the same nonce.
  const m3 = a.encryptWithAd(none, Uint8Array.of(3, 4, 5));
  const m4 = a.encryptWithAd(none, Uint8Array.of(6));
  const m4Before = Uint8Array.from(m4);
  rejects(t, () => b.decryptWithAdInPlace(none, m4), 'LIAISON_ERR_NOISE_DECRYPT', 'in place');
  t.same([...m4], [...m4Before], 'a refused message is left as it was');
  const p3 = b.decryptWithAdInPlace(none, m3);
  t.same([...p3], [3, 4, 5]);
  t.equal(p3.buffer, m3.buffer, 'no copy');
  t.equal(p3.byteOffset, m3.byteOffset);
  t.same([...b.decryptWithAd(none, m4)], [6], 'the nonces stay shared with decryptWithAd');
  rejects(
    t,
    () => b.decryptWithAdInPlace(none, new Uint8Array(5)),
    'LIAISON_ERR_NOISE_DECRYPT',
    'in place, shorter than a tag',
  );
  // Rekey on both sides at the same point keeps them in step; on one side only, they diverge.
  const fresh = ik();
  fresh.resp.readMessage(fresh.init.writeMessage(none));
  fresh.init.readMessage(fresh.resp.writeMessage(none));
  fresh.init.result.send.rekey();
  fresh.resp.result.receive.rekey();
  t.same(
    [
      ...fresh.resp.result.receive.decryptWithAd(
        none,
        fresh.init.result.send.encryptWithAd(none, Uint8Array.of(9)),
      ),
    ],
    [9],
    'rekeyed together',
  );
  fresh.init.result.send.rekey();
  rejects(
    t,
    () =>
      fresh.resp.result.receive.decryptWithAd(
        none,
        fresh.init.result.send.encryptWithAd(none, Uint8Array.of(9)),
      ),
    'LIAISON_ERR_NOISE_DECRYPT',
    'rekeyed on one side only',
  );
});
