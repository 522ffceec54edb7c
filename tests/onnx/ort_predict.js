// Runs ONNX files in onnxruntime (the npm package onnxruntime-node), an ONNX runtime
// seedproof shares no code with: node ort_predict.js DIR reads DIR/cases.json,
//   [{"model": "a.onnx", "input": "a.x.f32", "dims": [1000, 28, 28, 1], "output": "a.ort.f32"}]
// feeds each model its float32 input as the graph's one input and writes the
// graph's one output as float32. ONNXRUNTIME_NODE_DIR: the folder npm installed
// onnxruntime-node into (deploy/install-deps.sh --test does).
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const dir = process.argv[2];
  const moduleDir = process.env.ONNXRUNTIME_NODE_DIR;
  if (!dir || !moduleDir) {
    throw new Error('usage: ONNXRUNTIME_NODE_DIR=... node ort_predict.js DIR');
  }
  const ort = require(path.join(moduleDir, 'node_modules', 'onnxruntime-node'));
  const cases = JSON.parse(fs.readFileSync(path.join(dir, 'cases.json'), 'utf8'));
  for (const c of cases) {
    // One thread: the same sums in the same order on every run.
    const session = await ort.InferenceSession.create(path.join(dir, c.model), {
      intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all'});
    const bytes = fs.readFileSync(path.join(dir, c.input));
    const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', x, c.dims)};
    const result = await session.run(feeds);
    const y = result[session.outputNames[0]].data;
    fs.writeFileSync(path.join(dir, c.output), Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    console.log(`${c.model}: ${session.inputNames[0]} ${JSON.stringify(c.dims)} -> ` +
                `${session.outputNames[0]} (${y.length} values)`);
  }
}

main().catch((e) => {
  console.error(`ort_predict: ${e.message}`);
  process.exit(1);
});
