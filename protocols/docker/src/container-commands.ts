/**
 * The commands a container being created will run, as dockerd assembles them (moby daemon `merge` and the health
 * checker): the body's `Entrypoint` and `Cmd` completed from the image's defaults, and the health check, which
 * dockerd runs inside the container over and over. The body alone is not enough: an image whose ENTRYPOINT is
 * `sh -c` turns `Cmd: ["rm -rf /data"]` into a shell script, and a create without `Cmd` runs the image's CMD.
 */
import { type GoJsonValue, asStrSlice, asStrings, field } from './go-json.js';

/** The parts of an image's `Config` (`GET /images/{name}/json`) that complete a container's commands. */
export interface ImageDefaults {
  readonly entrypoint?: readonly string[] | undefined;
  readonly cmd?: readonly string[] | undefined;
  /** `Healthcheck.Test`, e.g. `["CMD-SHELL", "curl -f localhost"]`. */
  readonly healthcheck?: readonly string[] | undefined;
  readonly shell?: readonly string[] | undefined;
  /** `Env`: dockerd starts the container with it under the body's own (see `mergedEnv`). */
  readonly env?: readonly string[] | undefined;
}

export function imageDefaultsOf(config: GoJsonValue | undefined): ImageDefaults {
  const test = field(field(config, 'Healthcheck'), 'Test');
  return {
    entrypoint: asStrSlice(field(config, 'Entrypoint')),
    cmd: asStrSlice(field(config, 'Cmd')),
    healthcheck: test === undefined || test === null ? undefined : asStrings(test),
    shell: asStrSlice(field(config, 'Shell')),
    env: asStrings(field(config, 'Env')),
  };
}

/**
 * A body `Entrypoint` absent or null means "the image's"; `""`, `[]` and `[""]` reset it to none (dockerd stores
 * all three as empty).
 */
function userEntrypoint(body: GoJsonValue): string[] | undefined {
  const raw = field(body, 'Entrypoint');
  if (raw === undefined || raw === null) return undefined;
  const ep = asStrSlice(raw) ?? [];
  return ep.length === 1 && ep[0] === '' ? [] : ep;
}

/** The argv dockerd starts the container with (entrypoint + cmd), [] when there is none. */
export function containerArgv(body: GoJsonValue, image: ImageDefaults | undefined): string[] {
  const ep = userEntrypoint(body);
  let cmd = asStrSlice(field(body, 'Cmd')) ?? [];
  let entrypoint = ep ?? [];
  if (entrypoint.length === 0) {
    if (cmd.length === 0) cmd = [...(image?.cmd ?? [])];
    if (ep === undefined) entrypoint = [...(image?.entrypoint ?? [])];
  }
  return [...entrypoint, ...cmd];
}

/**
 * The argvs of the health check dockerd will exec in the container: `CMD args…` runs args, `CMD-SHELL s…` runs
 * the container's `Shell` (default `/bin/sh -c`) followed by s…, `NONE` or an empty test runs nothing. When the
 * body names no `Shell` but the image does, both readings are returned: which one dockerd uses is not ours to guess.
 */
export function healthcheckArgvs(body: GoJsonValue, image: ImageDefaults | undefined): string[][] {
  const own = field(field(body, 'Healthcheck'), 'Test');
  let test = own === undefined || own === null ? [] : asStrings(own);
  if (test.length === 0) test = [...(image?.healthcheck ?? [])];
  const [kind, ...rest] = test;
  if (kind === 'CMD') return rest.length > 0 ? [rest] : [];
  if (kind !== 'CMD-SHELL') return [];
  const shells: string[][] = [];
  const bodyShell = asStrSlice(field(body, 'Shell')) ?? [];
  if (bodyShell.length > 0) shells.push(bodyShell);
  else {
    shells.push(['/bin/sh', '-c']);
    if (image?.shell !== undefined && image.shell.length > 0) shells.push([...image.shell]);
  }
  return shells.map((shell) => [...shell, ...rest]);
}

/**
 * The environment a process starts with: `own` entries, then those of `base` whose name `own` does not set, as
 * moby merges a create's `Env` over the image's (daemon `merge`) and an exec's over the container's
 * (`ReplaceOrAppendEnvValues`, where a bare `NAME` unsets). Either way no overridden `base` value reaches the process.
 */
export function mergedEnv(own: readonly string[], base: readonly string[]): string[] {
  if (base.length === 0) return [...own];
  const nameOf = (entry: string): string => {
    const equals = entry.indexOf('=');
    return equals === -1 ? entry : entry.slice(0, equals);
  };
  const named = new Set(own.map(nameOf));
  return [...own, ...base.filter((entry) => !named.has(nameOf(entry)))];
}
