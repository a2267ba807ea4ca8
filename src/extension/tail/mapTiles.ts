/**
 * The `flespi.map.tileUrl` setting → what the tail's map loads tiles from, and the one origin the
 * webview's CSP lets images come from. Without vscode, so tests check exactly what the panel uses.
 */
import type { MapSettings } from '../../shared/tailProtocol';

/** OpenStreetMap's standard tiles; their tile usage policy asks for the attribution below. */
export const DEFAULT_TILE_URL = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';

const OSM_ATTRIBUTION = { attribution: '© OpenStreetMap contributors', attributionUrl: 'https://www.openstreetmap.org/copyright' };

/** Host names only (a `{s}` subdomain becomes a CSP wildcard); anything else in a host is refused. */
const HOST = /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/i;

export interface MapTiles {
  /** What the webview gets: the template, its attribution, or why there are no tiles. */
  settings: MapSettings;
  /** The CSP source for `img-src` (`https://tile.openstreetmap.org`), absent without tiles. */
  imgSource?: string;
}

/** Reads the setting; `undefined` (not set) means the default, '' means no tiles (tracks on a plain background). */
export function mapTiles(setting: unknown): MapTiles {
  const raw = setting === undefined || setting === null ? DEFAULT_TILE_URL : typeof setting === 'string' ? setting.trim() : undefined;
  if (raw === undefined) return none('flespi.map.tileUrl must be a string');
  if (raw === '') return none();
  if (raw.length > 2048) return none('flespi.map.tileUrl is longer than 2048 characters');
  for (const part of ['{z}', '{x}', '{y}']) {
    if (!raw.includes(part)) return none(`flespi.map.tileUrl needs ${part} (e.g. ${DEFAULT_TILE_URL})`);
  }
  let url: URL;
  try {
    url = new URL(raw.replace(/\{s\}/g, 'subdomain-placeholder').replace(/\{[a-z]+\}/g, '0'));
  } catch {
    return none(`flespi.map.tileUrl is not a URL: ${raw.slice(0, 200)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return none('flespi.map.tileUrl must start with https:// (or http://)');
  if (url.username || url.password) return none('flespi.map.tileUrl must not hold a user name or password');
  const host = url.hostname.replace(/^subdomain-placeholder\./, '*.');
  if (host.includes('subdomain-placeholder') || !HOST.test(host.replace(/^\[|\]$/g, '')) || host.includes('[')) {
    return none('flespi.map.tileUrl: {s} may only stand for the first part of the host name');
  }
  const imgSource = `${url.protocol}//${host}${url.port ? `:${url.port}` : ''}`;
  const osm = host === 'tile.openstreetmap.org' || host.endsWith('.tile.openstreetmap.org');
  return {
    settings: { tileUrl: raw, ...(osm ? OSM_ATTRIBUTION : { attribution: `Tiles: ${host}${url.port ? `:${url.port}` : ''}` }) },
    imgSource,
  };
}

function none(problem?: string): MapTiles {
  return { settings: { tileUrl: '', attribution: '', ...(problem ? { problem } : {}) } };
}
