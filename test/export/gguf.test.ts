/**
 * gptmed-export --format gguf, checked by real consumers: @huggingface/gguf reads the file back, and
 * llama.cpp (node-llama-cpp 3.21.1, CPU, one thread) runs it and must answer the held-out questions of a
 * trained run as gptmed-generate --preset greedy does, token for token.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { gguf, type GGUFParseOutput } from '@huggingface/gguf';
import { Template } from '@huggingface/jinja';
import * as tf from '@tensorflow/tfjs';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { encodePair, encodePrompt, promptText } from '../../src/dataset/index.js';
import { readExportSource, toGpt2 } from '../../src/export/index.js';
import { generate, loadModel, type LoadedModel } from '../../src/generate/index.js';
import { PieceType } from '../../src/tokenizer/model-proto.js';
import { runCli, tempDir } from '../helpers.js';
import { trainExportRun, type TrainedRun } from './trained-run.js';

/** Same limit on both sides. */
const maxNewTokens = 64;

let run: TrainedRun;
let lm: LoadedModel;
let llama: Llama;
let f32Path: string;
let f16Path: string;
/** gptmed's greedy answers to the held-out questions (token ids, no eos) and why each stopped. */
let reference: Array<{ question: string; tokenIds: number[]; stop: string }>;

function exportGguf(dtype: 'f32' | 'f16'): string {
  const out = path.join(path.dirname(run.runDir), `model-${dtype}.gguf`);
  const r = runCli('export', ['--checkpoint', run.runDir, '--format', 'gguf', '-o', out, '--dtype', dtype]);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

before(async () => {
  run = await trainExportRun(tempDir('gptmed-gguf-'));
  assert.ok(run.heldOut.length >= 40, `the fixture holds out ${run.heldOut.length} questions, fewer than 40`);
  f32Path = exportGguf('f32');
  f16Path = exportGguf('f16');
  lm = await loadModel({ checkpoint: run.runDir, device: 'wasm' });
  reference = [];
  for (const { question } of run.heldOut) {
    const a = (await generate(lm, question, { preset: 'greedy', maxNewTokens })).answers[0];
    reference.push({ question, tokenIds: a.tokenIds, stop: a.stop });
  }
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});

after(async () => {
  lm?.dispose();
  await llama?.dispose();
});

async function readBack(file: string): Promise<GGUFParseOutput<{ strict: false }>> {
  return gguf(file, { allowLocalFile: true }) as Promise<GGUFParseOutput<{ strict: false }>>;
}

test('the file reads back: gpt2 keys, the SentencePiece vocabulary as trained, tensors in llama.cpp layout', async () => {
  const src = readExportSource(run.runDir);
  const c = src.manifest.modelConfig;
  const { metadata: m, tensorInfos, tensorDataOffset } = await readBack(f32Path);
  assert.equal(m.version, 3);
  assert.equal(m['general.architecture'], 'gpt2');
  assert.equal(m['general.file_type'], 0);
  assert.equal(m['general.alignment'], 32);
  assert.equal(m['gpt2.context_length'], c.maxSeqLen);
  assert.equal(m['gpt2.embedding_length'], c.dModel);
  assert.equal(m['gpt2.feed_forward_length'], c.dFf);
  assert.equal(m['gpt2.block_count'], c.nLayers);
  assert.equal(m['gpt2.attention.head_count'], c.nHeads);
  assert.ok(Math.abs((m['gpt2.attention.layer_norm_epsilon'] as number) - 1e-5) < 1e-9);

  const pieces = src.tokenizer.pieces;
  const ids = lm.tokenizer.specialIds;
  assert.equal(m['tokenizer.ggml.model'], 'llama');
  assert.deepEqual(m['tokenizer.ggml.tokens'], pieces.map((p) => p.piece));
  assert.equal((m['tokenizer.ggml.tokens'] as string[]).length, c.vocabSize);
  assert.deepEqual(m['tokenizer.ggml.scores'], pieces.map((p) => Math.fround(p.score ?? 0)));
  assert.deepEqual(m['tokenizer.ggml.token_type'], pieces.map((p) => p.type ?? PieceType.NORMAL));
  const newline = pieces.findIndex((p) => p.piece === '\n');
  assert.ok(newline >= 0, 'the Q&A tokenizer has a "\\n" piece');
  assert.equal((m['tokenizer.ggml.token_type'] as number[])[newline], PieceType.USER_DEFINED);
  assert.equal(m['tokenizer.ggml.bos_token_id'], ids.bos);
  assert.equal(m['tokenizer.ggml.eos_token_id'], ids.eos);
  assert.equal(m['tokenizer.ggml.unknown_token_id'], ids.unk);
  assert.equal(m['tokenizer.ggml.padding_token_id'], ids.pad >= 0 ? ids.pad : undefined);
  assert.equal(m['tokenizer.ggml.add_bos_token'], true);
  assert.equal(m['tokenizer.ggml.add_eos_token'], false);
  assert.equal(m['tokenizer.ggml.add_space_prefix'], false);
  assert.equal(typeof m['tokenizer.chat_template'], 'string');

  // Tensors: llama.cpp's names, [out, in] matrices listed innermost first, no output.weight (tied).
  const d = c.dModel;
  const expected: Array<[string, number[]]> = [['token_embd.weight', [d, c.vocabSize]], ['position_embd.weight', [d, c.maxSeqLen]]];
  for (let i = 0; i < c.nLayers; i++) {
    expected.push(
      [`blk.${i}.attn_norm.weight`, [d]], [`blk.${i}.attn_norm.bias`, [d]],
      [`blk.${i}.attn_qkv.weight`, [d, 3 * d]], [`blk.${i}.attn_qkv.bias`, [3 * d]],
      [`blk.${i}.attn_output.weight`, [d, d]], [`blk.${i}.attn_output.bias`, [d]],
      [`blk.${i}.ffn_norm.weight`, [d]], [`blk.${i}.ffn_norm.bias`, [d]],
      [`blk.${i}.ffn_up.weight`, [d, c.dFf]], [`blk.${i}.ffn_up.bias`, [c.dFf]],
      [`blk.${i}.ffn_down.weight`, [c.dFf, d]], [`blk.${i}.ffn_down.bias`, [d]],
    );
  }
  expected.push(['output_norm.weight', [d]], ['output_norm.bias', [d]]);
  assert.deepEqual(
    tensorInfos.map((t) => [t.name, t.shape.map(Number)]).sort(),
    expected.sort(),
  );
  assert.ok(tensorInfos.every((t) => t.dtype === 0 && Number(t.offset) % 32 === 0));

  // The data: wte folded (x sqrt(d)), qkv transposed to [out, in], exactly as toGpt2 gives them.
  const bytes = fs.readFileSync(f32Path);
  const tensorData = (name: string): Float32Array => {
    const info = tensorInfos.find((t) => t.name === name)!;
    const n = info.shape.reduce((a, b) => a * Number(b), 1);
    const start = Number(tensorDataOffset + info.offset);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + 4 * n));
  };
  const hf = new Map(toGpt2(c, src.weights).map((t) => [t.name, t.data]));
  assert.deepEqual(tensorData('token_embd.weight'), hf.get('transformer.wte.weight'));
  assert.deepEqual(tensorData('output_norm.bias'), hf.get('transformer.ln_f.bias'));
  const qkv = tensorData('blk.1.attn_qkv.weight');
  const conv1d = hf.get('transformer.h.1.attn.c_attn.weight')!; // [in d, out 3d]
  for (const [i, o] of [[0, 0], [1, 2], [d - 1, 3 * d - 1], [5, 2 * d + 7]]) assert.equal(qkv[o * d + i], conv1d[i * 3 * d + o]);
  const last = tensorInfos.reduce((a, t) => (t.offset > a.offset ? t : a));
  assert.ok(bytes.length >= Number(tensorDataOffset + last.offset) + 4 * last.shape.reduce((a, b) => a * Number(b), 1));
});

test('--dtype f16: matrices in float16, norms, biases and the position embedding in float32, half the size', async () => {
  const { metadata: m, tensorInfos } = await readBack(f16Path);
  assert.equal(m['general.file_type'], 1);
  for (const t of tensorInfos) {
    const half = t.shape.length === 2 && t.name !== 'position_embd.weight';
    assert.equal(t.dtype, half ? 1 : 0, t.name);
  }
  const ratio = fs.statSync(f16Path).size / fs.statSync(f32Path).size;
  assert.ok(ratio > 0.5 && ratio < 0.6, `f16 file is ${ratio.toFixed(2)} of the f32 one`);
});

/** llama.cpp's greedy answer to gptmed's prompt ids, fed as they are; eos ends it (not included). */
async function llamaAnswers(model: LlamaModel): Promise<Token[][]> {
  const context = await model.createContext({ threads: 1, contextSize: 256, sequences: 1 });
  try {
    const sequence = context.getSequence();
    const answers: Token[][] = [];
    for (const { question } of reference) {
      await sequence.clearHistory();
      const out: Token[] = [];
      for await (const token of sequence.evaluate(encodePrompt(lm.tokenizer, question) as Token[], { temperature: 0 })) {
        if (token === lm.tokenizer.specialIds.eos) break;
        out.push(token);
        if (out.length >= maxNewTokens) break;
      }
      answers.push(out);
    }
    return answers;
  } finally {
    await context.dispose();
  }
}

/**
 * How many answers are gptmed's, token for token. gptmed also stops where the model starts a new
 * "Q:" line (or at its context length): there llama.cpp's answer need only begin with gptmed's.
 */
function agreement(answers: Token[][]): { same: number; differing: string[] } {
  let same = 0;
  const differing: string[] = [];
  answers.forEach((ids, i) => {
    const ref = reference[i];
    const cut = ref.stop === 'eos' || ref.stop === 'length' ? ids : ids.slice(0, ref.tokenIds.length);
    if (cut.join() === ref.tokenIds.join()) same++;
    else differing.push(`${ref.question}: gptmed ${JSON.stringify(lm.tokenizer.decode(ref.tokenIds))}, llama.cpp ${JSON.stringify(lm.tokenizer.decode(ids))}`);
  });
  return { same, differing };
}

/** The largest difference of log-probabilities (logits up to a constant) after a few prompts. */
async function maxLogProbDiff(model: LlamaModel, questions: string[]): Promise<number> {
  const context = await model.createContext({ threads: 1, contextSize: 256, sequences: 1 });
  const sequence = context.getSequence();
  const V = lm.model.config.vocabSize;
  let maxDiff = 0;
  for (const q of questions) {
    const ids = encodePrompt(lm.tokenizer, q);
    await sequence.clearHistory();
    const all = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const res = await sequence.controlledEvaluate(ids.map((id, i) => (i < ids.length - 1 ? (id as Token) : [id as Token, { generateNext: { probabilities: true, options: all } }])));
    const probs = res[ids.length - 1]?.next?.probabilities;
    assert.ok(probs && probs.size === V, `llama.cpp gave ${probs?.size} probabilities`);
    const logits = tf.tidy(() => {
      const all = lm.model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).reshape([ids.length, V]);
      return all.slice([ids.length - 1, 0], [1, V]).reshape([V]).arraySync() as number[];
    });
    const top = Math.max(...logits);
    const logZ = top + Math.log(logits.reduce((s, x) => s + Math.exp(x - top), 0));
    for (let t = 0; t < V; t++) maxDiff = Math.max(maxDiff, Math.abs(logits[t] - logZ - Math.log(probs.get(t as Token)!)));
  }
  await context.dispose();
  return maxDiff;
}

test('llama.cpp answers the held-out questions as gptmed does (f32), and tokenizes the prompts as gptmed does', async () => {
  const model = await llama.loadModel({ modelPath: f32Path });
  try {
    // llama.cpp's own tokenizer (the SentencePiece "llama" vocabulary, bos added) gives gptmed's prompt ids.
    // (Text with characters outside the vocabulary is left out: llama.cpp has no byte pieces to spell them.)
    const unk = lm.tokenizer.specialIds.unk;
    for (const { question } of reference) {
      const ids = encodePrompt(lm.tokenizer, question);
      if (ids.includes(unk)) continue;
      assert.deepEqual([...model.tokenize(promptText(question))], ids.slice(1), question);
    }
    assert.equal(model.tokens.bos, lm.tokenizer.specialIds.bos);
    assert.equal(model.tokens.eos, lm.tokenizer.specialIds.eos);

    const { same, differing } = agreement(await llamaAnswers(model));
    const n = reference.length;
    console.log(`gguf f32: llama.cpp's greedy answers equal gptmed's on ${same} of ${n}`);
    assert.ok(same >= Math.ceil(0.95 * n), `only ${same} of ${n} agree:\n${differing.join('\n')}`);

    // llama.cpp's GELU is the tanh form, gptmed's the exact erf one: the logits differ a little.
    const diff = await maxLogProbDiff(model, reference.slice(0, 5).map((r) => r.question));
    console.log(`gguf f32: largest log-probability difference over 5 prompts x ${lm.model.config.vocabSize} tokens: ${diff.toExponential(2)}`);
    assert.ok(diff < 1e-2, `log-probabilities differ by ${diff}`);
  } finally {
    await model.dispose();
  }
});

test('the f16 file answers as gptmed does too', async () => {
  const model = await llama.loadModel({ modelPath: f16Path });
  try {
    const { same, differing } = agreement(await llamaAnswers(model));
    const n = reference.length;
    console.log(`gguf f16: llama.cpp's greedy answers equal gptmed's on ${same} of ${n}`);
    // Float16 rounds each weight by at most 2^-11 of itself; on this model the log-probabilities move
    // by about 2e-3, far below the margins greedy decoding turns on, so nearly all answers stay the same.
    assert.ok(same >= Math.ceil(0.9 * n), `only ${same} of ${n} agree:\n${differing.join('\n')}`);
    const diff = await maxLogProbDiff(model, reference.slice(0, 5).map((r) => r.question));
    console.log(`gguf f16: largest log-probability difference: ${diff.toExponential(2)}`);
    assert.ok(diff < 5e-2, `log-probabilities differ by ${diff}`);
  } finally {
    await model.dispose();
  }
});

test("the chat template, rendered and tokenized as llama-server does, gives gptmed's prompts and pairs", async () => {
  const { metadata: m } = await readBack(f32Path);
  const model = await llama.loadModel({ modelPath: f32Path });
  try {
    const render = (messages: Array<{ role: string; content: string }>): string =>
      new Template(m['tokenizer.chat_template'] as string).render({ messages, bos_token: '<s>', eos_token: '</s>', add_generation_prompt: true });
    // llama-server renders, drops a leading bos_token (add_bos_token puts it back), then tokenizes with
    // special pieces parsed.
    const tokenize = (text: string): number[] => [model.tokens.bos!, ...model.tokenize(text.replace(/^<s>/, ''), true)];
    const [a, b] = reference.filter((r) => !encodePrompt(lm.tokenizer, r.question).includes(lm.tokenizer.specialIds.unk));
    const first = render([{ role: 'user', content: a.question }]);
    assert.equal(first, `<s>${promptText(a.question)}`);
    assert.deepEqual(tokenize(first), encodePrompt(lm.tokenizer, a.question));

    // A second turn: gptmed's training rows pack pairs as <s>Q: ..\nA: ..</s><s>Q: ..
    const answer = 'An answer.';
    const messages = [
      { role: 'system', content: 'ignored: gptmed models know no system prompt' },
      { role: 'user', content: a.question },
      { role: 'assistant', content: ` ${answer}` },
      { role: 'user', content: b.question },
    ];
    const second = render(messages);
    assert.equal(second, `<s>${promptText(a.question)} ${answer}</s><s>${promptText(b.question)}`);
    assert.deepEqual(tokenize(second), [...encodePair(lm.tokenizer, { question: a.question, answer }).ids, ...encodePrompt(lm.tokenizer, b.question)]);
  } finally {
    await model.dispose();
  }
});
