/**
 * Settings declared once (src/common/settings.ts): the checks name fields, the CLI names flags, a --config
 * file holds any training setting, and MANUAL's flag tables are what the declarations say.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { UsageError, UserError } from '../../src/common/errors.js';
import { allows, kebab, ruleText, SettingError, type Setting, type SettingValue } from '../../src/common/settings.js';
import { namedByFlag } from '../../src/cli/flags.js';
import { loadPreset, resolveModelConfig } from '../../src/model/config.js';
import { resolveTrainConfig, trainConfigJson, trainDefaults } from '../../src/train/config.js';
import { repoRoot, tempDir } from '../helpers.js';

describe('a declaration gives the check and its words', () => {
  test('ranges in words', () => {
    const cases: Array<[Setting, string]> = [
      [{ name: 'a', type: 'integer', min: 1, description: '' }, 'a positive integer'],
      [{ name: 'a', type: 'integer', min: 0, description: '' }, 'a non-negative integer'],
      [{ name: 'a', type: 'integer', min: 1, nullable: true, description: '' }, 'a positive integer or null'],
      [{ name: 'a', type: 'integer', min: 1, max: 511, description: '' }, 'a positive integer at most 511'],
      [{ name: 'a', type: 'number', above: 0, description: '' }, 'a number > 0'],
      [{ name: 'a', type: 'number', min: 0, below: 1, description: '' }, 'in [0, 1)'],
      [{ name: 'a', type: 'number', above: 0, max: 1, description: '' }, 'in (0, 1]'],
      [{ name: 'a', type: 'string', choices: ['x', 'y'], description: '' }, 'one of x, y'],
      [{ name: 'a', type: 'path', description: '' }, 'a path'],
    ];
    for (const [s, words] of cases) assert.equal(ruleText(s), words);
  });

  test('what a declaration allows', () => {
    const unit: Setting = { name: 'dropout', type: 'number', min: 0, below: 1, description: '' };
    assert.ok(allows(unit, 0) && allows(unit, 0.5));
    for (const bad of [1, -0.1, Number.NaN, '0.5', null, undefined]) assert.ok(!allows(unit, bad), String(bad));
    const steps: Setting = { name: 'maxSteps', type: 'integer', min: 1, nullable: true, description: '' };
    assert.ok(allows(steps, null) && allows(steps, 3) && !allows(steps, 1.5) && !allows(steps, 0));
    assert.equal(kebab('earlyStoppingPatience'), 'early-stopping-patience');
  });

  test('the library names the field; the CLI names the flag of a value the user gave', () => {
    let err: unknown;
    try {
      resolveTrainConfig({ given: { learningRate: -1 } });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SettingError);
    assert.equal(err.message, 'training settings: learningRate must be a number > 0 (got -1)');
    assert.equal(err.exitCode, 2);
    const declared: Setting[] = [{ name: 'learningRate', type: 'number', above: 0, description: '' }];
    const named = namedByFlag(err, declared);
    assert.ok(named instanceof UsageError);
    assert.equal(named.message, 'learningRate (--learning-rate) must be a number > 0 (got -1)');
    // A value from a file is the file's: left as the library said it.
    const fromFile = new SettingError('run.json', 'learningRate', 'a number > 0', -1, false);
    assert.equal(namedByFlag(fromFile, declared), fromFile);
  });
});

describe('gptmed-train --config: any training setting and model field', () => {
  const dir = tempDir();

  test("a run directory's config.json loads back whole", () => {
    const config = { ...trainDefaults(), modelSize: 'tiny' as const, batchSize: 8, maxSteps: 50, learningRate: 0.001, seed: 7 };
    const shape = { ...loadPreset('tiny'), dModel: 96, nHeads: 3 };
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ ...trainConfigJson(config), ...shape }, null, 2));
    assert.deepEqual(resolveTrainConfig({ configFile: file, given: {} }), config);
    assert.deepEqual(resolveModelConfig({ modelSize: 'small', configFile: file, vocabSize: 300 }), { ...shape, vocabSize: 300 });
  });

  test('defaults < saved settings < the file < --quick-test < flags given', () => {
    const file = path.join(dir, 'some.json');
    fs.writeFileSync(file, JSON.stringify({ batchSize: 8, numEpochs: 3, seed: 5, dModel: 64 }));
    const saved = { batchSize: 32, numEpochs: 7, seed: 1, warmupSteps: 9 };
    const c = resolveTrainConfig({ saved, configFile: file, quickTest: true, given: { seed: 11 } });
    assert.equal(c.warmupSteps, 9, 'saved over the defaults');
    assert.equal(c.numEpochs, 1, '--quick-test over the file');
    assert.equal(c.batchSize, 4, '--quick-test over the file');
    assert.equal(c.seed, 11, 'a flag over everything');
    assert.equal(resolveTrainConfig({ saved, configFile: file, given: {} }).numEpochs, 3, 'the file over saved settings');
  });

  test('an unknown key or a bad value is one line naming the file', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ batchSize: 8, learningRat: 0.1 }));
    assert.throws(() => resolveTrainConfig({ configFile: file, given: {} }), (e: unknown) => e instanceof UserError && /^\S*bad\.json: unknown key "learningRat"; known: modelSize, /.test(e.message));
    fs.writeFileSync(file, JSON.stringify({ batchSize: 0 }));
    assert.throws(() => resolveTrainConfig({ configFile: file, given: {} }), (e: unknown) => e instanceof SettingError && !e.given && e.exitCode === 1 && e.message === `${file}: batchSize must be a positive integer (got 0)`);
    // A rule across settings (minLr <= learningRate) broken by the file's value names the file too.
    fs.writeFileSync(file, JSON.stringify({ learningRate: 0.000001 }));
    assert.throws(() => resolveTrainConfig({ configFile: file, given: {} }), (e: unknown) => e instanceof UserError && e.message.startsWith(`${file}: minLr must be at most learningRate`));
    fs.writeFileSync(file, JSON.stringify({ dropout: 1.5 }));
    assert.throws(() => resolveModelConfig({ modelSize: 'tiny', configFile: file, vocabSize: 300 }), /bad\.json: dropout must be in \[0, 1\) \(got 1\.5\)/);
  });
});

/**
 * MANUAL's table row of a flag: `| flags | default | description |`, the default as --help shows it. A long
 * alias is an old name kept working (--max-length), not documented.
 */
function manualRow(s: Setting, shown: Partial<Record<string, SettingValue>> = {}): string {
  const aliases = (typeof s.alias === 'string' ? [s.alias] : (s.alias ?? [])).filter((a) => a.length === 1).map((a) => `-${a}`);
  const flags = [`--${kebab(s.name)}`, ...aliases].map((f) => `\`${f}\``).join(', ');
  const value = shown[s.name] !== undefined ? shown[s.name] : s.default;
  const text = s.defaultText ?? (value === undefined ? '' : value === null ? 'none' : value === false ? 'off' : value === true ? 'on' : String(value));
  return `| ${flags} | ${text} | ${s.description} |`;
}

/** The rows of the first flag table in MANUAL's section `heading`. */
function manualTable(heading: string): string[] {
  const manual = fs.readFileSync(path.join(repoRoot, 'MANUAL.md'), 'utf8');
  const section = manual.slice(manual.indexOf(`\n## ${heading}`));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| flag | default |'));
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start + 2, end);
}

function assertTable(heading: string, expected: string[]): void {
  assert.deepEqual(manualTable(heading), expected, `MANUAL "${heading}": the flag table should be (from the declarations):\n${expected.join('\n')}`);
}

describe("MANUAL's flag tables are the declarations'", () => {
  test('gptmed-train', async () => {
    const { trainFlags } = await import('../../src/cli/train.js');
    const shown = trainDefaults() as unknown as Record<string, SettingValue>;
    assertTable('gptmed-train', trainFlags.filter((s) => s.flag !== false).map((s) => manualRow(s, shown)));
  });

  test('gptmed-generate', async () => {
    const { generateFlagSettings } = await import('../../src/cli/generate.js');
    const { resolveOptions } = await import('../../src/generate/options.js');
    const shown = { ...resolveOptions(), preset: 'none' } as unknown as Record<string, SettingValue>;
    assertTable('gptmed-generate', generateFlagSettings.map((s) => manualRow(s, shown)));
  });
});
