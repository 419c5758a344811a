import * as fs from 'node:fs';
import { decodeModelProto } from './src/tokenizer/model-proto.js';
const [a, b] = process.argv.slice(2).map(f => decodeModelProto(fs.readFileSync(f)));
console.log(JSON.stringify(a.normalizerSpec), JSON.stringify(b.normalizerSpec), JSON.stringify(a.denormalizerSpec), JSON.stringify(b.denormalizerSpec));
for (const k of Object.keys({...a.trainerSpec, ...b.trainerSpec})) if (JSON.stringify((a.trainerSpec as any)[k]) !== JSON.stringify((b.trainerSpec as any)[k])) console.log(k, (a.trainerSpec as any)[k], (b.trainerSpec as any)[k]);
