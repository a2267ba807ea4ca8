/** Where flespi is, from the extension's settings. No vscode here: tested on its own. */

export type Region = 'eu' | 'ru';

export interface EndpointSettings {
  region?: unknown;
  /** Overrides the region's REST URL (a proxy, a self-hosted emulator). */
  baseUrl?: unknown;
  /** Overrides the region's MQTT broker URL. */
  mqttUrl?: unknown;
}

export interface Endpoints {
  restUrl: string;
  mqttUrl: string;
  /** Shown to the user: the region, or the host of an overridden URL. */
  label: string;
}

const REGIONS: Readonly<Record<Region, { restUrl: string; mqttUrl: string }>> = {
  eu: { restUrl: 'https://flespi.io', mqttUrl: 'mqtts://mqtt.flespi.io:8883' },
  ru: { restUrl: 'https://ru.flespi.io', mqttUrl: 'mqtts://ru-mqtt.flespi.io:8883' },
};

/** The endpoints the settings point at; throws an Error naming the bad setting. */
export function resolveEndpoints(settings: EndpointSettings): Endpoints {
  const region: Region = settings.region === 'ru' ? 'ru' : 'eu';
  if (settings.region !== undefined && settings.region !== 'eu' && settings.region !== 'ru') {
    throw new Error(`setting flespi.region must be "eu" or "ru", got ${JSON.stringify(settings.region)}`);
  }
  const baseUrl = optionalUrl('flespi.baseUrl', settings.baseUrl, ['http:', 'https:']);
  const mqttUrl = optionalUrl('flespi.mqttUrl', settings.mqttUrl, ['mqtt:', 'mqtts:', 'ws:', 'wss:']);
  return {
    restUrl: baseUrl ? baseUrl.replace(/\/+$/, '') : REGIONS[region].restUrl,
    mqttUrl: mqttUrl ?? REGIONS[region].mqttUrl,
    label: baseUrl ? new URL(baseUrl).host : region,
  };
}

function optionalUrl(setting: string, value: unknown, protocols: readonly string[]): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !protocols.includes(url.protocol)) {
    throw new Error(
      `setting ${setting} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}, got ${JSON.stringify(value)}: fix it or clear it to use the region's default`,
    );
  }
  return String(value);
}
