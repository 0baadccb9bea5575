/**
 * The composition root: the only module that knows every concrete implementation. It wires the store, identity,
 * policy, approvals, masking and metrics into one gate, starts a listener per configured protocol, and the admin API.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  createJsonLogger,
  createSessionLifecycles,
  newId,
  type AdminSessionInfo,
  type AgentgateConfig,
  type EngineDeps,
  type EngineFactory,
  type Identity,
  type ListenerBase,
  type ListenerConfig,
  type Logger,
  type MaskingService,
  type Protocol,
  type ProtocolEngine,
  type Termination,
  type Redactor,
} from '@agentgate/core';
import { startAdminServer, sshKeysHandler, type AdminServer } from '@agentgate/admin';
import { createApprovalBroker } from '@agentgate/approvals';
import {
  createConsole,
  IndexedSessionQuery,
  LiveSessions,
  storeRecords,
  type ConsoleHandler,
} from '@agentgate/console';
import { createDockerEngine } from '@agentgate/docker';
import { createIdentityService } from '@agentgate/identity';
import { UpstreamHealth } from './upstream-health.js';
import { createMaskingService, createRedactor } from '@agentgate/masking';
import { createGatewayMetrics, type GatewayMetrics } from '@agentgate/metrics';
import { createGate, createPolicy, type Policy } from '@agentgate/policy';
import { createPostgresEngine } from '@agentgate/postgres';
import { createSshEngine } from '@agentgate/ssh';
import {
  loadOrCreateSigningKey,
  openSessionIndex,
  openTranscriptStore,
  sessionIndexPath,
  type TranscriptStore,
} from '@agentgate/transcript';
import { FleetApprovals } from '@agentgate/fleet';
import { openFleetConsole } from './fleet-console.js';
import { startShipper } from './fleet-shipping.js';
import { fleetSshKeys } from './fleet-ssh-keys.js';
import { ListenerAccessTable, withReloadedAllow } from './listener-access.js';
import { stricterListenerDefaults } from './listener-defaults.js';
import { reloadOutcome, sectionsNeedingRestart, type ReloadOutcome } from './reload-outcome.js';
import { approversInForce, everyApprover } from './rule-approvers.js';
import { startListenerServer, type ListenerAddress, type ListenerServer } from './listener-server.js';
import { storeWriteOptions } from './store-write-options.js';

/**
 * A listener served by an engine the caller brings (the test harness's line engine), beside the configured ones:
 * the configuration file cannot name it. Its sessions are recorded and decided as `protocol`'s.
 */
export interface ExtraListener {
  readonly listener: ListenerBase;
  readonly protocol: Protocol;
  readonly engine: (listener: ListenerBase, deps: EngineDeps) => ProtocolEngine;
}

export interface GatewayOptions {
  readonly log?: Logger;
  /** Listeners whose engines the caller supplies, through the same engine interface as the built-in ones. */
  readonly extraListeners?: readonly ExtraListener[];
  /** How long sessions told to end (shutdown) get to end natively before their connections are closed. */
  readonly shutdownGraceMs?: number;
  /** Build the console's session index again from the transcript (`serve --reindex`). */
  readonly reindex?: boolean;
}

/** SSH key registrations (`agentgate ssh-login`) are kept in the store's directory, so they survive a restart. */
export const SSH_KEY_REGISTRATIONS_FILE = 'ssh-key-registrations.json';

/** How often a draining gateway logs the sessions still open. */
const DRAIN_PROGRESS_MS = 5_000;

export interface RunningGateway {
  /** The configuration in force (rules, masking and approvals as of the last reload). */
  readonly config: AgentgateConfig;
  readonly adminUrl: string;
  readonly store: TranscriptStore;
  readonly metrics: GatewayMetrics;
  address(listener: string): ListenerAddress;
  /**
   * Apply `rules`, `masking`, `redact`, `approvals` and `identity` from a new, already validated configuration
   * (SIGHUP). A token, key or issuer the new `identity` no longer has stops working, and the sessions opened with it
   * end (recorded as `identity.revoked` with the reason).
   * Redaction applies to what is recorded from then on (a stream already holding bytes finishes its held part
   * with the entries it started with). Rules apply to
   * the next command of every session, open ones included; changed masking rules too, at each open session's next
   * safe point (PostgreSQL: the first message once no answer is outstanding; Docker: the next request); approvals
   * to the next held command. The reload is recorded in the transcript.
   */
  reload(next: AgentgateConfig): Promise<ReloadOutcome>;
  /**
   * End a live session as an administrator: its engine closes it natively and the record names who ended it.
   * False when no session with that id is open.
   */
  terminateSession(sessionId: string, termination: Termination): boolean;
  /** True from the start of a drain (or a stop) on: `/readyz` answers 503 `draining`. */
  readonly draining: boolean;
  /**
   * Drain, then stop (SIGTERM): close the listening sockets, refuse the approvals pending (and any asked for from
   * now on) with the cause `shutdown`, let open sessions go on for at most `shutdown.drainTimeout`, then `stop()`.
   * Idempotent; resolves when stopped.
   */
  drain(): Promise<void>;
  /**
   * End every session now (cause `shutdown`; each engine ends it natively, bounded by `shutdownGraceMs`), flush
   * and close the store. Idempotent; during a drain it cuts the wait short.
   */
  stop(): Promise<void>;
}

const engines: { readonly [P in Protocol]: EngineFactory<Extract<ListenerConfig, { protocol: P }>> } = {
  postgres: createPostgresEngine,
  ssh: createSshEngine,
  docker: createDockerEngine,
};

function engineFor(listener: ListenerConfig, deps: EngineDeps): ProtocolEngine {
  switch (listener.protocol) {
    case 'postgres':
      return engines.postgres(listener, deps);
    case 'ssh':
      return engines.ssh(listener, deps);
    case 'docker':
      return engines.docker(listener, deps);
  }
}

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
  // Held behind a stable object so a reload can swap the entries under open sessions.
  let redactor = createRedactor(config.redact);
  const liveRedactor: Redactor = {
    get active() {
      return redactor.active;
    },
    text: (value) => redactor.text(value),
    body: (value) => redactor.body(value),
    stream: () => redactor.stream(),
  };
  const store = await openTranscriptStore({
    redactor: liveRedactor,
    ...storeWriteOptions(config.store),
    signer,
    log: log.child({ component: 'transcript' }),
    hooks: metrics.transcript,
  });
  const cleanup: (() => Promise<void>)[] = [() => store.close()];
  try {
    const recovered = await store.recoverInterrupted();
    if (recovered > 0) log.warn('closed sessions interrupted by the previous run', { sessions: recovered });
    const shipper =
      config.fleet === undefined
        ? undefined
        : await startShipper(config.fleet, config.store.path, store, signer, log, metrics);
    if (shipper !== undefined) cleanup.unshift(() => shipper.stop());

    const registrationsFile = join(config.store.path, SSH_KEY_REGISTRATIONS_FILE);
    const sharedKeys =
      shipper === undefined || config.fleet === undefined
        ? undefined
        : fleetSshKeys(shipper, config.fleet.node, registrationsFile, log);
    if (sharedKeys !== undefined) cleanup.unshift(async () => sharedKeys.close());
    const identity = await createIdentityService(config.identity, {
      log: log.child({ component: 'identity' }),
      ...(sharedKeys === undefined ? { registrationsFile } : { registrations: sharedKeys }),
    });
    if (config.rules.length === 0)
      log.warn(
        'no rules are configured: every command is decided by its listener default (allow unless set to deny)',
        { listeners: config.listeners.map((l) => l.name) },
      );
    // Known once the admin listener is up; held approvals link to their API resource from then on.
    const adminAt: { url?: string } = {};
    const consoleConfig = config.console;
    // In a fleet, held commands are rows of the fleet database: any replica decides them (docs/configuration.md).
    const sharing =
      shipper === undefined || config.fleet === undefined
        ? {}
        : {
            sharing: new FleetApprovals({
              db: shipper.db,
              notifications: shipper.notifications,
              node: config.fleet.node,
              log: log.child({ component: 'fleet-approvals', node: config.fleet.node }),
            }),
            whenSharingDown: config.fleet.approvalsWhenDown,
          };
    let running = config;
    const broker = createApprovalBroker({
      ...sharing,
      config: config.approvals,
      liveApprovers: (rule) => approversInForce(running, rule),
      signer,
      identity,
      log: log.child({ component: 'approvals' }),
      metrics: metrics.approvals,
      apiUrl: (id: string) =>
        adminAt.url === undefined ? undefined : `${adminAt.url}/api/approvals/${encodeURIComponent(id)}`,
      ...(consoleConfig === undefined
        ? {}
        : { consoleUrl: (id: string) => `${consoleConfig.publicUrl}/approvals/${id}` }),
    });
    const closeBroker = (): Promise<void> => broker.close();
    cleanup.unshift(closeBroker);
    // Rules and masking are held behind stable objects so a reload can swap them under running engines.
    let policy = createPolicy(config.rules, config.listeners);
    const livePolicy: Policy = { decide: (command, who, listener) => policy.decide(command, who, listener) };
    const gate = createGate({
      policy: livePolicy,
      broker,
      // Read per held command, so a reloaded `approvals.approvers` applies to the next one.
      get approvers() {
        return running.approvals.approvers;
      },
      metrics: metrics.gate,
      log: log.child({ component: 'gate' }),
      redactor: liveRedactor,
    });
    const maskingOptions = {
      hashKey: await loadOrCreateHashKey(join(dirname(config.signingKey), 'masking-hash.key')),
      onMasked: (rule: string, detector: string, n: number) =>
        metrics.protocol.maskedValues(rule, detector, n),
    };
    let masking = createMaskingService(config.masking, maskingOptions);
    let maskingGeneration = 0;
    const liveMasking: MaskingService = {
      forSession: (who, listener) => masking.forSession(who, listener),
      get generation() {
        return maskingGeneration;
      },
    };
    // With a console, the recording side is watched: running sessions are listed, followed live and can be ended.
    const live = consoleConfig === undefined ? undefined : new LiveSessions(liveRedactor);
    const sessions = createSessionLifecycles({
      gate,
      transcript: live === undefined ? store : live.wrap(store),
      metrics: metrics.protocol,
    });
    const deps: Omit<EngineDeps, 'log' | 'access'> = {
      identity,
      sessions,
      masking: liveMasking,
      metrics: metrics.protocol,
    };

    const listeners: ListenerServer[] = [];
    const started: ProtocolEngine[] = [];
    const access = new ListenerAccessTable();
    cleanup.unshift(async () => {
      await Promise.allSettled(listeners.map((l) => l.close(options.shutdownGraceMs ?? 10_000)));
      await Promise.allSettled(started.map((e) => e.close?.()));
    });
    const serve = async (
      listener: ListenerBase & { readonly protocol: Protocol; readonly socketMode?: number },
      makeEngine: (deps: EngineDeps) => ProtocolEngine,
    ): Promise<void> => {
      const llog = log.child({ listener: listener.name, protocol: listener.protocol });
      const engine = makeEngine({
        ...deps,
        log: llog,
        access: access.add(listener),
        sessions: access.sessionsFor(sessions, OPERATOR.name),
      });
      started.push(engine);
      await engine.ready?.();
      listeners.push(
        await startListenerServer(listener, engine, {
          log,
          // Counted here, once per accepted connection; engines do not count connections.
          connectionOpened: () => metrics.protocol.connectionOpened(listener.name, listener.protocol),
          listening: (up) => metrics.listenerUp(listener.name, listener.protocol, up),
        }),
      );
    };
    for (const listener of config.listeners) await serve(listener, (d) => engineFor(listener, d));
    for (const extra of options.extraListeners ?? [])
      await serve({ ...extra.listener, protocol: extra.protocol }, (d) => extra.engine(extra.listener, d));

    let consoleHandler: ConsoleHandler | undefined;
    if (consoleConfig !== undefined && live !== undefined) {
      // The session's engine ends it natively; the lifecycle records who ended it and names them at the end.
      live.setTerminator((info, by) =>
        sessions.terminate(info.id, { by: by.name, byGroups: [...by.groups], via: 'console' }),
      );
      // The console's sessions page reads an index the gateway keeps from the store's commit feed.
      const index = await openSessionIndex({
        store,
        path: sessionIndexPath(config.store.path),
        log: log.child({ component: 'session-index' }),
        ...(options.reindex === true ? { rebuild: true } : {}),
      });
      cleanup.unshift(() => index.close());
      const indexed = new IndexedSessionQuery(
        index,
        (id) => live.has(id),
        (id) => store.getSession(id),
      );
      const localRecords = storeRecords(store, (jws) => signer.verifyCompact(jws));
      const fleetConsole =
        config.fleet === undefined || shipper === undefined
          ? undefined
          : await openFleetConsole(config.fleet, indexed, localRecords, shipper, log);
      if (fleetConsole !== undefined) cleanup.unshift(() => fleetConsole.close());
      const handler = createConsole({
        config: consoleConfig,
        identity,
        approvers: () => everyApprover(running),
        ruleApprovers: (rule) => approversInForce(running, rule),
        approvals: broker,
        decide: (command, who, listener) => policy.decide(command, who, listener),
        store,
        verifySignature: (jws) => signer.verifyCompact(jws),
        sessionQuery: fleetConsole?.query ?? indexed,
        records: fleetConsole?.query ?? localRecords,
        ...(fleetConsole === undefined ? {} : { fleet: fleetConsole.view }),
        live,
        listeners: () => config.listeners.map((l) => ({ name: l.name, protocol: l.protocol })),
        storeSizeBytes: () => {
          try {
            return statSync(join(config.store.path, 'data.mdb')).size;
          } catch {
            return undefined;
          }
        },
        linkLedgerFile: join(dirname(config.signingKey), 'console-links-used.jsonl'),
        record: ({ action, actor, detail }) => recordAdminAction(store, action, actor, detail, 'console'),
        log: log.child({ component: 'console' }),
      });
      consoleHandler = handler;
      cleanup.unshift(async () => handler.close());
    }

    // Set from the moment a drain (or a stop) begins; `/readyz` reads it.
    let drainWindow: { readonly since: number; readonly deadline: number } | undefined;
    const beginDraining = (drainTimeoutMs: number): void => {
      if (drainWindow !== undefined) return;
      const since = Date.now();
      drainWindow = { since, deadline: since + drainTimeoutMs };
      metrics.draining(true);
      for (const l of listeners) l.stopAccepting();
      // An approver would be deciding on a command whose session is about to be cut; the client gets a refusal it
      // can retry through another replica instead.
      void broker.close(); // its cancellations reach the webhook while the drain goes on
    };
    const openConnections = (): number => listeners.reduce((n, l) => n + l.activeConnections, 0);
    let cutDrainShort: () => void = () => undefined;
    const drainCut = new Promise<void>((resolve) => (cutDrainShort = resolve));

    // Probed when /readyz asks, at most every 10 s: a wrong upstream password turns the gateway not-ready.
    const upstreamHealth = new UpstreamHealth(config.listeners, log.child({ component: 'upstreams' }));
    const admin: AdminServer = await startAdminServer({
      listen: config.admin.listen,
      metrics,
      log: log.child({ component: 'admin' }),
      jwks: () => signer.publicJwks(),
      readiness: async () => {
        const checks: Record<string, boolean> = { store: store.health.writable };
        for (const l of listeners) checks[`listener:${l.name}`] = l.listening;
        const upstreams = await upstreamHealth.current();
        for (const [name, report] of Object.entries(upstreams)) checks[`upstream:${name}`] = report.ok;
        // The fleet database being away does not make the replica unready: it serves and records locally.
        const detail = shipper === undefined ? undefined : { fleet: shipper.readiness() };
        return {
          ready: Object.values(checks).every(Boolean),
          checks,
          ...(detail ? { detail } : {}),
          upstreams,
          ...(drainWindow === undefined
            ? {}
            : {
                draining: {
                  since: new Date(drainWindow.since).toISOString(),
                  deadline: new Date(drainWindow.deadline).toISOString(),
                  sessions: sessions.openCount,
                },
              }),
        };
      },
      handlers: [
        (req, res, path) => broker.handleHttp(req, res, path),
        sshKeysHandler({
          identity,
          registry: identity.sshKeys,
          maxTtlMs: 7 * 24 * 3_600_000,
          onChange: (event, detail, actor) => recordAdminAction(store, `ssh-key ${event}`, actor, detail),
        }),
        ...(consoleHandler === undefined ? [] : [consoleHandler.handle]),
      ],
    });
    // Closed after the broker: the webhook's last events (requests cancelled by the shutdown) go out while their
    // receivers can still fetch the JWKS to verify them.
    cleanup.splice(cleanup.indexOf(closeBroker) + 1, 0, () => admin.close());
    adminAt.url = admin.url;
    log.info('agentgate started', {
      admin: admin.url,
      ...(consoleConfig === undefined ? {} : { console: consoleConfig.publicUrl }),
      listeners: listeners.map((l) => ({ name: l.name, address: l.address })),
    });

    let stopping: Promise<void> | undefined;
    let draining: Promise<void> | undefined;
    /** True while a drain waits for sessions to finish. */
    let drainWaiting = false;
    const stop = (): Promise<void> => {
      if (drainWaiting) {
        drainWaiting = false;
        log.warn('stopping now: ending the sessions still open', {
          sessions: sessions.openCount,
          connections: openConnections(),
        });
        cutDrainShort();
      }
      stopping ??= (async () => {
        beginDraining(0);
        log.info('agentgate stopping', { sessions: sessions.openCount });
        for (const fn of cleanup)
          await fn().catch((err: unknown) => log.error('shutdown step failed', { error: String(err) }));
        log.info('agentgate stopped');
      })();
      return stopping;
    };
    return {
      get config() {
        return running;
      },
      adminUrl: admin.url,
      store,
      metrics,
      address(name) {
        const l = listeners.find((x) => x.name === name);
        if (!l) throw new Error(`no listener ${name}`);
        return l.address;
      },
      async reload(next) {
        // `allow` is the one part of a running listener a reload replaces (listener-access.ts).
        const listenersNow = withReloadedAllow(running.listeners, next.listeners);
        const needsRestart = sectionsNeedingRestart({ ...running, listeners: listenersNow }, next);
        // Compile everything before swapping anything, so a reload applies whole or not at all.
        const nextIdentity = identity.prepare(next.identity);
        // Listener changes apply at the next restart, except a switch to `default: deny` (listener-defaults.ts).
        const nextPolicy = createPolicy(
          next.rules,
          stricterListenerDefaults(running.listeners, next.listeners),
        );
        const nextMasking = createMaskingService(next.masking, maskingOptions);
        const nextRedactor = createRedactor(next.redact);
        policy = nextPolicy;
        masking = nextMasking;
        redactor = nextRedactor;
        // Open sessions rebuild their maskers at their next safe point (between statements / requests).
        if (!isDeepStrictEqual(next.masking, running.masking)) maskingGeneration++;
        broker.reconfigure(next.approvals);
        running = {
          ...running,
          rules: next.rules,
          masking: next.masking,
          redact: next.redact,
          approvals: next.approvals,
          shutdown: next.shutdown,
          identity: next.identity,
          listeners: listenersNow,
        };
        const identityChanges = await nextIdentity.apply();
        const allowChanges = access.apply(listenersNow, sessions, OPERATOR.name);
        const outcome = reloadOutcome(running, next, needsRestart, identityChanges, allowChanges);
        try {
          recordAdminAction(store, 'config reload', OPERATOR, { file: next.file, ...outcome });
        } catch (err) {
          log.error('recording the config reload failed', { error: String(err) });
        }
        return outcome;
      },
      terminateSession(sessionId, termination) {
        return sessions.terminate(sessionId, termination);
      },
      get draining() {
        return drainWindow !== undefined;
      },
      drain() {
        draining ??= (async () => {
          if (stopping !== undefined) return stopping;
          const drainTimeoutMs = running.shutdown.drainTimeoutMs;
          beginDraining(drainTimeoutMs);
          log.info('draining started', {
            sessions: sessions.openCount,
            connections: openConnections(),
            drainTimeoutMs,
          });
          const deadline = drainWindow!.deadline;
          const progress = setInterval(
            () =>
              log.info('draining: sessions remaining', {
                sessions: sessions.openCount,
                connections: openConnections(),
                remainingMs: Math.max(0, deadline - Date.now()),
              }),
            DRAIN_PROGRESS_MS,
          );
          let timer: NodeJS.Timeout | undefined;
          drainWaiting = true;
          const outcome = await Promise.race([
            Promise.all(listeners.map((l) => l.idle())).then(() => 'idle' as const),
            new Promise<'timeout'>(
              (resolve) => (timer = setTimeout(() => resolve('timeout'), drainTimeoutMs)),
            ),
            drainCut.then(() => 'cut' as const),
          ]);
          drainWaiting = false;
          clearInterval(progress);
          clearTimeout(timer);
          if (outcome === 'idle') log.info('draining done: every session finished');
          if (outcome === 'timeout')
            log.warn('drain timeout reached: ending the sessions still open', {
              sessions: sessions.openCount,
              connections: openConnections(),
            });
          await stop();
        })();
        return draining;
      },
      stop,
    };
  } catch (err) {
    for (const fn of cleanup) await fn().catch(() => undefined);
    throw err;
  }
}

/** Who reloads the configuration: the operator, by a signal to the process; there is no credential behind it. */
const OPERATOR: Identity = { name: 'operator (SIGHUP)', groups: [], source: 'operator' };

/**
 * Admin actions that change who can connect or what is allowed (ssh key registrations, config reloads) are recorded
 * as short sessions of their own, with no protocol: `admin`, and the actor as it authenticated.
 */
function recordAdminAction(
  store: TranscriptStore,
  text: string,
  actor: Identity,
  detail: Record<string, unknown>,
  listener: 'admin' | 'console' = 'admin',
): void {
  const info: AdminSessionInfo = {
    id: newId(),
    listener,
    protocol: 'admin',
    identity: { name: actor.name, groups: [...actor.groups], source: actor.source },
    client: { address: listener, local: true, tls: false },
    startedAt: Date.now(),
  };
  const rec = store.openSession(info);
  rec.append('command', { text, kind: 'admin', detail });
  rec.end({ cause: 'recorded', reason: 'admin action recorded' });
}
