/**
 * Writes the JSON schemas generated from the option schemas in the source (src/core/optionSchema.ts):
 * the `flespi.sinks` setting and `jsonValidation` in package.json, and the CLI config file's schema.
 *   npm run schemas            write them
 *   npm run schemas -- --check  exit 1 when a file differs from what the source says (the unit tests check it too)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { CONFIG_FILE_PATTERNS, CONFIG_SCHEMA_PATH, receiverConfigJsonSchema } from '../src/core/configSchema';
import { sinksSettingSchema } from '../src/extension/sinks/sinkSchema';

interface Manifest {
  contributes: { configuration: { properties: Record<string, unknown> }; jsonValidation?: unknown };
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** package.json's text with the generated parts as the source says; everything else as it is. */
export function generatedPackageJson(text: string): string {
  const manifest = JSON.parse(text) as Manifest;
  manifest.contributes.configuration.properties['flespi.sinks'] = sinksSettingSchema();
  manifest.contributes.jsonValidation = [{ fileMatch: [...CONFIG_FILE_PATTERNS], url: `./${CONFIG_SCHEMA_PATH}` }];
  return json(manifest);
}

/** The text of schemas/flespi-receiver.schema.json. */
export function generatedConfigSchema(): string {
  return json(receiverConfigJsonSchema());
}

/** Each generated file: its path, its text as the source says, and its text now. */
export function schemaFiles(root = '.'): { path: string; expected: string; actual: string | undefined }[] {
  const read = (path: string) => {
    try {
      return readFileSync(`${root}/${path}`, 'utf8');
    } catch {
      return undefined;
    }
  };
  const manifest = read('package.json');
  if (manifest === undefined) throw new Error(`no package.json in ${root}`);
  return [
    { path: 'package.json', expected: generatedPackageJson(manifest), actual: manifest },
    { path: CONFIG_SCHEMA_PATH, expected: generatedConfigSchema(), actual: read(CONFIG_SCHEMA_PATH) },
  ];
}

// Run as a script (not imported by the tests).
if (/[\\/]schemas\.ts$/.test(process.argv[1] ?? '')) {
  const check = process.argv.includes('--check');
  const stale = schemaFiles().filter((f) => f.actual !== f.expected);
  if (check) {
    for (const f of stale) console.error(`${f.path} differs from the option schemas in the source: run npm run schemas`);
    process.exit(stale.length ? 1 : 0);
  }
  for (const f of stale) {
    writeFileSync(f.path, f.expected);
    console.log(`wrote ${f.path}`);
  }
  if (!stale.length) console.log('schemas are up to date');
}
