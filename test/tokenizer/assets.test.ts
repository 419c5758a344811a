/** src/tokenizer/assets.ts is generated from the vendored .proto (scripts/gen-tokenizer-assets.ts); it must be in sync. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { SENTENCEPIECE_MODEL_PROTO } from '../../src/tokenizer/assets.js';
import { nmtNfkcCharsmap } from '../../src/tokenizer/model-proto.js';
import { Normalizer } from '../../src/tokenizer/normalizer.js';
import { repoRoot } from '../helpers.js';

test('the embedded schema is the vendored sentencepiece_model.proto', () => {
  const proto = fs.readFileSync(path.join(repoRoot, 'src', 'tokenizer', 'sentencepiece_model.proto'), 'utf8');
  assert.equal(SENTENCEPIECE_MODEL_PROTO, proto, 'run: node --import tsx scripts/gen-tokenizer-assets.ts');
  assert.match(proto, /Licensed under the Apache License, Version 2\.0/);
});

test('the nmt_nfkc table normalizes as SentencePiece documents it', () => {
  const n = new Normalizer({ precompiledCharsmap: nmtNfkcCharsmap() });
  assert.equal(n.normalize('  Ｈｅｌｌｏ\tworld  ﬁ①\u200b '), '▁Hello▁world▁fi1');
  assert.equal(new Normalizer({ precompiledCharsmap: new Uint8Array(0) }).normalize('Ｈｅ\tx'), '▁Ｈｅ\tx');
});
