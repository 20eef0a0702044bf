"""``imagenet``: ImageNet (or any ImageFolder tree) read through FFCV ``.beton`` files the workflow writes.

See ``bench_powerprop.data.vision`` for splits, pipelines and resuming; ``beton`` holds FFCV's
write settings (``RGBImageField``), used by the beton rule and part of the hashed spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._ffcv import FfcvLoaderOptions
from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, integer, number, one_of, option, text

vision = LazyModule("bench_powerprop.data.vision")
ffcv_io = LazyModule("bench_powerprop.data.ffcv_io")


@dataclass(frozen=True)
class BetonOptions(Options):
    max_resolution: int = option(256, "longest side in the .beton; 0 keeps the original size", check=integer(minimum=0))
    jpeg_quality: int = option(90, "JPEG quality of re-encoded images", check=integer(minimum=1, maximum=100))
    compress_probability: float = option(0.5, "fraction of images stored as JPEG", check=number(minimum=0, maximum=1))
    write_mode: str = option("proportion", "FFCV's write mode", check=one_of("raw", "jpg", "smart", "proportion"))
    chunksize: int = option(100, "images per writer chunk", check=integer(minimum=1))


def beton_settings():
    def check(value, where):
        return BetonOptions.parse(value, where).as_dict()

    return check


@dataclass(frozen=True)
class ImagenetOptions(FfcvLoaderOptions):
    BETON_OF_SPLIT: ClassVar[dict[str, str]] = {"train": "train", "val": "val", "test": "val"}
    STYLE = "imagenet"
    IMAGE_SIZE = 224
    WRITER_OPTIONS = ("train_dir", "val_dir", "beton")
    PATH_OPTIONS = ("train_dir", "val_dir")

    train_dir: str = option(None, "ImageFolder tree of training images (one folder per class)", check=text(),
                           identity=False)
    val_dir: str = option(None, "ImageFolder tree of validation images", check=text(), identity=False)
    image_size: int = option(224, "train resolution (RandomResizedCrop)", check=integer(minimum=8))
    val_image_size: int | None = option(None, "validation resolution (centre crop); default: image_size",
                                        check=integer(minimum=8, nullable=True))
    crop_ratio: float = option(0.875, "validation centre-crop ratio (224/256)",
                               check=number(minimum=0, maximum=1, exclusive_minimum=True))
    num_classes: int = option(1000, "classes of the output layer", check=integer(minimum=2))
    beton: dict | None = option(None, "FFCV write settings: max_resolution, jpeg_quality, compress_probability, "
                                "write_mode, chunksize", check=beton_settings())
    train_beton: str | None = option(None, "set by the workflow: the training .beton", check=text(nullable=True),
                                     identity=False)
    val_beton: str | None = option(None, "set by the workflow: the validation .beton", check=text(nullable=True),
                                   identity=False)

    def beton_sources(self, stem):
        return [self.train_dir if stem == "train" else self.val_dir]

    def write_beton(self, stem, out, num_workers=None):
        settings = BetonOptions.parse(self.beton, "data.beton").as_dict()
        settings["max_resolution"] = settings["max_resolution"] or None  # 0 keeps the original size
        return ffcv_io.write_imagenet_beton(*self.beton_sources(stem), out, num_workers=num_workers, **settings)


@DATASETS.register("imagenet", options=ImagenetOptions)
def build_imagenet(data: dict):
    return vision.FfcvVisionTask(data, ImagenetOptions)
