/**
 * Masking of `Env` in container and image inspect responses (docs/configuration.md, "masking"): values of variables whose names look
 * secret (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`, `*KEY*`, …) are replaced whole; other values go through the
 * session's content detectors. What the client receives is also what the transcript stores.
 */
import type { ValueMasker } from '@agentgate/core';

export const SECRET_ENV_NAME = /PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL/i;
export const ENV_REPLACEMENT = '****';

export interface EnvMaskResult {
  readonly body: Buffer;
  readonly masked: number;
}

function maskEnvList(env: unknown, detectors: ValueMasker | undefined): { env: unknown; masked: number } {
  if (!Array.isArray(env)) return { env, masked: 0 };
  let masked = 0;
  const out = env.map((entry: unknown) => {
    if (typeof entry !== 'string') return entry;
    const eq = entry.indexOf('=');
    if (eq === -1) return entry;
    const name = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (SECRET_ENV_NAME.test(name) && value !== '') {
      masked++;
      return `${name}=${ENV_REPLACEMENT}`;
    }
    const m = detectors ? detectors.mask(value) : value;
    if (m !== value) {
      masked++;
      return `${name}=${m}`;
    }
    return entry;
  });
  return { env: out, masked };
}

/**
 * Mask `Config.Env` (containers and images) and `ContainerConfig.Env` (images) of an inspect JSON body. Returns the
 * input buffer untouched when nothing was masked or the body is not JSON.
 */
export function maskInspectEnv(body: Buffer, detectors: ValueMasker | undefined): EnvMaskResult {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { body, masked: 0 };
  }
  if (doc === null || typeof doc !== 'object') return { body, masked: 0 };
  let masked = 0;
  const record = doc as Record<string, unknown>;
  for (const key of ['Config', 'ContainerConfig']) {
    const cfg = record[key];
    if (cfg === null || typeof cfg !== 'object') continue;
    const res = maskEnvList((cfg as Record<string, unknown>).Env, detectors);
    if (res.masked > 0) {
      (cfg as Record<string, unknown>).Env = res.env;
      masked += res.masked;
    }
  }
  if (masked === 0) return { body, masked: 0 };
  return { body: Buffer.from(JSON.stringify(doc) + '\n', 'utf8'), masked };
}
