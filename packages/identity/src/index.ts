export {
  createIdentityService,
  type IdentityChanges,
  type IdentityServiceImpl,
  type IdentityServiceOptions,
  type PreparedIdentity,
} from './identity-service.js';
export { type SshKeyRegistry, type SshKeyRegistration } from './ssh-key-registry.js';
export type {
  RegisteredWith,
  SshKeyRegistrationStore,
  StoredRegistration,
  StoredRevocation,
} from './registration-store.js';
export { hashStaticToken } from './static-tokens.js';
export {
  generateSigningKeyPair,
  mintToken,
  signJwt,
  type MintTokenOptions,
  type SigningAlgorithm,
  type SigningKeyPair,
} from './local-idp.js';
