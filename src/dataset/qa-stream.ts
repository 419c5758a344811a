/**
 * Streaming Q&A pairs for gptmed-tokenize through qa-format's QaParser, with
 * the file cut into lines by hand: node:readline (what readQaFile uses) costs
 * eight times the parsing itself, and tokenize reads its input twice.
 */
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { QaParser, type MalformedBlock, type QaPair } from '../convert/qa-format.js';

export async function* streamQaPairs(file: string, onMalformed?: (m: MalformedBlock) => void): AsyncGenerator<QaPair[]> {
  const parser = new QaParser({ source: file });
  const decoder = new StringDecoder('utf8');
  let rest = '';
  const drain = (): QaPair[] => {
    for (const m of parser.malformed.splice(0)) onMalformed?.(m);
    return parser.pairs.splice(0);
  };
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    const text = rest + decoder.write(chunk as Buffer);
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      parser.push(text.slice(start, end));
      start = end + 1;
    }
    rest = text.slice(start);
    yield drain();
  }
  rest += decoder.end();
  if (rest !== '') parser.push(rest);
  parser.end();
  yield drain();
}
