import { F4, MNI_SROW, U1, type ConformanceRow } from './nifti-conformance-table.js';

/** EXPECTED.md, nifti-reader-js files (nifti-reader-js/ in the folder): one row per file. */
const FIVE_D_SROW = [
  [-0.0, -0.0016, 1.0, -87.8935],
  [-0.9917, 0.1282, 0.0002, 147.3985],
  [0.1282, 0.9917, 0.0016, -120.6173],
];
const AIR_SROW = [
  [0.0, -0.0, 2.3852, -75.7625],
  [2.3898, -0.0, 0.0, -110.7625],
  [0.0, -2.3665, 0.0, 84.4256],
];
const FIVE_D_WHY =
  'qform_code 2 and sform_code 1: we use the sform, as nibabel does (this matches EXPECTED; only nifti-reader-js returns the qform)';
const NRJ = 'nifti-reader-js table; "[computed]" paragraph under it';

export const NIFTI_READER_JS_ROWS: ConformanceRow[] = [
  {
    file: 'nifti-reader-js/5D_small.nii',
    section: `${NRJ}; coverage map (scl 0.00275814 / 0.0769190)`,
    bytes: 370,
    sha256: '5d132b7e377dfb38673b7a1172231a96c5045bbbbac64ba2bed2f89c4d4a71b6',
    magic: 'n+1',
    format: 'nifti1',
    endian: 'little',
    shape: [1, 2, 3, 1, 3],
    datatype: U1,
    pixdim: [1.0, 1.0, 1.0, 0.0],
    voxOffset: 352,
    scl: [0.00275814, 0.076919],
    codes: [2, 1],
    srow: FIVE_D_SROW,
    crc: 1168954819,
    storedRange: [0, 255],
    nan: 0,
    v0: 11,
    ours: { why: FIVE_D_WHY, affineSource: 'sform' },
  },
  {
    file: 'nifti-reader-js/5D_zeros.nii.gz',
    section: NRJ,
    bytes: 146049,
    sha256: 'ebafad3004f5c266e1e8ee1d3239aaffab98897a374beedc4cc81422158cb52e',
    magic: 'n+1',
    format: 'nifti1',
    endian: 'little',
    shape: [256, 256, 170, 1, 3],
    datatype: U1,
    pixdim: [1.0, 1.0, 1.0, 0.0],
    voxOffset: 352,
    scl: [1, 0],
    codes: [2, 1],
    srow: FIVE_D_SROW,
    crc: 2980574675,
    storedRange: [0, 0],
    nan: 0,
    v0: 0,
    ours: { why: FIVE_D_WHY, affineSource: 'sform' },
  },
  ...(['air', 'air2'] as const).map((name): ConformanceRow => ({
    file: `nifti-reader-js/${name}.hdr.gz`,
    section: `${NRJ} ("air: float32, range 0…92.55, oblique sform")`,
    bytes: name === 'air' ? 129 : 139,
    sha256:
      name === 'air'
        ? '65709a3b795bd37bebb06ea586d4b99b1320d9b52d1a7ed64fd90adb43ec7c06'
        : 'ac52a7941799e53fb72584e73babcff4b75b2f94b9660838861bee39d18776c4',
    magic: name === 'air' ? 'ni1' : 'ni2',
    format: name === 'air' ? 'nifti1' : 'nifti2',
    endian: 'little',
    shape: [79, 67, 64],
    datatype: F4,
    pixdim: [2.389754, 2.366486, 2.385232, 1.0],
    voxOffset: 0,
    scl: [1, 0],
    codes: [0, 1],
    srow: AIR_SROW,
    imageFile: `nifti-reader-js/${name}.img.gz`,
    crc: 692149477,
    storedRange: [0, 92.5539],
    nan: 0,
    v0: 0,
  })),
  ...(['avg152T1_LR_nifti.nii', 'avg152T1_LR_nifti.nii.gz', 'avg152T1_LR_nifti2.nii.gz'] as const).map(
    (name): ConformanceRow => {
      const two = name.includes('nifti2');
      return {
        file: `nifti-reader-js/${name}`,
        section: `${NRJ} ("uint8 (nifti2 copy: float32), scl_slope 0, a[45,54,45]=121, a[0,0,0]=10")`,
        bytes:
          { 'avg152T1_LR_nifti.nii': 902981, 'avg152T1_LR_nifti.nii.gz': 531671 }[name as string] ?? 763810,
        sha256: {
          'avg152T1_LR_nifti.nii': '9b69ebf61dfbeedd078a86c5f57dedf127c7a44a000380532e9f43304d54922c',
          'avg152T1_LR_nifti.nii.gz': 'c01a50caa7a563158ecda43d93a1466bfc8aa939bc16b06452ac1089c54661c8',
          'avg152T1_LR_nifti2.nii.gz': '04bf2f27eeae640d6527bba185dc362e0aa649be94ac7da82b2ff1697509227e',
        }[name],
        magic: two ? 'n+2' : 'n+1',
        format: two ? 'nifti2' : 'nifti1',
        endian: two ? 'little' : 'big',
        shape: [91, 109, 91],
        datatype: two ? F4 : U1,
        pixdim: [2.0, 2.0, 2.0, 1.0],
        voxOffset: two ? 544 : 352,
        scl: [0, 0],
        codes: [0, 4],
        srow: MNI_SROW,
        crc: two ? 471047545 : 1033497386,
        storedRange: [0, 255],
        nan: 0,
        v0: 10,
        values: [{ at: [45, 54, 45], stored: 121, scaled: 121 }],
      };
    },
  ),
  ...(['big', 'little'] as const).map((name): ConformanceRow => {
    const big = name === 'big';
    return {
      file: `nifti-reader-js/${name}.nii.gz`,
      section: `${NRJ} ("same 86,016 float32 values, min −8.710751, max 18.582529, centre [32,32,10] = −1.2852674")`,
      bytes: big ? 72939 : 71853,
      sha256: big
        ? '518447c30014d0ff3cd6b7a21907871ea3f7f28a736aa7918f7006a8f3d72441'
        : '31e632affb9f62accda848b6eeec30a4aa7a66b706c2e6f49d5cdeefeb2318a8',
      magic: 'n+1',
      format: 'nifti1',
      endian: name,
      shape: big ? [64, 64, 21] : [64, 64, 21, 1],
      datatype: F4,
      pixdim: [4.0, 4.0, 6.0, 1.0],
      voxOffset: 352,
      scl: big ? [0, 0] : [1, 0],
      codes: [1, 0],
      quatern: [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1],
      crc: big ? 3243691439 : 4006845507,
      storedRange: [-8.710751, 18.582529],
      nan: 0,
      v0: 0,
      values: [{ at: big ? [32, 32, 10] : [32, 32, 10, 0], stored: -1.2852674, scaled: -1.2852674 }],
    };
  }),
  {
    file: 'nifti-reader-js/with_extension.nii.gz',
    section: `${NRJ} ("one extension, edata 376 B, extension size 384"); gotcha 4`,
    bytes: 58809,
    sha256: 'c3f67c0883088eb507f596ceb90455911dd036dc9ab053995b22dc3bc3e6835b',
    magic: 'n+1',
    format: 'nifti1',
    endian: 'big',
    shape: [161, 191, 151, 1],
    datatype: U1,
    pixdim: [1.0, 1.0, 1.0, 0.0],
    voxOffset: 736,
    scl: [1, 0],
    codes: [3, 3],
    srow: [
      [-1.0, 0.0, -0.0, 80.0],
      [0.0, -1.0, -0.0, 80.0],
      [0.0, 0.0, -1.0, 85.0],
    ],
    extensions: { count: 1, esize: [384], ecode: [0] },
    crc: 4256514273,
    storedRange: [0, 1],
    nan: 0,
    v0: 0,
  },
];
