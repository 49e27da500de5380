"""tools/bench --zoo: slim's inference runtime against PyTorch and ONNX Runtime
on every model of models/ that runs here, on the same exported ONNX files.

  tools/bench --zoo [--models a,b] [--trained DIR] [--epochs E] [--limit N]
                    [--lambda M=X ...] [--runs 3] [--threads 2] [--images N]
                    [--isa full,avx2] [--peers torch,ort | --no-peer]
                    [--check-images K] [--work DIR] [--ort-dir DIR] [--bin DIR] [--json]

Per model (vgg11-cifar is skipped: CIFAR-10 is not packaged in Debian), three
variants, each a checkpoint in WORK/<model>/ exported to ONNX:
  unpruned  the Γ-L1-trained model (DIR/<model>/trained.ckpt with --trained,
            the layout tools/zoo writes; else a short run here: slim train
            --epochs E --limit N --penalty gamma-l1, λ from tools/zoo's table
            or --lambda)
  Γ-L1      that model pruned at threshold 0 (DIR/<model>/pruned.ckpt, or
            slim prune here)
  half      the synthetic pruned model: the unpruned model with γ zeroed in
            a random half of every BN's channels besides those already at 0,
            pruned exactly (slim_bench prune --prune-fraction 0.5): at most
            half of Γ-L1's channels remain
First each peer's logits on the first K test images (--check-images, 64) are
checked against slim eval's (max |Δ| <= 1e-4 max |logit|); a peer that fails
is not timed for that file. Then, --runs times, alternating: every ISA setting
(full; avx2 = SLIM_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2 for every process, which ONNX Runtime has no switch
for), every model, every variant: slim (build/tools/slim_bench infer CKPT
--passes 1), PyTorch 1.13 (tools/peer_torch.py --mode onnx: the ONNX graph
with torch ops), ONNX Runtime (tools/peer_ort.js, npm's onnxruntime-node,
installed into --ort-dir, default tools/.ort, if missing). Each measures
batch-256 images/s over the test set (its first N with --images) and the
median batch-1 latency of 200 runs, with --threads threads (OMP_NUM_THREADS,
torch.set_num_threads, ORT's intra-op pool). Prints the medians and ratios
slim / peer as one Markdown table (or one JSON object), and the targets of
issue 27 that slim misses at full ISA. A peer that cannot run is skipped with
a message. Interrupted (Ctrl-C, SIGTERM) while timing, it prints the runs
made so far. Exit status 1 when a step or a logits check failed or the run
was interrupted, 2 on a usage error.
"""
import argparse
import importlib.machinery
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from array import array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
SYSTEM_PY = "/usr/bin/python3"  # Debian's, where python3-torch and python3-onnx live
ORT_VERSION = "1.30.0"  # onnxruntime-node; the version tried with Debian 12's Node.js 20
VARIANTS = [("unpruned", "trained"), ("Γ-L1", "pruned"), ("half", "half")]
CAPS = {"full": {}, "avx2": {"SLIM_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                             "DNNL_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}
PEERS = {"torch": "PyTorch", "ort": "ORT"}
TOL = 1e-4  # of max |logit|, as tools/onnx_check.py
# issue 27's targets at full ISA: slim/ORT throughput per variant, latency.
TARGET_IPS = {"unpruned": 2.0, "Γ-L1": 3.0}
TARGET_LAT = 0.6

zoo = importlib.machinery.SourceFileLoader("zoo", os.path.join(TOOLS, "zoo")).load_module()


class Failed(Exception):
    pass


def say(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def run_json(cmd, log, env=None):
    """Runs cmd (stdout and stderr appended to log); its last JSON line."""
    with open(log, "a") as f:
        f.write("$ %s\n" % " ".join(cmd))
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True, env=env)
        f.write(p.stdout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        raise Failed("%s exited %d (log %s)" % (os.path.basename(cmd[1] if cmd[0] in
                                                                   (SYSTEM_PY, "node") else cmd[0]),
                                                 p.returncode, log))
    return json.loads(lines[-1])


def step(cmd, log):
    try:
        return zoo.run(cmd, log)
    except zoo.StepFailed as e:
        raise Failed(str(e))


def parse(argv):
    ap = argparse.ArgumentParser(prog="tools/bench --zoo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--models", help="models to run (default: every one whose data is here)")
    ap.add_argument("--trained", metavar="DIR", help="trained checkpoints: DIR/<model>/trained.ckpt, pruned.ckpt")
    ap.add_argument("--epochs", type=int, default=2, help="short training run: epochs (2)")
    ap.add_argument("--limit", type=int, default=10000, help="short training run: images (10000)")
    ap.add_argument("--lambda", dest="lam", action="append", default=[], metavar="M=X",
                    help="short training run: gamma-l1 lambda of model M (default tools/zoo's table)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=0, help="time the first N test images (0: all)")
    ap.add_argument("--isa", default="full,avx2", help="ISA settings: full, avx2 (both)")
    ap.add_argument("--peers", default="torch,ort", help="peers: torch, ort (both)")
    ap.add_argument("--no-peer", action="store_true", help="slim alone")
    ap.add_argument("--check-images", type=int, default=64, help="images of the logits check (64)")
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "bench"), help="artifacts (runs/bench)")
    ap.add_argument("--ort-dir", default=os.path.join(TOOLS, ".ort"), help="onnxruntime-node's folder")
    ap.add_argument("--bin", metavar="DIR", help="a CMake build directory to use as it is")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if min(a.runs, a.threads, a.epochs, a.check_images) < 1 or a.limit < 0 or a.images < 0:
        ap.error("--runs, --threads, --epochs and --check-images take a number >= 1, "
                 "--limit and --images a count >= 0")
    a.isa = [c for c in a.isa.split(",") if c]
    a.peers = [] if a.no_peer else [p for p in a.peers.split(",") if p]
    if not a.isa or any(c not in CAPS for c in a.isa):
        ap.error("--isa takes a list of: %s" % ", ".join(CAPS))
    if any(p not in PEERS for p in a.peers):
        ap.error("--peers takes a list of: %s" % ", ".join(PEERS))
    known = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "models")) if f.endswith(".net"))
    if a.models:
        a.models = [m for m in a.models.split(",") if m]
        bad = [m for m in a.models if m not in known]
        if bad:
            ap.error("unknown model %s (models/: %s)" % (", ".join(bad), ", ".join(known)))
    else:
        a.models = [m for m in zoo.ORDER if m in known] + \
                   [m for m in known if m not in zoo.ORDER]
    a.lambdas = {}
    for spec in a.lam:
        m, eq, x = spec.partition("=")
        if not eq or m not in known:
            ap.error("--lambda takes MODEL=X with a model of models/, got '%s'" % spec)
        a.lambdas[m] = x
    if a.trained and not os.path.isdir(a.trained):
        ap.error("--trained %s is not a directory" % a.trained)
    if a.bin and not os.access(os.path.join(a.bin, "tools", "slim_bench"), os.X_OK):
        ap.error("%s/tools/slim_bench does not exist: build it first" % a.bin)
    return a


def build(a):
    """(slim, slim_bench) programs: --bin's, or build/'s built here."""
    d = a.bin
    if not d:
        d = os.path.join(ROOT, "build")
        subprocess.run(["cmake", "-S", ROOT, "-B", d, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       capture_output=True)
        subprocess.run(["cmake", "--build", d, "-j2", "--target", "slim", "slim_bench"],
                       check=True, capture_output=True)
    return os.path.join(d, "slim"), os.path.join(d, "tools", "slim_bench")


def torch_usable():
    return subprocess.run([SYSTEM_PY, "-c", "import torch, onnx, numpy"], capture_output=True).returncode == 0


def ort_usable(a):
    """Installs onnxruntime-node into --ort-dir when missing; True when it loads."""
    if not shutil.which("node") or not shutil.which("npm"):
        say("ONNX Runtime skipped: node or npm is missing (apt-get install nodejs npm)")
        return False
    probe = ["node", "-e", "require(process.argv[1])",
             os.path.join(a.ort_dir, "node_modules", "onnxruntime-node")]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return True
    say("installing onnxruntime-node@%s into %s" % (ORT_VERSION, a.ort_dir))
    os.makedirs(a.ort_dir, exist_ok=True)
    # The CPU library ships in the package; its install script would only
    # fetch CUDA binaries from elsewhere, which is skipped.
    env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")
    p = subprocess.run(["npm", "install", "--prefix", a.ort_dir, "--no-audit", "--no-fund",
                        "onnxruntime-node@" + ORT_VERSION], capture_output=True, text=True, env=env)
    if p.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        why = (p.stderr.strip().splitlines() or ["it does not load"])[-1]
        say("ONNX Runtime skipped: npm install onnxruntime-node failed: %s" % why)
        return False
    return True


def prepare(a, slim, bench, name, d):
    """The model's three checkpoints, ONNX files and inputs in d; returns
    {variant: {"ckpt", "onnx", "macs"}}, the input file and where the model
    came from."""
    os.makedirs(d, exist_ok=True)
    trained, pruned = os.path.join(d, "trained.ckpt"), os.path.join(d, "pruned.ckpt")
    src = os.path.join(a.trained, name) if a.trained else None
    if src and all(os.path.isfile(os.path.join(src, f)) for f in ("trained.ckpt", "pruned.ckpt")):
        for f, to in (("trained.ckpt", trained), ("pruned.ckpt", pruned)):
            shutil.copyfile(os.path.join(src, f), to)
        origin = "trained in %s" % src
    else:
        if src:
            say("%s: %s has no trained.ckpt and pruned.ckpt: a short training run" % (name, src))
        lam = a.lambdas.get(name, zoo.LAMBDAS.get(name, "5e-3"))
        say("%s: short training run: %d epoch(s) on %s images, gamma-l1 lambda %s" %
            (name, a.epochs, a.limit or "all", lam))
        step([slim, "train", "--model", os.path.join(ROOT, "models", name + ".net"), "--epochs",
              str(a.epochs), "--penalty", "gamma-l1", "--lambda", lam, "--seed", "0", "--limit",
              str(a.limit), "--out", trained, "--progress", "plain", "--test-limit", "1000",
              "--no-live-prune"],  # the unpruned variant is the full model
             os.path.join(d, "train.log"))
        step([slim, "prune", trained, "--out", pruned, "--check", "0"], os.path.join(d, "prune.log"))
        origin = "short run: %d epoch(s), %s images, λ %s" % (a.epochs, a.limit or "all", lam)
    half = os.path.join(d, "half.ckpt")
    step([bench, "prune", trained, "--prune-fraction", "0.5", "--out", half],
         os.path.join(d, "half.log"))
    files = {}
    for v, stem in VARIANTS:
        ckpt, onnx_path = os.path.join(d, stem + ".ckpt"), os.path.join(d, stem + ".onnx")
        step([slim, "export", ckpt, "--format", "onnx", "--out", onnx_path],
             os.path.join(d, "export-%s.log" % stem))
        info = zoo.info({"slim": slim}, ckpt, os.path.join(d, "info-%s.json" % stem))
        files[v] = {"ckpt": ckpt, "onnx": onnx_path, "macs": info["macs"]}
    pre = info.get("preprocessing") or {}
    if len(pre.get("mean", [])) != 1 or (info.get("meta") or {}).get("data", "fashion-mnist") != "fashion-mnist":
        raise Failed("inputs are written for Fashion-MNIST models only")
    inputs = os.path.join(d, "inputs.f32")
    want = max(a.images, a.check_images) if a.images else sys.maxsize  # sys.maxsize: all
    zoo.write_fashion_inputs(inputs, want, pre["mean"][0], pre["std"][0])
    return files, inputs, origin


def peer_cmd(peer, onnx_path, inputs, a, extra):
    if peer == "torch":
        return [SYSTEM_PY, os.path.join(TOOLS, "peer_torch.py"), "--mode", "onnx", "--onnx",
                onnx_path, "--inputs", inputs, "--threads", str(a.threads)] + extra
    return ["node", os.path.join(TOOLS, "peer_ort.js"), "--onnx", onnx_path, "--inputs", inputs,
            "--threads", str(a.threads)] + extra


def floats(path):
    v = array("f")
    with open(path, "rb") as f:
        v.frombytes(f.read())
    if sys.byteorder != "little":
        v.byteswap()
    return v


def check(a, slim, name, d, files, inputs, peers, env):
    """Each peer's logits on the first --check-images images against slim
    eval's: {(variant, peer): max |Δ| / max |logit|}; a failed peer is
    dropped from that variant's peers."""
    ok, verdicts = {v: [] for v in files}, {}
    for v, stem in VARIANTS:
        want_path = os.path.join(d, stem + ".slim-logits.f32")
        step([slim, "eval", files[v]["ckpt"], "--limit", str(a.check_images), "--logits", want_path],
             os.path.join(d, "eval-%s.log" % stem))
        want = floats(want_path)
        scale = max(abs(x) for x in want)
        for p in peers:
            got_path = os.path.join(d, "%s.%s-logits.f32" % (stem, p))
            try:
                run_json(peer_cmd(p, files[v]["onnx"], inputs, a,
                                  ["--images", str(a.check_images), "--logits", got_path]),
                         os.path.join(d, "check-%s-%s.log" % (stem, p)), env)
                got = floats(got_path)
                if len(got) != len(want):
                    raise Failed("%d logits, slim %d" % (len(got), len(want)))
            except Failed as e:
                say("%s %s: %s failed the logits check: %s" % (name, v, PEERS[p], e))
                verdicts[(v, p)] = None
                continue
            diff = max(abs(x - y) for x, y in zip(got, want))
            verdicts[(v, p)] = diff / scale if scale else diff
            if diff <= TOL * scale:
                ok[v].append(p)
            else:
                say("%s %s: %s's logits differ from slim's by %.3g (max |logit| %.3g): not timed" %
                    (name, v, PEERS[p], diff, scale))
    return ok, verdicts


def measure(a, bench, models, env_of):
    """--runs alternating rounds; {(model, variant, isa, who): {"ips": [], "lat": []}}.
    Interrupted (Ctrl-C, SIGTERM), it keeps the figures measured so far."""
    figs = {}
    order = [(m, v, isa) for m in models for v, _ in VARIANTS for isa in a.isa]
    images = ["--images", str(a.images)] if a.images else []
    try:
        for r in range(a.runs):
            say("run %d/%d" % (r + 1, a.runs))
            for m, v, isa in order:
                info = models[m]
                f = info["files"][v]
                log = os.path.join(info["dir"], "time.log")
                for who in ["slim"] + info["peers"][v]:
                    cmd = ([bench, "infer", f["ckpt"], "--passes", "1", "--threads", str(a.threads)] +
                           images if who == "slim" else peer_cmd(who, f["onnx"], info["inputs"], a, images))
                    try:
                        res = run_json(cmd, log, env_of[isa])
                    except Failed as e:
                        say("%s %s %s %s: %s" % (m, v, isa, who, e))
                        info["failed"] = True
                        continue
                    fig = figs.setdefault((m, v, isa, who), {"ips": [], "lat": []})
                    fig["ips"].append(res["infer_images_per_s"])
                    fig["lat"].append(res["latency_ms"])
    except KeyboardInterrupt:
        say("interrupted: the table holds the runs made so far (column 'runs')")
        for info in models.values():
            info["failed"] = True
    return figs


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def summarise(a, models, figs):
    rows, misses = [], []
    for m, info in models.items():
        for v, _ in VARIANTS:
            for isa in a.isa:
                row = {"model": m, "variant": v, "isa": isa, "macs": info["files"][v]["macs"],
                       "runs": min((len(figs[k]["ips"]) for k in figs if k[:3] == (m, v, isa)), default=0)}
                for who in ["slim"] + a.peers:
                    f = figs.get((m, v, isa, who))
                    if f and f["ips"]:
                        row[who] = {"ips": statistics.median(f["ips"]), "lat": statistics.median(f["lat"]),
                                    "ips_runs": f["ips"], "lat_runs": f["lat"]}
                for p in a.peers:
                    if "slim" in row and p in row:
                        row["ips_ratio_" + p] = row["slim"]["ips"] / row[p]["ips"]
                        row["lat_ratio_" + p] = row["slim"]["lat"] / row[p]["lat"]
                rows.append(row)
                if isa != "full" or "ips_ratio_ort" not in row:
                    continue
                if v in TARGET_IPS and row["ips_ratio_ort"] < TARGET_IPS[v]:
                    misses.append("%s %s: throughput %.2f× ORT's (target ≥ %g×)" %
                                  (m, v, row["ips_ratio_ort"], TARGET_IPS[v]))
                if v in TARGET_IPS and row["lat_ratio_ort"] > TARGET_LAT:
                    misses.append("%s %s: batch-1 latency %.2f× ORT's (target ≤ %g×)" %
                                  (m, v, row["lat_ratio_ort"], TARGET_LAT))
    return rows, misses


def cell(row, who, key, fmt):
    return format(row[who][key], fmt) if who in row else "–"


def ratio(row, key):
    """Two decimals, or two significant digits below 0.1."""
    if key not in row:
        return "–"
    return "%.2f" % row[key] if row[key] >= 0.1 else "%.2g" % row[key]


def table(a, rows):
    peers = a.peers
    head = ["model", "variant", "MACs", "ISA", "runs", "slim img/s"] + ["%s img/s" % PEERS[p] for p in peers] + \
           ["img/s slim/%s" % PEERS[p] for p in peers] + ["slim ms"] + ["%s ms" % PEERS[p] for p in peers] + \
           ["ms slim/%s" % PEERS[p] for p in peers]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 5 else "---:" for i in range(len(head))) + "|"]
    for r in rows:
        cells = [r["model"], r["variant"], "{:,.0f}".format(r["macs"]), r["isa"], str(r["runs"]),
                 cell(r, "slim", "ips", ",.0f")]
        cells += [cell(r, p, "ips", ",.0f") for p in peers] + [ratio(r, "ips_ratio_" + p) for p in peers]
        cells += [cell(r, "slim", "lat", ".3f")] + [cell(r, p, "lat", ".3f") for p in peers]
        cells += [ratio(r, "lat_ratio_" + p) for p in peers]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv):
    a = parse(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    slim, bench = build(a)
    if "torch" in a.peers and not torch_usable():
        say("PyTorch skipped: %s cannot import torch, onnx and numpy "
            "(apt-get install python3-torch python3-onnx)" % SYSTEM_PY)
        a.peers.remove("torch")
    if "ort" in a.peers and not ort_usable(a):
        a.peers.remove("ort")
    base = {k: v for k, v in os.environ.items() if k not in CAPS["avx2"]}
    base["OMP_NUM_THREADS"] = str(a.threads)
    base["SLIM_ORT_DIR"] = os.path.abspath(a.ort_dir)
    env_of = {isa: dict(base, **CAPS[isa]) for isa in CAPS}
    models, failed = {}, False
    for name in a.models:
        if name in zoo.SKIP:
            say("%s skipped: %s" % (name, zoo.SKIP[name]))
            continue
        d = os.path.join(a.work, name)
        say("%s: preparing the models in %s" % (name, d))
        try:
            files, inputs, origin = prepare(a, slim, bench, name, d)
            peers, verdicts = check(a, slim, name, d, files, inputs, a.peers, env_of["full"])
        except Failed as e:
            say("%s: FAILED: %s" % (name, e))
            failed = True
            continue
        failed |= any(p not in peers[v] for v in peers for p in a.peers)
        models[name] = {"dir": d, "files": files, "inputs": inputs, "origin": origin,
                        "peers": peers, "check": verdicts}
    figs = measure(a, bench, models, env_of)
    failed |= any(m.get("failed") for m in models.values())
    rows, misses = summarise(a, models, figs)
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    cpu = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                if l.startswith("Model name")), "unknown CPU")
    if a.json:
        print(json.dumps({"cpu": cpu, "runs": a.runs, "threads": a.threads, "images": a.images or "all",
                          "peers": a.peers, "rows": rows, "misses": misses,
                          "models": {m: {"origin": i["origin"], "check": {"%s/%s" % k: x for k, x in
                                                                            i["check"].items()}}
                                     for m, i in models.items()}}, ensure_ascii=False))
    else:
        print("%s, %d threads, median of %d alternating runs, %s test images at batch 256; "
              "ratios slim/peer (images/s: higher is better for slim, ms: lower)\n" %
              (cpu, a.threads, a.runs, a.images or "all"))
        print(table(a, rows))
        print()
        for m, i in models.items():
            checks = ", ".join("%s %s %s" % (v, PEERS[p], "FAILED" if x is None else "%.1e" % x)
                               for (v, p), x in i["check"].items())
            print("- %s: %s; logits max |Δ| / max |logit|: %s" % (m, i["origin"], checks or "no peer"))
        if misses:
            print("\nissue 27's targets missed at full ISA (against ORT):")
            for s in misses:
                print("- " + s)
    return 1 if failed else 0
