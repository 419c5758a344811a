/**
 * The five tabs (buttons with role="tab" and aria-selected; arrow keys, Home and End move between them, as
 * the ARIA tabs pattern has it) and where the page is: the tab, and on the Watch tab the job, live in the
 * URL's hash (#watch/<job id>) so a reload, or a copied link, comes back to the same place.
 */
import { byId } from './dom.js';

export const TABS = ['data', 'train', 'watch', 'playground', 'models'] as const;
export type TabName = (typeof TABS)[number];

const JOB_STORAGE = 'gptmed.job';

export interface PageLocation {
  tab: TabName;
  job: string | null;
}

export function readLocation(): PageLocation {
  const [tab, job] = decodeURIComponent(location.hash.replace(/^#/, '')).split('/');
  return {
    tab: (TABS as readonly string[]).includes(tab) ? (tab as TabName) : 'data',
    // This tab's storage remembers the job when the hash does not say it (a reload on another tab).
    job: job || sessionStorage.getItem(JOB_STORAGE),
  };
}

export function writeLocation(where: PageLocation): void {
  if (where.job) sessionStorage.setItem(JOB_STORAGE, where.job);
  else sessionStorage.removeItem(JOB_STORAGE);
  const hash = where.tab === 'watch' && where.job ? `#watch/${encodeURIComponent(where.job)}` : `#${where.tab}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}

export class Tabs {
  current: TabName | null = null;

  constructor(private readonly onChange: (tab: TabName, previous: TabName | null) => void) {
    for (const name of TABS) {
      const button = byId(`tab-${name}`);
      button.addEventListener('click', () => this.show(name));
      button.addEventListener('keydown', (event) => this.moveWithKeys(event, name));
    }
  }

  show(tab: TabName): void {
    const previous = this.current;
    this.current = tab;
    for (const name of TABS) {
      const selected = name === tab;
      const button = byId(`tab-${name}`);
      button.setAttribute('aria-selected', String(selected));
      button.tabIndex = selected ? 0 : -1; // one tab stop for the tab list; arrows move within it
      byId(`panel-${name}`).hidden = !selected;
    }
    if (previous !== tab) this.onChange(tab, previous);
  }

  private moveWithKeys(event: KeyboardEvent, from: TabName): void {
    const i = TABS.indexOf(from);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const tab = TABS[(to + TABS.length) % TABS.length];
    this.show(tab);
    byId(`tab-${tab}`).focus();
  }
}
