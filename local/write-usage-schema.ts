import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { usageMessageJsonSchema } from '../lambda/core/usage/usage-json-schema';

/** `npm run schema`: writes schema/usage-message.v1.json from the validation schema. */
const file = path.join(__dirname, '..', 'schema', 'usage-message.v1.json');
writeFileSync(file, `${JSON.stringify(usageMessageJsonSchema(), null, 2)}\n`);
console.log(`Wrote ${path.relative(process.cwd(), file)}`);
