#!/usr/bin/env node
// The ONNX Runtime peer of tools/bench: an ONNX file slim exported, run by
// npm's onnxruntime-node (CPU execution provider) and measured the way
// slim_runtime_measure measures slim's runtime: 3 warm-up batches, batch 256
// over all images, then 20 warm-up and 200 timed single images (median).
//
//   node tools/peer_ort.js --onnx M.onnx --inputs X.f32 [--images N] [--threads T (2)]
//   node tools/peer_ort.js --onnx M.onnx --inputs X.f32 --images K --logits OUT.f32
//   node tools/peer_ort.js --onnx M.onnx --inputs X.f32 [--images N] --profile PREFIX
//
// --inputs holds raw little-endian float32 images (N, C, H, W) with C, H, W
// of the model's input; --images N uses the first N (default all). With
// --logits the first N images run as one batch and their logits go to
// OUT.f32 (float32, (N, classes)); nothing is timed. With --profile, after
// the warm-up the N images run once at batch 256 under ORT's profiler (its
// trace goes to PREFIX_<date>.json) and the JSON holds each node's kernel
// time per image (µs), in graph order, instead of the figures. One thread pool of T
// threads (intra-op), sequential execution, every graph optimisation on.
// onnxruntime-node is looked up in $SLIM_ORT_DIR/node_modules (tools/bench
// installs it there), else as usual. Prints one JSON object on stdout;
// exits 2 on a usage or input error.
'use strict';
const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`peer_ort: error: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {threads: 2, images: 0};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i], value = argv[i + 1];
    if (value === undefined) die(`${name} needs a value`);
    if (name === '--onnx') a.onnx = value;
    else if (name === '--inputs') a.inputs = value;
    else if (name === '--logits') a.logits = value;
    else if (name === '--profile') a.profile = value;
    else if (name === '--threads' || name === '--images') {
      if (!/^\d+$/.test(value)) die(`${name} takes a whole number, not '${value}'`);
      a[name.slice(2)] = Number(value);
    } else die(`unknown option ${name}`);
  }
  if (!a.onnx || !a.inputs) die('--onnx and --inputs are required');
  if (a.threads < 1) die('--threads takes a count >= 1');
  return a;
}

function loadOrt() {
  const dir = process.env.SLIM_ORT_DIR;
  const where = dir ? [path.join(dir, 'node_modules', 'onnxruntime-node')] : [];
  for (const p of [...where, 'onnxruntime-node']) {
    try {
      const ort = require(p);
      return {ort, version: require(path.join(p, 'package.json')).version};
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  die('onnxruntime-node is not installed (npm install onnxruntime-node, or set SLIM_ORT_DIR)');
}

function median(v) {
  const s = [...v].sort((x, y) => x - y), h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

// Each node's kernel time over the run after the warm-up, per image.
async function profile(session, prefix, n) {
  session.endProfiling();
  const dir = path.dirname(path.resolve(prefix)), base = path.basename(prefix) + '_';
  const files = fs.readdirSync(dir).filter(f => f.startsWith(base) && f.endsWith('.json'));
  if (!files.length) die(`ORT wrote no profile ${prefix}_*.json`);
  const newest = files.map(f => path.join(dir, f))
                     .sort((x, y) => fs.statSync(y).mtimeMs - fs.statSync(x).mtimeMs)[0];
  const events = JSON.parse(fs.readFileSync(newest, 'utf8'));
  const runs = events.filter(e => e.cat === 'Session' && e.name === 'model_run');
  const start = runs.length > 3 ? runs[3].ts : 0; // after the 3 warm-up batches
  const us = {};
  for (const e of events)
    if (e.cat === 'Node' && e.ts >= start && e.name.endsWith('_kernel_time')) {
      const k = `${e.name.slice(0, -12)} (${e.args && e.args.op_name})`;
      us[k] = (us[k] || 0) + e.dur / n;
    }
  return us;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const {ort, version} = loadOrt();
  const session = await ort.InferenceSession.create(a.onnx, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', enableProfiling: !!a.profile, profileFilePrefix: a.profile});
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const meta = session.inputMetadata && session.inputMetadata[0];
  const dims = meta && meta.shape ? meta.shape.slice(1) : null;
  if (!dims || dims.some(d => typeof d !== 'number' || d < 1))
    die(`${a.onnx}: cannot read the input's (C, H, W)`);
  const per = dims.reduce((x, y) => x * y, 1);
  let buf;
  try {
    buf = fs.readFileSync(a.inputs);
  } catch (e) {
    die(`${a.inputs}: cannot read: ${e.message}`);
  }
  if (buf.length === 0 || buf.length % (4 * per))
    die(`${a.inputs}: ${buf.length} bytes, not a whole number of ${dims.join('x')} float32 images`);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const total = all.length / per, n = a.images ? Math.min(a.images, total) : total;
  const batch = (first, count) => ({[inName]: new ort.Tensor(
      'float32', all.subarray(first * per, (first + count) * per), [count, ...dims])});
  const res = {peer: 'onnxruntime', onnxruntime: version, threads: a.threads, images: n};
  if (a.logits) {
    const out = (await session.run(batch(0, n)))[outName];
    fs.writeFileSync(a.logits, Buffer.from(out.data.buffer, out.data.byteOffset,
                                           out.data.byteLength));
    res.logits = a.logits;
    process.stdout.write(JSON.stringify(res) + '\n');
    return;
  }
  const bs = 256, warm = Math.min(n, bs);
  for (let i = 0; i < 3; i++) await session.run(batch(0, warm));
  let t0 = process.hrtime.bigint();
  for (let s = 0; s < n; s += bs) await session.run(batch(s, Math.min(bs, n - s)));
  res.infer_images_per_s = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  if (a.profile) {
    res.node_us_per_image = await profile(session, a.profile, n);
    process.stdout.write(JSON.stringify(res) + '\n');
    return;
  }
  const lat = [];
  for (let i = -20; i < 200; i++) {
    t0 = process.hrtime.bigint();
    await session.run(batch((i + 20) % n, 1));
    if (i >= 0) lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  res.latency_ms = median(lat);
  res.peak_rss_mib = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(res) + '\n');
}

main().catch(e => {
  process.stderr.write(`peer_ort: error: ${e.message}\n`);
  process.exit(1);
});
