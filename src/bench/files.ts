/**
 * The small files of the benchmark's random checkpoint, bundled into the benchmark page only: the full-size
 * configs and key lists (test/fixtures/koala-configs) and the tiny fixture's CLIP tokenizers, scheduler
 * config and model_index.json (the real CLIP vocabulary). No weights: those are generated as they upload.
 */
import type { BenchModel } from '../../workers/bench/bench-protocol';
import modelIndex from '../../test/fixtures/tiny-koala/model_index.json?raw';
import scheduler from '../../test/fixtures/tiny-koala/scheduler/scheduler_config.json?raw';
import vocab from '../../test/fixtures/tiny-koala/tokenizer/vocab.json?raw';
import merges from '../../test/fixtures/tiny-koala/tokenizer/merges.txt?raw';
import tokCfg1 from '../../test/fixtures/tiny-koala/tokenizer/tokenizer_config.json?raw';
import special1 from '../../test/fixtures/tiny-koala/tokenizer/special_tokens_map.json?raw';
import tokCfg2 from '../../test/fixtures/tiny-koala/tokenizer_2/tokenizer_config.json?raw';
import special2 from '../../test/fixtures/tiny-koala/tokenizer_2/special_tokens_map.json?raw';
import clipL from '../../test/fixtures/koala-configs/clip-vit-l-text-encoder.json?raw';
import clipLKeys from '../../test/fixtures/koala-configs/clip-vit-l-text-encoder.keys.json?raw';
import clipG from '../../test/fixtures/koala-configs/clip-vit-bigg-text-encoder.json?raw';
import clipGKeys from '../../test/fixtures/koala-configs/clip-vit-bigg-text-encoder.keys.json?raw';
import vae from '../../test/fixtures/koala-configs/sdxl-vae.json?raw';
import vaeKeys from '../../test/fixtures/koala-configs/sdxl-vae.keys.json?raw';
import k700 from '../../test/fixtures/koala-configs/koala-700m-unet.json?raw';
import k700Keys from '../../test/fixtures/koala-configs/koala-700m-unet.keys.json?raw';
import k1b from '../../test/fixtures/koala-configs/koala-1b-unet.json?raw';
import k1bKeys from '../../test/fixtures/koala-configs/koala-1b-unet.keys.json?raw';
import sdxl from '../../test/fixtures/koala-configs/sdxl-base-unet.json?raw';
import sdxlKeys from '../../test/fixtures/koala-configs/sdxl-base-unet.keys.json?raw';

const UNETS: Record<BenchModel, [string, string]> = { 'koala-700m': [k700, k700Keys], 'koala-1b': [k1b, k1bKeys], 'sdxl-base': [sdxl, sdxlKeys] };

export function benchFiles(model: BenchModel): { small: Record<string, string>; configs: Record<string, string> } {
  const [unet, unetKeys] = UNETS[model];
  return {
    small: {
      'model_index.json': modelIndex,
      'scheduler/scheduler_config.json': scheduler,
      'tokenizer/vocab.json': vocab,
      'tokenizer/merges.txt': merges,
      'tokenizer/tokenizer_config.json': tokCfg1,
      'tokenizer/special_tokens_map.json': special1,
      // tokenizer_2 shares the CLIP vocabulary and merges; its pad token differs (special_tokens_map / config)
      'tokenizer_2/vocab.json': vocab,
      'tokenizer_2/merges.txt': merges,
      'tokenizer_2/tokenizer_config.json': tokCfg2,
      'tokenizer_2/special_tokens_map.json': special2,
    },
    configs: {
      'clip-vit-l-text-encoder.json': clipL,
      'clip-vit-l-text-encoder.keys.json': clipLKeys,
      'clip-vit-bigg-text-encoder.json': clipG,
      'clip-vit-bigg-text-encoder.keys.json': clipGKeys,
      'sdxl-vae.json': vae,
      'sdxl-vae.keys.json': vaeKeys,
      [`${model}-unet.json`]: unet,
      [`${model}-unet.keys.json`]: unetKeys,
    },
  };
}
