import type { Capabilities } from '../../workers/protocol';
import type { Assessment } from '../capabilities';
import { formatBytes } from '../format';

export function CapabilityBanner({
  caps,
  assessment,
  probeError,
  cached = false,
}: {
  caps: Capabilities | null;
  assessment: Assessment;
  probeError: string | null;
  cached?: boolean;
}) {
  if (probeError) {
    return (
      <section className="banner error" aria-label="GPU check">
        <div role="alert">
          <h2>Could not check your GPU</h2>
          <p>{probeError}</p>
        </div>
      </section>
    );
  }
  return (
    <section className={`banner ${assessment.level}`} aria-label="GPU check">
      <div role={assessment.level === 'error' ? 'alert' : 'status'} className="banner-text">
        <h2>{assessment.title}</h2>
        {assessment.detail && <p>{assessment.detail}</p>}
      </div>
      {caps && (
        <dl className="facts">
          <div>
            <dt>Adapter</dt>
            <dd>{caps.adapterName ?? (caps.webgpu ? 'unknown' : 'none')}</dd>
          </div>
          <div>
            <dt>shader-f16</dt>
            <dd>{caps.shaderF16 ? 'yes' : 'no'}</dd>
          </div>
          <div>
            <dt>Download</dt>
            <dd>
              {cached
                ? 'cached in this browser'
                : assessment.downloadBytes !== null
                  ? `${formatBytes(assessment.downloadBytes)} (${assessment.precision})`
                  : 'unknown'}
            </dd>
          </div>
          <div>
            <dt>GPU memory</dt>
            <dd title="computed from the model's graphs: every component's weights plus the activations of the largest step">
              {assessment.gpuMemoryBytes !== null ? `about ${formatBytes(assessment.gpuMemoryBytes)}` : 'unknown'}
            </dd>
          </div>
        </dl>
      )}
    </section>
  );
}
