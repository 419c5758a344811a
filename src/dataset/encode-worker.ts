/**
 * Worker thread of gptmed-tokenize: loads the tokenizer once, then encodes
 * batches of pairs (PairEncoder), returning flat typed arrays.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { QaPair } from '../convert/qa-format.js';
import { loadTokenizer } from '../tokenizer/tokenizer.js';
import { PairEncoder, wordSplitNewlineId, type EncodedPairs } from './pair-encoder.js';

export interface EncodeRequest {
  batch: number;
  pairs: QaPair[];
}
export interface EncodeReply extends EncodedPairs {
  batch: number;
}

const { modelPath } = workerData as { modelPath: string };
const tokenizer = await loadTokenizer(modelPath);
// The model's pieces and normalizer say whether words may be encoded apart.
const encoder = new PairEncoder(tokenizer, wordSplitNewlineId(tokenizer.model));
const port = parentPort!;
port.on('message', (req: EncodeRequest) => {
  const reply: EncodeReply = { batch: req.batch, ...encoder.encode(req.pairs) };
  port.postMessage(reply, [reply.ids.buffer, reply.lengths.buffer, reply.answerStarts.buffer]);
});
port.postMessage('ready');
