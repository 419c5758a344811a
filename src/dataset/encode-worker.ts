/**
 * Worker thread of gptmed-tokenize: loads the tokenizer once, then frames and
 * encodes batches of pairs (encodePair), returning flat typed arrays.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { QaPair } from '../convert/qa-format.js';
import { loadTokenizer } from '../tokenizer/tokenizer.js';
import { encodePair } from './framing.js';

export interface EncodeRequest {
  batch: number;
  pairs: QaPair[];
}
export interface EncodeReply {
  batch: number;
  /** All pairs' ids, one after another. */
  ids: Int32Array;
  lengths: Int32Array;
  answerStarts: Int32Array;
}

const tokenizer = await loadTokenizer((workerData as { modelPath: string }).modelPath);
const port = parentPort!;
port.on('message', (req: EncodeRequest) => {
  const encoded = req.pairs.map((p) => encodePair(tokenizer, p));
  const total = encoded.reduce((n, e) => n + e.ids.length, 0);
  const ids = new Int32Array(total);
  const lengths = new Int32Array(encoded.length);
  const answerStarts = new Int32Array(encoded.length);
  let off = 0;
  encoded.forEach((e, i) => {
    ids.set(e.ids, off);
    off += e.ids.length;
    lengths[i] = e.ids.length;
    answerStarts[i] = e.answerStart;
  });
  const reply: EncodeReply = { batch: req.batch, ids, lengths, answerStarts };
  port.postMessage(reply, [ids.buffer, lengths.buffer, answerStarts.buffer]);
});
port.postMessage('ready');
