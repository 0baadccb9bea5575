/**
 * JSON for an event body, on the append hot path.
 *
 * JSON.stringify is V8's native serializer (several times faster than any JS walk over the same object) and
 * renders keys in insertion order, which is all the store needs: it hashes the bytes it stores, not a re-sorted
 * form (event-codec.ts). Two values render differently from what the store wants, and both are rare in bodies:
 * - a Buffer becomes `{"type":"Buffer","data":[…]}` through Buffer#toJSON; the store writes base64;
 * - a bigint makes JSON.stringify throw a TypeError; the store writes it as a decimal string.
 * Both fall back to orderedJson, the same rendering in JS with those two rules.
 */
import { orderedJson } from './canonical-json.js';

/**
 * Part of what JSON.stringify makes of a Buffer (`"type":"Buffer","data":[`). Inside a JSON string literal every
 * `"` is escaped, so this sequence only appears as structure: a Buffer, or a plain string `…Buffer` followed by a
 * `data` array (then the fallback renders it the same). It starts with a letter rare in JSON text, where `"`
 * comes every few characters: the search skips ahead instead of trying a match at each quote.
 */
const bufferShape = 'Buffer","data":[';

export function bodyJson(body: Record<string, unknown>): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch (err) {
    // A bigint (TypeError); a cycle also lands here and orderedJson throws on it with a clear message.
    if (!(err instanceof TypeError)) throw err;
  }
  if (text === undefined || text.includes(bufferShape)) return orderedJson(body);
  return text;
}

/** Fields the store writes in every event's header; a body cannot set them. */
export const reservedFields: readonly string[] = ['session', 'seq', 'ts', 'type', 'prev', 'hash'];

/**
 * Cheap test for the rare body that names a header field (then it is copied without them). A for-in over the
 * keys with a switch, which beats probing the six names (docs/performance.md, "Smaller measurements").
 */
export function hasReservedField(body: Record<string, unknown>): boolean {
  for (const key in body) {
    switch (key) {
      case 'session':
      case 'seq':
      case 'ts':
      case 'type':
      case 'prev':
      case 'hash':
      case '__proto__':
        return true;
      default:
        break;
    }
  }
  return false;
}

export function withoutReservedFields(body: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(body)) {
    if (key === '__proto__' || reservedFields.includes(key)) continue;
    copy[key] = body[key];
  }
  return copy;
}
