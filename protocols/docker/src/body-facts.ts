/**
 * Policy facts from request bodies, read as dockerd reads them (see go-json.ts). Decisions are taken at create
 * time: a container's HostConfig is judged by `POST /containers/create` (and the legacy `start` body of API < 1.24),
 * an exec by its `Cmd` and by the container it enters.
 *
 * Choices (documented in the README):
 * - Legacy top-level HostConfig fields (moby runconfig `ContainerConfigWrapper`) and `HostConfig` are both read and
 *   their facts united: over-approximating is the safe direction.
 * - `privileged` is true for `Privileged`, `CapAdd: ALL`, `SecurityOpt systempaths=unconfined`, `DeviceCgroupRules`,
 *   an exec with `Privileged`, an exec into a privileged container, and joining (`container:X` namespace modes)
 *   a privileged container.
 * - `seccomp=unconfined` / a custom seccomp profile / `apparmor=unconfined` / `label=disable` appear as the pseudo
 *   capabilities SECCOMP_UNCONFINED / SECCOMP_CUSTOM / APPARMOR_UNCONFINED / LABEL_DISABLE.
 * - `Devices` host paths and local-driver bind volumes count as host mounts.
 * - Host namespaces are reported one by one (`PidMode: host` → `pid`, ... `CgroupnsMode: host` → `cgroup`), so a
 *   rule can tell `--network host` from the host cgroup namespace dockerd reports for every container on cgroup v1.
 */
import { posix } from 'node:path';
import type { HostNamespace, ShellSimpleCommand } from '@agentgate/core';
import { type ImageDefaults, containerArgv, healthcheckArgvs, mergedEnv } from './container-commands.js';
import { analyzeExecArgv, analyzeExecEnv } from './exec-analysis.js';
import {
  GoJsonObject,
  type GoJsonValue,
  asBool,
  asObjects,
  asString,
  asStrings,
  field,
  mapEntries,
} from './go-json.js';
import { normalizeImageRef } from './image-ref.js';

/** What the gateway learns about an existing container by inspecting it upstream. */
export interface ContainerFacts {
  readonly privileged: boolean;
  readonly hostMounts: readonly string[];
  readonly hostNamespaces: readonly HostNamespace[];
  readonly capabilities: readonly string[];
  readonly image?: string;
  /** `Config.Env`: what an exec into it starts with under the exec's own `Env`. */
  readonly env?: readonly string[];
}

export interface UpstreamLookup {
  /** Undefined when the container does not exist (dockerd will answer 404 itself). */
  container(nameOrId: string): Promise<ContainerFacts | undefined>;
  /** Host paths a named local volume mounts (`o=bind device=/path`, a device, overlay dirs), [] for ordinary volumes. */
  volumeHostPaths(name: string): Promise<readonly string[]>;
  /** The image's command defaults; undefined when dockerd has no such image (its create will answer 404). */
  imageDefaults(ref: string): Promise<ImageDefaults | undefined>;
}

export class FactsBuilder {
  privileged = false;
  private readonly mounts = new Set<string>();
  private readonly namespaces = new Set<HostNamespace>();
  readonly capabilities = new Set<string>();
  readonly images = new Set<string>();
  exec: ShellSimpleCommand[] | undefined;
  unanalysable: string | undefined;
  readonly detail: Record<string, unknown> = {};
  readonly privilegedBecause: string[] = [];

  markPrivileged(why: string): void {
    this.privileged = true;
    this.privilegedBecause.push(why);
  }

  /**
   * dockerd cleans a host path lexically (Go's filepath.Clean) before mounting it, so `//etc`, `/./etc` and
   * `/tmp/../etc` mount `/etc`: the fact is the cleaned path, or rules comparing prefixes would miss it.
   */
  addHostMount(path: string): void {
    this.mounts.add(path.startsWith('/') ? posix.normalize(path) : path);
  }

  get hostMounts(): ReadonlySet<string> {
    return this.mounts;
  }

  inherit(target: ContainerFacts, why: string): void {
    if (target.privileged) this.markPrivileged(why);
    for (const m of target.hostMounts) this.addHostMount(m);
    for (const n of target.hostNamespaces) this.namespaces.add(n);
    for (const c of target.capabilities) this.capabilities.add(c);
  }

  addHostNamespace(namespace: HostNamespace): void {
    this.namespaces.add(namespace);
  }

  /** In a fixed order, so the recorded facts do not depend on the order of the JSON fields. */
  get hostNamespaces(): HostNamespace[] {
    return HOST_NAMESPACE_ORDER.filter((n) => this.namespaces.has(n));
  }
}

const HOST_NAMESPACE_ORDER: readonly HostNamespace[] = ['pid', 'network', 'ipc', 'uts', 'userns', 'cgroup'];

function normalizeCapability(cap: string): string {
  const up = cap.trim().toUpperCase();
  return up.startsWith('CAP_') ? up.slice(4) : up;
}

/** Filesystem types whose `device` names a remote share (`:/export`, `//server/share`), not a host path. */
const NETWORK_FILESYSTEMS = new Set(['nfs', 'nfs4', 'cifs', 'smb3']);

/**
 * The host paths a local-driver volume mounts. The local driver passes its options to mount(2) as they are, so a
 * host path can come in three ways: a bind (`type=none,o=bind,device=/x`), a block device or directory as
 * `device` with any other local type (`type=ext4,device=/dev/sda1`), and paths inside the mount options
 * (`type=overlay,o=lowerdir=/etc,…`). Every absolute path in `device` or in an option value counts, the lists of
 * overlay's `lowerdir` one by one: a type the gateway does not know must not hide a host directory.
 */
export function localVolumeHostPaths(
  driver: string | undefined,
  options: Map<string, GoJsonValue>,
): string[] {
  if (driver !== undefined && driver !== '' && driver !== 'local') return [];
  const type = (asString(options.get('type')) ?? '').trim().toLowerCase();
  const paths: string[] = [];
  const device = asString(options.get('device'));
  if (device !== undefined && device.startsWith('/') && !NETWORK_FILESYSTEMS.has(type)) paths.push(device);
  for (const opt of (asString(options.get('o')) ?? '').split(',')) {
    const value = opt.slice(opt.indexOf('=') + 1).trim();
    for (const part of value.split(':')) if (part.startsWith('/')) paths.push(part);
  }
  return paths;
}

/** HostConfig fields that name a namespace mode, and the namespace `host` shares (moby api/types/container). */
const NAMESPACE_FIELDS: readonly (readonly [string, HostNamespace])[] = [
  ['PidMode', 'pid'],
  ['NetworkMode', 'network'],
  ['IpcMode', 'ipc'],
  ['UsernsMode', 'userns'],
  ['UTSMode', 'uts'],
  ['CgroupnsMode', 'cgroup'],
  ['Cgroup', 'cgroup'],
];

async function addBind(f: FactsBuilder, spec: string, lookup: UpstreamLookup): Promise<void> {
  // Binds entries are `src:dst[:opts]`; a src that is not an absolute path names a volume.
  const src = spec.split(':')[0] ?? '';
  if (src.startsWith('/')) f.addHostMount(src);
  else if (src !== '') for (const p of await lookup.volumeHostPaths(src)) f.addHostMount(p);
}

/** Facts of one HostConfig object (inner `HostConfig` or the legacy top-level fields). */
export async function hostConfigFacts(
  f: FactsBuilder,
  hc: GoJsonValue | undefined,
  lookup: UpstreamLookup,
): Promise<void> {
  if (!(hc instanceof GoJsonObject)) return;
  hostConfigRisks(f, hc);
  for (const b of asStrings(field(hc, 'Binds'))) await addBind(f, b, lookup);
  for (const m of asObjects(field(hc, 'Mounts'))) {
    const type = (asString(field(m, 'Type')) ?? '').toLowerCase();
    const source = asString(field(m, 'Source')) ?? '';
    if (type === 'bind' && source !== '') f.addHostMount(source);
    if (type === 'volume') {
      const driverConfig = field(field(m, 'VolumeOptions'), 'DriverConfig');
      for (const p of localVolumeHostPaths(
        asString(field(driverConfig, 'Name')),
        mapEntries(field(driverConfig, 'Options')),
      ))
        f.addHostMount(p);
      if (source !== '') for (const p of await lookup.volumeHostPaths(source)) f.addHostMount(p);
    }
  }
  for (const spec of asStrings(field(hc, 'VolumesFrom'))) {
    const name = spec.split(':')[0] ?? '';
    const target = name === '' ? undefined : await lookup.container(name);
    if (target) for (const m of target.hostMounts) f.addHostMount(m);
  }
  for (const [key] of NAMESPACE_FIELDS) {
    const mode = asString(field(hc, key));
    if (mode?.toLowerCase().startsWith('container:')) {
      // Joining another container's namespace gives what that container has (moby daemon/container_operations).
      const target = await lookup.container(mode.slice('container:'.length));
      if (target) f.inherit(target, `${key} joins a privileged container`);
    }
  }
}

/**
 * What a HostConfig grants by itself, without looking anything up: privilege, capabilities, devices, host
 * namespaces, security options. One reading for a container being created and for one inspected before an exec
 * into it, so both are judged alike.
 */
function hostConfigRisks(f: FactsBuilder, hc: GoJsonValue | undefined): void {
  if (asBool(field(hc, 'Privileged'))) f.markPrivileged('Privileged');
  for (const cap of asStrings(field(hc, 'CapAdd'))) {
    const c = normalizeCapability(cap);
    f.capabilities.add(c);
    if (c === 'ALL') f.markPrivileged('CapAdd ALL');
  }
  for (const d of asObjects(field(hc, 'Devices'))) {
    const p = asString(field(d, 'PathOnHost'));
    if (p) f.addHostMount(p);
  }
  if (asStrings(field(hc, 'DeviceCgroupRules')).length > 0) f.markPrivileged('DeviceCgroupRules');
  for (const [key, namespace] of NAMESPACE_FIELDS) {
    if ((asString(field(hc, key)) ?? '').toLowerCase() === 'host') f.addHostNamespace(namespace);
  }
  for (const opt of asStrings(field(hc, 'SecurityOpt'))) {
    const m = /^([a-z-]+)[=:](.*)$/is.exec(opt.trim());
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (key === 'seccomp') {
      if (value.toLowerCase() === 'unconfined') f.capabilities.add('SECCOMP_UNCONFINED');
      else if (value !== 'builtin' && value !== 'default') f.capabilities.add('SECCOMP_CUSTOM');
    } else if (key === 'apparmor' && value.toLowerCase() === 'unconfined')
      f.capabilities.add('APPARMOR_UNCONFINED');
    else if (key === 'label' && value.toLowerCase() === 'disable') f.capabilities.add('LABEL_DISABLE');
    else if (key === 'systempaths' && value.toLowerCase() === 'unconfined')
      f.markPrivileged('systempaths=unconfined');
  }
  const sysctls = mapEntries(field(hc, 'Sysctls'));
  if (sysctls.size > 0) f.detail.sysctls = Object.fromEntries(sysctls);
  const runtime = asString(field(hc, 'Runtime'));
  if (runtime) f.detail.runtime = runtime;
}

/** Adds the simple commands of one argv to the call's facts (a create may run several: its command and health check). */
function addExec(f: FactsBuilder, argv: readonly string[], strict: boolean): void {
  const analysis = analyzeExecArgv(argv);
  f.exec ??= [];
  if (analysis.error !== undefined) {
    if (strict) f.unanalysable = `exec command cannot be parsed: ${analysis.error}`;
    f.exec.push({ program: null, argv, text: argv.join(' ') });
    return;
  }
  f.exec.push(...analysis.commands);
}

/**
 * What the process's environment makes bash or the loader run (exec-analysis.ts). Only variables that run something
 * leave commands, so ordinary values (and secrets) stay out of the facts; an unparsable value is unknown code.
 */
function addEnv(f: FactsBuilder, env: readonly string[], strict: boolean): void {
  if (env.length === 0) return;
  const analysis = analyzeExecEnv(env);
  if (analysis.error !== undefined) {
    if (strict) f.unanalysable = `exec Env cannot be parsed: ${analysis.error}`;
    (f.exec ??= []).push({ program: null, argv: ['Env'], text: `Env: ${analysis.error}` });
    return;
  }
  if (analysis.commands.length > 0) (f.exec ??= []).push(...analysis.commands);
}

/**
 * Of the Env a process inherits (the image's at create, the container's at exec), the bash functions: they change
 * what a command the request names runs. The rest is part of the image, whose files are not judged either; judging
 * its loader variables would make every create from an image that sets LD_LIBRARY_PATH (CUDA's) an unknown program.
 */
function inheritedFunctions(env: readonly string[] | undefined): string[] {
  return (env ?? []).filter((entry) => entry.startsWith('BASH_FUNC_'));
}

/** `POST /containers/create` (body: Config + HostConfig + NetworkingConfig, legacy HostConfig fields on top). */
export async function containerCreateFacts(
  f: FactsBuilder,
  body: GoJsonValue,
  lookup: UpstreamLookup,
): Promise<void> {
  const image = asString(field(body, 'Image'));
  if (image) f.images.add(normalizeImageRef(image));
  await hostConfigFacts(f, body, lookup);
  await hostConfigFacts(f, field(body, 'HostConfig'), lookup);
  // The image fills in what the body leaves out, so what runs is read from both (see container-commands.ts).
  const defaults = image ? await lookup.imageDefaults(image) : undefined;
  const argv = containerArgv(body, defaults);
  if (argv.length > 0) addExec(f, argv, false);
  for (const check of healthcheckArgvs(body, defaults)) addExec(f, check, false);
  const user = asString(field(body, 'User'));
  if (user) f.detail.user = user;
  const env = asStrings(field(body, 'Env'));
  if (env.length > 0) f.detail.envNames = env.map((e) => e.split('=')[0]);
  // dockerd starts the process with the image's Env under the body's: both can hold code (BASH_FUNC_ls%%=…).
  addEnv(f, mergedEnv(env, inheritedFunctions(defaults?.env)), false);
}

/** `POST /containers/{id}/exec`: the exec's own Privileged flag, its Cmd, and the container it runs in. */
export async function execCreateFacts(
  f: FactsBuilder,
  body: GoJsonValue,
  containerName: string,
  lookup: UpstreamLookup,
): Promise<void> {
  if (asBool(field(body, 'Privileged'))) f.markPrivileged('exec Privileged');
  const cmd = field(body, 'Cmd');
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((x) => typeof x !== 'string')) {
    f.unanalysable = 'exec Cmd must be a non-empty array of strings';
  } else addExec(f, cmd as string[], true);
  const user = asString(field(body, 'User'));
  if (user) f.detail.user = user;
  const target = await lookup.container(containerName);
  if (target) {
    f.inherit(target, 'exec into a privileged container');
    if (target.image) f.images.add(target.image);
  }
  // The exec starts with the container's Env under its own; the container's may not have passed through us.
  addEnv(f, mergedEnv(asStrings(field(body, 'Env')), inheritedFunctions(target?.env)), true);
}

/** `POST /volumes/create` with the local driver's bind options mounts a host path. */
export function volumeCreateFacts(f: FactsBuilder, body: GoJsonValue): void {
  for (const p of localVolumeHostPaths(
    asString(field(body, 'Driver')),
    mapEntries(field(body, 'DriverOpts')),
  ))
    f.addHostMount(p);
}

/** Facts of an inspected container (`GET /containers/{id}/json`), for exec and namespace joins. */
export function factsOfInspectedContainer(inspect: GoJsonValue): ContainerFacts {
  const f = new FactsBuilder();
  hostConfigRisks(f, field(inspect, 'HostConfig'));
  // The inspected Mounts are what dockerd resolved (binds, volumes with a bind device): host paths as they are.
  for (const m of asObjects(field(inspect, 'Mounts'))) {
    const type = asString(field(m, 'Type'));
    const source = asString(field(m, 'Source'));
    if (type === 'bind' && source) f.addHostMount(source);
  }
  const image = asString(field(field(inspect, 'Config'), 'Image'));
  const env = asStrings(field(field(inspect, 'Config'), 'Env'));
  return {
    privileged: f.privileged,
    hostMounts: [...f.hostMounts],
    hostNamespaces: f.hostNamespaces,
    capabilities: [...f.capabilities],
    ...(image ? { image: normalizeImageRef(image) } : {}),
    ...(env.length > 0 ? { env } : {}),
  };
}
