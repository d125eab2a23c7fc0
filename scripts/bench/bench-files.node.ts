/** The random repo's small files and configs from this repository (the Node side of workers/bench/random-repo.ts). */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { componentConfigs, SMALL_FILES, type BenchModel, type RandomRepoInputs } from '../../workers/bench/random-repo';

const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures');

export function benchFilesNode(model: BenchModel): Pick<RandomRepoInputs, 'small' | 'configs'> {
  const small: Record<string, string> = {};
  for (const p of SMALL_FILES) small[p] = readFileSync(join(FIXTURES, 'tiny-koala', p), 'utf8');
  const configs: Record<string, string> = {};
  for (const c of componentConfigs(model)) {
    for (const f of [`${c.config}.json`, `${c.config}.keys.json`]) configs[f] = readFileSync(join(FIXTURES, 'koala-configs', f), 'utf8');
  }
  return { small, configs };
}
