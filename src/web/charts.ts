/**
 * Live line charts (uPlot) of one value against the training step. Points arrive one at a time from the
 * job's event stream, a replayed history can be thousands at once, so drawing is batched (at most a few
 * redraws a second) while the point count, kept in the chart element's `data-points`, is always current.
 * A chart is created once its element has a width (a hidden tab has none) and follows its size.
 */
import uPlot from 'uplot';

export interface ChartSpec {
  /** Series name in the legend, e.g. "train loss". */
  label: string;
  color: string;
  /** Axis tick labels. */
  format?: (value: number) => string;
}

const HEIGHT = 170;
const REDRAW_MS = 250;

export class LiveChart {
  private readonly steps: number[] = [];
  private readonly values: number[] = [];
  private baseline: number | null = null;
  private lastStep: number | null = null;
  private plot: uPlot | null = null;
  private redrawTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly spec: ChartSpec,
  ) {
    root.dataset.points = '0';
    // Resized on the next frame, not inside the observer: a chart that changes the layout from within
    // the callback makes the browser report "ResizeObserver loop completed with undelivered notifications".
    new ResizeObserver(() => requestAnimationFrame(() => this.fit())).observe(root);
  }

  add(step: number, value: number): void {
    this.steps.push(step);
    this.values.push(value);
    this.root.dataset.points = String(this.steps.length);
    this.scheduleRedraw();
  }

  /** A horizontal reference line (the unigram baseline: a model that learned nothing from context). */
  setBaseline(value: number): void {
    this.baseline = value;
    this.scheduleRedraw();
  }

  /** Where the x axis ends (the run's last step), so the curve fills in from the left as it trains. */
  setLastStep(step: number): void {
    this.lastStep = step;
    this.scheduleRedraw();
  }

  clear(): void {
    this.steps.length = 0;
    this.values.length = 0;
    this.baseline = null;
    this.lastStep = null;
    this.root.dataset.points = '0';
    this.scheduleRedraw();
  }

  private scheduleRedraw(): void {
    this.redrawTimer ??= setTimeout(() => {
      this.redrawTimer = null;
      this.redraw();
    }, REDRAW_MS);
  }

  private redraw(): void {
    if (!this.plot) return this.fit();
    // setData copies nothing: uPlot keeps the arrays, so hand it fresh ones when they have grown.
    this.plot.setData([this.steps.slice(), this.values.slice()]);
  }

  /** Create the chart, or resize it, to the element's width; nothing while the element is hidden. */
  private fit(): void {
    const width = Math.floor(this.root.clientWidth);
    if (width <= 0) return;
    if (!this.plot) this.plot = new uPlot(this.options(width), [this.steps.slice(), this.values.slice()], this.root);
    else if (this.plot.width !== width) this.plot.setSize({ width, height: HEIGHT });
  }

  private options(width: number): uPlot.Options {
    return {
      width,
      height: HEIGHT,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: (_u, _min, max) => [0, Math.max(this.lastStep ?? max, 1)] },
        y: { range: (_u, min, max) => this.yRange(min, max) },
      },
      axes: [{ label: 'step' }, { values: (_u, ticks) => ticks.map((v) => (this.spec.format ? this.spec.format(v) : String(v))), size: 60 }],
      series: [{ label: 'step' }, { label: this.spec.label, stroke: this.spec.color, width: 2, points: { size: 5 } }],
      hooks: { draw: [(u) => this.drawBaseline(u)] },
    };
  }

  /** The data's range with a little room, widened to include the baseline. */
  private yRange(min: number | null, max: number | null): uPlot.Range.MinMax {
    let lo = min ?? this.baseline ?? 0;
    let hi = max ?? this.baseline ?? 1;
    if (this.baseline !== null) {
      lo = Math.min(lo, this.baseline);
      hi = Math.max(hi, this.baseline);
    }
    const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }

  private drawBaseline(u: uPlot): void {
    if (this.baseline === null) return;
    const y = Math.round(u.valToPos(this.baseline, 'y', true));
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = '#8a5a00';
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.fillStyle = '#8a5a00';
    ctx.textAlign = 'left'; // uPlot leaves the alignment of its last axis label set
    ctx.textBaseline = 'bottom';
    ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.fillText(`unigram baseline ${this.baseline.toFixed(3)}`, u.bbox.left + 6 * devicePixelRatio, y - 3 * devicePixelRatio);
    ctx.restore();
  }
}
