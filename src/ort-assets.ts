/**
 * Where the page serves onnxruntime-web's .wasm and .mjs loader files: `<base>ort/`.
 * vite.config.ts copies them from node_modules/onnxruntime-web/dist into the build (and serves them in dev);
 * the URL travels to the worker in the `probe` request (`ortWasmBase`), and the engine sets
 * `ort.env.wasm.wasmPaths` to it.
 */
export function ortWasmBase(pageUrl: string = location.href): string {
  return new URL(`${import.meta.env.BASE_URL}ort/`, pageUrl).href;
}
