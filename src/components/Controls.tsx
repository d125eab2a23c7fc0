import { useId, type KeyboardEvent, type ReactNode } from 'react';
import { KOALA_NEGATIVE_PROMPT, MODELS, SCHEDULERS, SIZES, SPACINGS, findModel, sizeKey } from '../models';
import { DEFAULT_TAESD_REPO, FP16_VAE_REPO, LIMITS, MODE_OPTIONS, PREVIEWER_OPTIONS, PROMPT_STYLE_OPTIONS, randomSeed, type GenerationMode, type PreviewerName, type Settings } from '../settings';
import type { TokenCount } from '../hooks/useTokenCount';
import type { PromptStyle, SchedulerName, TimestepSpacing } from '../../workers/protocol';

export interface ControlsProps {
  settings: Settings;
  onChange: (patch: Partial<Settings>) => void;
  onModelChange: (repo: string) => void;
  onGenerate: () => void;
  onCancel: () => void;
  busy: boolean;
  canGenerate: boolean;
  generateHint?: string;
  tokens: TokenCount | null;
  negativeTokens?: TokenCount | null;
  /** The LoRA section (LoraPanel), shown above Advanced. */
  loraPanel?: ReactNode;
  /** Image modes: the input image, mask and strength (InputImagePanel), shown under the mode switch. */
  inputPanel?: ReactNode;
}

/** "12 / 75 tokens", or for a weighted reading "160 tokens · 3 chunks" (per encoder when they differ). */
export function tokenLabel(t: TokenCount): string {
  const both = t.perEncoder && t.perEncoder[0] !== t.perEncoder[1] ? ` (CLIP-L ${t.perEncoder[0]}, CLIP-G ${t.perEncoder[1]})` : '';
  if (t.style !== 'weighted') return `${t.count} / ${t.limit} tokens${both}`;
  const chunks = t.chunks ?? 1;
  return `${t.count} tokens${both} · ${chunks} chunk${chunks === 1 ? '' : 's'} of ${t.limit}`;
}

function TokenNotes({ t }: { t: TokenCount | null | undefined }) {
  if (!t) return null;
  if (t.style !== 'weighted' && t.count > t.limit) {
    return (
      <p className="warning" role="status">
        The text encoders read only the first {t.limit} tokens; {t.count - t.limit} will be dropped. Set “Prompt weighting” to Auto to keep them.
      </p>
    );
  }
  if (t.style === 'weighted' && t.maxChunks !== undefined && (t.chunks ?? 1) > t.maxChunks) {
    return (
      <p className="warning" role="status">
        Too long: {t.chunks} chunks of {t.limit} tokens; at most {t.maxChunks} ({t.maxChunks * t.limit} tokens) are supported.
      </p>
    );
  }
  if (t.style === 'weighted' && t.boundaries && t.boundaries.length > 0) {
    return <p className="hint">New chunks start at tokens {t.boundaries.map((b) => b + 1).join(', ')} (each chunk is read on its own, like A1111).</p>;
  }
  return null;
}

const GROUP_LABEL = { sdxl: 'SDXL trained sizes', small: 'Smaller (less GPU memory)', tiny: 'Tiny (demo model)' } as const;

export function Controls(p: ControlsProps) {
  const { settings: s, onChange } = p;
  const ids = { prompt: useId(), neg: useId(), tokens: useId(), hint: useId(), model: useId(), fast: useId(), fp16vae: useId() };
  const model = findModel(s.model);
  const onPromptKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      if (!p.busy && p.canGenerate) p.onGenerate();
    }
  };
  const over = (t: TokenCount | null | undefined) =>
    !!t && (t.style === 'weighted' ? t.maxChunks !== undefined && (t.chunks ?? 1) > t.maxChunks : t.count > t.limit);

  return (
    <form
      className="controls"
      aria-label="Generation settings"
      onSubmit={(e) => {
        e.preventDefault();
        if (!p.busy && p.canGenerate) p.onGenerate();
      }}
    >
      <div className="field">
        <label htmlFor={ids.model}>Model</label>
        <select id={ids.model} value={s.model} onChange={(e) => p.onModelChange(e.target.value)}>
          {MODELS.map((m) => (
            <option key={m.repo} value={m.repo}>
              {m.label}
            </option>
          ))}
          {model.family === 'custom' && <option value={model.repo}>{model.label}</option>}
        </select>
        <p className="hint">{model.note}</p>
      </div>

      <ModeSwitch value={s.mode} onChange={(mode) => onChange({ mode })} />
      {s.mode !== 'txt2img' && p.inputPanel}

      <div className="field">
        <div className="label-row">
          <label htmlFor={ids.prompt}>Prompt</label>
          <span id={ids.tokens} className={`tokens${over(p.tokens) ? ' over' : ''}`} aria-live="polite">
            {p.tokens ? tokenLabel(p.tokens) : ''}
          </span>
        </div>
        <textarea
          id={ids.prompt}
          rows={4}
          value={s.prompt}
          maxLength={LIMITS.prompt}
          placeholder="Describe the image…"
          aria-describedby={ids.tokens}
          onChange={(e) => onChange({ prompt: e.target.value })}
          onKeyDown={onPromptKey}
        />
        <TokenNotes t={p.tokens} />
      </div>

      <div className="field">
        <div className="label-row">
          <label htmlFor={ids.neg}>Negative prompt</label>
          {p.negativeTokens && s.negativePrompt !== '' && (
            <span className={`tokens${over(p.negativeTokens) ? ' over' : ''}`} aria-live="polite" data-testid="negative-tokens">
              {tokenLabel(p.negativeTokens)}
            </span>
          )}
          <button
            type="button"
            className="link"
            onClick={() => onChange({ negativePrompt: KOALA_NEGATIVE_PROMPT })}
            title={KOALA_NEGATIVE_PROMPT}
          >
            KOALA preset
          </button>
        </div>
        <textarea
          id={ids.neg}
          rows={2}
          value={s.negativePrompt}
          maxLength={LIMITS.prompt}
          placeholder="What to avoid (optional)"
          onChange={(e) => onChange({ negativePrompt: e.target.value })}
          onKeyDown={onPromptKey}
        />
        {s.negativePrompt !== '' && <TokenNotes t={p.negativeTokens} />}
      </div>

      <div className="grid2">
        <Select
          label="Size"
          value={sizeKey(s.width, s.height)}
          onChange={(v) => {
            const [w, h] = v.split('x').map(Number);
            onChange({ width: w, height: h });
          }}
        >
          {(['sdxl', 'small', 'tiny'] as const).map((g) => (
            <optgroup key={g} label={GROUP_LABEL[g]}>
              {SIZES.filter((x) => x.group === g).map((x) => (
                <option key={sizeKey(x.width, x.height)} value={sizeKey(x.width, x.height)}>
                  {x.width}×{x.height}
                </option>
              ))}
            </optgroup>
          ))}
        </Select>
        <Select label="Scheduler" value={s.scheduler} onChange={(v) => onChange({ scheduler: v as SchedulerName })}>
          {SCHEDULERS.map((x) => (
            <option key={x.value} value={x.value}>
              {x.label}
            </option>
          ))}
        </Select>
      </div>

      <Slider
        label="Steps"
        min={LIMITS.steps.min}
        max={LIMITS.steps.max}
        step={1}
        value={s.steps}
        onChange={(v) => onChange({ steps: v })}
      />
      <Slider
        label="Guidance"
        min={LIMITS.guidance.min}
        max={LIMITS.guidance.max}
        step={LIMITS.guidance.step}
        value={s.guidance}
        format={(v) => v.toFixed(1)}
        onChange={(v) => onChange({ guidance: v })}
      />

      <div className="grid2 grid-seed">
        <SeedField s={s} onChange={onChange} />
        <NumberField
          label="Images"
          min={LIMITS.numImages.min}
          max={LIMITS.numImages.max}
          value={s.numImages}
          onChange={(v) => onChange({ numImages: v })}
        />
      </div>

      {p.loraPanel}

      <details className="advanced">
        <summary>Advanced</summary>
        <Select label="Prompt weighting" value={s.promptStyle} onChange={(v) => onChange({ promptStyle: v as PromptStyle })}>
          {PROMPT_STYLE_OPTIONS.map((x) => (
            <option key={x.value} value={x.value}>
              {x.label}
            </option>
          ))}
        </Select>
        <Select label="Timestep spacing" value={s.spacing} onChange={(v) => onChange({ spacing: v as TimestepSpacing })}>
          {SPACINGS.map((x) => (
            <option key={x} value={x}>
              {x}
            </option>
          ))}
        </Select>
        <div className="check">
          <input id={ids.fast} type="checkbox" checked={s.fastDecode} onChange={(e) => onChange({ fastDecode: e.target.checked })} />
          <label htmlFor={ids.fast}>Fast decode (tiny decoder)</label>
        </div>
        <div className="check">
          <input id={ids.fp16vae} type="checkbox" checked={s.fp16Vae} onChange={(e) => onChange({ fp16Vae: e.target.checked })} />
          <label htmlFor={ids.fp16vae}>fp16-safe VAE (sdxl-vae-fp16-fix)</label>
        </div>
        {s.fp16Vae && (
          <p className="hint">
            Decodes with {FP16_VAE_REPO} (about 170 MB, downloaded once) in fp16 when the GPU has shader-f16: about 0.7 GB less GPU
            memory at 1024² than the model&apos;s VAE, which must run in fp32.
          </p>
        )}
        <Select label="Previews" value={s.previewer} onChange={(v) => onChange({ previewer: v as PreviewerName })}>
          {PREVIEWER_OPTIONS.map((x) => (
            <option key={x.value} value={x.value}>
              {x.label}
            </option>
          ))}
        </Select>
        {(s.fastDecode || s.previewer === 'taesd') && (
          <p className="hint">The tiny decoder (TAESDXL, about 10 MB) is downloaded once; its images are a little softer.</p>
        )}
        <TextField
          label="Tiny decoder repo"
          value={s.taesdRepo}
          placeholder={DEFAULT_TAESD_REPO}
          onChange={(v) => onChange({ taesdRepo: v.trim() })}
        />
        <TextField label="Hub" value={s.hub} placeholder="https://huggingface.co" onChange={(v) => onChange({ hub: v.trim() })} />
        <TextField label="Revision" value={s.revision} placeholder="main" onChange={(v) => onChange({ revision: v.trim() || 'main' })} />
      </details>

      <div className="actions">
        <button type="submit" className="primary" disabled={p.busy || !p.canGenerate} aria-describedby={ids.hint}>
          Generate
        </button>
        <button type="button" onClick={p.onCancel} disabled={!p.busy}>
          Cancel
        </button>
      </div>
      <p id={ids.hint} className="hint">
        {p.generateHint ?? 'Ctrl+Enter (⌘+Enter) in a prompt generates.'}
      </p>
      <p className="hint">
        How fast is your GPU? <a href={`${import.meta.env.BASE_URL}bench.html`}>Run the GPU benchmark</a> (nothing is downloaded).
      </p>
    </form>
  );
}

/** Text → image / Image → image / Inpaint: a radio group drawn as a segmented control (arrow keys move). */
function ModeSwitch({ value, onChange }: { value: GenerationMode; onChange: (m: GenerationMode) => void }) {
  const name = useId();
  return (
    <fieldset className="mode-switch">
      <legend>Mode</legend>
      <div className="segmented">
        {MODE_OPTIONS.map((m) => (
          <label key={m.value} className={value === m.value ? 'on' : undefined}>
            <input type="radio" name={name} value={m.value} checked={value === m.value} onChange={() => onChange(m.value)} />
            <span>{m.label}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

function Select(props: { label: string; value: string; onChange: (v: string) => void; children: React.ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value} onChange={(e) => props.onChange(e.target.value)}>
        {props.children}
      </select>
    </div>
  );
}

function Slider(props: {
  label: string;
  min: number;
  max: number;
  step: number;
  value: number;
  format?: (v: number) => string;
  onChange: (v: number) => void;
}) {
  const id = useId();
  const text = props.format ? props.format(props.value) : String(props.value);
  return (
    <div className="field">
      <div className="label-row">
        <label htmlFor={id}>{props.label}</label>
        <output htmlFor={id} className="value">
          {text}
        </output>
      </div>
      <input
        id={id}
        type="range"
        min={props.min}
        max={props.max}
        step={props.step}
        value={props.value}
        aria-valuetext={text}
        onChange={(e) => props.onChange(Number(e.target.value))}
      />
    </div>
  );
}

function NumberField(props: { label: string; min: number; max: number; value: number; onChange: (v: number) => void }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        type="number"
        inputMode="numeric"
        min={props.min}
        max={props.max}
        value={props.value}
        onChange={(e) => {
          const v = Math.round(Number(e.target.value));
          if (Number.isFinite(v)) props.onChange(Math.min(props.max, Math.max(props.min, v)));
        }}
      />
    </div>
  );
}

function TextField(props: { label: string; value: string; placeholder?: string; onChange: (v: string) => void }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        type="text"
        spellCheck={false}
        autoComplete="off"
        value={props.value}
        placeholder={props.placeholder}
        onChange={(e) => props.onChange(e.target.value)}
      />
    </div>
  );
}

function SeedField({ s, onChange }: { s: Settings; onChange: (patch: Partial<Settings>) => void }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>Seed</label>
      <div className="seed">
        <input
          id={id}
          type="number"
          inputMode="numeric"
          min={LIMITS.seed.min}
          max={LIMITS.seed.max}
          value={s.seed}
          onChange={(e) => {
            const v = Math.round(Number(e.target.value));
            if (Number.isFinite(v)) onChange({ seed: Math.min(LIMITS.seed.max, Math.max(0, v)), seedLocked: true });
          }}
        />
        <button
          type="button"
          className="icon"
          aria-label="Random seed"
          title="Random seed"
          onClick={() => onChange({ seed: randomSeed() })}
        >
          <svg viewBox="0 0 24 24" aria-hidden="true">
            <rect x="3" y="3" width="18" height="18" rx="4" />
            <circle cx="8.5" cy="8.5" r="1.5" />
            <circle cx="15.5" cy="15.5" r="1.5" />
            <circle cx="12" cy="12" r="1.5" />
          </svg>
        </button>
        <button
          type="button"
          className="icon"
          aria-label="Lock seed"
          aria-pressed={s.seedLocked}
          title={s.seedLocked ? 'Seed locked: every run uses it' : 'Seed unlocked: a new random seed each run'}
          onClick={() => onChange({ seedLocked: !s.seedLocked })}
        >
          <svg viewBox="0 0 24 24" aria-hidden="true">
            <rect x="5" y="11" width="14" height="10" rx="2" />
            <path d={s.seedLocked ? 'M8 11V7a4 4 0 0 1 8 0v4' : 'M8 11V7a4 4 0 0 1 7.5-2'} />
          </svg>
        </button>
      </div>
    </div>
  );
}
