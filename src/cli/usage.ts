/** A mistake in how the CLI was called (flags, arguments, the environment): exit code 2, no stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const HELP = `flespi-receiver: forward flespi channel messages to stdout and your own handlers

Usage:
  flespi-receiver [tail [channel]] [--pretty]   print a channel's messages, one JSON object per line
  flespi-receiver run <config.json>             run the handlers of a config file (status on stderr)
  flespi-receiver dead-letters <config.json>    the messages its handlers could never deliver, as JSON lines
  flespi-receiver channels                      list the channels of the account
  flespi-receiver doctor [channel]              check what this tool assumes about the account (read-only)
  flespi-receiver sandbox [options]             run the local flespi sandbox until Ctrl+C

Connection (tail, channels, doctor):
  FLESPI_TOKEN=<token>   the flespi token (never put it in a config file)
  --base-url <url>       REST server (default https://flespi.io), e.g. a sandbox's URL
  --region eu|ru         flespi region (instead of --base-url)
  --token <token>        token on the command line; other local users can see it (ps): prefer FLESPI_TOKEN
  With no token and no --base-url, tail and channels start the built-in sandbox.

tail:
  [channel]              channel id or exact name; default: the account's only channel
  --pretty               indented JSON
  --checkpoint <file>    resume where the last run with this file stopped

doctor:
  [channel]              channel id or exact name; default: the account's only (or first) channel
  --mqtt-url <url>       MQTT broker to check (default: the region's, mqtts://mqtt.flespi.io:8883)
  Exit code 0 when no check failed (warnings allowed), 1 when one did.

dead-letters:
  --handler <name>       only this handler's
  --resend               send them again through the config's handlers (after a fix); those accepted
                         leave the file. Refuses while a receiver holds the config's checkpoint.

sandbox:
  --rest-port <n> --mqtt-port <n>   ports to listen on (default: random free ports)
  --devices <n>          simulated devices per channel (default 3)
  --rate <hz>            messages per second per device (default 1)
  --token <token>        accept this token instead of a random one

Common: --verbose (debug logs on stderr), --help, --version
`;
