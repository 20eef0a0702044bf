"""Training one cell: seeded, resumable from checksummed checkpoints, preemption-safe.

``train_cell(spec, run_dir, checkpoint_dir)`` writes ``run.json``, ``train_log.csv``,
``gradient_norms.csv`` (the gradient-flow probe; header only unless ``train.gradient_norm_every``
or ``gradient_norm_steps`` is set), ``model.pt``, ``snapshots/`` and (last) ``metrics.json`` into
``run_dir``. Checkpoints go to ``checkpoint_dir``, which is *not* a Snakemake output, so a failed
or killed job keeps them and the rerun resumes where it stopped — bitwise, for in-memory data on CPU.

A run is a list of phases (``Method.phases``; one unless the method declares more); the loop,
per step: learning rate → ``before_forward`` → forward/loss (+ ``loss_penalty``) → backward →
``after_backward`` → optimizer step (unless the method skips it) → ``after_step`` → log,
snapshot, gradient-flow probe (``training.probes``), checkpoint. A non-finite loss is numerical
divergence and ends the run; a run whose test accuracy ends at chance is *collapsed*, a real
result (reported, never dropped).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import signal
import time
from pathlib import Path

import torch
from torch import nn

from bench_powerprop import hardware, masks
from bench_powerprop.cell_spec import CellSpec, SpecError
from bench_powerprop.data.tasks import build_task
from bench_powerprop.integrity import clear_run_dir, code_version, fingerprint, written_files
from bench_powerprop.io import provenance, write_bytes_atomic, write_json_atomic, write_text_atomic
from bench_powerprop.methods import METHODS
from bench_powerprop.models import build_model
from bench_powerprop.powerprop import ThetaLeaves, compile_transforms, layer_alphas, powerprop_layers, powerpropify, restore_layer_alphas
from bench_powerprop.training.checkpointing import CellLock, load_latest_checkpoint, prepare_directory, save_checkpoint
from bench_powerprop.training.context import TrainingContext
from bench_powerprop.training.lineage import Lineage, SnapshotStore
from bench_powerprop.training.optimizers import learning_rate_factor, make_optimizer
from bench_powerprop.training.precision import MixedPrecision
from bench_powerprop.training.probes import GradientNormProbe
from bench_powerprop.training.progress import (
    GRADIENT_NORM_COLUMNS,
    LIVE_LOG_NAME,
    TENSORBOARD_EVENTS,
    TrainLog,
    csv_text,
    live_sinks,
    progress_bar,
)
from bench_powerprop.training.seeds import cell_batch_seed
from bench_powerprop.training.strategy import LocalStrategy, strategy_for
from bench_powerprop.training.weight_statistics import weight_statistics

log = logging.getLogger(__name__)

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class Preempted(SystemExit):
    """Raised after a checkpoint was written in response to a signal."""


# -- building a cell ------------------------------------------------------------------------
def build_method(spec: CellSpec | dict):
    spec = CellSpec.of(spec)
    return METHODS.get(spec.method)(spec.method_options, spec.facts, spec.seed)


def build_cell(spec: CellSpec | dict):
    """Model (powerpropified), tasks (one per phase task index) and method, seeded so the init is reproducible."""
    spec = CellSpec.of(spec)
    torch.manual_seed(spec.seed)
    task = build_task(spec.data)
    model = build_model(spec.model, task.input_shape, task.num_classes)
    powerpropify(model, spec.alpha)
    tasks = list(getattr(task, "tasks", [task]))
    return model, tasks, build_method(spec)


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


# -- the trainer ------------------------------------------------------------------------------
class Trainer:
    def __init__(self, spec: CellSpec | dict, checkpoint_dir: Path, strategy=None, progress: bool = True):
        self.spec = spec = CellSpec.of(spec)
        self.train, self.hash = spec.train, spec.hash
        self.code = code_version(spec.method)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.progress = progress
        torch.set_num_threads(self.train.threads)
        self.strategy = strategy or LocalStrategy(torch.device("cpu"))
        model, tasks, self.method = build_cell(spec)
        lineage = Lineage.from_spec(spec)
        lineage.apply_init(model, spec.alpha)
        self.powerprop_layers = powerprop_layers(model)
        if self.train.compile:
            compile_transforms(model)
        #: θ of the α = 2 layers outside autograd in each step, where nothing needs φ's autograd gradient hooks
        self.theta_leaves = ThetaLeaves(self.powerprop_layers if self.strategy.forms_phi_gradients_by_hand
                                        and not self.train.compile else [])
        self._place_on_device(model, tasks)
        optimizer = make_optimizer(model, self.train, self.method)
        snapshots = SnapshotStore(self.checkpoint_dir / "snapshots", spec.snapshot_steps, self.hash)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.train.label_smoothing)
        self.ctx = TrainingContext(model, optimizer, spec, tasks, loss_fn, snapshots, lineage, self.strategy, self.method.phases())
        self.precision = MixedPrecision(self.train.amp, self.strategy.device)
        self.log = TrainLog(self.train.log_every, self.train.eval_every)
        self.total_steps = sum(phase.steps for phase in self.ctx.phases)
        self.batches: dict[int, object] = {}
        self.diverged_reason: str | None = None
        self.phase_started = self.finished = False
        self.probe = GradientNormProbe.from_spec(spec, tasks[0], loss_fn, self.strategy.device)
        self.method.setup(self.ctx)
        self.resumed_from = self._resume()
        if self.resumed_from is None:
            self.method.prepare(self.ctx)
            self._take_snapshot()
            self._probe()
        self.forward_model = self.strategy.wrap(model)

    @property
    def model(self) -> nn.Module:
        return self.ctx.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.ctx.optimizer

    @property
    def step(self) -> int:
        return self.ctx.step

    def _place_on_device(self, model: nn.Module, tasks: list) -> None:
        """Model on the strategy's device (channels-last with ``train.channels_last``); task batches there too."""
        device, channels_last = self.strategy.device, self.train.channels_last
        if device.type != "cpu" and not all(hasattr(task, "set_device") for task in tasks):
            raise ValueError(f"train.device: data {self.spec.data['name']!r} is held in CPU memory; use device: cpu")
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if device.type != "cpu" or channels_last:
            model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        for task in tasks:
            if hasattr(task, "set_device"):
                task.set_device(device, channels_last)

    def batches_of(self, task_index: int):
        if task_index not in self.batches:
            task = self.ctx.tasks[task_index]
            seed = cell_batch_seed(self.spec, task_index)
            self.batches[task_index] = self.strategy.train_batches(task, self.train.batch_size, seed)
        return self.batches[task_index]

    # -- checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict:
        ctx = self.ctx
        return {
            "spec_hash": self.hash,
            "code_hash": self.code["source_hash"],
            "step": ctx.step, "phase_index": ctx.phase_index, "phase_step": ctx.phase_step,
            "phase_started": self.phase_started, "finished": self.finished,
            "model": self.model.state_dict(),
            "layer_alpha": layer_alphas(self.model),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "batches": {index: source.state_dict() for index, source in self.batches.items()},
            "scoring": ctx.scoring_state(),
            "torch_rng": torch.get_rng_state(),
            "log_rows": self.log.rows,
            "diverged_reason": self.diverged_reason,
            "gradient_norms": self.probe.rows if self.probe else [],
            **self.precision.state_dict(),
        }

    def _resume(self) -> int | None:
        state = load_latest_checkpoint(self.checkpoint_dir, {"spec_hash": self.hash, "code_hash": self.code["source_hash"]})
        if state is None:
            return None
        ctx = self.ctx
        self.model.load_state_dict(state["model"])
        restore_layer_alphas(self.model, state.get("layer_alpha", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        for index, source_state in state["batches"].items():
            self.batches_of(index).load_state_dict(source_state)
        ctx.load_scoring_state(state["scoring"])
        torch.set_rng_state(state["torch_rng"])
        self.precision.load_state_dict(state)
        ctx.step, ctx.phase_index, ctx.phase_step = state["step"], state["phase_index"], state["phase_step"]
        self.phase_started, self.finished = state["phase_started"], state["finished"]
        self.log.rows, self.diverged_reason = state["log_rows"], state["diverged_reason"]
        if self.probe:
            self.probe.rows = list(state.get("gradient_norms", []))
        missing = self.ctx.snapshots.missing(ctx.step)
        if missing:
            raise RuntimeError(f"snapshots at steps {missing} are missing from {self.checkpoint_dir / 'snapshots'}; "
                               f"delete {self.checkpoint_dir} to retrain this cell from the start")
        log.info("resumed from checkpoint at step %d", ctx.step)
        return ctx.step

    def checkpoint(self) -> None:
        """Rank 0 writes; under DDP every rank first takes rank 0's buffers, so all hold what is saved."""
        self.strategy.sync_buffers(self.model)
        if self.strategy.is_main:
            save_checkpoint(self.checkpoint_dir, self.ctx.step, self.state_dict())

    def _take_snapshot(self) -> None:
        if self.strategy.is_main:
            self.ctx.snapshots.take_if_due(self.model, self.ctx.step)

    def gradient_norms(self) -> list[dict]:
        """The gradient-flow probe's rows so far (``GRADIENT_NORM_COLUMNS``); [] without a probe."""
        return list(self.probe.rows) if self.probe else []

    def _probe(self) -> None:
        """The gradient-flow probe (``train.gradient_norm_every`` / ``gradient_norm_steps``), when due."""
        if self.probe and self.probe.due(self.ctx.step):
            self.probe.record(self.model, self.ctx.step)

    # -- the loop ------------------------------------------------------------------------
    def train_step(self) -> float:
        ctx, phase = self.ctx, self.ctx.phase
        for group in self.optimizer.param_groups:
            group["lr"] = self.train.lr * learning_rate_factor(ctx.phase_step, phase.steps, self.train)
        token = self.strategy.begin_step(self.model)
        self.method.before_forward(ctx)
        features, labels = self.batches_of(phase.task).next_batch()
        with self.theta_leaves:
            with self.precision.autocast():
                logits = self.forward_model(features)
                loss = ctx.loss_fn(logits, labels)
            penalty = self.method.loss_penalty(ctx)
            objective = loss if penalty is None else loss + penalty
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward(objective)
        self.precision.unscale(self.optimizer)
        self.strategy.after_backward(self.model)
        self.method.after_backward(ctx)
        if self.method.takes_optimizer_step(ctx):
            self.precision.step(self.optimizer)
            masks.enforce_layers(self.powerprop_layers, self.optimizer)
        else:
            self.precision.skip_step()
        self.method.after_step(ctx)
        ctx.end_step()
        batch_accuracy = float((logits.detach().argmax(1) == labels).float().mean())
        loss_value, self._batch_accuracy = self.strategy.end_step(self.model, token, float(loss.detach()), batch_accuracy)
        return loss_value

    def accuracy(self, split: str, task_index: int | None = None) -> float:
        """Accuracy on ``split`` of a task (default: the current phase's) under the training precision."""
        self.strategy.sync_buffers(self.model)
        if task_index is None:
            task_index = self.ctx.phases[min(self.ctx.phase_index, len(self.ctx.phases) - 1)].task
        task = self.ctx.tasks[task_index]
        with self.precision.autocast():
            return task.accuracy(self.model, split)

    def run(self) -> dict:
        ctx = self.ctx
        spec = self.spec
        label = f"{spec.experiment} {spec.method} α={spec.alpha:g} s={spec.sparsity:g} seed={spec.seed}"
        bar = progress_bar(self.total_steps, ctx.step, label, enabled=self.progress and self.strategy.is_main)
        started = time.perf_counter()
        with PreemptionFlag() as preemption:
            while ctx.phase_index < len(ctx.phases) and self.diverged_reason is None:
                self._run_phase(bar, preemption)
        bar.close()
        if self.diverged_reason is None and not self.finished:
            self.method.on_train_end(ctx)
            self.finished = True
            self.checkpoint()
        return self.final_metrics(time.perf_counter() - started)

    def begin_phase(self) -> None:
        """``on_phase_start`` of the current phase, once (a run resumed inside a phase does not repeat it)."""
        if not self.phase_started:
            self.method.on_phase_start(self.ctx)
            self.phase_started = True

    def end_phase(self) -> None:
        """``on_phase_end``, then move to the next phase and checkpoint at the boundary."""
        ctx = self.ctx
        self.method.on_phase_end(ctx)
        ctx.phase_index, ctx.phase_step, self.phase_started = ctx.phase_index + 1, 0, False
        if ctx.phase_index < len(ctx.phases):
            self.checkpoint()

    def advance(self) -> float:
        """One optimizer step as ``run`` takes it, phase boundaries included (no logging): for stepping a run by hand."""
        self.begin_phase()
        loss = self.train_step()
        if self.ctx.phase_step >= self.ctx.phase.steps:
            self.end_phase()
        return loss

    def _run_phase(self, bar, preemption: PreemptionFlag) -> None:
        ctx = self.ctx
        self.begin_phase()
        while ctx.phase_step < ctx.phase.steps and self.diverged_reason is None:
            if self.strategy.any(preemption.signum is not None):
                self.checkpoint()
                bar.close()
                raise Preempted(128 + (preemption.signum or signal.SIGTERM))
            loss = self.train_step()
            bar.update(1)
            self._after_step(loss, bar)
        if self.diverged_reason is None:
            self.end_phase()

    def _after_step(self, loss: float, bar) -> None:
        ctx = self.ctx
        if not math.isfinite(loss):
            self.diverged_reason = f"non-finite training loss at step {ctx.step}"
            log.warning(self.diverged_reason)
        self._take_snapshot()
        self._probe()
        if self.log.due(ctx.step) or self.diverged_reason:
            val = self.accuracy("val") if self.log.eval_due(ctx.step) else math.nan
            self.log.add(ctx.step, ctx.phase.name, loss, self._batch_accuracy, self.optimizer.param_groups[0]["lr"], val)
            if not math.isnan(val):
                log.info("step %d: loss %.4f, val accuracy %.4f", ctx.step, loss, val)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if ctx.step % self.train.checkpoint_every == 0 and ctx.step < self.total_steps:
            self.checkpoint()

    def final_metrics(self, seconds: float) -> dict:
        val, test = self.accuracy("val"), self.accuracy("test")
        task = self.ctx.tasks[self.ctx.phases[-1].task]
        chance_threshold = self.train.chance_accuracy_factor / task.num_classes
        mask = masks.forward_mask(self.model)
        return {
            "spec_hash": self.hash,
            "code_hash": self.code["source_hash"],
            "steps": self.ctx.step,
            "val_accuracy": val,
            "test_accuracy": test,
            "diverged": self.diverged_reason is not None,
            "diverged_reason": self.diverged_reason,
            "collapsed": self.diverged_reason is None and test <= chance_threshold,
            "chance_threshold": chance_threshold,
            "final_loss": self.log.last_loss(),
            "actual_sparsity": masks.masked_fraction(self.model, mask),
            "zero_fraction": masks.zero_fraction(self.model),
            "layer_zero_fraction": masks.layer_zero_fractions(self.model),
            **weight_statistics(self.model, self.spec, self.ctx.tasks),
            "resumed_from_step": self.resumed_from,
            "train_seconds_this_process": seconds,
            **self.method.report(self.ctx),
        }


# -- one cell, end to end ---------------------------------------------------------------------
def check_spec(spec: CellSpec | dict) -> CellSpec:
    """Everything a training job needs is in the spec, checked before any work (options included)."""
    spec = CellSpec.of(spec)
    if spec.train.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SpecError("spec.train.tensorboard: the tensorboard package is not installed "
                        "(pip install -e '.[tensorboard]'; `make run` installs it when a config asks for it)")
    return spec


def model_payload(trainer: Trainer) -> dict:
    # spec_hash first: bench_powerprop.identity.recorded_spec_hash reads the pickle only as far as it
    return {"spec_hash": trainer.hash, "spec": trainer.spec.as_dict(), "state_dict": trainer.model.state_dict(),
            "layer_alpha": layer_alphas(trainer.model)}


def output_fingerprints(run_dir: Path) -> dict[str, dict]:
    """Fingerprint of every file training wrote (metrics.json aside), to notice later damage (``bench_powerprop.integrity``);
    never of a file something else put there."""
    return {str(path.relative_to(run_dir)): fingerprint(path) for path in written_files(run_dir)}


def train_cell(spec: CellSpec | dict, run_dir: Path, checkpoint_dir: Path, progress: bool = True) -> dict:
    """Train one cell and write its outputs atomically; metrics.json is written last, and only on success.

    The cell's checkpoint directory is checked writable before any step and locked while the cell
    trains (a second process for the same cell fails at once). Started by torchrun, every process
    trains (DDP, see ``training.strategy``) and only rank 0 writes.
    """
    spec = check_spec(spec)
    run_dir, started = Path(run_dir), provenance()
    with strategy_for(spec.train.device) as strategy:
        lock = CellLock(prepare_directory(checkpoint_dir)) if strategy.is_main else contextlib.nullcontext()
        with lock:
            if strategy.is_main:
                clear_run_dir(run_dir, (LIVE_LOG_NAME, TENSORBOARD_EVENTS))
            trainer = Trainer(spec, checkpoint_dir, strategy, progress=progress)
            with trainer.log.streaming(live_sinks(run_dir, trainer.train.tensorboard) if strategy.is_main else []):
                metrics = trainer.run()
            if strategy.is_main:
                write_outputs(trainer, run_dir, {**started, "checkpoint_dir": str(checkpoint_dir), "world_size": strategy.world_size,
                                                 "hardware": hardware.record()})
                metrics = {**metrics, "outputs": output_fingerprints(run_dir)}
                write_json_atomic(run_dir / "metrics.json", metrics)
        return metrics


def write_outputs(trainer: Trainer, run_dir: Path, provenance_info: dict) -> None:
    """Everything but metrics.json: the log, the model, the snapshots, run.json (spec + provenance)."""
    write_text_atomic(run_dir / "train_log.csv", trainer.log.csv_text())
    (run_dir / LIVE_LOG_NAME).unlink(missing_ok=True)  # its rows are train_log.csv's now
    write_text_atomic(run_dir / "gradient_norms.csv", csv_text(trainer.gradient_norms(), GRADIENT_NORM_COLUMNS))
    buffer = io.BytesIO()
    torch.save(model_payload(trainer), buffer)
    write_bytes_atomic(run_dir / "model.pt", buffer.getvalue())
    trainer.ctx.snapshots.publish(run_dir)
    write_json_atomic(run_dir / "run.json", {"spec": trainer.spec.as_dict(), "spec_hash": trainer.hash, "code": trainer.code,
                                             **provenance_info})
