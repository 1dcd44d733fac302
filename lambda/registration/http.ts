import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { CONTACT_FIELDS } from '../core/registration/contact-details';
import { readFormOrJsonBody } from '../core/registration/request-body';
import { RegistrationService, TOKEN_FIELD } from '../core/registration/registration-service';
import {
  badRequest,
  detailsResponse,
  HttpResponse,
  prefersJson,
  problemResponse,
  registrationResponse,
  ResponseContext,
  unavailable,
} from '../core/registration/responses';

/** What the registration routes log: identifiers and outcomes, never tokens or contact details. */
export interface RegistrationLog {
  info(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
}

export interface RegistrationHttpOptions {
  readonly maxBodyBytes: number;
}

/** API Gateway proxy event in, response out: routing, body decoding and logging around the service. */
export async function handleRegistrationRequest(
  event: APIGatewayProxyEvent,
  /** The service, or how to make it when a request needs it (its secret may fail to load: a 503 page). */
  service: RegistrationService | (() => Promise<RegistrationService>),
  log: RegistrationLog,
  options: RegistrationHttpOptions,
): Promise<APIGatewayProxyResult> {
  const header = (name: string) =>
    Object.entries(event.headers ?? {}).find(([key]) => key.toLowerCase() === name)?.[1] ?? undefined;
  const route = `${event.httpMethod} ${event.resource ?? event.path}`;
  const isDetails = (event.resource ?? event.path).endsWith('/details');
  // The path the browser sees (stage or custom-domain base path included), so the form posts back to us.
  const pagePath = event.requestContext?.path ?? event.path;
  const context: ResponseContext = {
    wantsJson: prefersJson(header('accept')),
    detailsAction: isDetails ? pagePath : `${pagePath.replace(/\/+$/, '')}/details`,
  };

  // Error messages come from ports (SDK clients) and may echo what they were sent: the token and
  // the contact details of this request are cut out of anything logged from them.
  let secrets: readonly string[] = [];
  try {
    if (event.httpMethod === 'GET' && !isDetails) return toResult(problemResponse('noToken', context), 200);
    if (event.httpMethod !== 'POST') return toResult(problemResponse('methodNotAllowed', context));

    const body = readFormOrJsonBody(
      { body: event.body, isBase64Encoded: event.isBase64Encoded, contentType: header('content-type') },
      options.maxBodyBytes,
    );
    if (!body.ok) {
      log.info('bad request', { route, status: body.status });
      return toResult(badRequest(body.status, body.message, context));
    }
    secrets = sensitiveValues(body.fields);
    const registrations = typeof service === 'function' ? await service() : service;

    if (isDetails) {
      const outcome = await registrations.submitDetails(body.fields);
      log.info('contact details', {
        route,
        outcome: outcome.kind,
        ...('customerKey' in outcome ? { customerKey: outcome.customerKey } : {}),
        ...(outcome.kind === 'details-invalid' ? { invalidFields: Object.keys(outcome.errors) } : {}),
      });
      return toResult(detailsResponse(outcome, context));
    }

    const outcome = await registrations.register(body.fields);
    if (outcome.kind === 'registered') {
      log.info('registered', {
        customerKey: outcome.identity.customerKey,
        productCode: outcome.identity.productCode,
        firstRegistration: outcome.firstRegistration,
        freeTrial: outcome.freeTrial,
      });
    } else if (outcome.kind === 'configuration-error' || outcome.kind === 'unavailable') {
      log.error(outcome.kind === 'configuration-error' ? 'registration misconfigured' : 'registration unavailable', {
        outcome: outcome.kind,
        cause: redact(outcome.cause, secrets),
      });
    } else {
      log.info('registration refused', { outcome: outcome.kind, ...('reason' in outcome ? { reason: outcome.reason } : {}), ...('productCode' in outcome ? { productCode: outcome.productCode } : {}) });
    }
    return toResult(registrationResponse(outcome, context));
  } catch (error) {
    // Storage, EventBridge or the signing secret failed: the upsert is idempotent, so the buyer can safely retry.
    log.error('registration request failed', {
      route,
      errorName: redact(error instanceof Error ? error.name : 'unknown', secrets),
      errorMessage: redact(error instanceof Error ? error.message : String(error), secrets),
    });
    return toResult(unavailable(context));
  }
}

/** The request's values that must never reach a log: the registration token and the contact details. */
function sensitiveValues(fields: Readonly<Record<string, string>>): string[] {
  const values = [TOKEN_FIELD, ...CONTACT_FIELDS].flatMap((name) => [fields[name], fields[name]?.trim()]);
  return [...new Set(values.flatMap((v) => (v ? [v, encodeURIComponent(v)] : [])))].sort((a, b) => b.length - a.length);
}

function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

function toResult(response: HttpResponse, statusOverride?: number): APIGatewayProxyResult {
  return { statusCode: statusOverride ?? response.statusCode, headers: response.headers, body: response.body };
}
