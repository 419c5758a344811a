import * as fs from 'node:fs';
import { readQaFile } from './src/convert/qa-format.js';
import { loadTokenizer } from './src/tokenizer/tokenizer.js';
import { encodePair, pairText, promptText } from './src/dataset/framing.js';
const qa = ['bsdgames-quiz','python-faq','debian-faq'].map(f => fs.readFileSync(`/work/shared/data/qa/${f}.qa.txt`,'utf8')).join('\n');
fs.writeFileSync('/tmp/spmtest/b2.qa.txt', qa.repeat(5));
let t0 = performance.now(); let n = 0; const pairs = [];
for await (const p of readQaFile('/tmp/spmtest/b2.qa.txt')) { n++; pairs.push(p); }
const mb = fs.statSync('/tmp/spmtest/b2.qa.txt').size/1e6;
console.log('readQaFile', mb.toFixed(2), 'MB', ((performance.now()-t0)/1000).toFixed(2), 's', n);
const tok = await loadTokenizer('/tmp/spmtest/qa2k.model');
t0 = performance.now(); for (const p of pairs) tok.encode(pairText(p)); console.log('encode pairText', ((performance.now()-t0)/1000).toFixed(2));
t0 = performance.now(); for (const p of pairs) encodePair(tok, p); console.log('encodePair', ((performance.now()-t0)/1000).toFixed(2));
t0 = performance.now(); for (const p of pairs) { tok.encode(promptText(p.question)); tok.encode(' ' + p.answer);} console.log('prompt+answer', ((performance.now()-t0)/1000).toFixed(2));
