import { createHash } from 'node:crypto';
import { html, raw, SafeHtml } from '../html';
import { ContactField } from './contact-details';

/**
 * The pages a buyer sees. Every value is escaped (the `html` tag); no script runs; the one inline
 * stylesheet is allowed by its hash, so the Content-Security-Policy stays strict.
 */

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#16191f}
h1{font-size:1.6rem}label{display:block;margin-top:1rem;font-weight:600}
input{display:block;width:100%;max-width:28rem;padding:.5rem;border:1px solid #8d99a8;border-radius:4px;font:inherit}
input[aria-invalid=true]{border-color:#d13212}.error{color:#d13212;margin:.25rem 0 0}
button{margin-top:1.5rem;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#0972d3;color:#fff;font:inherit;font-weight:600;cursor:pointer}
button:focus,input:focus{outline:3px solid #ff9900;outline-offset:2px}.note{color:#545b64}`;

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** Response headers for every page. */
export function pageHeaders(): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': [
      "default-src 'none'",
      `style-src 'sha256-${STYLE_HASH}'`,
      "form-action 'self'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
  };
}

function layout(title: string, main: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<main>
${main}
</main>
</body>
</html>
`.value;
}

const FIELD_LABELS: Record<ContactField, string> = {
  company: 'Company',
  name: 'Your name',
  email: 'Work e-mail',
  phone: 'Phone (optional)',
};
const FIELD_TYPES: Record<ContactField, string> = { company: 'text', name: 'text', email: 'email', phone: 'tel' };
const FIELD_AUTOCOMPLETE: Record<ContactField, string> = {
  company: 'organization',
  name: 'name',
  email: 'email',
  phone: 'tel',
};

export interface RegistrationFormView {
  readonly productName: string;
  /** The signed reference to the customer: the form carries this, never the token. */
  readonly reference: string;
  /** Where the form posts, relative to the page. */
  readonly action: string;
  readonly values?: Partial<Record<ContactField, string>>;
  readonly errors?: Partial<Record<ContactField, string>>;
}

export function registrationPage(view: RegistrationFormView): string {
  const field = (name: ContactField) => {
    const error = view.errors?.[name];
    const errorId = `${name}-error`;
    return html`<label for="${name}">${FIELD_LABELS[name]}</label>
<input id="${name}" name="${name}" type="${FIELD_TYPES[name]}" autocomplete="${FIELD_AUTOCOMPLETE[name]}" value="${view.values?.[name] ?? ''}"${raw(name === 'phone' ? '' : ' required')}${raw(error ? ` aria-invalid="true" aria-describedby="${errorId}"` : '')}>
${error ? html`<p class="error" id="${errorId}">${FIELD_LABELS[name]} ${error}.</p>` : ''}`;
  };
  return layout(
    `Set up your ${view.productName} account`,
    html`<h1>Welcome to ${view.productName}</h1>
<p>Your AWS Marketplace subscription is confirmed. Tell us who to contact to finish setting up your account.</p>
${view.errors ? html`<p class="error" role="alert">Please correct the fields marked below.</p>` : ''}
<form method="post" action="${view.action}" novalidate>
<input type="hidden" name="reference" value="${view.reference}">
${field('company')}
${field('name')}
${field('email')}
${field('phone')}
<button type="submit">Create my account</button>
</form>`,
  );
}

export function thankYouPage(view: { productName: string; productUrl?: string }): string {
  return layout(
    'Thank you',
    html`<h1>Thank you</h1>
<p>Your ${view.productName} account is being set up. We will be in touch by e-mail.</p>
${view.productUrl ? html`<p><a href="${view.productUrl}">Go to ${view.productName}</a></p>` : ''}`,
  );
}

/** A page that explains a problem and what the buyer can do about it. */
export function messagePage(view: { title: string; paragraphs: readonly string[] }): string {
  return layout(view.title, html`<h1>${view.title}</h1>${view.paragraphs.map((p) => html`<p>${p}</p>`)}`);
}
