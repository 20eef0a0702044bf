"""Every registered dataset (one file in ``bench_powerprop/data/datasets/``) declares its own loading; these
tests are parametrised over the registry, so a new dataset file is tested without new test code.

An FFCV dataset declares the .beton file of each split, the options its writer reads, its writer and its
pipeline style (``datasets/_ffcv.py``); an in-memory one reads its arrays in its builder.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench_powerprop.data import ffcv_io
from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._ffcv import FfcvLoaderOptions
from bench_powerprop.data.tasks import ArrayTask, build_task

FFCV = [name for name in DATASETS.names() if DATASETS.options(name).beton_stems()]
#: in-memory datasets whose size is known without local files (bundled in a wheel): built here
BUNDLED = [name for name in DATASETS.names()
           if DATASETS.options(name).IN_MEMORY and DATASETS.options(name).parse({}, "data").training_examples()]


def fields(options) -> dict:
    return {field.name: field for field in dataclasses.fields(options)}


def test_the_registry_has_both_kinds():
    assert {"cifar10", "imagenet"} <= set(FFCV) and {"digits", "mnist5k"} <= set(BUNDLED)


@pytest.mark.parametrize("name", DATASETS.names())
def test_a_dataset_is_read_from_beton_files_or_held_in_memory_not_both(name):
    options = DATASETS.options(name)
    assert not (options.beton_stems() and options.IN_MEMORY)
    assert bool(options.beton_stems()) == issubclass(options, FfcvLoaderOptions)


@pytest.mark.parametrize("name", FFCV)
def test_an_ffcv_dataset_declares_its_files_writer_and_pipeline(name):
    options = DATASETS.options(name)
    declared = fields(options)
    assert set(options.BETON_OF_SPLIT) == {"train", "val", "test"}
    assert options.beton_stems() == sorted(set(options.BETON_OF_SPLIT.values()))
    for stem in options.beton_stems():  # the workflow passes each file as the option <stem>_beton: a location only
        assert declared[f"{stem}_beton"].metadata["identity"] is False, stem
    assert set(options.WRITER_OPTIONS) <= set(declared)
    assert options.STYLE in ffcv_io.PIPELINE_STYLES
    assert options.write_beton is not FfcvLoaderOptions.write_beton
    assert options.beton_sources is not FfcvLoaderOptions.beton_sources


@pytest.mark.parametrize("name", FFCV)
def test_an_ffcv_task_reads_the_declared_files(name, tmp_path):
    options = DATASETS.options(name)
    betons = {f"{stem}_beton": str(tmp_path / f"{stem}.beton") for stem in options.beton_stems()}
    for path in betons.values():
        open(path, "wb").close()
    task = build_task({"name": name, **betons})
    resolved = options.parse({}, "data")
    size = getattr(resolved, "image_size", None) or options.IMAGE_SIZE
    assert task.input_shape == (3, size, size) and task.num_classes == resolved.num_classes
    for split, stem in options.BETON_OF_SPLIT.items():
        assert task.beton(split) == betons[f"{stem}_beton"]


@pytest.mark.parametrize("name", BUNDLED)
def test_a_bundled_dataset_builds_its_arrays_with_the_declared_split(name):
    task = build_task({"name": name})
    assert isinstance(task, ArrayTask)
    splits = task.splits
    assert len(splits.y_train) == task.train_size == DATASETS.options(name).parse({}, "data").training_examples()
    features = torch.cat([splits.x_train, splits.x_val, splits.x_test])
    assert float(features.min()) == 0.0 and float(features.max()) == 1.0
    assert task.input_shape == (features.shape[1],) and task.num_classes == splits.num_classes
