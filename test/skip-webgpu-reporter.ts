/**
 * Vitest reporter (after the default one): when the run had `SKIP_WEBGPU=1`, its last line says that the
 * WebGPU tests in Node were skipped on request and how many, so an opt-out never passes for a full run.
 */
import type { Reporter, TestModule } from 'vitest/node';
import { webgpuSkipRequested } from './webgpu-node-env';

export default class SkipWebgpuReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    if (!webgpuSkipRequested()) return;
    let files = 0;
    let tests = 0;
    for (const m of testModules) {
      if (!/webgpu[^/]*\.test\.ts$/.test(m.moduleId)) continue;
      files++;
      for (const t of m.children.allTests()) if (t.result().state === 'skipped') tests++;
    }
    console.log(
      `\n SKIP_WEBGPU=1: ${tests} WebGPU tests in ${files} files were skipped on request (the fp16 WebGPU path was NOT tested)\n`,
    );
  }
}
