/**
 * JSON read the way dockerd's Go `encoding/json` reads it into structs, so the gateway decides on the same values
 * dockerd will act on:
 * - object keys match struct fields case-insensitively, with Unicode simple folding (`ſ` = `s`, `K` = `k`);
 * - every matching key is applied in document order, so the last duplicate wins;
 * - a struct or map field given twice is merged (Go decodes into the existing pointer/map), `null` resets it;
 * - map keys (Labels, Sysctls, DriverOpts) are exact.
 * `JSON.parse` cannot express this (it keeps one value per exact key), hence this small parser that keeps every
 * entry in order.
 */
export type GoJsonValue = null | boolean | number | string | GoJsonValue[] | GoJsonObject;

export class GoJsonObject {
  constructor(readonly entries: ReadonlyArray<readonly [string, GoJsonValue]>) {}
}

export class GoJsonSyntaxError extends Error {}

const MAX_DEPTH = 1000;

/** Parse one JSON document; anything but whitespace after it is an error (dockerd would silently ignore it). */
export function parseGoJson(text: string): GoJsonValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new GoJsonSyntaxError(`invalid JSON at offset ${i}: ${what}`);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    // i is at the opening quote
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        i += 2;
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            out += String.fromCharCode(parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            fail('bad escape');
        }
        start = i;
        continue;
      }
      i++;
    }
  };
  const value = (depth: number): GoJsonValue => {
    if (depth > MAX_DEPTH) fail('nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: Array<readonly [string, GoJsonValue]> = [];
      ws();
      if (text[i] === '}') {
        i++;
        return new GoJsonObject(entries);
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected object key');
        const k = str();
        ws();
        if (text[i] !== ':') fail('expected colon');
        i++;
        entries.push([k, value(depth + 1)]);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return new GoJsonObject(entries);
        }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const items: GoJsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return items;
        }
        fail('expected , or ]');
      }
    }
    if (c === '"') return str();
    const lit = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i, i + 64),
    );
    if (!lit) return fail('unexpected token');
    i += lit[0].length;
    if (lit[0] === 'true') return true;
    if (lit[0] === 'false') return false;
    if (lit[0] === 'null') return null;
    return Number(lit[0]);
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('data after the JSON value');
  return v;
}

/** Go's field-name folding (encoding/json foldName): ASCII upper-case, other runes ToUpper(ToLower(r)). */
export function foldKey(key: string): string {
  let out = '';
  for (const ch of key) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      out += cp >= 0x61 && cp <= 0x7a ? String.fromCharCode(cp - 32) : ch;
      continue;
    }
    const folded = ch.toLowerCase().toUpperCase();
    out += [...folded].length === 1 ? folded : ch;
  }
  return out;
}

/**
 * The value a Go struct field named `name` ends up with after decoding `obj`: every key that folds to the name is
 * applied in order; objects merge into an earlier object value, `null` clears it, anything else replaces it.
 */
export function field(obj: GoJsonValue | undefined, name: string): GoJsonValue | undefined {
  if (!(obj instanceof GoJsonObject)) return undefined;
  const want = foldKey(name);
  let result: GoJsonValue | undefined;
  for (const [k, v] of obj.entries) {
    if (k !== name && foldKey(k) !== want) continue;
    if (v instanceof GoJsonObject && result instanceof GoJsonObject)
      result = new GoJsonObject([...result.entries, ...v.entries]);
    else result = v;
  }
  return result;
}

/** A Go `map[string]T` field: exact keys, last duplicate wins. */
export function mapEntries(obj: GoJsonValue | undefined): Map<string, GoJsonValue> {
  const out = new Map<string, GoJsonValue>();
  if (obj instanceof GoJsonObject) for (const [k, v] of obj.entries) out.set(k, v);
  return out;
}

export function asString(v: GoJsonValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function asBool(v: GoJsonValue | undefined): boolean {
  return v === true;
}

/** A `[]string` field; non-string elements are dropped (dockerd would refuse the whole body). */
export function asStrings(v: GoJsonValue | undefined): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function asObjects(v: GoJsonValue | undefined): GoJsonObject[] {
  return Array.isArray(v) ? v.filter((x): x is GoJsonObject => x instanceof GoJsonObject) : [];
}

/** Docker's `strslice.StrSlice`: a JSON string or an array of strings. */
export function asStrSlice(v: GoJsonValue | undefined): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return asStrings(v);
  return undefined;
}
