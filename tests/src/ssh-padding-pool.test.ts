/**
 * ssh2 pads every outgoing packet with 4–255 random bytes. patches/ssh2@1.17.0.patch takes them from a pool of
 * CSPRNG output filled 16 KiB at a time rather than calling randomFillSync once per packet (a native call and an
 * OpenSSL fork check each); every pool byte must still go out once at most. The test loads ssh2's crypto module
 * with node's randomFillSync wrapped, so it sees every fill and checks each padding against the bytes filled.
 */
import { describe, it, expect } from '@jest/globals';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface OutgoingCipher {
  allocPacket(payloadLen: number): Buffer;
  encrypt(packet: Buffer): void;
}
interface Ssh2Crypto {
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number }>;
  NullCipher: new (seqno: number, onWrite: (packet: Buffer) => void) => OutgoingCipher;
  createCipher(config: unknown): OutgoingCipher;
}

const POOL_SIZE = 16 * 1024;

/** ssh2's crypto module, loaded while node's randomFillSync records a copy of every range it fills. */
function loadSsh2CryptoRecordingFills(): { ssh2Crypto: Ssh2Crypto; fills: Buffer[] } {
  const nodeCrypto = require('node:crypto') as typeof import('node:crypto');
  const original = nodeCrypto.randomFillSync;
  const fills: Buffer[] = [];
  const recording = (buf: Buffer, offset = 0, size = buf.length - offset): Buffer => {
    original(buf, offset, size);
    fills.push(Buffer.from(buf.subarray(offset, offset + size)));
    return buf;
  };
  // ssh2's crypto module takes randomFillSync from node's crypto once, when it loads.
  nodeCrypto.randomFillSync = recording as typeof original;
  try {
    return { ssh2Crypto: require('ssh2/lib/protocol/crypto.js') as Ssh2Crypto, fills };
  } finally {
    nodeCrypto.randomFillSync = original;
  }
}

function aesGcmCipher(ssh2Crypto: Ssh2Crypto): OutgoingCipher {
  const cipherInfo = ssh2Crypto.CIPHER_INFO['aes128-gcm@openssh.com']!;
  return ssh2Crypto.createCipher({
    outbound: {
      onWrite: () => undefined,
      cipherInfo,
      cipherKey: Buffer.alloc(cipherInfo.keyLen, 1),
      cipherIV: Buffer.alloc(cipherInfo.ivLen, 2),
      seqno: 0,
      macInfo: null,
      macKey: null,
    },
  });
}

describe('ssh2 packet padding (patched)', () => {
  it('comes from pooled CSPRNG fills, each byte handed out once, in order', () => {
    const { ssh2Crypto, fills } = loadSsh2CryptoRecordingFills();
    const ciphers = [new ssh2Crypto.NullCipher(0, () => undefined), aesGcmCipher(ssh2Crypto)];
    const packets = 6000;
    let fill = -1;
    let used = POOL_SIZE;
    let paddingBytes = 0;
    const mismatches: string[] = [];
    for (let i = 0; i < packets; i++) {
      const payloadLen = i % 3 === 0 ? 32768 : i % 53;
      const packet = ciphers[i % 2]!.allocPacket(payloadLen);
      const padLen = packet[4]!;
      // The pool is filled again only when the rest of the current fill is too short for this padding.
      if (used + padLen > POOL_SIZE) {
        fill += 1;
        used = 0;
      }
      const expected =
        fills[fill]?.length === POOL_SIZE ? fills[fill]!.subarray(used, used + padLen) : undefined;
      const padding = packet.subarray(5 + payloadLen, 5 + payloadLen + padLen);
      if (padLen < 4 || !expected?.equals(padding))
        mismatches.push(`packet ${i}: ${padLen} bytes of padding`);
      used += padLen;
      paddingBytes += padLen;
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
    expect(fills.map((f) => f.length)).toEqual(new Array(fill + 1).fill(POOL_SIZE));
    expect(fills.length).toBeLessThanOrEqual(Math.ceil(paddingBytes / (POOL_SIZE - 255)));
  });
});
