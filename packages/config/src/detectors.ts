/**
 * Content detector names a masking rule may list: exactly the detectors the masking package implements, so the
 * two can never drift apart.
 */
export { KNOWN_DETECTORS } from '@agentgate/masking';
