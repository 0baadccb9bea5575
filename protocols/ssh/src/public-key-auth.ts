import ssh2 from 'ssh2';

/**
 * RFC 4252 §7: a publickey request with a signature proves possession of the private key only once the signature
 * over the session id + request is checked. ssh2's server hands us `ctx.signature`/`ctx.blob` without checking it.
 */
export function verifyPublicKeySignature(
  keyBlob: Buffer,
  signedData: Buffer,
  signature: Buffer,
  hashAlgo?: string,
): boolean {
  const key = ssh2.utils.parseKey(keyBlob);
  if (key instanceof Error) return false;
  try {
    return key.verify(signedData, signature, hashAlgo) === true;
  } catch {
    return false;
  }
}
