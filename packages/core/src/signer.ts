/**
 * The gateway's signing key (`signingKey`, docs/configuration.md): signs transcript checkpoints and approval webhooks as compact
 * JWS; its public half is served at `GET /.well-known/jwks.json`. Implemented in `@agentgate/transcript`.
 */
export interface Signer {
  readonly kid: string;
  /** Compact JWS over `payload`. */
  signCompact(payload: string | Uint8Array): Promise<string>;
  /** Verify a compact JWS made by this key (or a previous key in the same JWKS); returns the payload. */
  verifyCompact(jws: string): Promise<Buffer>;
  /** `{ keys: [public JWK, …] }` */
  publicJwks(): { keys: Record<string, unknown>[] };
}
