/**
 * The composition root: the only module that knows every concrete implementation. It wires the store, identity,
 * policy, approvals, masking and metrics into one gate, starts a listener per configured protocol, and the admin API.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  createJsonLogger,
  newId,
  type AgentgateConfig,
  type EngineDeps,
  type EngineFactory,
  type ListenerConfig,
  type Logger,
  type Protocol,
  type ProtocolEngine,
  type SessionInfo,
} from '@agentgate/core';
import { startAdminServer, sshKeysHandler, type AdminServer } from '@agentgate/admin';
import { createApprovalBroker } from '@agentgate/approvals';
import { createDockerEngine } from '@agentgate/docker';
import { createIdentityService } from '@agentgate/identity';
import { createMaskingService } from '@agentgate/masking';
import { createGatewayMetrics, type GatewayMetrics } from '@agentgate/metrics';
import { createGate, createPolicy } from '@agentgate/policy';
import { createPostgresEngine } from '@agentgate/postgres';
import { createSshEngine } from '@agentgate/ssh';
import { loadOrCreateSigningKey, openTranscriptStore, type TranscriptStore } from '@agentgate/transcript';
import { startListenerServer, type ListenerAddress, type ListenerServer } from './listener-server.js';

export interface GatewayOptions {
  readonly log?: Logger;
  /** Extra or replacement engines, e.g. the line-protocol test engine. */
  readonly engines?: Partial<Record<Protocol, EngineFactory<never>>>;
  /** How long shutdown waits for in-flight sessions before closing them. */
  readonly shutdownGraceMs?: number;
}

export interface RunningGateway {
  readonly config: AgentgateConfig;
  readonly adminUrl: string;
  readonly store: TranscriptStore;
  readonly metrics: GatewayMetrics;
  address(listener: string): ListenerAddress;
  /** Stop accepting, finish in-flight work (bounded), flush the store. Idempotent. */
  stop(): Promise<void>;
}

const builtinEngines: Partial<Record<Protocol, EngineFactory<never>>> = {
  postgres: createPostgresEngine as EngineFactory<never>,
  ssh: createSshEngine as EngineFactory<never>,
  docker: createDockerEngine as EngineFactory<never>,
};

/** A stable secret for the `hash` masking strategy, so equal values hash equal across restarts. */
async function loadOrCreateHashKey(path: string): Promise<Buffer> {
  try {
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'hex');
  } catch {
    const key = randomBytes(32);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' }).catch(
      async () => undefined,
    );
    return Buffer.from((await readFile(path, 'utf8')).trim(), 'hex');
  }
}

export async function startGateway(
  config: AgentgateConfig,
  options: GatewayOptions = {},
): Promise<RunningGateway> {
  const log = options.log ?? createJsonLogger();
  const metrics = createGatewayMetrics();
  const signer = await loadOrCreateSigningKey(config.signingKey);
  const store = await openTranscriptStore({
    path: config.store.path,
    failMode: config.store.failMode,
    checkpointIntervalMs: config.store.checkpointIntervalMs,
    signer,
    log: log.child({ component: 'transcript' }),
    hooks: metrics.transcript,
  });
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  try {
    const recovered = await store.recoverInterrupted();
    if (recovered > 0) log.warn('closed sessions interrupted by the previous run', { sessions: recovered });

    const identity = await createIdentityService(config.identity, {
      log: log.child({ component: 'identity' }),
    });
    const broker = createApprovalBroker({
      config: config.approvals,
      signer,
      identity,
      log: log.child({ component: 'approvals' }),
      metrics: metrics.approvals,
    });
    cleanup.unshift(async () => broker.close());
    const gate = createGate({
      policy: createPolicy(config.rules),
      broker,
      approvers: config.approvals.approvers,
      metrics: metrics.gate,
      log: log.child({ component: 'gate' }),
    });
    const masking = createMaskingService(config.masking, {
      hashKey: await loadOrCreateHashKey(join(dirname(config.signingKey), 'masking-hash.key')),
      onMasked: (rule, detector, n) => metrics.protocol.maskedValues(rule, detector, n),
    });
    const deps: Omit<EngineDeps, 'log'> = {
      identity,
      gate,
      transcript: store,
      masking,
      metrics: metrics.protocol,
    };

    const engines = { ...builtinEngines, ...options.engines };
    const listeners: ListenerServer[] = [];
    const started: ProtocolEngine[] = [];
    cleanup.unshift(async () => {
      await Promise.allSettled(listeners.map((l) => l.close(options.shutdownGraceMs ?? 10_000)));
      await Promise.allSettled(started.map((e) => e.close?.()));
    });
    for (const listener of config.listeners) {
      const factory = engines[listener.protocol] as EngineFactory<ListenerConfig> | undefined;
      if (!factory) throw new Error(`no engine for protocol ${listener.protocol}`);
      const llog = log.child({ listener: listener.name, protocol: listener.protocol });
      const engine = factory(listener, { ...deps, log: llog });
      started.push(engine);
      listeners.push(
        await startListenerServer(listener, engine, {
          log,
          connectionOpened: () => metrics.protocol.connectionOpened(listener.name, listener.protocol),
          listening: (up) => metrics.listenerUp(listener.name, listener.protocol, up),
        }),
      );
    }

    const admin: AdminServer = await startAdminServer({
      listen: config.admin.listen,
      metrics,
      log: log.child({ component: 'admin' }),
      jwks: () => signer.publicJwks(),
      readiness: () => {
        const checks: Record<string, boolean> = { store: store.health.writable };
        for (const l of listeners) checks[`listener:${l.name}`] = l.listening;
        return { ready: Object.values(checks).every(Boolean), checks };
      },
      handlers: [
        (req, res, path) => broker.handleHttp(req, res, path),
        sshKeysHandler({
          identity,
          registry: identity.sshKeys,
          maxTtlMs: 7 * 24 * 3_600_000,
          onChange: (event, detail) => recordAdminAction(store, `ssh-key ${event}`, detail),
        }),
      ],
    });
    cleanup.unshift(() => admin.close());
    log.info('agentgate started', {
      admin: admin.url,
      listeners: listeners.map((l) => ({ name: l.name, address: l.address })),
    });

    let stopping: Promise<void> | undefined;
    return {
      config,
      adminUrl: admin.url,
      store,
      metrics,
      address(name) {
        const l = listeners.find((x) => x.name === name);
        if (!l) throw new Error(`no listener ${name}`);
        return l.address;
      },
      stop() {
        stopping ??= (async () => {
          log.info('agentgate stopping');
          for (const fn of cleanup)
            await fn().catch((err: unknown) => log.error('shutdown step failed', { error: String(err) }));
          log.info('agentgate stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    for (const fn of cleanup) await fn().catch(() => undefined);
    throw err;
  }
}

/** Admin actions that change who can connect (ssh key registrations) are recorded as short sessions of their own. */
function recordAdminAction(store: TranscriptStore, text: string, detail: Record<string, unknown>): void {
  const info: SessionInfo = {
    id: newId(),
    listener: 'admin',
    protocol: 'ssh',
    identity: { name: String(detail['identity'] ?? 'unknown'), groups: [], source: 'oidc' },
    client: { address: 'admin', local: true, tls: false },
    startedAt: Date.now(),
  };
  const rec = store.openSession(info, { admin: true });
  rec.append('command', { text, kind: 'admin', detail });
  rec.end({ reason: 'admin action recorded' });
}
