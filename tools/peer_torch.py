#!/usr/bin/python3
"""The PyTorch peer for tools/bench: vgg-fm on Fashion-MNIST, measured the way
tools/slim_bench measures slim (protocol: ../shared/bench/SPEC.md); or any
ONNX file slim exported, run with PyTorch ops (tools/onnx_torch.py) and
measured the way slim_runtime_measure measures slim's runtime.

Prints one JSON object on stdout.
  /usr/bin/python3 tools/peer_torch.py --mode train --batches 100 --threads 2
  /usr/bin/python3 tools/peer_torch.py --mode infer --threads 2
  /usr/bin/python3 tools/peer_torch.py --mode onnx --onnx M.onnx --inputs X.f32 [--images N]
  /usr/bin/python3 tools/peer_torch.py --mode onnx --onnx M.onnx --inputs X.f32 --logits OUT.f32 --images K
--inputs holds raw little-endian float32 images (N, C, H, W) with C, H, W of
the model's input; --images N uses the first N (default all). With --logits
the first N images go through as one batch and their logits are written to
OUT.f32 (float32, (N, classes)); nothing is timed.
"""
import argparse, gzip, json, os, resource, statistics, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


def load_split(prefix):
    def idx(path):
        with gzip.open(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    x = idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz"))
    y = idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz"))
    x = ((x.astype(np.float32) / 255.0 - MEAN) / STD)[:, None, :, :]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def cbr(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def vgg_fm():
    return nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2),
                         *cbr(32, 64), *cbr(64, 64), nn.MaxPool2d(2),
                         *cbr(64, 128), *cbr(128, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train(args):
    xtr, ytr = load_split("train")
    model = vgg_fm()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(xtr.shape[0], generator=gen)
    bs, warm = 128, 5
    model.train()
    timed, n = 0.0, 0
    for b in range(warm + args.batches):
        idx = perm[(b * bs) % (xtr.shape[0] - bs):][:bs]
        t0 = time.perf_counter()
        xb, yb = xtr.index_select(0, idx), ytr.index_select(0, idx)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if b >= warm:
            timed += time.perf_counter() - t0
            n += bs
    return dict(train_images_per_s=n / timed, peak_rss_mib=peak_rss_mib())


@torch.no_grad()
def infer(args):
    xte, _ = load_split("t10k")
    model = vgg_fm().eval()
    bs = 256
    for i in range(3):
        model(xte[i * bs:(i + 1) * bs])
    t0 = time.perf_counter()
    for i in range(0, xte.shape[0], bs):
        model(xte[i:i + bs])
    ips = xte.shape[0] / (time.perf_counter() - t0)
    for i in range(20):
        model(xte[i:i + 1])
    lat = []
    for i in range(200):
        t0 = time.perf_counter()
        model(xte[i:i + 1])
        lat.append((time.perf_counter() - t0) * 1e3)
    return dict(infer_images_per_s=ips, latency_ms=float(np.median(lat)), peak_rss_mib=peak_rss_mib())


def onnx_inputs(args, run_shape):
    x = np.fromfile(args.inputs, dtype="<f4")
    per = int(np.prod(run_shape))
    if x.size == 0 or x.size % per:
        raise SystemExit("peer_torch: %s holds %d floats, not a whole number of %s images"
                         % (args.inputs, x.size, "x".join(map(str, run_shape))))
    x = torch.from_numpy(x.reshape((-1,) + tuple(run_shape)))
    return x[:args.images] if args.images else x


@torch.no_grad()
def onnx_mode(args):
    """slim_runtime_measure's protocol: 3 warm-up batches, batch 256 over all
    images, then 20 warm-up and 200 timed single images."""
    import onnx
    from onnx_torch import load
    dims = [d.dim_value for d in onnx.load(args.onnx).graph.input[0].type.tensor_type.shape.dim]
    run = load(args.onnx)
    x = onnx_inputs(args, dims[1:])
    if args.logits:
        run(x).numpy().astype("<f4").tofile(args.logits)
        return dict(images=x.shape[0], logits=args.logits)
    n, bs = x.shape[0], 256
    for _ in range(3):
        run(x[:bs])
    t0 = time.perf_counter()
    for i in range(0, n, bs):
        run(x[i:i + bs])
    ips = n / (time.perf_counter() - t0)
    lat = []
    for i in range(-20, 200):
        t0 = time.perf_counter()
        run(x[(i + 20) % n:][:1])
        if i >= 0:
            lat.append((time.perf_counter() - t0) * 1e3)
    return dict(infer_images_per_s=ips, latency_ms=statistics.median(lat), images=n,
                peak_rss_mib=peak_rss_mib())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "infer", "onnx"], required=True)
    ap.add_argument("--onnx", help="--mode onnx: the ONNX file")
    ap.add_argument("--inputs", help="--mode onnx: raw float32 images (N, C, H, W)")
    ap.add_argument("--images", type=int, default=0, help="--mode onnx: the first N images (0: all)")
    ap.add_argument("--logits", help="--mode onnx: write the logits of the images, time nothing")
    ap.add_argument("--batches", type=int, default=100, help="timed training batches after 5 warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.mode == "onnx" and not (args.onnx and args.inputs):
        ap.error("--mode onnx needs --onnx and --inputs")
    if args.images < 0:
        ap.error("--images takes a count >= 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.mode == "onnx":
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        res = onnx_mode(args)
    else:
        res = train(args) if args.mode == "train" else infer(args)
    res.update(peer="pytorch", torch=torch.__version__, threads=torch.get_num_threads())
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
