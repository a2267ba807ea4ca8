#!/usr/bin/env node
// flespi-receiver: the headless CLI. Commands live in ./commands; this file parses flags and turns
// every error into one line on stderr and an exit code (2: fix the command or config, 1: it failed).
import { parseArgs } from 'node:util';
import { HandlerLoadError } from '../core/custom/loader';
import { errorMessage } from '../core/errors';
import { stderrLogger, terminalLine } from '../core/logger';
import { ConfigError } from '../core/options';
import { channelsCommand, deadLettersCommand, runCommand, sandboxCommand, tailCommand, type Flags } from './commands';
import { doctorCommand } from './doctor';
import { HELP, UsageError } from './usage';
import { version } from '../../package.json';

const OPTIONS = {
  token: { type: 'string' },
  'base-url': { type: 'string' },
  region: { type: 'string' },
  'mqtt-url': { type: 'string' },
  pretty: { type: 'boolean' },
  checkpoint: { type: 'string' },
  'rest-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  devices: { type: 'string' },
  rate: { type: 'string' },
  resend: { type: 'boolean' },
  handler: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;
const CONNECTION: OptionName[] = ['token', 'base-url', 'region'];
const COMMANDS: Record<string, { options: OptionName[]; maxArgs: number; usage: string }> = {
  tail: { options: [...CONNECTION, 'pretty', 'checkpoint'], maxArgs: 1, usage: 'flespi-receiver tail [channel] [--pretty]' },
  run: { options: [...CONNECTION], maxArgs: 1, usage: 'flespi-receiver run <config.json>' },
  channels: { options: [...CONNECTION], maxArgs: 0, usage: 'flespi-receiver channels' },
  doctor: { options: [...CONNECTION, 'mqtt-url'], maxArgs: 1, usage: 'flespi-receiver doctor [channel] [--mqtt-url url]' },
  'dead-letters': { options: ['resend', 'handler'], maxArgs: 1, usage: 'flespi-receiver dead-letters <config.json> [--handler name] [--resend]' },
  sandbox: {
    options: ['rest-port', 'mqtt-port', 'devices', 'rate', 'token'],
    maxArgs: 0,
    usage: 'flespi-receiver sandbox [--rest-port n] [--mqtt-port n] [--devices n] [--rate hz]',
  },
};

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${errorMessage(error).replace(/\. To specify a positional argument.*$/s, '')} (see flespi-receiver --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const [first, ...rest] = positionals;
  const command = first === undefined ? 'tail' : first;
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}": use tail, run, dead-letters, channels, doctor or sandbox (see flespi-receiver --help)`);
  const args = first === undefined ? [] : rest;
  if (args.length > spec.maxArgs) throw new UsageError(`too many arguments for ${command}: ${spec.usage}`);
  for (const name of Object.keys(values) as OptionName[]) {
    if (name !== 'verbose' && !spec.options.includes(name)) throw new UsageError(`--${name} is not an option of ${command}: ${spec.usage}`);
  }
  const region = values.region;
  if (region !== undefined && region !== 'eu' && region !== 'ru') throw new UsageError(`--region must be eu or ru, got "${region}"`);
  if (values['base-url'] !== undefined && !/^https?:\/\/[^/]+/.test(values['base-url'])) {
    throw new UsageError(`--base-url must be an http(s) URL such as https://flespi.io, got "${values['base-url']}"`);
  }
  if (values['base-url'] !== undefined && region !== undefined) throw new UsageError('give either --base-url or --region, not both');
  const flags: Flags = {
    token: values.token,
    baseUrl: values['base-url'],
    region,
    pretty: values.pretty ?? false,
    checkpoint: values.checkpoint,
    restPort: values['rest-port'],
    mqttPort: values['mqtt-port'],
    devices: values.devices,
    rate: values.rate,
    resend: values.resend ?? false,
    handler: values.handler,
  };
  const log = stderrLogger(values.verbose ?? false);
  switch (command) {
    case 'run':
      if (!args[0]) throw new UsageError(`run needs a config file: ${spec.usage}`);
      return runCommand(args[0], flags, log);
    case 'dead-letters':
      if (!args[0]) throw new UsageError(`dead-letters needs a config file: ${spec.usage}`);
      return deadLettersCommand(args[0], flags, log);
    case 'channels':
      return channelsCommand(flags, log);
    case 'doctor':
      return doctorCommand(args[0], flags, values['mqtt-url'], log);
    case 'sandbox':
      return sandboxCommand(flags, log);
    default:
      return tailCommand(args[0], flags, log);
  }
}

/** Mistakes the user fixes in the command line or a file exit with 2; failures at run time with 1. */
function exitCodeOf(error: unknown): number {
  return error instanceof UsageError || error instanceof ConfigError || error instanceof HandlerLoadError ? 2 : 1;
}

const verbose = process.argv.includes('--verbose');
main(process.argv.slice(2)).then(
  (code) => finish(code),
  (error: unknown) => {
    const text = verbose && error instanceof Error && error.stack ? error.stack : errorMessage(error).replace(/\s*\n\s*/g, ' ');
    // Error texts quote servers, files and devices: escaped like every other stderr line (a stack keeps its lines).
    process.stderr.write(`flespi-receiver: ${terminalLine(text, verbose)}\n`);
    finish(exitCodeOf(error));
  },
);

/** Lets stdout drain and the event loop empty; a library socket left open must not keep the CLI alive. */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}
