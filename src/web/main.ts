/**
 * gptmed-serve's page: five tabs (Data, Train, Watch, Playground, Models), each a view module; this file
 * only connects them: the picked data goes to the Train tab, a started job to the Watch tab, a finished
 * job's model to the Models and Playground tabs.
 */
import { ApiError, setAnswerListener, setKeyPrompt } from './api.js';
import { clearError, showError, UNREACHABLE } from './alerts.js';
import { DataView } from './data-view.js';
import { byId, sleep } from './dom.js';
import { askForKey } from './key-form.js';
import { ModelsView } from './models-view.js';
import { loadOptions } from './options.js';
import { PlaygroundView } from './playground-view.js';
import { readLocation, Tabs, writeLocation, type TabName } from './tabs.js';
import { TrainView } from './train-view.js';
import { WatchView } from './watch-view.js';

// Anything that escapes a view still reaches the user in words. (Not the browser's note that a
// ResizeObserver callback was delivered a frame late: nothing failed.)
window.addEventListener('error', (event) => {
  if (!/ResizeObserver loop/.test(event.message)) showError(event.error ?? event.message, 'Page error', 'page');
});
window.addEventListener('unhandledrejection', (event) => showError(event.reason, 'Page error', 'page'));

setKeyPrompt(askForKey);
setAnswerListener(() => clearError(UNREACHABLE));

const initial = readLocation();
let selectedJob = initial.job;

const playground = new PlaygroundView();
const models = new ModelsView(
  (list) => playground.setModels(list),
  (id) => {
    playground.useModel(id);
    tabs.show('playground');
  },
);
const watch = new WatchView(
  (id) => {
    selectedJob = id;
    writeLocation({ tab: tabs.current ?? 'watch', job: id });
  },
  (job) => {
    playground.useModel(job.model);
    void models.refresh();
  },
);
const data = new DataView((dataset) => train.setDataset(dataset));
const train = new TrainView(data, (job) => {
  watch.add(job);
  tabs.show('watch');
});

const tabs = new Tabs((tab: TabName, previous) => {
  writeLocation({ tab, job: selectedJob });
  if (previous === 'train') train.onHide();
  if (tab === 'train') train.onShow();
  if (tab === 'models' || tab === 'playground') void models.refresh();
});

/** The settings forms need GET /v1/options; until it answers they say so, and it is asked again. */
async function buildForms(): Promise<void> {
  for (;;) {
    try {
      const options = await loadOptions();
      data.buildSettings(options);
      train.build(options);
      playground.build(options);
      models.setSizes(options.training.modelSizes);
      byId('train-form').dataset.ready = 'true';
      byId('train-loading').hidden = true;
      return;
    } catch (err) {
      showError(err, 'Loading the settings', 'options');
      if (err instanceof ApiError && err.status === 401) return; // the key was not given: asking again would nag
      await sleep(5000);
    }
  }
}

window.addEventListener('hashchange', () => {
  const where = readLocation();
  tabs.show(where.tab);
  if (where.job && where.job !== selectedJob) watch.select(where.job);
});

tabs.show(initial.tab);
void buildForms();
watch.start(initial.job);
void models.refresh();
