// Inference export as a standard tfjs LayersModel (model.json + weights.bin), loadable by tf.loadLayersModel.
// tfjs-layers has no UpSampling3D and its BatchNormalization refuses rank-5 inputs, so the export uses exact
// inference equivalents: each BatchNorm is folded into the conv before it (running statistics), and nearest ×2
// upsampling is a frozen Conv3DTranspose(kernel 2, stride 2) with an identity kernel. Dropout is inference-inert.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { BN_EPSILON, type BlockName } from './architecture.js';
import type { Tfjs } from './engine.js';
import type { UNet3D } from './model.js';

type SymbolicTensor = tfjs.SymbolicTensor;

export const EXPORT_MODEL_FILE = 'model.json';
export const EXPORT_WEIGHTS_FILE = 'weights.bin';

/** Builds the LayersModel equivalent of `model` in eval mode (spatial dims left open, multiples of 4). */
export function toLayersModel(tf: Tfjs, model: UNet3D): tfjs.LayersModel {
  const { architecture, parameters, batchNorms } = model.layout;
  const weights = model.getWeights();
  const running = model.getRunningStats();
  const get = (name: string) => {
    const p = parameters.find((q) => q.name === name);
    if (!p) throw new Error(`missing parameter ${name}`);
    return { values: weights.subarray(p.offset, p.offset + p.size), shape: p.shape };
  };
  const pending: { layer: tfjs.layers.Layer; values: tfjs.Tensor[] }[] = [];

  const conv = (
    x: SymbolicTensor,
    block: BlockName,
    layer: string,
    k: number,
    stride: number,
    bn: string | null,
  ) => {
    const w = get(`${block}.${layer}.weight`);
    const b = get(`${block}.${layer}.bias`);
    const cout = b.values.length;
    const kernel = Float32Array.from(w.values);
    const bias = Float32Array.from(b.values);
    if (bn) {
      // Fold y = (conv + b − μ)·γ/√(σ² + eps) + β into the conv: per output channel scale s and shift.
      const spec = batchNorms.find((q) => q.name === `${block}.${bn}`);
      if (!spec) throw new Error(`missing BN ${block}.${bn}`);
      const gamma = get(`${block}.${bn}.gamma`).values;
      const beta = get(`${block}.${bn}.beta`).values;
      for (let o = 0; o < cout; o++) {
        const mean = running[spec.offset + o] as number;
        const variance = running[spec.offset + spec.channels + o] as number;
        const s = (gamma[o] as number) / Math.sqrt(variance + BN_EPSILON);
        for (let i = o; i < kernel.length; i += cout) kernel[i] = (kernel[i] as number) * s;
        bias[o] = ((bias[o] as number) - mean) * s + (beta[o] as number);
      }
    }
    const l = tf.layers.conv3d({
      name: `${block}_${layer}`,
      filters: cout,
      kernelSize: k,
      strides: stride,
      padding: k === 3 ? 'same' : 'valid',
      activation: bn ? 'relu' : block === 'outc' ? 'softmax' : 'linear',
      useBias: true,
    });
    const y = l.apply(x) as SymbolicTensor;
    pending.push({ layer: l, values: [tf.tensor(kernel, [...w.shape]), tf.tensor1d(bias)] });
    return y;
  };
  const convBlock = (x: SymbolicTensor, block: BlockName) =>
    conv(conv(x, block, 'conv1', 3, 1, 'bn1'), block, 'conv2', 3, 1, 'bn2');
  const upsample = (x: SymbolicTensor, block: BlockName) => {
    const c = x.shape[4] as number;
    const l = tf.layers.conv3dTranspose({
      name: `${block}_upsample`,
      filters: c,
      kernelSize: 2,
      strides: 2,
      padding: 'valid',
      useBias: false,
      trainable: false,
    });
    const y = l.apply(x) as SymbolicTensor;
    // Kernel [2, 2, 2, out, in]: every one of the 8 offsets copies channel i to channel i.
    const identity = new Float32Array(8 * c * c);
    for (let o = 0; o < 8; o++) for (let i = 0; i < c; i++) identity[o * c * c + i * c + i] = 1;
    pending.push({ layer: l, values: [tf.tensor(identity, [2, 2, 2, c, c])] });
    return y;
  };

  const input = tf.input({ shape: [null, null, null, architecture.inChannels], name: 'image' });
  const x1 = convBlock(input, 'inc');
  const x2 = convBlock(conv(x1, 'down1', 'down', 2, 2, null), 'down1');
  const x3 = convBlock(convBlock(conv(x2, 'down2', 'down', 2, 2, null), 'down2'), 'mid');
  const cat1 = tf.layers.concatenate({ axis: -1, name: 'up1_concat' }).apply([upsample(x3, 'up1'), x2]);
  const u1 = convBlock(cat1 as SymbolicTensor, 'up1');
  const cat2 = tf.layers.concatenate({ axis: -1, name: 'up2_concat' }).apply([upsample(u1, 'up2'), x1]);
  const u2 = convBlock(cat2 as SymbolicTensor, 'up2');
  const output = conv(u2, 'outc', 'conv', 1, 1, null);
  const layersModel = tf.model({ inputs: input, outputs: output, name: 'lits_unet3d' });
  for (const { layer, values } of pending) {
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
  return layersModel;
}

/** Writes `model.json` + `weights.bin` (tfjs's layers-model format) into `dir`; returns the model.json path. */
export async function exportTfjsModel(tf: Tfjs, model: UNet3D, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const layersModel = toLayersModel(tf, model);
  try {
    await layersModel.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const data = artifacts.weightData;
        if (!data) throw new Error('tfjs produced no weight data');
        const bytes = new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
        await writeFile(join(dir, EXPORT_WEIGHTS_FILE), bytes);
        const modelJson = {
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: '@lits-ddp/unet',
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: [`./${EXPORT_WEIGHTS_FILE}`], weights: artifacts.weightSpecs }],
          userDefinedMetadata: {
            litsUnet: { architecture: model.layout.architecture, weightHash: model.weightHash() },
          },
        };
        await writeFile(join(dir, EXPORT_MODEL_FILE), `${JSON.stringify(modelJson)}\n`);
        return {
          modelArtifactsInfo: {
            dateSaved: new Date(),
            modelTopologyType: 'JSON',
            weightDataBytes: bytes.byteLength,
          },
        };
      }),
    );
  } finally {
    layersModel.dispose();
  }
  return join(dir, EXPORT_MODEL_FILE);
}

/** Loads an exported model from disk (pure tfjs has no file:// handler). */
export async function loadExportedModel(tf: Tfjs, dir: string): Promise<tfjs.LayersModel> {
  const modelJson = JSON.parse(await readFile(join(dir, EXPORT_MODEL_FILE), 'utf8')) as tfjs.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs = manifest.flatMap((group) => group.weights);
    const buffers = await Promise.all(
      manifest
        .flatMap((group) => group.paths)
        .map(async (p) => {
          const b = await readFile(join(dir, p));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        }),
    );
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
