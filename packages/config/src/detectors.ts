/**
 * Content detector names a masking rule may list. Keep in sync with `@agentgate/masking` (its detector table is
 * the implementation; this list is what the config accepts). tests/src/config-detectors.test.ts checks they agree.
 */
export const KNOWN_DETECTORS: readonly string[] = [
  'email',
  'credit_card',
  'us_ssn',
  'iban',
  'aws_access_key',
  'private_key',
  'jwt',
  'bearer_token',
  'password_in_url',
  'github_token',
  'slack_token',
  'stripe_key',
  'google_api_key',
  'llm_api_key',
  'api_key',
];
