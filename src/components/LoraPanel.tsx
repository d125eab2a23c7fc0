import { useEffect, useId, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import { LORA_SCALE, MAX_LORAS, type LoraReport, type LoraSource } from '../../workers/protocol';
import { formatBytes } from '../format';
import { clampScale, parseLoraText, reportSummary, sourceText, type StoredLora } from '../lora-store';

/** What the page knows about one LoRA against the current model. */
export type LoraStatus = { kind: 'checking' } | { kind: 'report'; report: LoraReport } | { kind: 'error'; message: string };

export interface LoraPanelProps {
  loras: StoredLora[];
  /** By LoRA id; absent = not checked against the current model yet. */
  status: Record<string, LoraStatus>;
  /** The current model is loaded in the engine (an unknown LoRA is being or will be checked now). */
  modelLoaded: boolean;
  /** Hub of the current model: a typed `owner/repo/file` reference is looked up there. */
  defaultHubUrl?: string;
  /** Adds a LoRA; returns why it could not, or undefined. */
  onAdd: (source: LoraSource) => Promise<string | undefined>;
  onUpdate: (id: string, patch: Partial<Pick<StoredLora, 'scale' | 'enabled' | 'allowPartial'>>) => void;
  onRemove: (id: string) => void;
}

const SCALE_STEP = 0.05;

export function LoraPanel(p: LoraPanelProps) {
  const ids = { text: useId(), msg: useId(), list: useId() };
  const [open, setOpen] = useState(false);
  const [text, setText] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const autoOpened = useRef(false);
  const full = p.loras.length >= MAX_LORAS;
  const active = p.loras.filter((l) => l.enabled !== false && l.scale > 0).length;

  // A saved list opens the section once, so the user sees what will be applied.
  useEffect(() => {
    if (!autoOpened.current && p.loras.length > 0) {
      autoOpened.current = true;
      setOpen(true);
    }
  }, [p.loras.length]);

  const addText = async () => {
    const parsed = parseLoraText(text, p.defaultHubUrl);
    if ('error' in parsed) {
      setMessage(parsed.error);
      return;
    }
    const why = await p.onAdd(parsed.source);
    setMessage(why ?? null);
    if (!why) setText('');
  };

  const addFiles = async (files: Iterable<File>) => {
    const problems: string[] = [];
    for (const f of files) {
      if (!/\.safetensors$/i.test(f.name)) {
        problems.push(`${f.name} is not a .safetensors file.`);
        continue;
      }
      const why = await p.onAdd({ kind: 'local', name: f.name, blob: f });
      if (why) problems.push(why);
    }
    setMessage(problems.length ? problems.join(' ') : null);
  };

  const onTextKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey) {
      e.preventDefault(); // inside the settings form: Enter adds, it does not generate
      void addText();
    }
  };

  const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer.types).includes('Files');
  const onDragOver = (e: DragEvent<HTMLElement>) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = full ? 'none' : 'copy';
    if (!dragging) setDragging(true);
  };
  const onDragLeave = (e: DragEvent<HTMLElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
  };
  const onDrop = (e: DragEvent<HTMLElement>) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    setDragging(false);
    setOpen(true);
    void addFiles(Array.from(e.dataTransfer.files));
  };

  return (
    <details
      className={`advanced loras${dragging ? ' dragging' : ''}`}
      open={open}
      onToggle={(e) => setOpen(e.currentTarget.open)}
      onDragOver={onDragOver}
      onDragLeave={onDragLeave}
      onDrop={onDrop}
      aria-label="LoRAs"
    >
      <summary>
        LoRAs
        {p.loras.length > 0 && (
          <span className="lora-count">
            {' '}
            · {active} of {p.loras.length} on
          </span>
        )}
      </summary>

      <div className="field">
        <label htmlFor={ids.text}>Add a LoRA from the hub</label>
        <input
          id={ids.text}
          type="text"
          spellCheck={false}
          autoComplete="off"
          value={text}
          placeholder="owner/repo/file.safetensors or a hub URL"
          aria-describedby={message ? ids.msg : undefined}
          aria-invalid={message ? true : undefined}
          onChange={(e) => {
            setText(e.target.value);
            if (message) setMessage(null);
          }}
          onKeyDown={onTextKey}
        />
        <div className="lora-add">
          <button type="button" onClick={() => void addText()} disabled={full}>
            Add
          </button>
          <button type="button" onClick={() => fileRef.current?.click()} disabled={full}>
            Add file…
          </button>
          <span className="hint">or drop .safetensors files here</span>
          <input
            ref={fileRef}
            type="file"
            accept=".safetensors"
            multiple
            hidden
            aria-label="LoRA file"
            onChange={(e) => {
              const files = Array.from(e.target.files ?? []);
              e.target.value = '';
              void addFiles(files);
            }}
          />
        </div>
        {message && (
          <p id={ids.msg} className="warning" role="alert">
            {message}
          </p>
        )}
        {full && <p className="hint">{MAX_LORAS} LoRAs is the most one generation can use; remove one to add another.</p>}
      </div>

      {p.loras.length > 0 ? (
        <ul className="lora-list" aria-label="LoRA list" id={ids.list}>
          {p.loras.map((l) => (
            <LoraRow key={l.id} lora={l} status={p.status[l.id]} modelLoaded={p.modelLoaded} onUpdate={p.onUpdate} onRemove={p.onRemove} />
          ))}
        </ul>
      ) : (
        <p className="hint">
          LoRAs change the model’s style or subject (SDXL LoRAs; kohya or diffusers files). Files you add stay in this browser.
        </p>
      )}
    </details>
  );
}

function LoraRow({
  lora: l,
  status,
  modelLoaded,
  onUpdate,
  onRemove,
}: {
  lora: StoredLora;
  status: LoraStatus | undefined;
  modelLoaded: boolean;
  onUpdate: LoraPanelProps['onUpdate'];
  onRemove: LoraPanelProps['onRemove'];
}) {
  const ids = { on: useId(), scale: useId(), partial: useId() };
  const on = l.enabled !== false;
  const scaleText = l.scale.toFixed(2);
  return (
    <li className={`lora-row${on ? '' : ' off'}`} aria-label={`LoRA ${l.name}`}>
      <div className="lora-head">
        <input id={ids.on} type="checkbox" checked={on} onChange={(e) => onUpdate(l.id, { enabled: e.target.checked })} />
        <label htmlFor={ids.on} className="lora-name" title={on ? 'On: used by Generate' : 'Off: kept in the list, not used'}>
          {l.name}
        </label>
        <button type="button" className="small danger" onClick={() => onRemove(l.id)} aria-label={`Remove ${l.name}`}>
          Remove
        </button>
      </div>
      <p className="lora-src hint" title={sourceText(l.source, formatBytes)}>
        {sourceText(l.source, formatBytes)}
      </p>
      <div className="lora-scale">
        <label htmlFor={ids.scale} className="hint">
          Scale
        </label>
        <input
          id={ids.scale}
          type="range"
          min={LORA_SCALE.min}
          max={LORA_SCALE.max}
          step={SCALE_STEP}
          value={l.scale}
          aria-label={`${l.name} scale`}
          aria-valuetext={scaleText}
          onChange={(e) => onUpdate(l.id, { scale: clampScale(Number(e.target.value)) })}
        />
        <output htmlFor={ids.scale} className="value">
          {scaleText}
        </output>
      </div>
      <ReportLine status={status} modelLoaded={modelLoaded} lora={l} partialId={ids.partial} onUpdate={onUpdate} />
    </li>
  );
}

function ReportLine({
  status,
  modelLoaded,
  lora: l,
  partialId,
  onUpdate,
}: {
  status: LoraStatus | undefined;
  modelLoaded: boolean;
  lora: StoredLora;
  partialId: string;
  onUpdate: LoraPanelProps['onUpdate'];
}) {
  if (!status) {
    return (
      <p className="lora-report hint" aria-live="polite">
        {modelLoaded ? 'Checking against the model…' : 'Checked against the model when it loads (press Generate).'}
      </p>
    );
  }
  if (status.kind === 'checking') {
    return (
      <p className="lora-report hint" aria-live="polite">
        Checking against the model…
      </p>
    );
  }
  if (status.kind === 'error') {
    return (
      <p className="lora-report lora-error" aria-live="polite">
        {status.message}
      </p>
    );
  }
  const s = reportSummary(status.report);
  return (
    <div className="lora-report" aria-live="polite">
      <p className={s.full ? 'lora-ok' : 'warning'}>{s.text}</p>
      {!s.full && status.report.matched > 0 && (
        <div className="lora-partial">
          <input
            id={partialId}
            type="checkbox"
            checked={l.allowPartial}
            onChange={(e) => onUpdate(l.id, { allowPartial: e.target.checked })}
          />
          <label htmlFor={partialId}>Apply the matching part anyway</label>
        </div>
      )}
    </div>
  );
}
