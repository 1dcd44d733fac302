import { z } from 'zod';

/** The contact details a buyer leaves on the registration page. Personal data: never logged. */

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'is required')
    .max(max, `must be at most ${max} characters`)
    // Control characters have no place in a name and break e-mails and CSV exports downstream.
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'contains control characters');

export const contactDetailsSchema = z.object({
  company: text(200),
  name: text(200),
  email: z.string().trim().max(254, 'must be at most 254 characters').pipe(z.email('is not a valid e-mail address')),
  phone: z
    .string()
    .trim()
    .max(40, 'must be at most 40 characters')
    .regex(/^[0-9+()\-. ]*$/, 'may only contain digits, spaces and + ( ) - .')
    .optional()
    .transform((v) => (v ? v : undefined)),
});
export type ContactDetails = z.infer<typeof contactDetailsSchema>;

export const CONTACT_FIELDS = ['company', 'name', 'email', 'phone'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

export type ContactDetailsResult =
  | { readonly ok: true; readonly details: ContactDetails }
  | { readonly ok: false; readonly errors: Partial<Record<ContactField, string>> };

export function parseContactDetails(fields: Readonly<Record<string, string>>): ContactDetailsResult {
  const result = contactDetailsSchema.safeParse({
    company: fields.company ?? '',
    name: fields.name ?? '',
    email: fields.email ?? '',
    phone: fields.phone,
  });
  if (result.success) return { ok: true, details: result.data };
  const errors: Partial<Record<ContactField, string>> = {};
  for (const issue of result.error.issues) {
    const field = issue.path[0] as ContactField;
    errors[field] ??= issue.message;
  }
  return { ok: false, errors };
}
