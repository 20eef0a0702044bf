"""Training one grid cell: seeded, resumable from checksummed checkpoints, preemption-safe.

``train_cell(spec, run_dir, checkpoint_dir)`` writes ``run.json``, ``train_log.csv``,
``model.pt`` and (last) ``metrics.json`` into ``run_dir``. Checkpoints go to
``checkpoint_dir``, which is *not* a Snakemake output, so a failed or killed job
keeps them and the rerun resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn

from bench_powerprop import distributed
from bench_powerprop.checkpoint import load_latest_checkpoint, save_checkpoint
from bench_powerprop.data.tasks import build_task
from bench_powerprop.io import provenance, spec_hash, write_csv_atomic, write_json_atomic, write_bytes_atomic
from bench_powerprop.methods import get_method
from bench_powerprop.models import build_model
from bench_powerprop.powerprop import powerpropify
from bench_powerprop.pruning import layer_sparsities, overall_sparsity

log = logging.getLogger(__name__)

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class Preempted(SystemExit):
    """Raised after a checkpoint was written in response to a signal."""


def build_cell(spec: dict):
    """Model (powerpropified), task and method for a spec, seeded so the init is reproducible."""
    torch.manual_seed(spec["seed"])
    task = build_task(spec["data"])
    model = build_model(spec["model"], task.input_shape, task.num_classes)
    powerpropify(model, spec["alpha"])
    method = get_method(spec["method"])(spec.get("method_options", {}), spec["sparsity"], spec["train"]["steps"], spec["seed"])
    return model, task, method


def make_optimizer(model: nn.Module, train_cfg: dict) -> torch.optim.Optimizer:
    groups = parameter_groups(model, train_cfg.get("weight_decay", 0.0), train_cfg.get("weight_decay_exclude_bias_norm", True))
    name = train_cfg.get("optimizer", "sgd")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=train_cfg["lr"], momentum=train_cfg.get("momentum", 0.0), nesterov=train_cfg.get("nesterov", False))
    if name == "adam":
        return torch.optim.Adam(groups, lr=train_cfg["lr"])
    raise ValueError(f"unknown optimizer {name!r}")


def parameter_groups(model: nn.Module, weight_decay: float, exclude_bias_norm: bool) -> list[dict]:
    """Weight decay on Linear/Conv weights only (biases and norm parameters are 1-D)."""
    decayed, plain = [], []
    for parameter in model.parameters():
        (plain if exclude_bias_norm and parameter.ndim <= 1 else decayed).append(parameter)
    return [group for group in ({"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}) if group["params"]]


def learning_rate_factor(step: int, train_cfg: dict) -> float:
    """Multiplier of the base lr: linear warm-up, then constant, cosine or step decay."""
    warmup = train_cfg.get("warmup_steps", 0)
    if step < warmup:
        return (step + 1) / warmup
    schedule = train_cfg.get("lr_schedule", "constant")
    progress = (step - warmup) / max(1, train_cfg["steps"] - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":
        passed = sum(step >= boundary for boundary in train_cfg.get("lr_decay_steps", []))
        return train_cfg.get("lr_decay_factor", 0.1) ** passed
    return 1.0


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """``train.amp``: none (default) | bf16 | fp16 autocast; fp16 (CUDA only) adds a GradScaler."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in ("none", *AMP_DTYPES):
            raise ValueError(f"train.amp: expected none, bf16 or fp16, got {mode!r}")
        if mode == "fp16" and device.type != "cuda":
            raise ValueError("train.amp: fp16 needs a CUDA device (use bf16 on CPU)")
        self.mode, self.device_type = mode, device.type
        self.scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    def autocast(self):
        if self.mode == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=AMP_DTYPES[self.mode])

    def backward(self, objective: torch.Tensor) -> None:
        (objective if self.scaler is None else self.scaler.scale(objective)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """True gradients before the method hooks read them (no-op without a GradScaler)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()


class PreemptionFlag:
    """Remembers the first preemption signal; the loop checkpoints and exits at the next step."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        for signum in PREEMPTION_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _record(self, signum, frame):
        log.warning("received signal %s: will checkpoint and exit", signal.Signals(signum).name)
        self.signum = signum


class Trainer:
    def __init__(self, spec: dict, checkpoint_dir: Path, progress: bool = True):
        self.spec, self.train_cfg = spec, spec["train"]
        self.hash = spec_hash(spec)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress = progress
        torch.set_num_threads(self.train_cfg.get("threads", 1))
        self.dist = distributed.current_context()
        self.device = distributed.resolve_device(self.train_cfg.get("device", "cpu"), self.dist.local_rank)
        self.model, self.task, self.method = build_cell(spec)
        self._place_on_device()
        self.optimizer = make_optimizer(self.model, self.train_cfg)
        self.method.setup(self.model, self.optimizer)
        self.batches = distributed.train_batches(self.task, self.train_cfg["batch_size"], spec["seed"], self.dist)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=self.train_cfg.get("label_smoothing", 0.0))
        self.precision = MixedPrecision(self.train_cfg.get("amp", "none"), self.device)
        self.step, self.log_rows, self.diverged_reason = 0, [], None
        self.resumed_from = self._resume()
        self.forward_model = distributed.wrap_model(self.model, self.dist, self.device)

    def _place_on_device(self) -> None:
        """Model on ``train.device`` (channels-last with ``train.channels_last``); the task batches there too."""
        channels_last = self.train_cfg.get("channels_last", False)
        if self.device.type != "cpu" and not hasattr(self.task, "set_device"):
            raise ValueError(f"train.device: data {self.spec['data']['name']!r} is held in CPU memory; use device: cpu")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if self.device.type != "cpu" or channels_last:
            self.model.to(self.device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        if hasattr(self.task, "set_device"):
            self.task.set_device(self.device, channels_last)

    # -- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "spec_hash": self.hash,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "batches": self.batches.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "log_rows": self.log_rows,
            "diverged_reason": self.diverged_reason,
            **({"grad_scaler": self.precision.scaler.state_dict()} if self.precision.scaler else {}),
        }

    def _resume(self) -> int | None:
        state = load_latest_checkpoint(self.checkpoint_dir)
        if state is None:
            return None
        if state["spec_hash"] != self.hash:
            log.warning("ignoring checkpoint in %s: written for spec %s, this run is %s", self.checkpoint_dir, state["spec_hash"], self.hash)
            return None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self.batches.load_state_dict(state["batches"])
        torch.set_rng_state(state["torch_rng"])
        if self.precision.scaler is not None and "grad_scaler" in state:
            self.precision.scaler.load_state_dict(state["grad_scaler"])
        self.step, self.log_rows, self.diverged_reason = state["step"], state["log_rows"], state["diverged_reason"]
        log.info("resumed from checkpoint at step %d", self.step)
        return self.step

    def checkpoint(self) -> None:
        """Rank 0 writes; under DDP every rank first takes rank 0's buffers, so all hold what is saved."""
        distributed.broadcast_buffers(self.model, self.dist)
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_dir, self.step, self.state_dict())

    # -- the loop ------------------------------------------------------------------------
    def train_step(self) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = self.train_cfg["lr"] * learning_rate_factor(self.step, self.train_cfg)
        masks = distributed.MaskWatch(self.model) if self.dist.is_distributed else None
        self.method.before_forward(self.model, self.step)
        features, labels = self.batches.next_batch()
        with self.precision.autocast():
            logits = self.forward_model(features)
            loss = self.loss_fn(logits, labels)
        penalty = self.method.loss_penalty(self.model)
        objective = loss if penalty is None else loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(objective)
        self.precision.unscale(self.optimizer)
        distributed.average_captured_dense_grads(self.model, self.dist)
        self.method.after_backward(self.model, self.optimizer, self.step)
        self.precision.step(self.optimizer)
        self.method.after_step(self.model, self.optimizer, self.step)
        self.step += 1
        batch_accuracy = float((logits.detach().argmax(1) == labels).float().mean())
        loss_value, self._batch_accuracy = distributed.synchronise_step(
            self.model, masks, float(loss.detach()), batch_accuracy, self.dist, self.device)
        return loss_value

    def accuracy(self, split: str) -> float:
        """The task's accuracy on ``split`` under the training precision (all ranks hold rank 0's buffers)."""
        distributed.broadcast_buffers(self.model, self.dist)
        with self.precision.autocast():
            return self.task.accuracy(self.model, split)

    def run(self) -> dict:
        total = self.train_cfg["steps"]
        bar = _progress_bar(total, self.step, self.spec, enabled=self.progress and self.dist.is_main)
        started = time.perf_counter()
        with PreemptionFlag() as preemption:
            while self.step < total and self.diverged_reason is None:
                if distributed.any_rank(preemption.signum is not None, self.dist, self.device):
                    self.checkpoint()
                    bar.close()
                    raise Preempted(128 + (preemption.signum or signal.SIGTERM))
                loss = self.train_step()
                bar.update(1)
                self._after_step_bookkeeping(loss, bar)
        bar.close()
        if self.diverged_reason is None and self.resumed_from != total:
            self.checkpoint()
        return self.final_metrics(time.perf_counter() - started)

    def _after_step_bookkeeping(self, loss: float, bar) -> None:
        if not math.isfinite(loss):
            self.diverged_reason = f"non-finite training loss at step {self.step}"
            log.warning(self.diverged_reason)
        if self.step % self.train_cfg.get("log_every", 100) == 0 or self.diverged_reason:
            row = {"step": self.step, "loss": loss, "batch_accuracy": self._batch_accuracy,
                   "lr": self.optimizer.param_groups[0]["lr"], "val_accuracy": math.nan}
            if self.step % self.train_cfg.get("eval_every", 500) == 0:
                row["val_accuracy"] = self.accuracy("val")
                log.info("step %d: loss %.4f, val accuracy %.4f", self.step, loss, row["val_accuracy"])
            self.log_rows.append(row)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if self.step % self.train_cfg.get("checkpoint_every", 1000) == 0 and self.step < self.train_cfg["steps"]:
            self.checkpoint()

    def final_metrics(self, seconds: float) -> dict:
        val, test = self.accuracy("val"), self.accuracy("test")
        chance_threshold = self.train_cfg.get("chance_accuracy_factor", 1.5) / self.task.num_classes
        reason = self.diverged_reason
        if reason is None and test <= chance_threshold:
            reason = f"test accuracy {test:.3f} at chance (<= {chance_threshold:.3f})"
        return {
            "spec_hash": self.hash,
            "steps": self.step,
            "val_accuracy": val,
            "test_accuracy": test,
            "diverged": reason is not None,
            "diverged_reason": reason,
            "final_loss": self.log_rows[-1]["loss"] if self.log_rows else math.nan,
            "sparsity": overall_sparsity(self.model),
            "layer_sparsity": layer_sparsities(self.model),
            "resumed_from_step": self.resumed_from,
            "train_seconds_this_process": seconds,
            **self.method.report(self.model),
        }


def _progress_bar(total: int, initial: int, spec: dict, enabled: bool):
    from tqdm.auto import tqdm

    label = f"{spec['experiment']} {spec['method']} α={spec['alpha']:g} s={spec['sparsity']:g} seed={spec['seed']}"
    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=label, disable=not enabled,
                mininterval=0.5 if interactive else 10.0, dynamic_ncols=True, file=sys.stderr)


def model_payload(trainer: Trainer) -> dict:
    return {"spec": trainer.spec, "spec_hash": trainer.hash, "state_dict": trainer.model.state_dict()}


def train_cell(spec: dict, run_dir: Path, checkpoint_dir: Path, progress: bool = True) -> dict:
    """Train one cell and write its outputs atomically; metrics.json is written last.

    Started by torchrun, every process trains (DDP, see ``bench_powerprop.distributed``) and
    only rank 0 writes.
    """
    with distributed.process_group(spec["train"].get("device", "cpu")) as ctx:
        return _train_and_write(spec, Path(run_dir), checkpoint_dir, progress, ctx)


def _train_and_write(spec: dict, run_dir: Path, checkpoint_dir: Path, progress: bool, ctx) -> dict:
    import io

    import pandas as pd

    info = {"spec": spec, "spec_hash": spec_hash(spec), **provenance(), "checkpoint_dir": str(checkpoint_dir),
            "world_size": ctx.world_size}
    if ctx.is_main:
        write_json_atomic(run_dir / "run.json", info)
    trainer = Trainer(spec, checkpoint_dir, progress=progress)
    metrics = trainer.run()
    if not ctx.is_main:
        return metrics
    write_csv_atomic(run_dir / "train_log.csv", pd.DataFrame(trainer.log_rows, columns=["step", "loss", "batch_accuracy", "lr", "val_accuracy"]))
    buffer = io.BytesIO()
    torch.save(model_payload(trainer), buffer)
    write_bytes_atomic(run_dir / "model.pt", buffer.getvalue())
    write_json_atomic(run_dir / "metrics.json", metrics)
    return metrics


def load_trained_model(path: Path) -> tuple[nn.Module, dict]:
    """Rebuild a trained cell's model (architecture from its spec) and load its weights."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    spec = payload["spec"]
    task = build_task(spec["data"])
    model = build_model(spec["model"], task.input_shape, task.num_classes)
    powerpropify(model, spec["alpha"])
    model.load_state_dict(payload["state_dict"])
    return model, spec
