"""Keras builders: the VGG-16 convolutional base, the trunk ending in the feature vector, the frozen pool (the frozen
part's output averaged and maximised over the image), the genre head that reads both, and the era heads (decade,
year, rating) that read the pool, joined into one network."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from model.images import InputSize, width_height
from model.presets import Preset

IMAGENET = "imagenet"
FEATURES_LAYER = "features"
GENRES_LAYER = "genres"
DECADES_LAYER = "decades"
YEAR_LAYER = "year"
RATING_LAYER = "rating"
ERA_HEADS = (DECADES_LAYER, YEAR_LAYER, RATING_LAYER)
"""What the network predicts from the frozen pool alone, each by one dense layer fitted in closed form
(model/frozen_heads.py)."""
HEADS = (GENRES_LAYER, *ERA_HEADS)
FROZEN_POOL_LAYER = "frozen_pool"
"""The frozen part's output averaged and maximised over the image (2 x 512 values). The era heads read it, not the
fine-tuned feature vector: trained together, the era and the genres pulled the shared layers against each other
(bench/README.md, "What a poster evokes"). The genre head reads it beside the feature vector."""
GENRE_INPUTS_LAYER = "genre_inputs"
SIGNATURE_LAYER = "signature"
"""Blocks 4 and 5 of VGG-16 averaged over the image and concatenated (1,024 values): what the poster detector reads."""
SIGNATURE_BLOCKS = ("block4_pool", "block5_conv3")
BASE_NAME = "vgg16"
BASE_OUTPUT = "block5_conv3"
BLOCK5_CONVS = ("block5_conv1", "block5_conv2", "block5_conv3")
IMAGENET_PREFIX = "imagenet_"
"""Names the frozen copy of block 5 that keeps its ImageNet weights beside the fine-tuned one (imagenet_block5_conv1
to 3): the frozen pool may read it (Preset.frozen_pool_blocks)."""


class WeightsError(RuntimeError):
    """No usable ImageNet weights for the convolutional base."""


def check_weights(weights: str | Path | None) -> str:
    """The `weights` argument for keras.applications.VGG16: "imagenet" (downloaded by Keras) or an h5 path."""
    if weights is None or str(weights).strip() == "":
        raise WeightsError(
            "no ImageNet weights for VGG-16: set POSTERBENCH_WEIGHTS (or --weights) to 'imagenet' to let Keras "
            "download them, or to the path of vgg16_imagenet_notop.h5. Refusing to train from random weights."
        )
    if str(weights) == IMAGENET:
        return IMAGENET
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"VGG-16 weights file {path} does not exist (POSTERBENCH_WEIGHTS / --weights)")
    return str(path)


def vgg16(inputs: keras.KerasTensor | None, input_size: int | InputSize, weights: str | None) -> keras.Model:
    """keras.applications.VGG16 without its top for posters of `input_size` (width, height; an int is a square), on
    `inputs` when given (its layers then join the caller's graph)."""
    width, height = width_height(input_size)
    try:
        return keras.applications.VGG16(
            include_top=False, weights=weights, input_tensor=inputs, input_shape=(height, width, 3)
        )
    except Exception as error:  # Keras raises a bare Exception when its download fails
        if weights != IMAGENET:
            if isinstance(error, (OSError, ValueError)):  # h5py's "truncated file", a file of other weights
                raise WeightsError(f"VGG-16 weights file {weights} cannot be read: {error}") from error
            raise
        raise WeightsError(
            f"could not download VGG-16's ImageNet weights ({error}); without internet, set POSTERBENCH_WEIGHTS "
            "(or --weights) to the path of vgg16_imagenet_notop.h5"
        ) from error


def vgg16_base(input_size: int | InputSize, weights: str | None, train_block5: bool) -> keras.Model:
    """VGG-16's 13 conv layers without the final max-pool: (h, w, 3) -> (h/16, w/16, 512).

    `weights=None` builds the architecture only; callers that load trained weights afterwards use it.
    """
    full = vgg16(None, input_size, weights)
    base = keras.Model(full.input, full.get_layer(BASE_OUTPUT).output, name=BASE_NAME)
    for layer in base.layers:
        layer.trainable = train_block5 and layer.name.startswith("block5")
    return base


def trunk_layer_names(preset: Preset) -> list[str]:
    """The layers between the convolutional base and the heads, in order."""
    names = ["flatten" if preset.pooling == "flatten" else "pool"]
    for depth in range(1, len(preset.head_units) + 1):
        names += [FEATURES_LAYER if depth == len(preset.head_units) else f"dense_{depth}", f"dropout_{depth}"]
    return names


def trunk(x: keras.KerasTensor, preset: Preset) -> keras.KerasTensor:
    """(h, w, 512) -> pooled -> dense layers, the last one named "features" (the vector recommendations compare)."""
    x = pool(x, preset.pooling)
    for depth, units in enumerate(preset.head_units, start=1):
        is_last = depth == len(preset.head_units)
        x = layers.Dense(units, activation="relu", name=FEATURES_LAYER if is_last else f"dense_{depth}")(x)
        x = layers.Dropout(preset.dropout, name=f"dropout_{depth}")(x)
    return x


def frozen_output(preset: Preset) -> str:
    """The last layer that never trains: block4_pool when block 5 is fine-tuned, else block5_conv3."""
    return "block4_pool" if preset.train_block5 else BASE_OUTPUT


def genre_head(inputs: keras.KerasTensor, n_genres: int) -> dict[str, keras.KerasTensor]:
    """Genre probabilities (sigmoids) from the feature vector (while training), or from the feature vector and the
    frozen pool side by side (the whole network: the fine-tuned head stacked with the pool's genre probe)."""
    return {GENRES_LAYER: layers.Dense(n_genres, activation="sigmoid", name=GENRES_LAYER)(inputs)}


def frozen_pool_blocks(preset: Preset) -> tuple[str, ...]:
    """The layers the frozen pool reads: the preset's, or the frozen part's output alone."""
    return preset.frozen_pool_blocks or (frozen_output(preset),)


def block5_copy(block4: keras.KerasTensor, base: keras.Model, prefix: str, trainable: bool) -> keras.KerasTensor:
    """Copies of `base`'s block 5 convolutions on `block4` (a block4_pool output), named `prefix` + their names, with
    `base`'s weights as they are now: the trainable part's block 5, or the frozen ImageNet one (IMAGENET_PREFIX)."""
    x = block4
    for name in BLOCK5_CONVS:
        conv = base.get_layer(name)
        copy = layers.Conv2D.from_config({**conv.get_config(), "name": prefix + name, "trainable": trainable})
        x = copy(x)
        copy.set_weights(conv.get_weights())
    return x


def pool_frozen(base: keras.Model, blocks: tuple[str, ...]) -> keras.KerasTensor:
    """The frozen pool: each of `blocks`' outputs (h, w, c) of `base` -> its mean over the image, then its maximum,
    concatenated block after block."""
    pooled = []
    for block in blocks:
        if block == IMAGENET_PREFIX + BASE_OUTPUT:
            output = block5_copy(base.get_layer("block4_pool").output, base, IMAGENET_PREFIX, trainable=False)
        elif block.startswith(IMAGENET_PREFIX):
            raise ValueError(
                f"unknown frozen pool block {block!r}: of ImageNet's copies, only {IMAGENET_PREFIX}{BASE_OUTPUT}"
            )
        else:
            output = base.get_layer(block).output
        pooled += [
            layers.GlobalAveragePooling2D(name=f"{FROZEN_POOL_LAYER}_average_{block}")(output),
            layers.GlobalMaxPooling2D(name=f"{FROZEN_POOL_LAYER}_max_{block}")(output),
        ]
    return layers.Concatenate(name=FROZEN_POOL_LAYER)(pooled)


def era_heads(pool: keras.KerasTensor, n_decades: int) -> dict[str, keras.KerasTensor]:
    """The frozen pool -> decade probabilities (softmax), year and rating."""
    return {
        DECADES_LAYER: layers.Dense(n_decades, activation="softmax", name=DECADES_LAYER)(pool),
        YEAR_LAYER: layers.Dense(1, name=YEAR_LAYER)(pool),
        RATING_LAYER: layers.Dense(1, name=RATING_LAYER)(pool),
    }


def pool(x: keras.KerasTensor, pooling: str) -> keras.KerasTensor:
    """(h, w, c) -> "flatten" (h * w * c,) as in the paper, or "avg" (c,) global average pooling."""
    if pooling == "flatten":
        return layers.Flatten(name="flatten")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="pool")(x)
    raise ValueError(f"unknown pooling {pooling!r}; choose flatten or avg")


def build_network(preset: Preset, n_genres: int, n_decades: int, weights: str | None) -> keras.Model:
    """Poster (height, width, 3), VGG-preprocessed -> a dict of the heads' outputs, the feature vector and the
    signature."""
    width, height = preset.input_size
    inputs = keras.Input((height, width, 3), name="poster")
    base = vgg16(inputs, preset.input_size, weights)
    for layer in base.layers:
        layer.trainable = preset.train_block5 and layer.name.startswith("block5")
    signature = signature_of(base, SIGNATURE_BLOCKS)
    pool = pool_frozen(base, frozen_pool_blocks(preset))  # before fine-tuning: the ImageNet copy of block 5 as is
    features = trunk(base.get_layer(BASE_OUTPUT).output, preset)
    outputs = {
        **genre_head(layers.Concatenate(name=GENRE_INPUTS_LAYER)([features, pool]), n_genres),
        **era_heads(pool, n_decades),
        FEATURES_LAYER: features,
        SIGNATURE_LAYER: signature,
    }
    return keras.Model(inputs, outputs, name=f"posterbench_{preset.name}")


def signature_of(model: keras.Model, blocks: tuple[str, ...]) -> keras.KerasTensor:
    """`blocks`' outputs of `model`, each averaged over the image, concatenated: the signature, or a part of it."""
    averages = [
        layers.GlobalAveragePooling2D(name=f"{SIGNATURE_LAYER}_{block}")(model.get_layer(block).output)
        for block in blocks
    ]
    return layers.Concatenate(name=SIGNATURE_LAYER)(averages) if len(averages) > 1 else averages[0]


def signature_parts(preset: Preset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SIGNATURE_BLOCKS cut where training starts: (the blocks that never train, whose part of the signature the
    frozen part gives; the fine-tuned ones, block 5 when the preset fine-tunes it, whose part the trainable part
    gives). Block 5 comes last, so the signature is the first part's averages, then the second's."""
    tuned = tuple(block for block in SIGNATURE_BLOCKS if preset.train_block5 and block.startswith("block5"))
    return SIGNATURE_BLOCKS[: len(SIGNATURE_BLOCKS) - len(tuned)], tuned


def split_network(preset: Preset, n_genres: int, weights: str) -> tuple[keras.Model, keras.Model]:
    """The network cut where training starts: (frozen part, trainable part).

    With block 5 fine-tuned: poster -> block4_pool (h/16, w/16, 512) | block 5 convs + trunk + genre head.
    Otherwise: poster -> block5_conv3 (h/16, w/16, 512) | trunk + genre head. The frozen part answers a dict: its
    output ("maps"), what training computes once, caches and trains on, the frozen pool ("pool"), what the era
    heads and the genre probe are fitted on, and the frozen blocks' part of the poster detector's signature
    ("signature", signature_parts).
    """
    base = vgg16_base(preset.input_size, weights, train_block5=False)
    maps = base.get_layer(frozen_output(preset)).output
    outputs = {
        "maps": maps,
        "pool": pool_frozen(base, frozen_pool_blocks(preset)),
        "signature": signature_of(base, signature_parts(preset)[0]),
    }
    frozen = keras.Model(base.input, outputs, name="frozen")
    inputs = keras.Input(tuple(maps.shape[1:]), name="frozen_output")
    x = inputs
    if preset.train_block5:
        x = block5_copy(x, base, prefix="", trainable=True)  # the same names and shapes, trainable
    trainable = keras.Model(inputs, genre_head(trunk(x, preset), n_genres), name="trainable")
    return frozen, trainable


def join_network(
    preset: Preset, frozen: keras.Model, trainable: keras.Model, heads: dict[str, tuple[np.ndarray, np.ndarray]]
) -> keras.Model:
    """One network (poster -> every output) with the weights of a frozen part and a trained part, and of `heads`
    (kernel and bias by head: every head, the genre head on [feature vector, frozen pool] included)."""
    network = build_network(preset, len(heads[GENRES_LAYER][1]), len(heads[DECADES_LAYER][1]), weights=None)
    for part in (frozen, trainable):
        for layer in part.layers:
            if layer.weights and layer.name not in heads:
                network.get_layer(layer.name).set_weights(layer.get_weights())
    for head, (kernel, bias) in heads.items():
        network.get_layer(head).set_weights([kernel, bias])
    return network
