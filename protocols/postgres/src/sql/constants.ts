/** Reading literal values out of parse-tree expressions (A_Const, possibly under casts). */
type Node = Record<string, unknown>;

/**
 * The text of a constant argument (`'x'`, `'x'::text`, `1`, `true`), or undefined when it is computed.
 * `onNumber` is called when the text is a numeric literal's value (the analysis cache keys ignore those digits).
 */
export function constantText(node: unknown, onNumber?: () => void): string | undefined {
  let current = node as Node | undefined;
  for (let i = 0; i < 8 && current !== undefined; i++) {
    const cast = current['TypeCast'] as Node | undefined;
    if (cast !== undefined) {
      current = cast['arg'] as Node | undefined;
      continue;
    }
    const aConst = current['A_Const'] as Node | undefined;
    if (aConst === undefined) return undefined;
    const sval = aConst['sval'] as Node | undefined;
    if (sval !== undefined) return typeof sval['sval'] === 'string' ? sval['sval'] : '';
    const ival = aConst['ival'] as Node | undefined;
    if (ival !== undefined || aConst['fval'] !== undefined) onNumber?.();
    if (ival !== undefined) return String(typeof ival['ival'] === 'number' ? ival['ival'] : 0);
    const fval = aConst['fval'] as Node | undefined;
    if (fval !== undefined) return String(fval['fval'] ?? '');
    const boolval = aConst['boolval'] as Node | undefined;
    if (boolval !== undefined) return boolval['boolval'] === true ? 'true' : 'false';
    return undefined; // NULL
  }
  return undefined;
}

/** Does any node of this subtree have one of the given type names? */
export function containsNode(value: unknown, types: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) return value.some((v) => containsNode(v, types));
  if (value === null || typeof value !== 'object') return false;
  for (const [k, v] of Object.entries(value as Node)) {
    if (types.has(k)) return true;
    if (typeof v === 'object' && containsNode(v, types)) return true;
  }
  return false;
}
