#!/usr/bin/env bash
# The score stage on one GPU, end to end: ViT-B-32 and ViT-L-14 with random weights (no download) on
# synthetic JPEG shards, bf16, on a local Ray that owns the node's GPU.
#
#     bash bench/gpu.sh [IMAGES]        # default 100000 images per model and variant (plus a quarter run)
#
# For each model it runs `run_score` twice per variant, on IMAGES and IMAGES/4 images, and prints the
# device, the CLIP batch size, images/s end to end and marginal ((n - n/4) / (T(n) - T(n/4)): actor start-up
# and model loading cancel out) and the GPU utilisation nvidia-smi sampled every 0.5 s during the larger
# run. Variants: "cuda decode" (JPEGs decoded by nvjpeg inside the CLIP actor, the stage's default on a GPU)
# and "cpu decode tasks" (decode tasks on the node's cores feed the GPU actor model-sized uint8 pixels).
# Goals on one H100 (issue 14): ViT-L-14 >= 3,000 images/s, ViT-B-32 >= 20,000 images/s.
# Needs a CUDA GPU; without one it stops at once with exit status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
IMAGES=${1:-100000}

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "bench/gpu.sh: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU node" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null || echo "bench/gpu.sh: nvidia-smi not found: GPU utilisation will read n/a" >&2
export RAY_USAGE_STATS_ENABLED=0 OMP_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PY" - "$WORK" "$IMAGES" <<'EOF'
import hashlib, io, json, logging, os, random, shutil, subprocess, sys, tarfile, threading, time
from pathlib import Path

import pyarrow as pa
import torch

from curate import schemas
from curate.demo.shapes import english_caption, random_scene, render
from curate.engines.ray import RayEngine
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.score.config import ClipConfig, ScoreConfig
from curate.score.run import run_score

logging.basicConfig(level=logging.WARNING)
work, images = Path(sys.argv[1]), int(sys.argv[2])
SHARD, UNIQUE, BATCH = 1000, 2000, 512


def make_run(run: Path, n: int, jpegs: list[tuple[bytes, str]]) -> None:
    """n samples in shards of SHARD, cycling through the rendered JPEGs (decoding costs the same)."""
    for s in range(-(-n // SHARD)):
        shard, buf, samples, decisions = f"{s:05d}.tar", io.BytesIO(), [], []
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for i in range(s * SHARD, min(n, (s + 1) * SHARD)):
                data, caption = jpegs[i % len(jpegs)]
                key, uid = f"{s:05d}{i:06d}", hashlib.md5(str(i).encode()).hexdigest()
                for name, body in ((f"{key}.jpg", data), (f"{key}.txt", caption.encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
                samples.append({"uid": uid, "url": f"http://x/{i}", "caption": caption, "status": "success",
                                "shard": shard, "key": key})
                decisions.append({"uid": uid, "reason": None})
        fs.write_bytes(str(run / "download" / "shards" / shard), buf.getvalue())
        part = f"{s:05d}.parquet"
        fs.write_table(pa.Table.from_pylist(samples, schema=schemas.load("samples")),
                       str(run / "download" / "samples" / part), schema="samples")
        fs.write_table(pa.Table.from_pylist(decisions, schema=schemas.load("dedup")),
                       str(run / "dedup" / "decisions" / part), schema="dedup")
    StageDir(str(run), "download").finish({"stage": "download"})
    StageDir(str(run), "dedup").finish({"stage": "dedup"})


class GpuUtil:
    """Mean utilisation.gpu from nvidia-smi, sampled every 0.5 s while the block runs."""

    def __enter__(self):
        self.samples, self.proc = [], None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "500"], stdout=subprocess.PIPE, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            if line.strip().split(",")[0].strip().isdigit():
                self.samples.append(int(line.strip().split(",")[0]))

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    @property
    def mean(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.0f}%" if self.samples else "n/a"


def random_weights(arch: str) -> str:
    import open_clip
    from safetensors.torch import save_file

    path = work / f"{arch}.safetensors"
    save_file({k: v.contiguous() for k, v in open_clip.create_model(arch, pretrained=None).state_dict().items()},
              str(path))
    return f"{arch}:{path}"


rng = random.Random(0)
jpegs = []
for _ in range(UNIQUE):
    scene, buf = random_scene(rng), io.BytesIO()
    render(scene, rng.randint(256, 640), rng.randint(256, 640), rng).save(buf, format="JPEG", quality=90)
    jpegs.append((buf.getvalue(), english_caption(scene, rng)))
cores = os.cpu_count() or 1
print(f"device: {torch.cuda.get_device_name(0)}; {cores} CPU cores; CLIP batch {BATCH}; bf16; "
      f"{images:,} images per run (and {images // 4:,}), JPEG 256-640 px", flush=True)
print("| model | decode | batch | images/s end to end | images/s marginal | GPU utilisation |")
print("|---|---|---:|---:|---:|---:|", flush=True)
with RayEngine() as engine:
    for arch in ("ViT-B-32", "ViT-L-14"):
        spec = random_weights(arch)
        for label, on_device in (("cuda decode", True), ("cpu decode tasks", False)):
            clip = ClipConfig(model=spec, device="cuda", precision="bf16", decode_on_device=on_device)
            config = ScoreConfig(clip=clip, clip_batch_size=BATCH, decode_batch_size=BATCH, langid_batch_size=BATCH,
                                 clip_num_gpus=1, decode_concurrency=max(1, cores - 2))
            walls = {}
            for n in (images // 4, images):
                run = work / f"run-{n}"
                make_run(run, n, jpegs)
                with GpuUtil() as util:
                    start = time.perf_counter()
                    result = run_score(engine, str(run), config)
                    walls[n] = time.perf_counter() - start
                assert result["rows_in"] == n, result
                shutil.rmtree(run)
            marginal = (images - images // 4) / (walls[images] - walls[images // 4])
            print(f"| {arch} (random weights) | {label} | {BATCH} | {images / walls[images]:,.0f} | {marginal:,.0f} | "
                  f"{util.mean} |", flush=True)
            print(json.dumps({"model": arch, "decode": label, "batch": BATCH, "images": images,
                              "seconds": round(walls[images], 2), "marginal_images_per_s": round(marginal, 1),
                              "gpu_util": util.mean, "gpu_decode_fallbacks": result.get("gpu_decode_fallbacks")}),
                  file=sys.stderr, flush=True)
EOF
