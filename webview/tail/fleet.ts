/**
 * The fleet panel beside the table: Map, Chart and Devices of the messages in the tail. It draws
 * from the webview's buffer about once a second while open (never per message), and only the view
 * in front. A device picked in Devices filters the table, the map and the charts to it.
 */
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type { VscodeButton } from '@vscode-elements/elements/dist/vscode-button/vscode-button.js';
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/vscode-single-select.js';
import type { MapSettings, TailItem } from '../../src/shared/tailProtocol';
import { ChartView, MAX_PARAMS } from './chart';
import { DeviceList, DeviceStats, identOf } from './devices';
import { el, setText } from './dom';
import fleetCss from './fleet.css';
import { MapView } from './map';

export type FleetViewName = 'map' | 'chart' | 'devices';
const VIEWS: Array<[FleetViewName, string]> = [
  ['map', 'Map'],
  ['chart', 'Chart'],
  ['devices', 'Devices'],
];

/** What the panel keeps across reloads of the webview (part of the UI state: no messages, no secrets). */
export interface FleetState {
  view?: FleetViewName;
  params?: string[];
  device?: string;
  width?: number;
}

export interface FleetHost {
  /** Every buffered message, oldest first (not narrowed by the quick search or the device). */
  items(): readonly TailItem[];
  paused(): boolean;
  /** Selects this message in the table and shows it in the detail pane. */
  select(id: number): void;
  /** Narrows the table to one device (undefined: all). */
  filterDevice(ident: string | undefined): void;
  /** Parameter names seen so far. */
  keys(): Iterable<string>;
  save(state: FleetState): void;
}

/** Below this width the detail pane goes under the table. */
const NARROW_PX = 720;
const REFRESH_MS = 1000;
const MIN_PANEL_PX = 260;

let styled = false;

export class FleetPanel {
  /** Toolbar buttons that open the views. */
  readonly buttons: VscodeButton[];
  private readonly panel = el('section', { className: 'fleet', attrs: { 'aria-label': 'Fleet', 'data-testid': 'fleet' } });
  private readonly resizer = el('div', {
    className: 'fleet-resizer',
    attrs: { role: 'separator', 'aria-orientation': 'vertical', 'aria-label': 'Resize the fleet panel' },
  });
  private readonly tabs: Map<FleetViewName, VscodeButton>;
  private readonly bodies: Map<FleetViewName, HTMLElement>;
  private readonly deviceChip = el('span', { className: 'device-chip', attrs: { 'data-testid': 'device-filter' } });
  private readonly followButton = fleetButton('Follow', 'map-follow');
  private readonly paramSelect = el('vscode-single-select', {
    attrs: { 'aria-label': 'Parameter to plot', 'data-testid': 'chart-param', combobox: '' },
  }) as VscodeSingleSelect;
  private readonly paramChips = el('span', { className: 'param-chips', attrs: { 'data-testid': 'chart-params' } });
  private readonly stats = new DeviceStats();
  private readonly map: MapView;
  private readonly chart = new ChartView();
  private readonly devices: DeviceList;
  private view: FleetViewName | undefined;
  private device: string | undefined;
  private active: TailItem | undefined;
  private width: number | undefined;
  private dirty = true;
  private readonly timer: ReturnType<typeof setInterval>;
  private optionKeys = '';
  private wasPaused = false;
  /** The view saved before a reload, opened once the panel is in the page. */
  private pendingView: FleetViewName | undefined;

  constructor(
    private readonly host: FleetHost,
    state: FleetState | undefined,
  ) {
    if (!styled) {
      styled = true;
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(fleetCss);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    this.map = new MapView({
      pick: (id) => this.host.select(id),
      followStopped: () => this.showFollow(),
    });
    this.devices = new DeviceList(this.stats, { pick: (ident) => this.setDevice(ident) });
    this.buttons = VIEWS.map(([name, label]) => {
      const b = fleetButton(label, `open-${name}`);
      b.setAttribute('aria-pressed', 'false');
      b.addEventListener('click', () => this.open(this.view === name ? undefined : name));
      return b;
    });
    this.tabs = new Map(
      VIEWS.map(([name, label]) => {
        const tab = fleetButton(label, `tab-${name}`);
        tab.setAttribute('role', 'tab');
        tab.addEventListener('click', () => this.open(name));
        return [name, tab];
      }),
    );
    const close = fleetButton('Close', 'fleet-close');
    close.addEventListener('click', () => this.open(undefined));
    const fit = fleetButton('Fit all', 'map-fit');
    fit.addEventListener('click', () => this.map.fitAll());
    this.followButton.addEventListener('click', () => {
      const ident = this.followCandidate();
      this.map.follow(this.map.followed === undefined ? ident : undefined);
      this.showFollow();
    });
    const resetZoom = fleetButton('Reset zoom', 'chart-reset-zoom');
    resetZoom.addEventListener('click', () => this.chart.resetZoom());
    this.paramSelect.addEventListener('change', () => {
      const value = this.paramSelect.value;
      if (value) this.plot(value);
    });
    this.paramChips.addEventListener('click', (event) => {
      const remove = (event.target as Element).closest<HTMLElement>('[data-param]');
      if (remove) this.setParams(this.chart.parameters.filter((p) => p !== remove.dataset.param));
    });
    this.deviceChip.addEventListener('click', () => this.setDevice(undefined));
    this.bodies = new Map<FleetViewName, HTMLElement>([
      [
        'map',
        el('div', { className: 'fleet-body', children: [el('div', { className: 'fleet-tools', children: [fit, this.followButton] }), this.map.element] }),
      ],
      [
        'chart',
        el('div', {
          className: 'fleet-body',
          children: [el('div', { className: 'fleet-tools', children: [this.paramSelect, this.paramChips, resetZoom] }), this.chart.element],
        }),
      ],
      ['devices', el('div', { className: 'fleet-body', children: [this.devices.element] })],
    ]);
    this.panel.append(
      el('div', {
        className: 'fleet-tabs',
        attrs: { role: 'tablist' },
        children: [...this.tabs.values(), this.deviceChip, el('span', { className: 'fleet-spacer' }), close],
      }),
      ...this.bodies.values(),
    );
    this.wireResizer();
    this.chart.setParameters(state?.params ?? []);
    this.width = state?.width;
    this.device = state?.device;
    this.pendingView = state?.view;
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  /** Puts the panel beside `main` (the table and detail split); returns what takes main's place. */
  wrap(main: HTMLElement, split: HTMLElement): HTMLElement {
    const workspace = el('div', { className: 'workspace', children: [el('div', { className: 'workspace-main', children: [main] }), this.resizer, this.panel] });
    // Narrow: the detail pane goes below the table.
    new ResizeObserver(() => {
      const narrow = main.clientWidth > 0 && main.clientWidth < NARROW_PX;
      const wanted = narrow ? 'horizontal' : 'vertical';
      if (split.getAttribute('split') !== wanted) split.setAttribute('split', wanted);
      workspace.dataset.narrow = String(narrow);
    }).observe(main);
    this.open(this.pendingView);
    return workspace;
  }

  /** The device the table is narrowed to, after a reload (the app applies it to its buffer). */
  get deviceFilter(): string | undefined {
    return this.device;
  }

  configure(settings: MapSettings | undefined): void {
    this.map.configure(settings);
  }

  /** The buffer grew (or was narrowed): counts are updated now, views at the next refresh. */
  changed(): void {
    this.stats.addFrom(this.host.items());
    this.dirty = true;
  }

  /** A new buffer (restart, a new filter, a resync): counts start again. */
  reset(): void {
    this.stats.reset();
    this.dirty = true;
  }

  /** The message in the detail pane: marked on the map. */
  showActive(item: TailItem | undefined): void {
    this.active = item;
    this.map.showActive(item);
    this.showFollow();
  }

  /** Opens the chart with this parameter added. */
  plot(param: string): void {
    if (!this.chart.parameters.includes(param)) this.setParams([...this.chart.parameters, param].slice(-MAX_PARAMS));
    this.open('chart');
  }

  dispose(): void {
    clearInterval(this.timer);
  }

  private setParams(params: string[]): void {
    this.chart.setParameters(params);
    this.showParams();
    this.save();
    this.dirty = true;
    this.refresh();
  }

  private setDevice(ident: string | undefined): void {
    this.device = ident;
    this.map.refit();
    this.host.filterDevice(ident);
    this.save();
    this.dirty = true;
    this.refresh();
  }

  private open(view: FleetViewName | undefined): void {
    this.view = view;
    this.panel.hidden = view === undefined;
    this.resizer.hidden = view === undefined;
    if (this.width !== undefined) this.panel.style.width = `${this.width}px`;
    for (const [name, body] of this.bodies) body.hidden = name !== view;
    for (const [name, tab] of this.tabs) tab.setAttribute('aria-selected', String(name === view));
    this.buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(VIEWS[i][0] === view)));
    if (view === 'map') this.map.show();
    if (view === 'chart') this.fillParamOptions();
    this.showParams();
    this.save();
    this.dirty = true;
    if (view !== undefined) requestAnimationFrame(() => this.refresh());
  }

  private refresh(): void {
    const deviceText = this.device === undefined ? '' : `Device: ${this.device === '' ? '(no ident)' : this.device} ✕`;
    setText(this.deviceChip, deviceText);
    this.deviceChip.hidden = deviceText === '';
    this.deviceChip.title = 'Show all devices again';
    // Pausing changes what the chart says, not its data.
    if (this.host.paused() !== this.wasPaused) {
      this.wasPaused = this.host.paused();
      this.dirty = true;
    }
    if (!this.dirty || this.view === undefined || this.panel.hidden) return;
    this.dirty = false;
    const all = this.host.items();
    const items = this.device === undefined ? all : all.filter((item) => identOf(item.message) === this.device);
    if (this.view === 'map') {
      this.map.update(items);
      // Marked only when among what the map shows; the view stays where the user (or the fit) put it.
      const shown = this.active !== undefined && (this.device === undefined || identOf(this.active.message) === this.device);
      this.map.showActive(shown ? this.active : undefined, false);
      this.showFollow();
    } else if (this.view === 'chart') {
      this.fillParamOptions();
      this.chart.update(items, this.host.paused());
    } else {
      this.devices.setSelected(this.device);
      this.devices.render();
    }
  }

  /** The device Follow would follow: the filtered one, else that of the message in the detail pane. */
  private followCandidate(): string | undefined {
    return this.device ?? (this.active ? identOf(this.active.message) : undefined);
  }

  private showFollow(): void {
    const followed = this.map.followed;
    const candidate = this.followCandidate();
    setText(this.followButton, followed !== undefined ? `Stop following ${followed}` : candidate !== undefined ? `Follow ${candidate}` : 'Follow');
    this.followButton.disabled = followed === undefined && candidate === undefined;
    this.followButton.title = followed === undefined ? 'Keep the device of the selected message (or the one picked in Devices) in view' : '';
  }

  private showParams(): void {
    this.paramChips.replaceChildren(
      ...this.chart.parameters.map((param) =>
        el('span', {
          className: 'param-chip',
          text: `${param} ✕`,
          attrs: { 'data-param': param, role: 'button', tabindex: '0', title: `Stop plotting ${param}` },
        }),
      ),
    );
  }

  /** The parameter picker lists the numeric parameters seen (refreshed when the set grows). */
  private fillParamOptions(): void {
    const items = this.host.items();
    const sample = items.slice(-200);
    const numeric = [...this.host.keys()].filter((key) => sample.some((item) => typeof item.message[key] === 'number')).sort();
    const key = numeric.join('\n');
    if (key === this.optionKeys) return;
    this.optionKeys = key;
    this.paramSelect.replaceChildren(
      el('vscode-option', { text: 'Add a parameter…', attrs: { value: '' } }),
      ...numeric.map((name) => el('vscode-option', { text: name, attrs: { value: name } })),
    );
  }

  private save(): void {
    this.host.save({
      ...(this.view ? { view: this.view } : {}),
      params: [...this.chart.parameters],
      ...(this.device !== undefined ? { device: this.device } : {}),
      ...(this.width ? { width: this.width } : {}),
    });
  }

  private wireResizer(): void {
    this.resizer.addEventListener('pointerdown', (event) => {
      this.resizer.setPointerCapture(event.pointerId);
      const move = (e: PointerEvent) => {
        const workspace = this.panel.parentElement;
        if (!workspace) return;
        const rect = workspace.getBoundingClientRect();
        this.width = Math.round(Math.min(rect.width - 300, Math.max(MIN_PANEL_PX, rect.right - e.clientX)));
        this.panel.style.width = `${this.width}px`;
      };
      const up = () => {
        this.resizer.removeEventListener('pointermove', move);
        this.resizer.removeEventListener('pointerup', up);
        this.save();
      };
      this.resizer.addEventListener('pointermove', move);
      this.resizer.addEventListener('pointerup', up);
    });
  }
}

export function readFleetState(value: unknown): FleetState | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const state: FleetState = {};
  if (v.view === 'map' || v.view === 'chart' || v.view === 'devices') state.view = v.view;
  if (Array.isArray(v.params))
    state.params = v.params.filter((p): p is string => typeof p === 'string' && p.length > 0 && p.length <= 256).slice(0, MAX_PARAMS);
  if (typeof v.device === 'string' && v.device.length <= 256) state.device = v.device;
  if (typeof v.width === 'number' && Number.isFinite(v.width) && v.width >= MIN_PANEL_PX && v.width <= 10_000) state.width = Math.round(v.width);
  return state;
}

function fleetButton(text: string, testId: string): VscodeButton {
  const b = el('vscode-button', { text, attrs: { 'data-testid': testId } }) as VscodeButton;
  b.secondary = true;
  return b;
}
