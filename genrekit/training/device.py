"""Where training runs: the device found, the distribution strategy over several, the precision."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import keras

from genrekit.core.errors import GenrekitError


@dataclass(frozen=True)
class Device:
    name: str  # GPU model, or "CPU"
    gpu: bool
    compute_capability: tuple[int, int] | None = None


def detect_device() -> Device:
    """The accelerator Keras will use, whatever the backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            for gpu in gpus:  # take GPU memory as needed, not all of it up front
                with contextlib.suppress(RuntimeError):  # already initialized
                    tf.config.experimental.set_memory_growth(gpu, True)
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability")
            return Device(details.get("device_name", gpus[0].name), True, tuple(capability) if capability else None)
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            capability = getattr(device, "compute_capability", None)
            return Device(
                device.device_kind, True, tuple(int(v) for v in str(capability).split(".")[:2]) if capability else None
            )
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return Device(torch.cuda.get_device_name(0), True, tuple(torch.cuda.get_device_capability(0)))
    return Device("CPU", False)


LOGICAL_CPUS_ENV = "GENREKIT_LOGICAL_CPUS"  # test and debug hook: see distribution_strategy


def distribution_strategy(setting: str):
    """``tf.distribute.MirroredStrategy`` over every visible GPU when there are several, else None.

    With ``training.distribute: "off"``, one GPU or none, or a backend other than TensorFlow: None
    (Keras' default, one device). The environment variable ``GENREKIT_LOGICAL_CPUS=N`` (N >= 2)
    instead splits the CPU into N logical devices and mirrors over them: the same code path as
    several GPUs, so that it runs in tests and on machines without GPUs (no faster: the logical
    devices share the cores). It must be set before TensorFlow starts, so it is read here, in a
    fresh ``train_crnn.py`` process, before anything initializes TensorFlow's devices.
    """
    if setting == "off" or keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    logical_cpus = os.environ.get(LOGICAL_CPUS_ENV, "")
    if logical_cpus:
        if not logical_cpus.isdigit() or int(logical_cpus) < 2:
            raise GenrekitError(f"{LOGICAL_CPUS_ENV}: must be an integer >= 2, got {logical_cpus!r}")
        cpu = tf.config.list_physical_devices("CPU")[0]
        with contextlib.suppress(RuntimeError):  # devices already initialized (a second call in one process)
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(int(logical_cpus))]
            )
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices) if len(devices) > 1 else None
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus]) if len(gpus) > 1 else None


def precision_policy(setting: str, device: Device) -> str:
    """Keras dtype policy: ``mixed_float16`` on GPUs with fast float16 (compute capability >= 7.0)."""
    if setting == "on":
        return "mixed_float16"
    if setting == "auto" and device.gpu and device.compute_capability and device.compute_capability >= (7, 0):
        return "mixed_float16"
    return "float32"
