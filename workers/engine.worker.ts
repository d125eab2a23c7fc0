/**
 * The engine's module Web Worker: the message loop only. Requests come from src/engine-client.ts;
 * the loop (engine-loop.ts) calls the Engine (engine.ts) and posts events back.
 */
/// <reference lib="webworker" />
import { createEngineLoop } from './engine-loop';
import { createEngine } from './engine';
import type { EngineRequest } from './protocol';

declare const self: DedicatedWorkerGlobalScope;

const loop = createEngineLoop(createEngine(), (event, transfer) => self.postMessage(event, transfer ?? []));
self.addEventListener('message', (e: MessageEvent<EngineRequest>) => {
  void loop.handle(e.data);
});
