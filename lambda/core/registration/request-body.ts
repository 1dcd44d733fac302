/**
 * Reading the fulfillment request body. AWS Marketplace form-POSTs `x-amzn-marketplace-token`
 * (application/x-www-form-urlencoded); API Gateway may hand the body base64-encoded. The body is
 * decoded exactly once (URLSearchParams): the token is opaque and may hold `+ / = %`, which a second
 * decodeURIComponent would corrupt.
 */

export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;

export type BodyResult =
  | { readonly ok: true; readonly fields: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly status: 400 | 413 | 415; readonly message: string };

export interface RequestBody {
  readonly body: string | null | undefined;
  readonly isBase64Encoded?: boolean;
  readonly contentType?: string;
}

export function readFormOrJsonBody(request: RequestBody, maxBytes = DEFAULT_MAX_BODY_BYTES): BodyResult {
  const bytes = request.body ? Buffer.from(request.body, request.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  if (bytes.length > maxBytes) {
    return { ok: false, status: 413, message: `The request body is larger than ${maxBytes} bytes.` };
  }
  if (bytes.length === 0) return { ok: true, fields: {} };

  const mediaType = (request.contentType ?? '').split(';')[0].trim().toLowerCase();
  const text = bytes.toString('utf8');
  if (mediaType === 'application/x-www-form-urlencoded') {
    return { ok: true, fields: Object.fromEntries(new URLSearchParams(text)) };
  }
  if (mediaType === 'application/json') return readJsonFields(text);
  return {
    ok: false,
    status: 415,
    message: 'Send the form as application/x-www-form-urlencoded or as application/json.',
  };
}

function readJsonFields(text: string): BodyResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, message: 'The request body is not valid JSON.' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, status: 400, message: 'The JSON body must be an object.' };
  }
  const fields: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'string') fields[key] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') fields[key] = String(value);
    else if (value !== null && value !== undefined) {
      return { ok: false, status: 400, message: `The field "${key}" must be a string.` };
    }
  }
  return { ok: true, fields };
}
