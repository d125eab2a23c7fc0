import { useEffect, useState } from 'react';
import type { ModelSource, PromptStyle, TokenizeEvent } from '../../workers/protocol';
import type { EngineClient } from '../engine-client';

export type TokenCount = Omit<TokenizeEvent, 'type' | 'id'>;

/** Live token count of `prompt`, asked from the worker (debounced); null while unknown or unavailable. */
export function useTokenCount(client: EngineClient, model: ModelSource, prompt: string, style: PromptStyle = 'auto', delayMs = 300): TokenCount | null {
  const [result, setResult] = useState<TokenCount | null>(null);
  const key = `${model.hubUrl ?? ''}|${model.repo}|${model.revision ?? ''}`;
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      client.tokenize(model, prompt, style).then(
        (r) => live && setResult(r),
        () => live && setResult(null),
      );
    }, delayMs);
    return () => {
      live = false;
      clearTimeout(t);
    };
    // `model` is identified by `key`; a new object with the same fields must not re-ask.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key, prompt, style, delayMs]);
  return result;
}
