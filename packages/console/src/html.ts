/**
 * HTML that is escaped by default. Every string interpolated into `html` is escaped unless it is itself a
 * `SafeHtml` (made by `html` or, for markup this package writes, `trusted`), so recorded text — SQL, shell lines,
 * Docker bodies, identity names — can only ever appear as text. Terminal control characters are shown as visible
 * escapes (`visibleText`) so recorded escape sequences cannot restyle or rewrite the page or a copy of it.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/**
 * C0 controls (except tab and newline), DEL and C1 controls, and the Unicode bidi overrides, shown as `\xNN` /
 * `\u{NNNN}`: an ESC of a recorded terminal sequence becomes the four characters `\x1b`.
 */
export function visibleText(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
    },
  );
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  return escapeHtml(visibleText(String(value)));
}

/** The template tag: literal parts are markup, every interpolated value is text unless it is SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Markup this package built itself (an SVG path, a joined list of SafeHtml). Never for recorded text. */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** Join rendered fragments. */
export function join(parts: readonly SafeHtml[], separator = ''): SafeHtml {
  return new SafeHtml(parts.map((p) => p.value).join(separator));
}
