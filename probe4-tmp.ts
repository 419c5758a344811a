import { loadTokenizer } from './src/tokenizer/index.js';
import { readQaFile } from './src/convert/qa-format.js';
import { encodePair, encodePrompt } from './src/dataset/framing.js';
const t = await loadTokenizer('/tmp/spmtest/qa2k.model');
console.log(t.specialIds, t.vocabSize);
let bad = 0, badPrefix = 0, n = 0;
for await (const p of readQaFile('/work/shared/data/qa/python-faq.qa.txt')) {
  n++;
  const d = t.decode(t.encode(p.answer));
  if (d !== p.answer.normalize('NFKC').replace(/\t/g, ' ')) { if (bad++ < 2) console.log(JSON.stringify(p.answer.slice(0,200)), '\n', JSON.stringify(d.slice(0,200))); }
  const e = encodePair(t, p); const pr = encodePrompt(t, p.question);
  if (pr.join() !== e.ids.slice(0, pr.length).join() || e.answerStart !== pr.length) badPrefix++;
}
console.log('pairs', n, 'decode mismatches', bad, 'prefix mismatches', badPrefix);
console.log(t.encode('Q: hi\nA: there\nQ: x').map(i => t.idToPiece(i)));
for await (const p of readQaFile('/work/shared/data/qa/python-faq.qa.txt')) {
  const d = t.decode(t.encode(p.answer)); const want = p.answer.normalize('NFKC').replace(/\t/g, ' ');
  if (d !== want) { let i = 0; while (d[i] === want[i]) i++; console.log(JSON.stringify(want.slice(i-5, i+10)), JSON.stringify(d.slice(i-5, i+10))); }
}
