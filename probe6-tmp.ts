import * as fs from 'node:fs';
import { parseQa, QaParser } from './src/convert/qa-format.js';
const text = fs.readFileSync('/tmp/spmtest/b2.qa.txt','utf8');
let t0 = performance.now(); const r = parseQa(text); console.log('parseQa', ((performance.now()-t0)/1000).toFixed(2), r.pairs.length);
t0 = performance.now(); const p = new QaParser(); let s = 0; for (;;) { const e = text.indexOf('\n', s); if (e < 0) { p.push(text.slice(s)); break; } p.push(text.slice(s, e)); s = e + 1; if (p.pairs.length > 100) p.pairs.length = 0; } p.end(); console.log('manual', ((performance.now()-t0)/1000).toFixed(2));
