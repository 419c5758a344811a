/**
 * The Watch tab: the list of jobs with their states (GET /v1/jobs, asked every few seconds), and the
 * selected job: its stage, step of total steps and ETA, cancel and resume, and live charts of train loss,
 * val loss (against the unigram baseline), learning rate and tokens/s fed by the job's event stream.
 * Since the stream replays a job's history, a page reloaded mid-run shows the whole curve so far.
 */
import { getJson, postEmpty } from './api.js';
import { clearError, showError } from './alerts.js';
import { LiveChart } from './charts.js';
import { byId, el, replaceChildren } from './dom.js';
import { formatDate, formatDuration, formatLoss, formatRate } from './format.js';
import { followJob, type JobListener } from './job-stream.js';
import { ENDED_STATES, type JobState, type JobView, type MetricsRecord, type StateEvent } from './types.js';

const POLL_MS = 2000;
const RENDER_MS = 100;

/** What the event stream has said of the selected job so far (fresher than the polled job view). */
interface LiveProgress {
  state: StateEvent | null;
  step: number | null;
  totalSteps: number | null;
  trainLoss: number | null;
  valLoss: number | null;
  tokensPerSec: number | null;
  stop: string | null;
}

const noProgress = (): LiveProgress => ({ state: null, step: null, totalSteps: null, trainLoss: null, valLoss: null, tokensPerSec: null, stop: null });

export class WatchView {
  private jobs: JobView[] = [];
  private selected: string | null = null;
  private live = noProgress();
  private following: AbortController | null = null;
  /** When the last stream ended (ms): a job list asked for before then may still call the job running. */
  private streamEndedAt = 0;
  /** When the selection last changed (ms): a job list asked for before then may not hold it yet. */
  private selectedAt = 0;
  /** The job the URL named when the page opened, until the first jobs list says whether it exists. */
  private remembered: string | null = null;
  private renderTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly charts = {
    trainLoss: new LiveChart(byId('chart-train-loss'), { label: 'train loss', color: '#1f5fbf', format: (v) => v.toFixed(2) }),
    valLoss: new LiveChart(byId('chart-val-loss'), { label: 'val loss', color: '#b3261e', format: (v) => v.toFixed(2) }),
    lr: new LiveChart(byId('chart-lr'), { label: 'learning rate', color: '#2e7d32', format: (v) => (v === 0 ? '0' : v.toExponential(1)) }),
    tokensPerSec: new LiveChart(byId('chart-tokens'), { label: 'tokens/s', color: '#6a3fa0', format: (v) => formatRate(v) }),
  };

  constructor(
    /** Told the job now selected, so the page can remember it across a reload. */
    private readonly onSelect: (id: string | null) => void,
    /** Told when a job has just succeeded: there is a new model. */
    private readonly onModelReady: (job: JobView) => void,
  ) {
    byId('job-cancel').addEventListener('click', () => void this.act('cancel'));
    byId('job-resume').addEventListener('click', () => void this.act('resume'));
    this.renderDetail();
  }

  /**
   * Start polling the jobs list. `remembered` is the job the URL (or this tab's storage) named: it is
   * selected once the list shows it still exists, else the running or newest job is.
   */
  start(remembered: string | null): void {
    this.remembered = remembered;
    void this.pollForever();
  }

  /** A job the page just created: show it at once. */
  add(job: JobView): void {
    this.jobs = [...this.jobs.filter((j) => j.id !== job.id), job];
    this.renderList();
    this.select(job.id);
  }

  select(id: string): void {
    if (this.selected === id && this.following) return;
    this.selected = id;
    this.selectedAt = Date.now();
    this.onSelect(id);
    this.follow();
    this.renderList();
    this.renderDetail();
  }

  private async pollForever(): Promise<void> {
    for (;;) {
      await this.refresh();
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private async refresh(): Promise<void> {
    const askedAt = Date.now();
    try {
      const list = await getJson<{ data: JobView[] }>('/v1/jobs');
      clearError('jobs');
      this.noticeNewModels(list.data);
      this.jobs = list.data;
    } catch (err) {
      showError(err, 'Listing the jobs', 'jobs');
      return;
    }
    if (this.selected !== null && askedAt > this.selectedAt && !this.selectedJob()) this.forget();
    if (this.selected === null && this.jobs.length > 0) this.select(this.jobs.find((j) => j.id === this.remembered)?.id ?? this.mostInteresting().id);
    else if (this.selected === null && this.remembered) this.onSelect(null); // it is gone: the URL stops naming it
    this.remembered = null;
    // A job resumed (here or elsewhere) streams again; its stream had ended with it.
    const job = this.selectedJob();
    if (job && !ENDED_STATES.has(job.state) && !this.following && askedAt > this.streamEndedAt) this.follow();
    this.renderList();
    this.renderDetail();
  }

  private noticeNewModels(fresh: JobView[]): void {
    for (const job of fresh) {
      const before = this.jobs.find((j) => j.id === job.id);
      if (job.state === 'succeeded' && before && before.state !== 'succeeded') this.onModelReady(job);
    }
  }

  /** A remembered job the server no longer lists (another --runs-dir, a deleted run): let it go quietly. */
  private forget(): void {
    this.following?.abort();
    this.following = null;
    this.selected = null;
    this.live = noProgress();
    for (const chart of Object.values(this.charts)) chart.clear();
    clearError('events');
    this.onSelect(null);
  }

  /** The running job, else the newest one. */
  private mostInteresting(): JobView {
    return this.jobs.find((j) => j.state === 'running') ?? this.jobs[this.jobs.length - 1];
  }

  private selectedJob(): JobView | undefined {
    return this.jobs.find((j) => j.id === this.selected);
  }

  private follow(): void {
    this.following?.abort();
    const id = this.selected;
    if (!id) return;
    const controller = new AbortController();
    this.following = controller;
    void followJob(id, this.listener(), controller.signal).finally(() => {
      if (this.following !== controller) return;
      this.following = null;
      this.streamEndedAt = Date.now();
    });
  }

  private listener(): JobListener {
    return {
      reset: () => {
        this.live = noProgress();
        for (const chart of Object.values(this.charts)) chart.clear();
        this.renderSoon();
      },
      state: (event) => {
        this.live.state = event;
        this.renderSoon();
      },
      metrics: (record) => {
        this.plot(record);
        this.renderSoon();
      },
    };
  }

  private plot(r: MetricsRecord): void {
    const c = this.charts;
    if (r.type === 'start') {
      this.live.totalSteps = r.totalSteps;
      for (const chart of Object.values(c)) chart.setLastStep(r.totalSteps);
      c.valLoss.setBaseline(r.unigramBaseline);
    } else if (r.type === 'train') {
      Object.assign(this.live, { step: r.step, trainLoss: r.loss, tokensPerSec: r.tokensPerSec });
      c.trainLoss.add(r.step, r.loss);
      c.lr.add(r.step, r.lr);
      c.tokensPerSec.add(r.step, r.tokensPerSec);
    } else if (r.type === 'eval') {
      this.live.valLoss = r.valLoss;
      c.valLoss.add(r.step, r.valLoss);
      c.valLoss.setBaseline(r.unigramBaseline);
    } else {
      this.live.stop = `stopped at step ${r.step} (${r.reason}); best val loss ${formatLoss(r.bestValLoss)} at step ${r.bestStep}`;
    }
  }

  private async act(action: 'cancel' | 'resume'): Promise<void> {
    const id = this.selected;
    if (!id) return;
    const button = byId<HTMLButtonElement>(`job-${action}`);
    button.disabled = true;
    button.textContent = action === 'cancel' ? 'Cancelling…' : 'Resuming…';
    try {
      const job = await postEmpty<JobView>(`/v1/jobs/${encodeURIComponent(id)}/${action}`);
      clearError(action);
      this.jobs = this.jobs.map((j) => (j.id === job.id ? job : j));
      if (action === 'resume') this.follow();
    } catch (err) {
      showError(err, action === 'cancel' ? `Cancelling ${id}` : `Resuming ${id}`, action);
    } finally {
      button.textContent = action === 'cancel' ? 'Cancel' : 'Resume';
      this.renderDetail();
    }
  }

  /** Redraw the list and the job's facts soon, once for many events (a replayed history is thousands). */
  private renderSoon(): void {
    this.renderTimer ??= setTimeout(() => {
      this.renderTimer = null;
      this.renderList();
      this.renderDetail();
    }, RENDER_MS);
  }

  /** A job as known now: what its stream said, where it said it, over the polled job view. */
  private now(job: JobView | undefined, live: LiveProgress): JobNow {
    return {
      state: live.state?.state ?? job?.state ?? null,
      stage: live.state?.stage ?? job?.stage ?? null,
      step: live.step ?? job?.step ?? null,
      totalSteps: live.totalSteps ?? job?.totalSteps ?? null,
      trainLoss: live.trainLoss ?? job?.trainLoss ?? null,
      valLoss: live.valLoss ?? job?.valLoss ?? null,
      tokensPerSec: live.tokensPerSec ?? job?.tokensPerSec ?? null,
      error: live.state?.error ?? job?.error ?? null,
    };
  }

  private renderList(): void {
    const items = [...this.jobs].reverse().map((job) => {
      const selected = job.id === this.selected;
      const now = this.now(job, selected ? this.live : noProgress());
      const button = el(
        'button',
        { type: 'button', class: 'job-item', 'aria-current': selected ? 'true' : null, 'data-job': job.id },
        el('span', { class: 'job-name' }, job.id),
        el('span', { class: `badge state-${now.state}` }, now.state),
        el('span', { class: 'hint' }, progressText(now), ' · ', formatDate(new Date(job.createdAt))),
      );
      button.addEventListener('click', () => this.select(job.id));
      return el('li', {}, button);
    });
    replaceChildren(byId('job-list'), ...(items.length > 0 ? items : [el('li', { class: 'hint' }, 'No jobs yet: start one on the Train tab.')]));
  }

  private renderDetail(): void {
    const job = this.selectedJob();
    const id = this.selected;
    const now = this.now(job, this.live);
    const active = now.state === 'running' || now.state === 'queued';
    const eta = active && job?.etaSeconds !== null && job?.etaSeconds !== undefined ? formatDuration(job.etaSeconds) : '–';
    const facts: Array<[string, string, string]> = [
      ['state', 'State', now.state ?? '–'],
      ['stage', 'Stage', now.stage ?? '–'],
      ['step', 'Step', now.step === null ? '–' : now.totalSteps ? `${now.step} / ${now.totalSteps}` : String(now.step)],
      ['eta', 'ETA', eta],
      ['train-loss', 'Train loss', formatLoss(now.trainLoss)],
      ['val-loss', 'Val loss', formatLoss(now.valLoss)],
      ['tokens', 'Tokens/s', now.tokensPerSec ? formatRate(now.tokensPerSec) : '–'],
    ];
    byId('job-title').textContent = id ? `Job ${id}` : 'No job selected';
    replaceChildren(byId('job-facts'), ...facts.flatMap(([key, name, value]) => [el('dt', {}, name), el('dd', { id: `job-${key}` }, value)]));
    byId('job-message').textContent = now.error ? `Error: ${now.error}` : (this.live.stop ?? '');
    byId<HTMLButtonElement>('job-cancel').disabled = !id || !active;
    byId<HTMLButtonElement>('job-resume').disabled = !id || !(now.state === 'cancelled' || now.state === 'interrupted');
  }
}

/** The facts of a job the page shows, each from the freshest source. */
interface JobNow {
  state: JobState | null;
  stage: string | null;
  step: number | null;
  totalSteps: number | null;
  trainLoss: number | null;
  valLoss: number | null;
  tokensPerSec: number | null;
  error: string | null;
}

function progressText(now: JobNow): string {
  if (now.state === 'queued') return 'waiting';
  if (now.step !== null && now.totalSteps) return `step ${now.step} / ${now.totalSteps}`;
  return now.stage ?? '';
}
