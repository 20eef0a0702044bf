"""One ImageNet-shaped training epoch through FFCV on a GPU: dense vs Powerprop vs Powerprop + RigL.

Writes N synthetic JPEGs of ImageNet-like sizes as an ImageFolder, converts them to a .beton with
FFCV's ResNet-50 settings (500 px, 50% JPEG, quality 90, proportion mode), then trains a timm
ResNet for one epoch per variant through the harness's own ``Trainer`` (the FFCV task, bf16
autocast, channels-last, the method hooks) and reports throughput:

    variant                      what it trains
    dense                        α = 1, no masks (the ordinary network)
    powerprop                    α = 2, no masks
    powerprop+rigl               α = 2, RigL at 90% sparsity (ERK, ΔT = 100 as published: the default
                                 200-step epoch has one drop/grow step, which takes a dense gradient)

For each: images/s over the epoch after ``--warmup`` steps (cudnn autotuning, FFCV's JIT), the
median step time, and both as ratios to dense. The table is printed and written atomically to
``bench/results/gpu_epoch_<label>.txt``.

    .venv/bin/python bench/gpu_epoch.py                          # 51,200 images, batch 256, resnet50
    .venv/bin/python bench/gpu_epoch.py --images 25600 --arch resnet18 --label a100
    .venv/bin/python bench/gpu_epoch.py --help

Without a CUDA device it says so and exits 0 (``--allow-cpu`` runs a tiny smoke version on CPU,
for checking the script itself; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
VARIANTS = {  # name: (method, alpha, sparsity, method options)
    "dense": ("dense", 1.0, 0.0, {}),
    "powerprop": ("dense", 2.0, 0.0, {}),
    "powerprop+rigl": ("rigl", 2.0, 0.9, {"update_every": 100, "end_step": 0.75}),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/gpu_epoch.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=51200, help="synthetic training images (default 51200)")
    parser.add_argument("--classes", type=int, default=1000, help="classes, assigned round-robin (default 1000)")
    parser.add_argument("--batch-size", type=int, default=256, help="per-step batch (default 256)")
    parser.add_argument("--image-size", type=int, default=224, help="training resolution (default 224)")
    parser.add_argument("--arch", default="resnet50", help="timm ResNet (default resnet50)")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default="bf16", help="autocast (default bf16)")
    parser.add_argument("--warmup", type=int, default=10, help="steps excluded from the rates (default 10)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_powerprop_gpu_epoch",
                        help="synthetic images and .beton (reused when already there)")
    parser.add_argument("--workers", type=int, default=None, help="FFCV loader/writer threads (default: all cores)")
    parser.add_argument("--label", default=platform.node(), help="results file suffix (default: host name)")
    parser.add_argument("--allow-cpu", action="store_true", help="run on CPU without CUDA (smoke test only)")
    return parser


# -- synthetic data ------------------------------------------------------------------------
def _write_jpeg(job: tuple[Path, int, int, int]) -> None:
    import numpy as np
    from PIL import Image

    path, height, width, seed = job
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    pixels = (y * rng.uniform(0.2, 1) + x * rng.uniform(0.2, 1)) / 2 + rng.uniform(0, 60, (1, 1, 3))
    pixels = pixels + rng.normal(0, 20, (height, width, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=90)


def synthetic_image_folder(root: Path, images: int, classes: int, max_side: int, workers: int) -> Path:
    """ImageFolder of ``images`` JPEGs, sides uniform in [max_side/2, max_side] (ImageNet-like at 500)."""
    from multiprocessing import Pool

    import numpy as np

    folder = root / f"train_{images}_{classes}_{max_side}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == images:
        return folder
    rng = np.random.default_rng(0)
    jobs = []
    for index in range(images):
        class_dir = folder / f"class_{index % classes:04d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        height, width = (int(v) for v in rng.integers(max_side // 2, max_side + 1, 2))
        jobs.append((class_dir / f"{index:07d}.jpg", height, width, index))
    with Pool(workers) as pool:
        pool.map(_write_jpeg, jobs, chunksize=64)
    return folder


def beton_of(folder: Path, workers: int, max_resolution: int) -> Path:
    from bench_powerprop.data import ffcv_io

    path = folder.with_suffix(".beton")
    if not path.is_file():  # FFCV's ResNet-50 settings (libffcv/ffcv-imagenet README)
        ffcv_io.write_imagenet_beton(folder, path, max_resolution=max_resolution, jpeg_quality=90,
                                     compress_probability=0.5, write_mode="proportion", num_workers=workers)
    return path


# -- one epoch per variant -----------------------------------------------------------------
def variant_spec(name: str, args, folder: Path, beton: Path, device: str) -> dict:
    method, alpha, sparsity, options = VARIANTS[name]
    steps = args.images // args.batch_size
    data = {"name": "imagenet", "train_dir": str(folder), "val_dir": str(folder), "num_classes": args.classes,
            "image_size": args.image_size, "val_image_size": args.image_size,
            "train_beton": str(beton), "val_beton": str(beton)}
    if args.workers:
        data["num_workers"] = args.workers
    never = 10**9
    train = {"steps": steps, "batch_size": args.batch_size, "lr": 0.1, "optimizer": "sgd", "momentum": 0.9,
             "nesterov": True, "weight_decay": 5e-5, "label_smoothing": 0.1, "device": device, "amp": args.amp,
             "channels_last": True, "threads": 8, "log_every": never, "eval_every": never, "checkpoint_every": never}
    return {"experiment": "gpu_epoch", "method": method, "alpha": alpha, "sparsity": sparsity, "seed": 0,
            "data": data, "model": {"name": "timm", "arch": args.arch}, "train": train, "method_options": options}


def time_one_epoch(spec: dict, warmup: int) -> dict:
    """Train ``spec['train']['steps']`` steps; per-step wall times (each step ends with a device sync)."""
    import torch

    from bench_powerprop.training.strategy import strategy_for
    from bench_powerprop.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as checkpoints, strategy_for(spec["train"]["device"]) as strategy:
        trainer = Trainer(spec, Path(checkpoints), strategy, progress=False)
        times = []
        epoch_started = time.perf_counter()
        for _ in range(spec["train"]["steps"]):
            started = time.perf_counter()
            loss = trainer.train_step()  # float(loss) inside synchronises the device
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        epoch_seconds = time.perf_counter() - epoch_started
        report = trainer.method.report(trainer.ctx)
    timed = times[warmup:] or times
    batch = spec["train"]["batch_size"]
    return {"steps": len(times), "epoch_s": epoch_seconds, "images_per_s": batch * len(timed) / sum(timed),
            "median_step_ms": 1000 * statistics.median(timed), "final_loss": loss,
            "mask_updates": report.get("mask_updates", 0)}


def format_table(rows: dict[str, dict], header: list[str]) -> str:
    dense = rows.get("dense")
    lines = [*header, "",
             f"{'variant':<16} {'steps':>6} {'epoch s':>9} {'images/s':>10} {'step ms':>9} {'img/s vs dense':>15}"
             f" {'step vs dense':>14} {'mask upd.':>9} {'loss':>7}"]
    for name, row in rows.items():
        speed = row["images_per_s"] / dense["images_per_s"] if dense else math.nan
        step = row["median_step_ms"] / dense["median_step_ms"] if dense else math.nan
        lines.append(f"{name:<16} {row['steps']:>6} {row['epoch_s']:>9.1f} {row['images_per_s']:>10.1f}"
                     f" {row['median_step_ms']:>9.2f} {speed:>15.3f} {step:>14.3f} {row['mask_updates']:>9}"
                     f" {row['final_loss']:>7.3f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("gpu_epoch: skipped: no CUDA device (pass --allow-cpu for a CPU smoke run)")
        return 0
    sys.path.insert(0, str(REPO))
    from bench_powerprop.io import write_text_atomic

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.images < args.batch_size * (args.warmup + 1):
        print(f"gpu_epoch: --images {args.images} gives fewer than {args.warmup + 1} steps of batch {args.batch_size}",
              file=sys.stderr)
        return 2
    workers = args.workers or len(os.sched_getaffinity(0))
    max_side = 500 if args.image_size >= 128 else 2 * args.image_size
    started = time.perf_counter()
    folder = synthetic_image_folder(args.work_dir, args.images, args.classes, max_side, workers)
    beton = beton_of(folder, workers, max_resolution=max_side)
    prepare_s = time.perf_counter() - started

    rows = {}
    for name in args.variants:
        rows[name] = time_one_epoch(variant_spec(name, args, folder, beton, device), args.warmup)
        print(f"{name}: {rows[name]['images_per_s']:.1f} images/s", flush=True)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({platform.processor() or 'unknown'})"
    header = [
        f"# One training epoch through FFCV: {args.arch}, {args.images} synthetic JPEGs ({args.classes} classes),"
        f" batch {args.batch_size}, {args.image_size} px, amp {args.amp}, channels-last",
        f"# device: {gpu}; torch {torch.__version__}; host {platform.node()};"
        f" {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"# rates exclude the first {args.warmup} steps; data generation + .beton took {prepare_s:.0f} s"
        + ("" if device == "cuda" else "; CPU SMOKE RUN: numbers are meaningless"),
    ]
    table = format_table(rows, header)
    print(table)
    out = RESULTS / f"gpu_epoch_{args.label}.txt"
    write_text_atomic(out, table)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
