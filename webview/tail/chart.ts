/**
 * Charts of numeric parameters over device time (uPlot, bundled): one series per device and
 * parameter, live while the tail is live, still while it is paused; drag to zoom (the zoom stays
 * while data arrives), double-click or "Reset zoom" to follow the newest again.
 */
import uPlot from 'uplot';
import uPlotCss from 'uplot/dist/uPlot.min.css';
import type { TailItem } from '../../src/shared/tailProtocol';
import { deviceColor, identOf } from './devices';
import { el } from './dom';

/** At most this many devices per parameter are drawn (the most active ones). */
export const MAX_DEVICES_PER_PARAM = 8;
export const MAX_PARAMS = 4;
const DASHES: number[][] = [[], [6, 3], [2, 3], [10, 3, 2, 3]];

let styled = false;

export interface ChartSeries {
  ident: string;
  param: string;
}

export interface ChartData {
  series: ChartSeries[];
  /** uPlot's aligned data: x (device time, seconds), then one array per series (null where it has no value). */
  data: uPlot.AlignedData;
  /** Devices left out because a parameter had more than MAX_DEVICES_PER_PARAM. */
  omitted: number;
}

/** Builds the chart's series from the messages (any order); pure, so tests can check it without a page. */
export function chartData(items: readonly TailItem[], params: readonly string[]): ChartData {
  const counts = new Map<string, Map<string, number>>(params.map((p) => [p, new Map()]));
  const points: Array<[number, string, string, number]> = [];
  for (const item of items) {
    const m = item.message;
    const t = typeof m.timestamp === 'number' && Number.isFinite(m.timestamp) ? m.timestamp : item.receivedAt / 1000;
    for (const param of params) {
      const value = m[param];
      const number = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : undefined;
      if (number === undefined || !Number.isFinite(number)) continue;
      const ident = identOf(m);
      const perParam = counts.get(param)!;
      perParam.set(ident, (perParam.get(ident) ?? 0) + 1);
      points.push([t, ident, param, number]);
    }
  }
  const series: ChartSeries[] = [];
  let omitted = 0;
  for (const param of params) {
    const idents = [...counts.get(param)!.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    omitted += Math.max(0, idents.length - MAX_DEVICES_PER_PARAM);
    for (const [ident] of idents.slice(0, MAX_DEVICES_PER_PARAM).sort((a, b) => a[0].localeCompare(b[0]))) series.push({ ident, param });
  }
  const index = new Map(series.map((s, i) => [`${s.param}\u0000${s.ident}`, i]));
  const kept = points.filter((p) => index.has(`${p[2]}\u0000${p[1]}`)).sort((a, b) => a[0] - b[0]);
  const xs = new Array<number>(kept.length);
  const ys = series.map(() => new Array<number | null>(kept.length).fill(null));
  kept.forEach(([t, ident, param, value], i) => {
    xs[i] = t;
    ys[index.get(`${param}\u0000${ident}`)!][i] = value;
  });
  return { series, data: [xs, ...ys] as uPlot.AlignedData, omitted };
}

export class ChartView {
  readonly element = el('div', { className: 'chart-view', attrs: { 'data-testid': 'chart' } });
  private readonly plotArea = el('div', { className: 'chart-plot' });
  private readonly note = el('p', { className: 'muted chart-note', attrs: { 'data-testid': 'chart-note' } });
  private plot: uPlot | undefined;
  private seriesKey = '';
  private params: string[] = [];
  private zoomed = false;
  /** Set while this code changes the scales, so that only the user's drag counts as a zoom. */
  private updating = false;
  private last: ChartData | undefined;

  constructor() {
    this.element.append(this.note, this.plotArea);
    new ResizeObserver(() => this.resize()).observe(this.plotArea);
    this.plotArea.addEventListener('dblclick', () => this.resetZoom());
  }

  get parameters(): readonly string[] {
    return this.params;
  }

  setParameters(params: readonly string[]): void {
    this.params = [...new Set(params)].slice(0, MAX_PARAMS);
    this.zoomed = false;
  }

  get isZoomed(): boolean {
    return this.zoomed;
  }

  resetZoom(): void {
    this.zoomed = false;
    if (this.plot && this.last) this.setData(this.last, true);
    this.element.dataset.zoomed = 'false';
  }

  /** Redraws from these messages; `paused` only changes the note (a paused tail sends nothing new). */
  update(items: readonly TailItem[], paused: boolean): void {
    if (!styled) {
      styled = true;
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(uPlotCss);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    if (this.params.length === 0) {
      this.destroy();
      this.note.textContent = 'Pick a numeric parameter to plot (or "Plot" in the detail pane or in Columns…).';
      return;
    }
    const chart = chartData(items, this.params);
    this.last = chart;
    const points = chart.data[0].length;
    this.note.textContent = [
      `${this.params.join(', ')} over device time`,
      points === 0 ? 'no numeric values yet' : `${points.toLocaleString('en-US')} values`,
      chart.omitted > 0 ? `${chart.omitted} more devices not drawn: pick one in Devices` : '',
      paused ? 'paused' : this.zoomed ? 'zoomed: double-click for live' : 'live',
    ]
      .filter(Boolean)
      .join(' · ');
    const key = JSON.stringify(chart.series);
    if (!this.plot || key !== this.seriesKey) {
      this.destroy();
      this.seriesKey = key;
      this.create(chart);
    } else this.setData(chart, !this.zoomed);
    this.element.dataset.series = String(chart.series.length);
    this.element.dataset.points = String(points);
  }

  private setData(chart: ChartData, resetScales: boolean): void {
    this.updating = true;
    try {
      this.plot!.setData(chart.data, resetScales);
    } finally {
      this.updating = false;
    }
  }

  private create(chart: ChartData): void {
    const { width, height } = this.size();
    const scales: uPlot.Scales = { x: { time: true } };
    // Axes are drawn on a canvas, which takes colours, not CSS variables.
    const foreground = getComputedStyle(this.element).color || '#ccc';
    const axes: uPlot.Axis[] = [{ stroke: foreground, grid: { stroke: 'rgba(128,128,128,0.2)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } }];
    this.params.forEach((param, i) => {
      scales[param] = { auto: true };
      if (i < 2)
        axes.push({
          scale: param,
          side: i === 0 ? 3 : 1,
          label: param,
          stroke: foreground,
          grid: { show: i === 0, stroke: 'rgba(128,128,128,0.2)' },
          ticks: { stroke: 'rgba(128,128,128,0.3)' },
        });
    });
    const series: uPlot.Series[] = [
      {},
      ...chart.series.map((s) => ({
        label: `${s.ident === '' ? '(no ident)' : s.ident} · ${s.param}`,
        scale: s.param,
        stroke: deviceColor(s.ident),
        width: 1.5,
        dash: DASHES[this.params.indexOf(s.param) % DASHES.length],
        spanGaps: true,
        points: { show: false },
      })),
    ];
    this.updating = true;
    try {
      this.plot = new uPlot(
        {
          width,
          height,
          scales,
          axes,
          series,
          cursor: { drag: { x: true, y: false, setScale: true } },
          legend: { live: true },
          hooks: {
            setScale: [
              (u, key) => {
                if (key !== 'x' || this.updating) return;
                const xs = u.data[0];
                const min = u.scales.x.min ?? 0;
                const max = u.scales.x.max ?? 0;
                this.zoomed = xs.length > 0 && (min > xs[0] || max < xs[xs.length - 1]);
                this.element.dataset.zoomed = String(this.zoomed);
              },
            ],
          },
        },
        chart.data,
        this.plotArea,
      );
    } finally {
      this.updating = false;
    }
  }

  private size(): { width: number; height: number } {
    // The legend sits below the plot: leave it room.
    return { width: Math.max(200, this.plotArea.clientWidth), height: Math.max(120, this.plotArea.clientHeight - 60) };
  }

  private resize(): void {
    if (!this.plot) return;
    this.plot.setSize(this.size());
  }

  private destroy(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.seriesKey = '';
    delete this.element.dataset.series;
  }
}
