"""Named training configurations: the paper's recipe, our default, and a small fast one for the demo."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class Preset:
    """Everything that defines a network and how it is trained."""

    name: str
    description: str
    input_size: tuple[int, int]  # (width, height) in pixels: posters are squashed to it, as in the paper
    pooling: str  # "flatten" (the paper) or "avg" (global average pooling)
    head_units: tuple[int, ...]  # dense layers after the base; the last is the feature vector
    dropout: float
    train_block5: bool  # fine-tune VGG-16's block 5 (blocks 1-4 stay frozen)
    learning_rate: float
    batch_size: int
    epochs: int
    rebalance: bool  # the paper's caps on Drama-only and Drama+Comedy movies (training part only)
    augmented_copies: int = 0  # augmented copies (the paper's augmentation) of each training poster, cached
    tune_thresholds: bool = False  # per-genre thresholds tuned for micro-F1 + macro-F1 on the validation split
    patience: int = 10  # epochs without a better validation loss before training stops
    frozen_pool_blocks: tuple[str, ...] = ()
    """The blocks whose outputs, averaged and maximised over the image, make the frozen pool that the genre probe and
    the era heads read (model/network.py); empty: the frozen part's output alone."""

    @property
    def feature_size(self) -> int:
        return self.head_units[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    def cache_key(self) -> dict:
        """What the cached outputs of the frozen layers depend on: the input size, where the network is cut, the
        augmented copies and the training movies."""
        keys = ("input_size", "train_block5", "augmented_copies", "rebalance", "frozen_pool_blocks")
        return {key: getattr(self, key) for key in keys}

    @property
    def input_label(self) -> str:
        """The input size as people read it: "128 x 192 px"."""
        return f"{self.input_size[0]} x {self.input_size[1]} px"

    @classmethod
    def from_dict(cls, values: dict) -> Preset:
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        if isinstance(values.get("input_size"), int):  # a square, as models before 128 x 192 recorded it
            values["input_size"] = (values["input_size"], values["input_size"])
        tuples = ("input_size", "head_units", "frozen_pool_blocks")
        return cls(**{key: tuple(value) if key in tuples else value for key, value in values.items()})


PAPER = Preset(
    name="paper",
    description="Chakraborti and Moore: flatten, dense 10000-2000-512-100, block 5 fine-tuned, Adam 1e-5, 30 epochs",
    input_size=(100, 100),
    pooling="flatten",
    head_units=(10000, 2000, 512, 100),
    dropout=0.5,
    train_block5=True,
    learning_rate=1e-5,
    batch_size=32,
    epochs=30,
    rebalance=True,
    augmented_copies=3,
    patience=30,
)

DEFAULT = Preset(
    name="default",
    description=(
        "128 x 192 px (the posters' shape), block 5 fine-tuned, global average pooling, dense 256-100 head, genre "
        "probe on blocks 3, 4 and ImageNet block 5, thresholds tuned per genre"
    ),
    input_size=(128, 192),
    pooling="avg",
    head_units=(256, 100),
    dropout=0.5,
    train_block5=True,
    learning_rate=1e-4,
    batch_size=32,
    epochs=10,
    rebalance=False,
    augmented_copies=1,
    tune_thresholds=True,
    patience=4,
    frozen_pool_blocks=("block3_pool", "block4_pool", "imagenet_block5_conv3"),
)

DEMO = Preset(
    name="demo",
    description="fast: frozen VGG-16 base computed once, global average pooling, dense 256-100 head",
    input_size=(100, 100),
    pooling="avg",
    head_units=(256, 100),
    dropout=0.3,
    train_block5=False,
    learning_rate=1e-3,
    batch_size=32,
    epochs=60,
    rebalance=False,
)

FAST = replace(
    DEFAULT,
    name="fast",
    description=(
        "the default's recipe at 128 x 128 px: about 1.4 times as fast to serve, genres a little weaker "
        '(bench/README.md, "Input shape")'
    ),
    input_size=(128, 128),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (DEFAULT, FAST, PAPER, DEMO)}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
