/**
 * Canonical JSON for signed payloads (checkpoints): object keys sorted by UTF-16 code units at every depth, no
 * whitespace, values rendered as JSON.stringify renders them (the JSON Canonicalization Scheme, RFC 8785, minus
 * its number rules, which JSON.stringify already matches for the integers and plain decimals we store).
 *
 * The property that matters: canonicalJson(JSON.parse(canonicalJson(x))) === canonicalJson(x), so a payload can
 * be rebuilt from parsed fields. Events do not need it: they are hashed as the exact bytes stored (event-codec.ts).
 */
export function canonicalJson(value: unknown): string {
  const out = serialize(value, true, 0);
  return out === undefined ? 'null' : out;
}

/**
 * The same rendering with object keys in their own order (insertion order, as JSON.stringify): the slow path of
 * event bodies that JSON.stringify cannot render as the store wants (Buffers, bigints), see event-json.ts.
 */
export function orderedJson(value: unknown): string {
  const out = serialize(value, false, 0);
  return out === undefined ? 'null' : out;
}

/** Deeper than this is a cycle (or a body nobody should record); JSON.stringify throws on cycles too. */
const maxDepth = 256;

function serialize(value: unknown, sortKeys: boolean, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // String(n) is JSON's number form for finite numbers (ECMA-262 Number::toString), without the call cost.
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    default:
      break;
  }
  if (value === null) return 'null';
  if (depth > maxDepth) throw new TypeError('cannot serialize: nested too deep (a cycle?)');
  const withToJson = value as { toJSON?: () => unknown };
  // Buffers become base64 rather than JSON.stringify's `{type, data:[…]}`: smaller and readable in exports.
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (typeof withToJson.toJSON === 'function') return serialize(withToJson.toJSON(), sortKeys, depth + 1);
  if (Array.isArray(value)) {
    let s = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ',';
      const item = serialize(value[i], sortKeys, depth + 1);
      s += item === undefined ? 'null' : item;
    }
    return s + ']';
  }
  const record = value as Record<string, unknown>;
  const keys = sortKeys ? Object.keys(record).sort(byCodeUnits) : Object.keys(record);
  let s = '{';
  let first = true;
  for (const key of keys) {
    const item = serialize(record[key], sortKeys, depth + 1);
    if (item === undefined) continue;
    if (!first) s += ',';
    first = false;
    s += quoteKey(key) + ':' + item;
  }
  return s + '}';
}

/** The order JSON Canonicalization (RFC 8785 §3.2.3) asks for: UTF-16 code units. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Event bodies reuse a small set of keys: quote each once. */
const quotedKeys = new Map<string, string>();
function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size < 4096) quotedKeys.set(key, quoted);
  }
  return quoted;
}
