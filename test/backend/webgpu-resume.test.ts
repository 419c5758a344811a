/**
 * Checkpoints are backend-independent: a run trained on webgpu resumes on wasm and the other way round, and a
 * resume on webgpu repeats the uninterrupted webgpu run exactly. Through the library's train() in one process
 * (SwiftShader compiles each program once per process; child processes would compile them again and again).
 * Needs `npm run build` (the shards come from the CLI) and SwiftShader (webgpu-env.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rejectedWebGpuPrograms } from '../../src/backend/webgpu.js';
import type { Device } from '../../src/backend/index.js';
import { train } from '../../src/train/trainer.js';
import { buildShards, lossCurve, type Shards } from '../train/run-helpers.js';
import { useSwiftShaderUnlessAGpuIsSet } from './webgpu-env.js';

useSwiftShaderUnlessAGpuIsSet();

let work: string;
let shards: Shards;

/** 6 steps of a tiny model with dropout, a checkpoint every 3; `from` resumes from a step directory. */
async function run(name: string, device: Device, from?: string): Promise<Map<number, number>> {
  const checkpointDir = path.join(work, name);
  await train({
    given: {
      modelSize: 'tiny', trainData: shards.train, valData: shards.val, checkpointDir, device, batchSize: 4, maxSteps: 6,
      learningRate: 3e-3, warmupSteps: 2, evalInterval: 3, evalBatches: 1, saveInterval: 3, logInterval: 3,
    },
    modelOverrides: { dModel: 32, nLayers: 1, nHeads: 2, dFf: 64, maxSeqLen: 64, dropout: 0.1 },
    resumeFrom: from,
    quiet: true,
  });
  return lossCurve(checkpointDir);
}

function assertClose(got: Map<number, number>, want: Map<number, number>, what: string): void {
  for (const [step, loss] of got) assert.ok(Math.abs(loss - want.get(step)!) < 1e-3, `${what}, step ${step}: ${loss} vs ${want.get(step)}`);
}

describe('checkpoints across webgpu and wasm', () => {
  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'gptmed-webgpu-resume-'));
    shards = buildShards(work);
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('a run on webgpu follows the wasm run; each resumes the other; webgpu resumes itself exactly', async () => {
    const wasm = await run('wasm', 'wasm');
    const gpu = await run('webgpu', 'webgpu');
    assert.deepEqual([...gpu.keys()], [1, 2, 3, 4, 5, 6]);
    assertClose(gpu, wasm, 'webgpu vs wasm');

    const gpuThenWasm = await run('webgpu-then-wasm', 'wasm', path.join(work, 'webgpu', 'step-000003'));
    assert.deepEqual([...gpuThenWasm.keys()], [4, 5, 6]);
    assertClose(gpuThenWasm, wasm, 'written on webgpu, resumed on wasm');

    const wasmThenGpu = await run('wasm-then-webgpu', 'webgpu', path.join(work, 'wasm', 'step-000003'));
    assertClose(wasmThenGpu, wasm, 'written on wasm, resumed on webgpu');

    const gpuAgain = await run('webgpu-resumed', 'webgpu', path.join(work, 'webgpu', 'step-000003'));
    for (const [step, loss] of gpuAgain) assert.equal(loss, gpu.get(step), `exact resume on webgpu, step ${step}`);
    assert.equal(rejectedWebGpuPrograms(), 0);
  });
});
