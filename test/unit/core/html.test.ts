import { escapeHtml, html, raw } from '../../../lambda/core/html';

describe('HTML escaping', () => {
  it('escapes every character that can open a tag or leave an attribute', () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y' \``)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39; &#96;',
    );
  });

  it('escapes interpolated values but not the template or raw() parts', () => {
    const name = '"><img src=x onerror=alert(1)>';
    const page = html`<p title="${name}">${name}</p>${raw('<hr>')}`.value;
    expect(page).toBe(
      '<p title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</p><hr>',
    );
  });

  it('joins arrays and renders null and undefined as empty', () => {
    expect(html`<ul>${['<a>', html`<li>${'b'}</li>`]}</ul>${undefined}${null}`.value).toBe('<ul>&lt;a&gt;<li>b</li></ul>');
  });
});
