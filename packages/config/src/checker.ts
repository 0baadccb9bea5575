/**
 * The small toolkit the config sections are written with: typed readers that never throw but collect
 * path-precise issues (`expected …, found …`), `${env:NAME}` expansion on every string they read, and path
 * resolution against the config file's directory.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDuration } from '@agentgate/core';
import type { ConfigIssue } from './config-error.js';
import { didYouMean } from './did-you-mean.js';

export type Mapping = Record<string, unknown>;

export const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
export const item = (path: string, index: number): string => `${path}[${index}]`;

const ENV_REFERENCE = /\$\{env:([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How a value is shown after `found`: short, typed, and never a secret. */
export function describe(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    if (secret) return `a string of ${value.length} characters`;
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** A string read through the checker: `fromEnv` says it was (partly) produced by `${env:…}`. */
interface Scalar {
  readonly value: unknown;
  readonly fromEnv: boolean;
}

export class Checker {
  readonly issues: ConfigIssue[] = [];

  constructor(
    readonly baseDir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  report(path: string, message: string): void {
    this.issues.push({ path: path === '' ? '(root)' : path, message });
  }

  expected(path: string, what: string, found: unknown, secret = false): void {
    this.report(path, `expected ${what}, found ${describe(found, secret)}`);
  }

  /** Expand `${env:NAME}` in a string; an unset variable is an issue at `path`. */
  private scalar(value: unknown, path: string): Scalar | undefined {
    if (typeof value !== 'string' || !value.includes('${env:')) return { value, fromEnv: false };
    let missing = false;
    const expanded = value.replace(ENV_REFERENCE, (_whole, name: string) => {
      if (!ENV_NAME.test(name)) {
        this.report(path, `expected \${env:NAME} with NAME a variable name, found \${env:${name}}`);
        missing = true;
        return '';
      }
      const found = this.env[name];
      if (found === undefined) {
        this.report(
          path,
          `expected environment variable ${name} to be set (\${env:${name}}), found it unset`,
        );
        missing = true;
        return '';
      }
      return found;
    });
    return missing ? undefined : { value: expanded, fromEnv: true };
  }

  /**
   * A mapping whose keys must all be known: unknown keys are issues with a did-you-mean. Returns undefined
   * (after reporting) when the value is not a mapping. Required keys are reported by their readers.
   */
  mapping(value: unknown, path: string, known: readonly string[]): Mapping | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.expected(path, `a mapping with keys ${known.join(', ')}`, value);
      return undefined;
    }
    const mapping = value as Mapping;
    for (const key of Object.keys(mapping)) {
      if (known.includes(key)) continue;
      const hint = didYouMean(key, known);
      this.report(
        child(path, key),
        hint === undefined
          ? `expected one of the keys ${known.join(', ')}, found unknown key "${key}"`
          : `expected one of the keys ${known.join(', ')}, found unknown key "${key}" (did you mean "${hint}"?)`,
      );
    }
    return mapping;
  }

  /** A list (absent → `fallback`); each element is read with `read`. */
  list<T>(
    value: unknown,
    path: string,
    read: (element: unknown, path: string) => T | undefined,
    fallback?: readonly T[],
  ): T[] | undefined {
    if (value === undefined && fallback !== undefined) return [...fallback];
    if (!Array.isArray(value)) {
      this.expected(path, 'a list', value);
      return undefined;
    }
    const out: T[] = [];
    value.forEach((element, index) => {
      const read_ = read(element, item(path, index));
      if (read_ !== undefined) out.push(read_);
    });
    return out;
  }

  string(
    value: unknown,
    path: string,
    options: { nonEmpty?: boolean; secret?: boolean } = {},
  ): string | undefined {
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined; // the env issue is reported
    const v = scalar.value;
    if (typeof v !== 'string') {
      this.expected(path, 'a string', v, options.secret);
      return undefined;
    }
    if ((options.nonEmpty ?? true) && v.length === 0) {
      this.expected(path, 'a non-empty string', v);
      return undefined;
    }
    return v;
  }

  optionalString(
    value: unknown,
    path: string,
    options: { nonEmpty?: boolean; secret?: boolean } = {},
  ): string | undefined {
    return value === undefined ? undefined : this.string(value, path, options);
  }

  /** One of `choices`; absent → `fallback` (when given). */
  oneOf<T extends string>(value: unknown, path: string, choices: readonly T[], fallback?: T): T | undefined {
    if (value === undefined && fallback !== undefined) return fallback;
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined;
    const v = scalar.value;
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    const hint = typeof v === 'string' ? didYouMean(v, choices) : undefined;
    this.expected(path, `one of ${choices.join(', ')}`, v);
    if (hint !== undefined)
      this.issues[this.issues.length - 1] = {
        path,
        message: `${this.issues.at(-1)!.message} (did you mean "${hint}"?)`,
      };
    return undefined;
  }

  boolean(value: unknown, path: string, fallback?: boolean): boolean | undefined {
    if (value === undefined && fallback !== undefined) return fallback;
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined;
    const { value: v, fromEnv } = scalar;
    if (typeof v === 'boolean') return v;
    if (fromEnv && (v === 'true' || v === 'false')) return v === 'true';
    this.expected(path, 'true or false', v);
    return undefined;
  }

  integer(
    value: unknown,
    path: string,
    range: { min?: number; max?: number; fallback?: number } = {},
  ): number | undefined {
    if (value === undefined && range.fallback !== undefined) return range.fallback;
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined;
    const { value: raw, fromEnv } = scalar;
    const v = fromEnv && typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    const min = range.min ?? Number.MIN_SAFE_INTEGER;
    const max = range.max ?? Number.MAX_SAFE_INTEGER;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const bounds =
        range.min !== undefined && range.max !== undefined
          ? ` from ${min} to ${max}`
          : range.min !== undefined
            ? ` of at least ${min}`
            : '';
      this.expected(path, `an integer${bounds}`, v);
      return undefined;
    }
    return v;
  }

  /** A duration string (`500ms`, `120s`, `8h`, `1h30m`) in milliseconds. */
  duration(value: unknown, path: string, fallbackMs?: number): number | undefined {
    if (value === undefined && fallbackMs !== undefined) return fallbackMs;
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined;
    const v = scalar.value;
    if (typeof v === 'string') {
      try {
        return parseDuration(v.trim());
      } catch {
        // reported below
      }
    }
    this.expected(path, 'a duration such as 500ms, 120s, 5m, 8h or 1h30m', v);
    return undefined;
  }

  /** A byte size: an integer, or `64MiB`, `512KiB`, `1GB`, `100B`. */
  size(value: unknown, path: string, fallback: number): number | undefined {
    if (value === undefined) return fallback;
    const scalar = this.scalar(value, path);
    if (scalar === undefined) return undefined;
    const v = scalar.value;
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    const units: Record<string, number> = {
      b: 1,
      kb: 1e3,
      mb: 1e6,
      gb: 1e9,
      kib: 1024,
      mib: 1024 ** 2,
      gib: 1024 ** 3,
    };
    const match = typeof v === 'string' ? /^(\d+)\s*([a-z]+)?$/i.exec(v.trim()) : null;
    const unit = units[(match?.[2] ?? 'b').toLowerCase()];
    if (match !== null && unit !== undefined && Number(match[1]) > 0) return Number(match[1]) * unit;
    this.expected(path, 'a positive size in bytes such as 1048576, 512KiB, 64MiB or 1GB', v);
    return undefined;
  }

  /** A path, resolved against the config file's directory. `mustExist` checks it is a readable file now. */
  filePath(value: unknown, path: string, mustExist = false): string | undefined {
    const text = this.string(value, path);
    if (text === undefined) return undefined;
    const absolute = isAbsolute(text) ? text : resolve(this.baseDir, text);
    if (mustExist) {
      if (!existsSync(absolute)) {
        this.report(path, `expected an existing file, found no file at ${absolute}`);
        return undefined;
      }
      if (!statSync(absolute).isFile()) {
        this.report(path, `expected a file, found a directory or special file at ${absolute}`);
        return undefined;
      }
    }
    return absolute;
  }

  /** `group:NAME` or `identity:NAME`. */
  principal(value: unknown, path: string): string | undefined {
    const text = this.string(value, path);
    if (text === undefined) return undefined;
    if (/^(group|identity):\S+$/.test(text)) return text;
    this.expected(path, 'a principal "group:NAME" or "identity:NAME"', text);
    return undefined;
  }

  principals(value: unknown, path: string, fallback?: readonly string[]): string[] | undefined {
    return this.list(value, path, (element, p) => this.principal(element, p), fallback);
  }

  strings(
    value: unknown,
    path: string,
    fallback?: readonly string[],
    nonEmptyList = false,
  ): string[] | undefined {
    const out = this.list(value, path, (element, p) => this.string(element, p), fallback);
    if (out !== undefined && nonEmptyList && Array.isArray(value) && value.length === 0) {
      this.expected(path, 'a non-empty list', value);
      return undefined;
    }
    return out;
  }
}
