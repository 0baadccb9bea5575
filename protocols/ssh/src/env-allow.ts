/** `LC_*`, `LANG`: shell-style globs (only `*` and `?`) over environment variable names. */
export function envAllowed(name: string, globs: readonly string[]): boolean {
  return globs.some((g) =>
    new RegExp(
      '^' +
        g
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.') +
        '$',
    ).test(name),
  );
}
