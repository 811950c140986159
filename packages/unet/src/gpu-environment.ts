// How native TensorFlow uses GPUs is set by environment variables read once, when libtensorflow loads. A worker
// sets them before that (loadEngine), and records what they were: they are part of how a run was made.

/** The variables that decide GPU use, in the order they are recorded. */
export const GPU_ENVIRONMENT_KEYS = [
  'CUDA_VISIBLE_DEVICES',
  'CUDA_DEVICE_ORDER',
  'TF_FORCE_GPU_ALLOW_GROWTH',
  'TF_DETERMINISTIC_OPS',
  'TF_CUDNN_DETERMINISTIC',
  'TF_CUDNN_USE_AUTOTUNE',
  'NVIDIA_TF32_OVERRIDE',
] as const;
export type GpuEnvironmentKey = (typeof GPU_ENVIRONMENT_KEYS)[number];

/**
 * Sets the GPU defaults in `env` (process.env unless given) before a native engine loads:
 * - TF_FORCE_GPU_ALLOW_GROWTH=true unless set: TensorFlow otherwise reserves nearly all of a GPU's memory in the
 *   first process, so two workers on one GPU, or `lits predict` beside a worker, run out of memory;
 * - CUDA_DEVICE_ORDER=PCI_BUS_ID unless set: nvidia-smi numbers GPUs by PCI bus, CUDA by default fastest first, and
 *   an index in CUDA_VISIBLE_DEVICES must mean the GPU that nvidia-smi shows under it;
 * - deterministic: TF_DETERMINISTIC_OPS=1 and TF_CUDNN_DETERMINISTIC=1 (deterministic kernels),
 *   TF_CUDNN_USE_AUTOTUNE=0 (cuDNN otherwise picks convolution algorithms by timing them, run by run) and
 *   NVIDIA_TF32_OVERRIDE=0 (Ampere and Hopper otherwise round conv and matmul inputs to TF32). Forced, not defaults:
 *   a deterministic run must not inherit the opposite.
 */
export function applyGpuDefaults(deterministic: boolean, env: NodeJS.ProcessEnv = process.env): void {
  env['TF_FORCE_GPU_ALLOW_GROWTH'] ??= 'true';
  env['CUDA_DEVICE_ORDER'] ??= 'PCI_BUS_ID';
  if (!deterministic) return;
  env['TF_DETERMINISTIC_OPS'] = '1';
  env['TF_CUDNN_DETERMINISTIC'] = '1';
  env['TF_CUDNN_USE_AUTOTUNE'] = '0';
  env['NVIDIA_TF32_OVERRIDE'] = '0';
}

/** The GPU variables that are set in `env`, by name (unset ones are left out). */
export function gpuEnvironment(
  env: NodeJS.ProcessEnv = process.env,
): Partial<Record<GpuEnvironmentKey, string>> {
  const out: Partial<Record<GpuEnvironmentKey, string>> = {};
  for (const key of GPU_ENVIRONMENT_KEYS) {
    const value = env[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
