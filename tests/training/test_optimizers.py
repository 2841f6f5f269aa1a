"""TwoRateAdam: fine-tuning a pretrained backbone at a fraction of the head's learning rate."""

import importlib.util

import numpy as np
import pytest

from genrekit.core.config import ModelConfig

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("musicnn") is None,
        reason="the musicnn wheel (its checkpoints) is not installed; make venv installs it",
    ),
    pytest.mark.slow,  # trains through musicnn
]


def test_fine_tuning_moves_the_backbone_at_a_fraction_of_the_head_rate():
    """TwoRateAdam: with factor 0 the backbone's weights stay put while the head learns;
    with the default factor both move, the backbone by less."""
    import keras

    from genrekit.models import backbone
    from genrekit.training.optimizers import TwoRateAdam

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.5, (3, 187, 96, 1)).astype(np.float32)  # few patches: musicnn costs 1.4 G each
    y = np.arange(3)
    embedder = backbone.build_embedder(
        ModelConfig(backbone="musicnn-msd", backbone_trainable=True, backbone_output="penultimate")
    )
    head = backbone.build_head(embedder.output_shape[-1], 3, ModelConfig(dropout=0.0))
    classifier = backbone.build_classifier(embedder, head)
    slow = [v.path for v in embedder.trainable_variables]
    assert slow and not set(slow) & {v.path for v in head.trainable_variables}
    moved = {}
    for factor in (0.0, 0.1):
        start = [v.numpy().copy() for v in classifier.trainable_variables]
        classifier.compile(
            optimizer=TwoRateAdam(slow, factor, learning_rate=1e-3), loss="sparse_categorical_crossentropy"
        )
        classifier.train_on_batch(x, y)
        change = {v.path: float(np.max(np.abs(v.numpy() - s))) for v, s in zip(classifier.trainable_variables, start)}
        moved[factor] = (max(change[p] for p in slow), max(c for p, c in change.items() if p not in slow))
    assert moved[0.0][0] == 0.0 and moved[0.0][1] > 0
    # Adam's first step moves every weight by about the learning rate: 1e-4 for the backbone, 1e-3 for the head
    assert 0 < moved[0.1][0] <= 1.01e-4 and moved[0.1][1] > 5e-4
    config = TwoRateAdam(slow, 0.1).get_config()
    assert config["slow_factor"] == 0.1 and config["slow_paths"] == slow
