import { FlespiError } from '../core/errors';
import { FlespiClient, regionBaseUrl, type FlespiItem, type FlespiRegion } from '../core/flespi/client';
import type { Logger } from '../core/logger';
import { redactUrl, warnCleartextCredentials } from '../core/security';
import { startSandbox } from '../sandbox/index';
import { UsageError } from './usage';

export type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

/** Where the CLI talks to: flespi itself, or a sandbox it started in-process. */
export interface Connection {
  client: FlespiClient;
  /** Set when no token was given and the CLI started the built-in sandbox. */
  sandbox?: Sandbox;
}

export interface ConnectionFlags {
  token?: string;
  baseUrl?: string;
  region?: FlespiRegion;
}

/** The embedded sandbox's simulation: a few devices per channel, each sending about once a second. */
const EMBEDDED_SANDBOX = { devicesPerChannel: 3, rateHz: 1 };

/**
 * flespi when a token is set (FLESPI_TOKEN or --token); with neither a token nor a server
 * (--base-url, --region), the built-in sandbox, started here (the caller says so on stderr).
 */
export async function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv, log?: Logger): Promise<Connection> {
  const token = flags.token?.trim() || env.FLESPI_TOKEN?.trim();
  if (!token) {
    if (flags.baseUrl || flags.region) {
      throw new UsageError(
        `no flespi token for ${redactUrl(flags.baseUrl ?? regionBaseUrl(flags.region!))}: set FLESPI_TOKEN (create a token at https://flespi.io/#/panel/tokens)`,
      );
    }
    const sandbox = await startSandbox({ restPort: 0, mqttPort: 0, simulate: true, ...EMBEDDED_SANDBOX });
    return { client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, appName: 'flespi-receiver' }), sandbox };
  }
  const baseUrl = flags.baseUrl ?? regionBaseUrl(flags.region ?? 'eu');
  const client = new FlespiClient({ token, baseUrl, appName: 'flespi-receiver' });
  if (log) warnCleartextCredentials(baseUrl, 'the flespi token', log);
  return { client };
}

export interface ChannelInfo {
  id: number;
  name: string;
  protocol: string;
}

const CHANNEL_FIELDS = ['id', 'name', 'protocol_name'];

function channelInfo(item: FlespiItem): ChannelInfo {
  return { id: Number(item.id), name: String(item.name ?? ''), protocol: String(item.protocol_name ?? '') };
}

export async function listChannels(client: FlespiClient): Promise<ChannelInfo[]> {
  const { items } = await client.channels('all', CHANNEL_FIELDS);
  return items.map(channelInfo).sort((a, b) => a.id - b.id);
}

/**
 * The channel to read: by id or exact name, or, when none is named, the only channel of the account
 * (the sandbox's first one). Also checks the token and that the server is reachable, so mistakes
 * show up as one clear error before anything starts.
 */
export async function findChannel(client: FlespiClient, wanted: string | undefined, isSandbox: boolean): Promise<ChannelInfo> {
  if (wanted !== undefined && /^\d+$/.test(wanted)) {
    try {
      const { items } = await client.channels(Number(wanted), CHANNEL_FIELDS);
      if (items[0]) return channelInfo(items[0]);
    } catch (error) {
      // Only flespi's own "not found" (an envelope with errors) means the id is unknown; a bare 404 page means a wrong base URL.
      if (!(error instanceof FlespiError && error.kind === 'not-found' && error.details.length > 0)) throw error;
    }
    throw new UsageError(`channel ${wanted} not found at ${client.baseUrl}: list the channels with \`flespi-receiver channels\``);
  }
  const channels = await listChannels(client);
  if (wanted !== undefined) {
    const named = channels.filter((c) => c.name === wanted);
    if (named.length === 1) return named[0]!;
    if (named.length > 1)
      throw new UsageError(`${named.length} channels are named "${wanted}" (ids ${named.map((c) => c.id).join(', ')}): pass the id instead`);
    throw new UsageError(`no channel named "${wanted}" at ${client.baseUrl}: list the channels with \`flespi-receiver channels\``);
  }
  if (channels.length === 0) throw new UsageError(`the account at ${client.baseUrl} has no channels: create one at https://flespi.io/#/panel/channels`);
  if (channels.length === 1 || isSandbox) return channels[0]!;
  throw new UsageError(
    `the account has ${channels.length} channels: name one, e.g. \`flespi-receiver tail ${channels[0]!.id}\` (list them with \`flespi-receiver channels\`)`,
  );
}
