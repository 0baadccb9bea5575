/**
 * Starts a real gateway in-process for integration tests: the caller's YAML (listeners, rules, masking, approvals,
 * identity additions) plus a temp store, a signing key, an admin listener on a free port and a local OIDC test
 * issuer whose tokens `token(sub, groups)` mints.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfig } from '@agentgate/config';
import { createJsonLogger, silentLogger, type AgentgateConfig } from '@agentgate/core';
import { startGateway, type RunningGateway } from '@agentgate/cli';
import { generateSigningKeyPair, mintToken } from '@agentgate/identity';
import type { TranscriptStore } from '@agentgate/transcript';
import { createLineEngine, LINE_ENGINE_PROTOCOL } from './line-engine.js';

export const TEST_ISSUER = 'agentgate-test';

export interface TestGateway {
  readonly config: AgentgateConfig;
  readonly configFile: string;
  readonly dir: string;
  readonly adminUrl: string;
  readonly store: TranscriptStore;
  readonly gateway: RunningGateway;
  address(listener: string): { host: string; port: number } | { path: string };
  token(sub: string, groups: string[], ttlSeconds?: number): Promise<string>;
  /** Stop the gateway; the temp dir (config, store) is removed unless `keepFiles`. */
  stop(options?: { keepFiles?: boolean }): Promise<void>;
}

export interface TestGatewayOptions {
  /**
   * Line-protocol listeners served by the test line engine (line-engine.ts): registered beside the configured
   * listeners, which a configuration file cannot do.
   */
  readonly testListeners?: readonly { name: string; allow: string[] }[];
  /** Extra environment for `${env:…}` expansion. */
  readonly env?: Record<string, string>;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export async function startTestGateway(yaml = '', options: TestGatewayOptions = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'agentgate-test-'));
  const idp = await generateSigningKeyPair('ES256');
  await writeFile(join(dir, 'idp-jwks.json'), JSON.stringify(idp.jwks));
  const user = (parse(yaml) ?? {}) as Record<string, unknown>;
  const userIdentity = (user['identity'] ?? {}) as Record<string, unknown>;
  const doc: Record<string, unknown> = {
    signingKey: join(dir, 'signing-key.json'),
    admin: { listen: '127.0.0.1:0' },
    listeners: [],
    ...user,
    // A store section's other keys (failMode, commitWindow, ...) go with the throwaway path unless it names one.
    store: { path: join(dir, 'transcripts'), ...((user['store'] as Record<string, unknown>) ?? {}) },
    identity: {
      ...userIdentity,
      oidc: [
        {
          issuer: TEST_ISSUER,
          audience: 'agentgate',
          jwks: join(dir, 'idp-jwks.json'),
          groupsClaim: 'groups',
        },
        ...((userIdentity['oidc'] as unknown[]) ?? []),
      ],
    },
  };
  const configFile = join(dir, 'agentgate.yaml');
  await writeFile(configFile, stringify(doc));
  const config = await loadConfig(configFile, { ...process.env, ...options.env });
  const log = options.logLevel ? createJsonLogger({ level: options.logLevel }) : silentLogger;
  const gateway = await startGateway(config, {
    log,
    extraListeners: (options.testListeners ?? []).map((l) => ({
      listener: { name: l.name, listen: '127.0.0.1:0', allow: l.allow },
      protocol: LINE_ENGINE_PROTOCOL,
      engine: createLineEngine,
    })),
    shutdownGraceMs: 2000,
  });
  return {
    config,
    configFile,
    dir,
    adminUrl: gateway.adminUrl,
    store: gateway.store,
    gateway,
    address: (name) => gateway.address(name),
    token: (sub, groups, ttlSeconds = 3600) =>
      mintToken({
        privateJwk: idp.privateJwk,
        sub,
        groups,
        ttlSeconds,
        issuer: TEST_ISSUER,
        audience: 'agentgate',
      }),
    async stop(stopOptions = {}) {
      await gateway.stop();
      if (!stopOptions.keepFiles) await rm(dir, { recursive: true, force: true });
    },
  };
}
