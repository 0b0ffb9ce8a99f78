"""Keras builders: the VGG-16 convolutional base, the genre head, and the model that joins them."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from model.presets import Preset

IMAGENET = "imagenet"
FEATURES_LAYER = "features"
GENRES_LAYER = "genres"
BASE_NAME = "vgg16"


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


def vgg16_base(input_size: int, weights: str | None, train_block5: bool) -> keras.Model:
    """VGG-16's 13 conv layers without the final max-pool: (s, s, 3) -> (s/16, s/16, 512).

    `weights=None` builds the architecture only; callers that load trained weights afterwards use it.
    """
    try:
        full = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    except Exception as error:  # Keras raises a bare Exception when its download fails
        if weights != IMAGENET:
            raise
        raise WeightsError(
            f"could not download VGG-16's ImageNet weights ({error}); without internet, set POSTERBENCH_WEIGHTS "
            "(or --weights) to the path of vgg16_imagenet_notop.h5"
        ) from error
    base = keras.Model(full.input, full.get_layer("block5_conv3").output, name=BASE_NAME)
    for layer in base.layers:
        layer.trainable = train_block5 and layer.name.startswith("block5")
    return base


def genre_head(x: keras.KerasTensor, preset: Preset, n_genres: int) -> keras.KerasTensor:
    """(h, w, 512) -> pooled -> dense layers (the last one named "features") -> (n_genres,) sigmoid."""
    x = pool(x, preset.pooling)
    for depth, units in enumerate(preset.head_units, start=1):
        is_last = depth == len(preset.head_units)
        x = layers.Dense(units, activation="relu", name=FEATURES_LAYER if is_last else f"dense_{depth}")(x)
        x = layers.Dropout(preset.dropout, name=f"dropout_{depth}")(x)
    return layers.Dense(n_genres, activation="sigmoid", name=GENRES_LAYER)(x)


def pool(x: keras.KerasTensor, pooling: str) -> keras.KerasTensor:
    """(h, w, c) -> "flatten" (h * w * c,) as in the paper, or "avg" (c,) global average pooling."""
    if pooling == "flatten":
        return layers.Flatten(name="flatten")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="pool")(x)
    raise ValueError(f"unknown pooling {pooling!r}; choose flatten or avg")


def build_network(preset: Preset, n_genres: int, weights: str | None) -> keras.Model:
    """Poster (s, s, 3), VGG-preprocessed -> genre probabilities (n_genres,)."""
    inputs = keras.Input((preset.input_size, preset.input_size, 3), name="poster")
    x = vgg16_base(preset.input_size, weights, preset.train_block5)(inputs)  # (s/16, s/16, 512)
    return keras.Model(inputs, genre_head(x, preset, n_genres), name=f"posterbench_{preset.name}")


def with_features(network: keras.Model) -> keras.Model:
    """Same network, two outputs: genre probabilities (n_genres,) and the feature vector (feature_size,)."""
    return keras.Model(
        network.input, [network.get_layer(GENRES_LAYER).output, network.get_layer(FEATURES_LAYER).output]
    )


def split_network(preset: Preset, n_genres: int, weights: str) -> tuple[keras.Model, keras.Model]:
    """The network cut where training starts: (frozen part, trainable part).

    With block 5 fine-tuned: poster -> block4_pool (s/16, s/16, 512) | block 5 convs + head.
    Otherwise: poster -> block5_conv3 (s/16, s/16, 512) | head. The frozen part's output is what
    training computes once and caches.
    """
    base = vgg16_base(preset.input_size, weights, train_block5=False)
    cut = "block4_pool" if preset.train_block5 else "block5_conv3"
    frozen = keras.Model(base.input, base.get_layer(cut).output, name="frozen")
    inputs = keras.Input(frozen.output_shape[1:], name="frozen_output")
    x = inputs
    if preset.train_block5:
        for name in ("block5_conv1", "block5_conv2", "block5_conv3"):
            conv = base.get_layer(name)
            trainable_conv = layers.Conv2D.from_config({**conv.get_config(), "trainable": True})  # same name, shape
            x = trainable_conv(x)
            trainable_conv.set_weights(conv.get_weights())
    trainable = keras.Model(inputs, genre_head(x, preset, n_genres), name="trainable")
    return frozen, trainable


def join_network(preset: Preset, frozen: keras.Model, trainable: keras.Model) -> keras.Model:
    """One network (poster -> genres) with the weights of a frozen part and a trained part."""
    network = build_network(preset, trainable.output_shape[-1], weights=None)
    base = network.get_layer(BASE_NAME)
    for layer in frozen.layers:
        if layer.weights:
            base.get_layer(layer.name).set_weights(layer.get_weights())
    for layer in trainable.layers:
        if layer.weights:
            owner = base if layer.name.startswith("block5") else network
            owner.get_layer(layer.name).set_weights(layer.get_weights())
    return network
