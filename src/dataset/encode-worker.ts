/**
 * Worker thread of gptmed-tokenize: loads the tokenizer once, then encodes
 * batches of pairs or plain-text documents (PairEncoder), returning flat typed arrays.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { QaPair } from '../convert/qa-format.js';
import { loadTokenizer } from '../tokenizer/tokenizer.js';
import { PairEncoder, wordSplitNewlineId, type EncodedPairs } from './pair-encoder.js';

/** A batch of Q&A pairs, or of plain-text documents. */
export type EncodeRequest = { batch: number; pairs: QaPair[] } | { batch: number; documents: string[] };
export interface EncodeReply extends EncodedPairs {
  batch: number;
}

const { modelPath } = workerData as { modelPath: string };
const tokenizer = await loadTokenizer(modelPath);
// The model's pieces and normalizer say whether words may be encoded apart.
const encoder = new PairEncoder(tokenizer, wordSplitNewlineId(tokenizer.model));
const port = parentPort!;
port.on('message', (req: EncodeRequest) => {
  const encoded = 'pairs' in req ? encoder.encode(req.pairs) : encoder.encodeDocuments(req.documents);
  const reply: EncodeReply = { batch: req.batch, ...encoded };
  port.postMessage(reply, [reply.ids.buffer, reply.lengths.buffer, reply.answerStarts.buffer]);
});
port.postMessage('ready');
