"""The ``permuted`` task sequence: task 1 is the base dataset, the others fixed seeded permutations of its features."""

import torch

from bench_powerprop.data.arrays import ShuffledBatches
from bench_powerprop.data.datasets import resolve_data_config, task_count
from bench_powerprop.data.tasks import build_task


def sequence(**options):
    return build_task(resolve_data_config({"name": "permuted", **options}))


def test_task_one_is_the_base_dataset_and_the_others_permute_its_features():
    tasks = sequence(tasks=3).tasks
    base = build_task(resolve_data_config({"name": "digits"}))
    assert len(tasks) == 3 and tasks[0].order is None
    expected = ShuffledBatches(base.splits.x_train, base.splits.y_train, 16, 7).next_batch()
    first = tasks[0].train_batches(16, 7).next_batch()
    assert torch.equal(first[0], expected[0]) and torch.equal(first[1], expected[1])
    for task in tasks[1:]:
        assert sorted(task.order.tolist()) == list(range(64)) and not torch.equal(task.order, torch.arange(64))
        features, labels = task.train_batches(16, 7).next_batch()
        assert torch.equal(features, expected[0][:, task.order]) and torch.equal(labels, expected[1])
    assert not torch.equal(tasks[1].order, tasks[2].order)


def test_permutations_are_seeded_and_a_longer_sequence_extends_a_shorter_one():
    short, long = sequence(tasks=3, permutation_seed=5).tasks, sequence(tasks=6, permutation_seed=5).tasks
    assert all(torch.equal(a.order, b.order) for a, b in zip(short[1:], long[1:4]))
    other = sequence(tasks=3, permutation_seed=6).tasks
    assert not torch.equal(short[1].order, other[1].order)
    assert sequence(tasks=2, identity_first=False).tasks[0].order is not None


def test_the_sequence_length_is_known_before_any_job():
    data = resolve_data_config({"name": "permuted", "tasks": 7, "base": "digits"})
    assert task_count(data) == 7 and data["base"] == resolve_data_config({"name": "digits"})
    assert task_count(resolve_data_config({"name": "digits"})) == 1
