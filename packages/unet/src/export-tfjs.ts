// Inference export as a standard tfjs LayersModel (model.json + weights.bin), loadable by tf.loadLayersModel.
// tfjs-layers has no UpSampling3D and its BatchNormalization refuses rank-5 inputs, so the export uses exact
// inference equivalents: each BatchNorm is folded into the conv before it (running statistics), and nearest ×2
// upsampling is a frozen Conv3DTranspose(kernel 2, stride 2) with an identity kernel. Dropout is inference-inert.
// The graph is a walk of the same topology (topology.ts) as the training graph.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import { decodeJson, JsonDecodeError } from '@lits-ddp/protocol';
import Type from 'typebox';
import { BN_EPSILON } from './architecture.js';
import type { Tfjs } from './engine.js';
import { ExportedModelError, ModelExportError } from './errors.js';
import type { UNet3D } from './model.js';
import { unetTopology, type BlockName, type ConvLayer } from './topology.js';

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
    { block, layer, kernel, stride, padding, batchNorm, activation }: ConvLayer,
  ) => {
    const w = get(`${block}.${layer}.weight`);
    const b = get(`${block}.${layer}.bias`);
    const cout = b.values.length;
    const kernelValues = Float32Array.from(w.values);
    const bias = Float32Array.from(b.values);
    if (batchNorm) {
      // Fold y = (conv + b − μ)·γ/√(σ² + eps) + β into the conv: per output channel scale s and shift.
      const bn = `${block}.${batchNorm.layer}`;
      const spec = batchNorms.find((q) => q.name === bn);
      if (!spec) throw new Error(`missing BN ${bn}`);
      const gamma = get(`${bn}.gamma`).values;
      const beta = get(`${bn}.beta`).values;
      for (let o = 0; o < cout; o++) {
        const mean = running[spec.offset + o] as number;
        const variance = running[spec.offset + spec.channels + o] as number;
        const s = (gamma[o] as number) / Math.sqrt(variance + BN_EPSILON);
        for (let i = o; i < kernelValues.length; i += cout) kernelValues[i] = (kernelValues[i] as number) * s;
        bias[o] = ((bias[o] as number) - mean) * s + (beta[o] as number);
      }
    }
    const l = tf.layers.conv3d({
      name: `${block}_${layer}`,
      filters: cout,
      kernelSize: kernel,
      strides: stride,
      padding,
      activation,
      useBias: true,
    });
    const y = l.apply(x) as SymbolicTensor;
    pending.push({ layer: l, values: [tf.tensor(kernelValues, [...w.shape]), tf.tensor1d(bias)] });
    return y;
  };
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
  const outputs = new Map<BlockName, SymbolicTensor>();
  let x = input;
  for (const block of unetTopology(architecture).blocks) {
    for (const layer of block.layers) {
      if (layer.kind === 'conv') x = conv(x, layer);
      else if (layer.kind === 'upsample') x = upsample(x, layer.block);
      else if (layer.kind === 'concat') {
        const concat = tf.layers.concatenate({ axis: -1, name: `${layer.block}_concat` });
        x = concat.apply([x, outputs.get(layer.skip) as SymbolicTensor]) as SymbolicTensor;
      }
    }
    outputs.set(block.name, x);
  }
  const output = x;
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
        if (!data) throw new ModelExportError(dir, 'tfjs produced no weight data');
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

// What loadExportedModel relies on in model.json; tfjs checks the topology itself when it builds the model.
// Weight files must lie in the model's folder (a plain file name, optionally `./`), never a path out of it.
const ExportedModelJsonSchema = Type.Object({
  modelTopology: Type.Object({}),
  weightsManifest: Type.Array(
    Type.Object({
      paths: Type.Array(Type.String({ pattern: '^(\\./)?(?!\\.\\.?$)[^/\\\\]+$' })),
      weights: Type.Array(
        Type.Object({
          name: Type.String(),
          shape: Type.Array(Type.Integer({ minimum: 0 })),
          dtype: Type.Union([
            Type.Literal('float32'),
            Type.Literal('int32'),
            Type.Literal('bool'),
            Type.Literal('string'),
            Type.Literal('complex64'),
          ]),
        }),
      ),
    }),
  ),
});

async function readExportFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ExportedModelError(
      path,
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { cause: err },
    );
  }
}

/** Loads an exported model from disk (pure tfjs has no file:// handler); errors name the file and the field. */
export async function loadExportedModel(tf: Tfjs, dir: string): Promise<tfjs.LayersModel> {
  const modelPath = join(dir, EXPORT_MODEL_FILE);
  const text = (await readExportFile(modelPath)).toString('utf8');
  let modelJson: tfjs.io.ModelJSON;
  try {
    // The schema checks the fields used here; the cast only adds tfjs's optional ones.
    modelJson = decodeJson(ExportedModelJsonSchema, text, modelPath) as tfjs.io.ModelJSON;
  } catch (err) {
    if (!(err instanceof JsonDecodeError)) throw err;
    throw new ExportedModelError(modelPath, err.problem, { cause: err });
  }
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs = manifest.flatMap((group) => group.weights);
    const buffers = await Promise.all(
      manifest
        .flatMap((group) => group.paths)
        .map(async (p) => {
          const b = await readExportFile(join(dir, p));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        }),
    );
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
