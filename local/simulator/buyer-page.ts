import { html, raw, SafeHtml } from '../../lambda/core/html';
import { MarketplaceState } from './state';

/**
 * The buyer's side of AWS Marketplace: a product list with Subscribe buttons; subscribing creates a
 * customer and a registration token and form-POSTs the token to the product's fulfillment URL, as
 * AWS Marketplace does when the buyer chooses "Set up your account".
 */

export const SUBSCRIBE_PATH = '/_buyer/subscribe';

function page(title: string, body: SafeHtml, script = ''): string {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#16191f}
.product{border:1px solid #d5dbdb;border-radius:8px;padding:1rem;margin:1rem 0}
button{background:#ff9900;border:0;border-radius:4px;padding:.5rem 1rem;font-weight:600;cursor:pointer;margin-right:.5rem}
code{background:#f2f3f3;padding:0 .25rem;word-break:break-all}</style></head>
<body><header><p><strong>AWS Marketplace</strong> (local simulator)</p></header><main>
${body}
</main>${raw(script)}</body></html>`.value;
}

export function renderProductList(state: MarketplaceState): string {
  const products = [...state.products.values()];
  const items = products.map(
    (p) => html`<section class="product" aria-labelledby="p-${p.productCode}">
<h2 id="p-${p.productCode}">${p.title}</h2>
<p>Product code <code>${p.productCode}</code>, ${p.identityMode === 'license' ? 'Concurrent Agreements' : 'legacy'} identity, dimensions: ${p.dimensions.join(', ')}</p>
<form method="post" action="${SUBSCRIBE_PATH}">
<input type="hidden" name="productCode" value="${p.productCode}">
<button type="submit" name="offerType" value="standard">Subscribe</button>
<button type="submit" name="offerType" value="free-trial">Start free trial</button>
</form></section>`,
  );
  const body = html`<h1>Products</h1>
${products.length === 0 ? html`<p>No products yet: add one with <code>POST /_admin/products</code>.</p>` : items}`;
  return page('AWS Marketplace simulator', body);
}

/** After subscribing: the page that posts the token to the seller's fulfillment URL. */
export function renderSubscribed(input: {
  productTitle: string;
  fulfillmentUrl?: string;
  token: string;
  freeTrial: boolean;
  customerAWSAccountId: string;
}): string {
  if (!input.fulfillmentUrl) {
    const body = html`<h1>Subscribed to ${input.productTitle}</h1>
<p>The product has no fulfillment URL, so there is nowhere to send you. Registration token:</p>
<p><code id="registration-token">${input.token}</code></p>`;
    return page('Subscribed', body);
  }
  const body = html`<h1>Thank you for subscribing to ${input.productTitle}</h1>
<p>Account ${input.customerAWSAccountId}. Taking you to the seller to set up your account…</p>
<form id="setup" method="post" action="${input.fulfillmentUrl}">
<input type="hidden" name="x-amzn-marketplace-token" value="${input.token}">
${input.freeTrial ? html`<input type="hidden" name="x-amzn-marketplace-offer-type" value="free-trial">` : ''}
<button type="submit">Set up your account</button>
</form>`;
  return page('Set up your account', body, '<script>document.getElementById("setup").submit();</script>');
}
