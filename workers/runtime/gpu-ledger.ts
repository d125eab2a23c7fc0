/**
 * GPU memory ledger for benchmarks: counts every buffer a WebGPU device creates and destroys (through a
 * wrapper on `GPUDevice.createBuffer` and `GPUBuffer.destroy`), so the bytes onnxruntime-web holds on the GPU
 * can be read at any time: live now, peak overall, and peak per named phase; and the compute dispatches and
 * queue submits it records (through wrappers on its command encoders' compute passes). Works in browsers and in Node
 * (Dawn); install it before onnxruntime-web requests its device.
 */

export interface PhasePeak {
  phase: string;
  /** Live bytes when the phase began. */
  startBytes: number;
  /** Highest live bytes during the phase. */
  peakBytes: number;
  /** Live bytes when the phase ended (the next began, or now). */
  endBytes: number;
  buffers: number;
}

export class GpuLedger {
  live = 0;
  peak = 0;
  created = 0;
  destroyed = 0;
  /** Compute dispatches recorded (dispatchWorkgroups / dispatchWorkgroupsIndirect), and command buffers submitted. */
  dispatches = 0;
  submits = 0;
  /** Bind groups created: onnxruntime makes one per kernel launch, a replayed (graph-captured) run none. */
  bindGroups = 0;
  private current: PhasePeak = { phase: 'start', startBytes: 0, peakBytes: 0, endBytes: 0, buffers: 0 };
  readonly phases: PhasePeak[] = [this.current];
  private readonly sizes = new WeakMap<GPUBuffer, number>();

  /** Starts a new phase (peaks are kept per phase). */
  mark(phase: string): void {
    this.current.endBytes = this.live;
    this.current = { phase, startBytes: this.live, peakBytes: this.live, endBytes: this.live, buffers: 0 };
    this.phases.push(this.current);
  }

  /** The phases with their end figures brought up to date. */
  report(): PhasePeak[] {
    this.current.endBytes = this.live;
    return this.phases.map((p) => ({ ...p }));
  }

  /** Peak over the phases whose name matches. */
  peakOf(match: RegExp): number {
    return Math.max(
      0,
      ...this.report()
        .filter((p) => match.test(p.phase))
        .map((p) => p.peakBytes),
    );
  }

  onCreate(buffer: GPUBuffer, size: number): void {
    this.sizes.set(buffer, size);
    this.live += size;
    this.created++;
    this.current.buffers++;
    if (this.live > this.peak) this.peak = this.live;
    if (this.live > this.current.peakBytes) this.current.peakBytes = this.live;
  }

  onDestroy(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) return;
    this.sizes.delete(buffer);
    this.live -= size;
    this.destroyed++;
  }

  /** Wraps this device's createBuffer (idempotent per device). */
  instrumentDevice(device: GPUDevice): GPUDevice {
    const d = device as GPUDevice & { __ledger?: GpuLedger };
    if (d.__ledger) return device;
    d.__ledger = this;
    const encoder = device.createCommandEncoder.bind(device);
    device.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor): GPUCommandEncoder => {
      const enc = encoder(desc);
      const begin = enc.beginComputePass.bind(enc);
      enc.beginComputePass = (d?: GPUComputePassDescriptor) => {
        const pass = begin(d);
        const dispatch = pass.dispatchWorkgroups.bind(pass);
        const indirect = pass.dispatchWorkgroupsIndirect.bind(pass);
        pass.dispatchWorkgroups = (x: number, y?: number, z?: number) => {
          this.dispatches++;
          return dispatch(x, y, z);
        };
        pass.dispatchWorkgroupsIndirect = (b: GPUBuffer, o: number) => {
          this.dispatches++;
          return indirect(b, o);
        };
        return pass;
      };
      return enc;
    };
    const bindGroup = device.createBindGroup.bind(device);
    device.createBindGroup = (desc: GPUBindGroupDescriptor): GPUBindGroup => {
      this.bindGroups++;
      return bindGroup(desc);
    };
    const submit = device.queue.submit.bind(device.queue);
    device.queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
      this.submits++;
      return submit(buffers);
    };
    const create = device.createBuffer.bind(device);
    device.createBuffer = (desc: GPUBufferDescriptor): GPUBuffer => {
      const buffer = create(desc);
      this.onCreate(buffer, desc.size);
      const destroy = buffer.destroy.bind(buffer);
      buffer.destroy = () => {
        this.onDestroy(buffer);
        return destroy();
      };
      return buffer;
    };
    return device;
  }

  /** Wraps `gpu.requestAdapter` so every device of every adapter it returns is counted. */
  instrumentGpu(gpu: GPU): void {
    const g = gpu as GPU & { __ledger?: GpuLedger };
    if (g.__ledger) return;
    g.__ledger = this;
    const requestAdapter = gpu.requestAdapter.bind(gpu);
    gpu.requestAdapter = async (options?: GPURequestAdapterOptions) => {
      const adapter = await requestAdapter(options);
      if (adapter) {
        const requestDevice = adapter.requestDevice.bind(adapter);
        adapter.requestDevice = async (desc?: GPUDeviceDescriptor) => this.instrumentDevice(await requestDevice(desc));
      }
      return adapter;
    };
  }
}
