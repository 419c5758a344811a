/** The dataset stage: framing pairs, and the shard format gptmed-tokenize writes and the trainer reads. */
export { pairText, promptText } from '../convert/pair-text.js';
export { encodePair, encodePrompt, type EncodedPair } from './framing.js';
export { previewDataset, type DatasetPreview, type LengthDistribution, type PreviewLimits, type PreviewOptions } from './preview.js';
export {
  loadTokenRows,
  readShardsMeta,
  type LengthStats,
  type ShardsInputFormat,
  type ShardsMeta,
  type SplitInfo,
  type SplitName,
  type TokenRows,
} from './shards.js';
