"""Without internet, asking Keras for its ImageNet download ends in a clear message, not a traceback."""

from __future__ import annotations

import pytest

from model.network import WeightsError, vgg16_base


def test_a_failed_download_says_how_to_use_a_local_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def unreachable(*_args, **_kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.src.applications.vgg16.file_utils, "get_file", unreachable)
    with pytest.raises(WeightsError, match="could not download VGG-16's ImageNet weights .*POSTERBENCH_WEIGHTS"):
        vgg16_base(100, "imagenet", train_block5=False)
