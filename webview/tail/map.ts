/**
 * The map beside the table (Leaflet, bundled): each device's track and last position with its
 * heading, in the device's colour; the message shown in the detail pane marked. A click on a device
 * or near a point of a track picks that message. Tiles come from flespi.map.tileUrl; without them
 * (an empty setting, or none load) the tracks are drawn on a plain background with a grid and a scale.
 */
import * as L from 'leaflet';
import leafletCss from 'leaflet/dist/leaflet.css';
import type { MapSettings, TailItem } from '../../src/shared/tailProtocol';
import { deviceColor, identOf, latLon } from './devices';
import { el } from './dom';

/** A click this close (px) to a point of a track picks that point's message. */
const PICK_RADIUS_PX = 12;

export interface MapEvents {
  pick(id: number): void;
  /** Following stopped because the user moved the map. */
  followStopped(): void;
}

interface Track {
  line: L.Polyline;
  marker: L.Marker;
  arrow: HTMLElement;
  latlngs: L.LatLngTuple[];
  ids: number[];
  lastId: number;
}

let styled = false;

export class MapView {
  readonly element = el('div', { className: 'map-view', attrs: { 'data-testid': 'map' } });
  private readonly container = el('div', { className: 'map-canvas', attrs: { role: 'application', 'aria-label': 'Map of device tracks' } });
  private readonly note = el('div', { className: 'map-note', attrs: { role: 'status', 'data-testid': 'map-note' } });
  private map: L.Map | undefined;
  private settings: MapSettings | undefined;
  private tiles: L.TileLayer | undefined;
  private grid: L.LayerGroup | undefined;
  private readonly tracks = new Map<string, Track>();
  private selected: L.Marker | undefined;
  private selectedItem: TailItem | undefined;
  private following: string | undefined;
  private fitted = false;
  private tilesLoaded = 0;
  private tileErrors = 0;

  constructor(private readonly events: MapEvents) {
    this.element.append(this.container, this.note);
    this.note.hidden = true;
  }

  /** The tile settings from the host (before or after the map first shows). */
  configure(settings: MapSettings | undefined): void {
    this.settings = settings;
    if (this.map) this.applyTiles();
  }

  /** Creates the map the first time it is shown; afterwards re-measures it. */
  show(): void {
    if (this.map) {
      this.map.invalidateSize();
      return;
    }
    if (!styled) {
      styled = true;
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(leafletCss);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    const map = L.map(this.container, { preferCanvas: true, center: [20, 0], zoom: 2, worldCopyJump: false, attributionControl: true });
    this.map = map;
    map.attributionControl.setPrefix('Leaflet');
    L.control.scale({ imperial: false }).addTo(map);
    // The grid lies under the tiles: it shows where tiles are missing or switched off.
    map.createPane('grid').style.zIndex = '150';
    this.grid = L.layerGroup().addTo(map);
    map.on('moveend', () => {
      this.element.dataset.zoom = String(map.getZoom());
      this.drawGrid();
    });
    map.on('click', (event: L.LeafletMouseEvent) => this.pickNear(event.containerPoint));
    map.on('dragstart', () => {
      if (this.following !== undefined) {
        this.following = undefined;
        this.events.followStopped();
      }
    });
    this.applyTiles();
    this.drawGrid();
    new ResizeObserver(() => map.invalidateSize()).observe(this.container);
  }

  get visible(): boolean {
    return this.map !== undefined && this.element.isConnected && !this.element.closest('[hidden]');
  }

  /** Redraws the tracks from these messages (oldest first). */
  update(items: readonly TailItem[]): void {
    const map = this.map;
    if (!map) return;
    const next = new Map<string, { latlngs: L.LatLngTuple[]; ids: number[]; last: TailItem }>();
    for (const item of items) {
      const position = latLon(item.message);
      if (!position) continue;
      const ident = identOf(item.message);
      let track = next.get(ident);
      if (!track) next.set(ident, (track = { latlngs: [], ids: [], last: item }));
      track.latlngs.push(position);
      track.ids.push(item.id);
      track.last = item;
    }
    for (const [ident, track] of this.tracks) {
      if (!next.has(ident)) {
        track.line.remove();
        track.marker.remove();
        this.tracks.delete(ident);
      }
    }
    let points = 0;
    for (const [ident, { latlngs, ids, last }] of next) {
      points += latlngs.length;
      let track = this.tracks.get(ident);
      const end = latlngs[latlngs.length - 1];
      if (!track) {
        const color = deviceColor(ident);
        const arrow = el('div', { className: 'map-arrow' });
        const icon = el('div', { className: 'map-device-icon', children: [arrow] });
        icon.style.setProperty('--device-color', color);
        const line = L.polyline(latlngs, { color, weight: 2.5, opacity: 0.85, interactive: false }).addTo(map);
        const marker = L.marker(end, {
          icon: L.divIcon({ html: icon, className: 'map-device', iconSize: [22, 22] }),
          title: ident === '' ? '(no ident)' : ident,
          keyboard: true,
          riseOnHover: true,
        }).addTo(map);
        track = { line, marker, arrow, latlngs, ids, lastId: last.id };
        marker.on('click', () => this.events.pick(this.tracks.get(ident)?.lastId ?? last.id));
        this.tracks.set(ident, track);
      } else {
        track.line.setLatLngs(latlngs);
        track.marker.setLatLng(end);
      }
      track.latlngs = latlngs;
      track.ids = ids;
      track.lastId = last.id;
      const direction = last.message['position.direction'];
      const heading = typeof direction === 'number' && Number.isFinite(direction);
      track.arrow.classList.toggle('no-heading', !heading);
      track.arrow.style.transform = heading ? `rotate(${direction}deg)` : '';
      const element = track.marker.getElement();
      if (element) {
        element.dataset.ident = ident;
        element.dataset.lastId = String(last.id);
        element.setAttribute('data-testid', 'map-device');
      }
    }
    this.element.dataset.tracks = String(this.tracks.size);
    this.element.dataset.points = String(points);
    if (!this.fitted && points > 0) {
      this.fitted = true;
      this.fitAll();
    }
    if (this.following !== undefined) {
      const track = this.tracks.get(this.following);
      if (track) map.panTo(track.latlngs[track.latlngs.length - 1], { animate: false });
    }
    // The marked message may have left the buffer (or the device filter).
    if (this.selectedItem && (items.length === 0 || this.selectedItem.id < items[0].id)) this.showActive(undefined);
  }

  /** Marks the message the detail pane shows (undefined: none); `reveal`: pans to it when out of view. */
  showActive(item: TailItem | undefined, reveal = true): void {
    this.selectedItem = item;
    const position = item ? latLon(item.message) : undefined;
    if (!this.map || !item || !position) {
      this.selected?.remove();
      this.selected = undefined;
      return;
    }
    if (!this.selected) {
      const ring = el('div', { className: 'map-selected-ring' });
      this.selected = L.marker(position, {
        icon: L.divIcon({ html: ring, className: 'map-selected', iconSize: [20, 20] }),
        interactive: false,
        keyboard: false,
        zIndexOffset: 1000,
      }).addTo(this.map);
    } else this.selected.setLatLng(position);
    const element = this.selected.getElement();
    if (element) {
      element.dataset.id = String(item.id);
      element.setAttribute('data-testid', 'map-selected');
    }
    if (reveal && !this.map.getBounds().pad(-0.05).contains(position)) this.map.panTo(position, { animate: false });
  }

  /** Fits the view to the tracks at the next update (the device filter changed). */
  refit(): void {
    this.fitted = false;
  }

  fitAll(): void {
    if (!this.map) return;
    const bounds = L.latLngBounds([]);
    for (const track of this.tracks.values()) bounds.extend(track.line.getBounds());
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17, animate: false });
  }

  /** Keeps this device's last position in the middle (undefined: stop). */
  follow(ident: string | undefined): void {
    this.following = ident;
    const track = ident === undefined ? undefined : this.tracks.get(ident);
    if (this.map && track) this.map.setView(track.latlngs[track.latlngs.length - 1], Math.max(this.map.getZoom(), 14), { animate: false });
  }

  get followed(): string | undefined {
    return this.following;
  }

  private pickNear(at: L.Point): void {
    const map = this.map;
    if (!map) return;
    let best: number | undefined;
    let bestDistance = PICK_RADIUS_PX * PICK_RADIUS_PX;
    for (const track of this.tracks.values()) {
      for (let i = 0; i < track.latlngs.length; i++) {
        const p = map.latLngToContainerPoint(track.latlngs[i]);
        const d = (p.x - at.x) ** 2 + (p.y - at.y) ** 2;
        // The newer of two points at the same place wins (<=).
        if (d <= bestDistance) {
          bestDistance = d;
          best = track.ids[i];
        }
      }
    }
    if (best !== undefined) this.events.pick(best);
  }

  private applyTiles(): void {
    const map = this.map!;
    this.tiles?.remove();
    this.tiles = undefined;
    this.tilesLoaded = 0;
    this.tileErrors = 0;
    const settings = this.settings;
    if (!settings || settings.tileUrl === '') {
      this.setNote(
        settings?.problem
          ? `No map tiles: ${settings.problem}. Tracks are drawn on a plain background.`
          : 'No map tiles (flespi.map.tileUrl is empty): tracks are drawn on a plain background.',
      );
      this.element.dataset.tiles = 'none';
      return;
    }
    const credit = settings.attributionUrl
      ? `<a href="${escapeHtml(settings.attributionUrl)}">${escapeHtml(settings.attribution)}</a>`
      : escapeHtml(settings.attribution);
    const tiles = L.tileLayer(settings.tileUrl, { attribution: credit, maxZoom: 19, crossOrigin: false });
    tiles.on('tileload', () => {
      this.tilesLoaded++;
      this.element.dataset.tiles = 'loaded';
      if (this.tileErrors === 0) this.setNote('');
    });
    tiles.on('tileerror', (event: L.TileErrorEvent) => {
      this.tileErrors++;
      event.tile.style.visibility = 'hidden';
      if (this.tilesLoaded === 0) {
        this.element.dataset.tiles = 'failed';
        this.setNote(`Map tiles could not be loaded from ${settings.attribution.replace(/^Tiles: /, '')}: tracks are drawn on a plain background.`);
      }
    });
    tiles.addTo(map);
    this.element.dataset.tiles = 'loading';
    this.setNote('');
  }

  private setNote(text: string): void {
    this.note.textContent = text;
    this.note.hidden = text === '';
  }

  /** Latitude and longitude lines at a round step, about 4 to 10 across the view. */
  private drawGrid(): void {
    const map = this.map;
    const grid = this.grid;
    if (!map || !grid) return;
    grid.clearLayers();
    const bounds = map.getBounds();
    const span = Math.max(bounds.getNorth() - bounds.getSouth(), (bounds.getEast() - bounds.getWest()) / 2);
    const steps = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30];
    const step = steps.find((s) => span / s <= 8) ?? 30;
    const style: L.PolylineOptions = { pane: 'grid', color: '#888', weight: 1, opacity: 0.35, interactive: false, dashArray: '2 4' };
    const south = Math.max(-85, Math.floor(bounds.getSouth() / step) * step);
    const north = Math.min(85, bounds.getNorth());
    const west = Math.floor(bounds.getWest() / step) * step;
    const east = bounds.getEast();
    for (let lat = south; lat <= north; lat += step)
      grid.addLayer(
        L.polyline(
          [
            [lat, bounds.getWest()],
            [lat, east],
          ],
          style,
        ),
      );
    for (let lon = west; lon <= east; lon += step)
      grid.addLayer(
        L.polyline(
          [
            [Math.max(-85, bounds.getSouth()), lon],
            [north, lon],
          ],
          style,
        ),
      );
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
