/**
 * Where a browser goes after signing in: only a path of this console. The value is resolved the way a browser
 * resolves a Location header, so spellings a browser reads as another origin (`//evil`, `/\evil`, and `/<TAB>/evil`,
 * whose tab and newlines the URL parser drops) cannot pass a check that looked only at the first characters.
 */
export function safeReturnTo(value: string | null | undefined, publicOrigin: string): string {
  if (value === null || value === undefined || !value.startsWith('/')) return '/';
  // Control characters and backslashes have no place in a console path; browsers rewrite or drop them.
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return '/';
  let resolved: URL;
  try {
    resolved = new URL(value, publicOrigin);
  } catch {
    return '/';
  }
  // `/a/../..//evil` resolves to the path `//evil`, which a browser would read as another origin in turn.
  if (resolved.origin !== publicOrigin || resolved.pathname.startsWith('//')) return '/';
  return resolved.pathname + resolved.search + resolved.hash;
}
