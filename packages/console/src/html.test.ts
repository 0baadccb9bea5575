import { describe, expect, it } from '@jest/globals';
import { html, trusted, visibleText } from './html.js';

describe('html', () => {
  it('escapes every interpolated string, in text and in attributes', () => {
    const payload = `<script>alert(1)</script>"><img src=x onerror='x'>\``;
    const out = html`<p title="${payload}">${payload}</p>`.value;
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('<img');
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&#96;">' +
        '&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=&#39;x&#39;&gt;&#96;</p>',
    );
  });

  it('keeps nested html and trusted markup, joins lists, drops null, undefined and false', () => {
    const items = ['a<b', 'c'].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}${0}`.value).toBe(
      '<ul><li>a&lt;b</li><li>c</li></ul>0',
    );
    expect(html`${trusted('<b>ok</b>')}`.value).toBe('<b>ok</b>');
  });

  it('shows terminal control characters and bidi overrides as visible escapes', () => {
    expect(visibleText('red \x1b[31mtext\x07 tab\tnew\nline \u202eevil')).toBe(
      'red \\x1b[31mtext\\x07 tab\tnew\nline \\u{202e}evil',
    );
    expect(html`${'\x1b]0;title\x07'}`.value).toBe('\\x1b]0;title\\x07');
    expect(visibleText('\u0085\u009b')).toBe('\\x85\\x9b');
  });
});
