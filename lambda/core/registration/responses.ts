import { ProductConfig } from '../product-config';
import { messagePage, pageHeaders, registrationPage, thankYouPage } from './pages';
import { DetailsOutcome, RegistrationOutcome, RETRY_AFTER_SECONDS } from './registration-service';

/**
 * Outcomes as HTTP responses: an HTML page for browsers, JSON for `Accept: application/json`, a 303
 * to the seller's onboarding URL when the product has one. No page names an internal detail.
 */

export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface ResponseContext {
  /** The client asked for JSON (`Accept: application/json`). */
  readonly wantsJson: boolean;
  /** Where the contact form posts, relative to the registration page. */
  readonly detailsAction: string;
}

/** Whether an Accept header prefers JSON over HTML: by quality (`q`), then by the order listed. */
export function prefersJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((part) => {
    const [type, ...params] = part.split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find((v) => v !== undefined);
    return { type: type.trim().toLowerCase(), q: q === undefined ? 1 : Number(q) };
  });
  const json = ranges.findIndex((r) => r.type === 'application/json');
  const htmlIndex = ranges.findIndex((r) => r.type === 'text/html' || r.type === 'application/xhtml+xml');
  if (json === -1 || !(ranges[json].q > 0)) return false;
  if (htmlIndex === -1) return true;
  const htmlQ = Math.max(...ranges.filter((r) => r.type === 'text/html' || r.type === 'application/xhtml+xml').map((r) => r.q));
  return ranges[json].q > htmlQ || (ranges[json].q === htmlQ && json < htmlIndex);
}

const productName = (p: ProductConfig) => p.displayName ?? p.productCode;

const RETURN_TO_MARKETPLACE =
  'Return to AWS Marketplace, open Your Marketplace Software, choose the product and choose "Set up your account" again.';

interface Problem {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly paragraphs: readonly string[];
  readonly headers?: Record<string, string>;
}

function problem(p: Problem, context: ResponseContext): HttpResponse {
  if (context.wantsJson) {
    return json(p.status, { error: p.code, message: p.paragraphs.join(' ') }, p.headers);
  }
  return { statusCode: p.status, headers: { ...pageHeaders(), ...p.headers }, body: messagePage(p) };
}

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

export const PROBLEMS = {
  noToken: {
    status: 400,
    code: 'MissingRegistrationToken',
    title: 'Subscribe on AWS Marketplace first',
    paragraphs: [
      'This page sets up accounts for AWS Marketplace buyers, and it was opened without a subscription.',
      'Find the product on AWS Marketplace, choose "View purchase options" and subscribe; AWS Marketplace then brings you back here.',
    ],
  },
  invalidToken: {
    status: 400,
    code: 'InvalidRegistrationToken',
    title: 'We could not confirm your subscription',
    paragraphs: ['AWS Marketplace did not recognise this registration.', RETURN_TO_MARKETPLACE],
  },
  expiredToken: {
    status: 400,
    code: 'ExpiredRegistrationToken',
    title: 'This registration link has expired',
    paragraphs: ['For your security, the link from AWS Marketplace is only valid for a short time.', RETURN_TO_MARKETPLACE],
  },
  unknownProduct: {
    status: 403,
    code: 'ProductNotServed',
    title: 'This subscription is for another product',
    paragraphs: ['This page does not set up accounts for the product you subscribed to.', RETURN_TO_MARKETPLACE],
  },
  configurationError: {
    status: 500,
    code: 'RegistrationUnavailable',
    title: 'Registration is not available right now',
    paragraphs: ['Your subscription is safe. We have been alerted and will contact you, or try again later.'],
  },
  referenceRejected: {
    status: 400,
    code: 'RegistrationExpired',
    title: 'This form has expired',
    paragraphs: ['For your security, the form is only valid for an hour.', RETURN_TO_MARKETPLACE],
  },
  methodNotAllowed: {
    status: 405,
    code: 'MethodNotAllowed',
    title: 'Not available',
    paragraphs: ['This address only accepts the registration form.'],
  },
} satisfies Record<string, Problem>;

export function unavailable(context: ResponseContext, retryAfterSeconds = RETRY_AFTER_SECONDS): HttpResponse {
  return problem(
    {
      status: 503,
      code: 'TryAgain',
      title: 'Please try again in a moment',
      paragraphs: [
        'We are very busy and could not finish setting up your account.',
        `Your subscription is safe: reload this page in ${retryAfterSeconds} seconds to try again.`,
      ],
      headers: { 'Retry-After': String(retryAfterSeconds) },
    },
    context,
  );
}

export function badRequest(status: number, message: string, context: ResponseContext): HttpResponse {
  return problem({ status, code: 'BadRequest', title: 'We could not read this request', paragraphs: [message] }, context);
}

export function problemResponse(name: keyof typeof PROBLEMS, context: ResponseContext): HttpResponse {
  return problem(PROBLEMS[name], context);
}

export function registrationResponse(outcome: RegistrationOutcome, context: ResponseContext): HttpResponse {
  switch (outcome.kind) {
    case 'no-token':
      return problem(PROBLEMS.noToken, context);
    case 'token-rejected':
      return problem(outcome.reason === 'expired' ? PROBLEMS.expiredToken : PROBLEMS.invalidToken, context);
    case 'unavailable':
      return unavailable(context, outcome.retryAfterSeconds);
    case 'configuration-error':
      return problem(PROBLEMS.configurationError, context);
    case 'unknown-product':
      return problem(PROBLEMS.unknownProduct, context);
    case 'registered': {
      const { product, identity, reference } = outcome;
      const onboarding = product.onboardingUrl ? new URL(product.onboardingUrl) : undefined;
      onboarding?.searchParams.set('reference', reference);
      if (context.wantsJson) {
        return json(200, {
          customerKey: identity.customerKey,
          productCode: identity.productCode,
          customerAWSAccountId: identity.customerAWSAccountId,
          licenseArn: identity.licenseArn,
          customerIdentifier: identity.customerIdentifier,
          freeTrial: outcome.freeTrial,
          reference,
          next: onboarding?.toString() ?? null,
        });
      }
      if (onboarding) {
        return { statusCode: 303, headers: { Location: onboarding.toString(), 'Cache-Control': 'no-store' }, body: '' };
      }
      return {
        statusCode: 200,
        headers: pageHeaders(),
        body: registrationPage({ productName: productName(product), reference, action: context.detailsAction }),
      };
    }
  }
}

export function detailsResponse(outcome: DetailsOutcome, context: ResponseContext): HttpResponse {
  switch (outcome.kind) {
    case 'reference-rejected':
      return problem(PROBLEMS.referenceRejected, context);
    case 'unknown-product':
      return problem(PROBLEMS.unknownProduct, context);
    case 'details-invalid':
      if (context.wantsJson) return json(400, { error: 'InvalidContactDetails', fields: outcome.errors });
      return {
        statusCode: 400,
        headers: pageHeaders(),
        body: registrationPage({
          productName: productName(outcome.product),
          reference: outcome.reference,
          action: context.detailsAction,
          values: outcome.values,
          errors: outcome.errors,
        }),
      };
    case 'details-saved':
      if (context.wantsJson) return json(200, { customerKey: outcome.customerKey, productUrl: outcome.product.productUrl ?? null });
      return {
        statusCode: 200,
        headers: pageHeaders(),
        body: thankYouPage({ productName: productName(outcome.product), productUrl: outcome.product.productUrl }),
      };
  }
}
