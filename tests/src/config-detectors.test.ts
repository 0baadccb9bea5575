import { describe, expect, it } from '@jest/globals';
import { KNOWN_DETECTORS as configDetectors } from '@agentgate/config';
import { KNOWN_DETECTORS as maskingDetectors } from '@agentgate/masking';

describe('config and masking agree on detector names', () => {
  it('accepts exactly the detectors the masking package implements', () => {
    expect([...configDetectors].sort()).toEqual([...maskingDetectors].sort());
  });
});
