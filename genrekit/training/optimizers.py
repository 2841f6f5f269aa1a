"""Optimizers for fine-tuning a pretrained backbone."""

from __future__ import annotations

import keras


class TwoRateAdam(keras.optimizers.Adam):
    """Adam whose steps for some variables (the backbone's) are scaled by ``slow_factor``.

    Keras has one learning rate per optimizer; fine-tuning wants a small one for the
    pretrained layers and the full one for the new head. Adam's steps are invariant to
    gradient scale, so the factor must act on the step, which is what this does.
    """

    def __init__(self, slow_paths=(), slow_factor: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.slow_paths = tuple(slow_paths)
        self.slow_factor = float(slow_factor)
        self._slow_indices: frozenset[int] = frozenset()

    def build(self, variables):
        super().build(variables)
        slow = set(self.slow_paths)
        self._slow_indices = frozenset(i for i, v in enumerate(variables) if v.path in slow)

    def update_step(self, gradient, variable, learning_rate):
        # by index: the TensorFlow backend passes its own variables here, which have no path
        if self._get_variable_index(variable) in self._slow_indices:
            learning_rate = keras.ops.multiply(learning_rate, self.slow_factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "slow_paths": list(self.slow_paths), "slow_factor": self.slow_factor}
