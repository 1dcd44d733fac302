import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { usageMessageJsonSchema } from '../lambda/core/usage/usage-json-schema';
import { usageEventValidatorCode } from './usage-event-validator-code';

/**
 * `npm run schema`: writes schema/usage-message.v1.json from the validation schema, and the
 * validator ingestion runs, compiled from it.
 */
const root = path.join(__dirname, '..');
const files: [string, string][] = [
  [path.join(root, 'schema', 'usage-message.v1.json'), `${JSON.stringify(usageMessageJsonSchema(), null, 2)}\n`],
  [path.join(root, 'lambda', 'core', 'usage', 'generated', 'usage-event-validator.js'), usageEventValidatorCode()],
];
for (const [file, text] of files) {
  writeFileSync(file, text);
  console.log(`Wrote ${path.relative(process.cwd(), file)}`);
}
