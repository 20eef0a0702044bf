"""Two-process DDP training on CPU (gloo), started by the real torchrun launcher.

Digits MLP with RigL (the hard case: its grow step reads a dense gradient, which DDP does
not all-reduce) and GMP. Checks: every rank ends with the same masks and weights, the
2-process run equals the 1-process run with the same global batch (per-rank batch = global/2)
within float tolerance, only rank 0 writes outputs, and its checkpoint resumes in 1 process.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from bench_powerprop import numerics
from bench_powerprop.data.arrays import ShuffledBatches
from bench_powerprop.distributed import DistributedContext, ShardedBatches, launched_by_torchrun
from bench_powerprop.training.strategy import DDPStrategy, LocalStrategy
from bench_powerprop.training.trainer import Trainer

from conftest import REPO
from helpers import digits_spec, train_command

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
METHOD_OPTIONS = {
    "rigl": {"update_every": 5, "end_step": 25},            # 5 mask updates in 30 steps (after steps 5, ..., 25)
    "gmp": {"begin_step": 5, "end_step": 20, "frequency": 5},
}

WORKER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch
    from bench_powerprop.training.strategy import strategy_for
    from bench_powerprop.training.trainer import Trainer

    spec, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    with strategy_for("cpu") as strategy:
        trainer = Trainer(spec, out / "ckpt", strategy, progress=False)
        trainer.run()
        rank = strategy.context.rank
        torch.save({"state": trainer.model.state_dict(), "world_size": strategy.world_size,
                    "mask_updates": getattr(trainer.method, "mask_updates", None)}, out / f"rank{rank}.pt")
""")


def ddp_spec(method, steps=30):
    return digits_spec(method=method, alpha=2.0, sparsity=0.9, steps=steps, options=METHOD_OPTIONS[method],
                       momentum=0.9, log_every=5, eval_every=10, checkpoint_every=10)


def environment():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def run_torchrun(arguments, timeout=240):
    result = subprocess.run([*TORCHRUN, *arguments], capture_output=True, text=True, timeout=timeout, env=environment())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def masks_of(state):
    return {key: value for key, value in state.items() if key.endswith("_mask")}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", ["rigl", "gmp"])
def test_ranks_hold_identical_masks_and_weights(method, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    run_torchrun([str(worker), json.dumps(ddp_spec(method)), str(tmp_path)])
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    if method == "rigl":
        assert ranks[0]["mask_updates"] == ranks[1]["mask_updates"] == 5  # clock t + 1 = 5, 10, ..., 25 (end inclusive)
    assert masks_of(ranks[0]["state"]), "a sparse method must leave masks on the model"
    for key, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][key]), f"rank 0 and rank 1 differ in {key}"


@pytest.mark.timeout(300)
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    spec = ddp_spec("rigl")
    single = subprocess.run(train_command(spec, tmp_path / "one", tmp_path / "one_ckpt"), capture_output=True,
                            text=True, env=environment())
    assert single.returncode == 0, single.stderr[-3000:]
    two = subprocess.run([*train_command(spec, tmp_path / "two", tmp_path / "two_ckpt"), "--processes", "2"],
                         capture_output=True, text=True, timeout=240, env=environment())  # the CLI restarts itself under torchrun
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]

    one = torch.load(tmp_path / "one" / "model.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "model.pt", weights_only=True)
    assert one["spec_hash"] == two["spec_hash"]
    assert masks_of(one["state_dict"]) and masks_of(one["state_dict"]).keys() == masks_of(two["state_dict"]).keys()
    for key, value in one["state_dict"].items():
        if key.endswith("_mask"):
            assert torch.equal(value, two["state_dict"][key]), key  # same drop/grow decisions
        else:
            torch.testing.assert_close(two["state_dict"][key], value, rtol=1e-4, atol=1e-5)
    metrics_one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    metrics_two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics_two["final_loss"] == pytest.approx(metrics_one["final_loss"], rel=1e-4)
    assert metrics_two["actual_sparsity"] == metrics_one["actual_sparsity"]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["gradient_norms.csv", "metrics.json", "model.pt", "run.json",
                                                                    "snapshots", "train_log.csv"]

    # the 2-process checkpoint (rank 0's) resumes in a single process of the spec's numerics mode (as the CLI sets
    # it up): same names, same state
    monkeypatch.setenv(numerics.MODE_VARIABLE, numerics.of_spec(spec)[0])
    resumed = Trainer(spec, tmp_path / "two_ckpt", progress=False)
    assert resumed.resumed_from == spec["train"]["steps"]
    for key, value in two["state_dict"].items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_sharded_batches_partition_the_global_batch():
    features, labels = torch.arange(40.0).view(20, 2), torch.arange(20)
    whole = ShuffledBatches(features, labels, 6, seed=3)
    shards = [ShardedBatches(ShuffledBatches(features, labels, 6, seed=3), DistributedContext(rank, 2)) for rank in (0, 1)]
    for _ in range(5):  # crosses an epoch boundary (20 samples, batch 6)
        expected = whole.next_batch()
        parts = [shard.next_batch() for shard in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), expected[0])
        assert torch.equal(torch.cat([p[1] for p in parts]), expected[1])


def test_global_batch_must_split_evenly_and_torchrun_detection():
    class Task:
        def train_batches(self, batch_size, seed):
            return batch_size

    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match=r"train\.batch_size: 7 is not divisible by the 2 processes"):
        DDPStrategy(cpu, DistributedContext(0, 2)).train_batches(Task(), 7, 0)
    assert LocalStrategy(cpu).train_batches(Task(), 7, 0) == 7
    assert launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert not launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    assert not launched_by_torchrun({})


def test_train_command_restarts_under_torchrun_without_its_processes_option():
    from bench_powerprop.cli import torchrun_command

    for argv in (["train", "--spec", "{}", "--processes", "4", "--run-dir", "r"],
                 ["train", "--processes=4", "--spec", "{}", "--run-dir", "r"]):
        command = torchrun_command(argv, 4)
        assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
        assert command[6:] == ["bench_powerprop", "train", "--spec", "{}", "--run-dir", "r"]
