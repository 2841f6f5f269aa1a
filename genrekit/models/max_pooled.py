"""A wide convolution on one channel, then a batch norm and a max over a whole spatial axis, computed
with fewer or faster matrix products: the exported form of musicnn's front end.

musicnn's front end is five such chains on its ``(time, mel)`` input: two timbral branches (``7 x 38``
and ``7 x 67`` kernels, 204 filters each, 80 % of its multiply-adds) keep for every frame and filter
the maximum over the mel positions, and three temporal branches (``1 x 128``, ``64`` and ``32`` kernels
along time on the transposed input, 51 filters each) the maximum over the mel rows. XNNPACK runs
convolutions on one input channel slowly (one value per kernel tap); this module computes the same
chains as matrix products:

- :class:`SpectralWidthMax` (max over the convolved axis): a real DFT along the width turns the
  correlation into one product per frequency bin, and an inverse DFT gives every position, where the
  maximum is taken. 2.6 times fewer multiply-adds (musicnn: 0.44 G against 1.14 G a slice).
- :class:`ToeplitzHeightMax` (max over the other axis): the convolution along each row, blocks of
  :data:`BLOCK` outputs at a time, as one dense product with a banded (Toeplitz) matrix;
  ``(BLOCK + kw - 1) / kw`` times the multiply-adds (musicnn: 1.05 to 1.22, 1.12 in all), in
  XNNPACK's fastest kernel.
- :class:`ToeplitzWidthMax` (max over the convolved axis, like :class:`SpectralWidthMax`): the same
  banded product over the ``kh`` rows of a window, ``(BLOCK + kw - 1) / kw`` times the direct
  convolution's multiply-adds (musicnn: 1.18 and 1.10), 3 times :class:`SpectralWidthMax`'s. Its
  matrix is the kernel itself, so it keeps its precision with int8 weights, which the DFT's sums do not
  (their terms cancel): the int8 export's form (:func:`genrekit.models.litert.inference_clone`).

Either way the batch norm and the activation move after the maximum, onto a tensor as many times
smaller as the axis is long: the maximum commutes with a ReLU and with an increasing affine map; for
a filter whose batch-norm scale is negative the maximum becomes a minimum, so that filter's kernel is
negated before the maximum and its result negated after. The same function as the layers replaced,
to float32 rounding (tests/models/test_max_pooled.py).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

# Rows of SpectralWidthMax's output computed together: their spectra (3.8 MB for musicnn) stay in the
# CPU's cache. On musicnn's timbral branches, one slice per call: 7.6 ms a slice at 48 rows, 8.7-8.8 at
# 32 or 64, 12.6 all 187 at once.
ROWS = 48
BLOCK = 8  # outputs per row block of ToeplitzHeightMax (4 to 16 run the same on musicnn; 8 makes fewer ops)


def dft_matrices(kernel: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """The float32 matrices of :class:`SpectralWidthMax` for a ``(kh, kw, 1, filters)`` kernel on rows
    of ``width`` values.

    Returns
    -------
    dict
        ``dft`` ``(width, 2 bins)``: a row's real DFT, real parts then imaginary parts, with
        ``bins = width // 2 + 1``. ``real`` and ``imag`` ``(bins, 2 kh, filters)``: per bin, the real
        and imaginary parts of the correlation's spectrum from the ``kh`` rows' spectra (their real
        parts, then their imaginary parts). ``inverse`` ``(2 bins, width - kw + 1)``: the spectrum
        (real parts then imaginary parts) back to the correlation at every position.

    Notes
    -----
    The correlation ``y[f] = sum_k w[k] x[f + k]`` for ``f < width - kw + 1`` never reaches past
    ``x[width - 1]``, so the ``width``-point DFT's circular correlation is the linear one.
    """
    kh, kw, _, filters = kernel.shape
    bins, positions = width // 2 + 1, width - kw + 1
    angle = 2 * np.pi * np.arange(width)[:, None] * np.arange(bins)[None, :] / width  # (width, bins)
    sine = np.sin(angle)
    sine[:, 0] = 0  # exact zeros where the DFT of a real row is real (bin 0, and width / 2)
    if width % 2 == 0:
        sine[:, -1] = 0
    cosine = np.cos(angle)
    dft = np.concatenate([cosine, -sine], axis=1)
    padded = np.zeros((kh, width, filters))
    padded[:, :kw] = kernel[:, :, 0, :]
    # Correlation: the row's spectrum times the conjugate of the kernel's, which is this.
    spectrum = np.einsum("hkc,kb->hbc", padded, cosine) + 1j * np.einsum("hkc,kb->hbc", padded, sine)
    # (a + ib)(c + id) summed over the kh rows: real = a c - b d, imag = a d + b c; rows are [a..., b...].
    real = np.concatenate([spectrum.real, -spectrum.imag], axis=0).transpose(1, 0, 2)
    imag = np.concatenate([spectrum.imag, spectrum.real], axis=0).transpose(1, 0, 2)
    weight = np.full(bins, 2.0)  # a real row's spectrum is conjugate-symmetric: every other bin counts twice
    weight[0] = 1
    if width % 2 == 0:
        weight[-1] = 1
    phase = 2 * np.pi * np.arange(bins)[:, None] * np.arange(positions)[None, :] / width
    inverse = np.concatenate([weight[:, None] * np.cos(phase), -weight[:, None] * np.sin(phase)]) / width
    return {
        name: np.ascontiguousarray(value, dtype=np.float32)
        for name, value in (("dft", dft), ("real", real), ("imag", imag), ("inverse", inverse))
    }


def toeplitz_matrix(kernel: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """``(kh * (block + kw - 1), block * filters)`` float32: a ``(kh, kw, 1, filters)`` kernel's
    correlation of a window of ``kh`` rows of ``block + kw - 1`` values (row after row) at its ``block``
    positions, column ``position * filters + filter``."""
    kh, kw, filters = kernel.shape[0], kernel.shape[1], kernel.shape[-1]
    matrix = np.zeros((kh, block + kw - 1, block, filters))
    for position in range(block):
        matrix[:, position : position + kw, position] = kernel[:, :, 0, :]
    return matrix.reshape(kh * (block + kw - 1), block * filters).astype(np.float32)


def batch_norm_affine(norm) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNormalization layer at inference as ``scale * x + offset`` per channel (float64)."""
    channels = norm.moving_mean.shape[0]
    gamma = norm.gamma.numpy() if norm.scale else 1.0
    beta = norm.beta.numpy() if norm.center else 0.0
    scale = gamma / np.sqrt(norm.moving_variance.numpy().astype(np.float64) + norm.epsilon)
    offset = beta - norm.moving_mean.numpy() * scale
    return np.broadcast_to(scale, channels).astype(np.float64), np.broadcast_to(offset, channels).astype(np.float64)


def single_channel_conv(layer) -> bool:
    """Whether ``layer`` is a plain Conv2D on one input channel (channels last, stride 1, no dilation,
    no groups): the convolutions XNNPACK runs slowly, which the export computes otherwise."""
    return (
        type(layer) is keras.layers.Conv2D
        and layer.data_format == "channels_last"
        and tuple(layer.strides) == (1, 1)
        and tuple(layer.dilation_rate) == (1, 1)
        and layer.groups == 1
        and layer.kernel.shape[2] == 1
    )


def replacement(conv, norm, pool, quantized: bool = False):
    """The layer class of this module that computes ``pool(norm(conv(x)))``, or None.

    ``conv`` must be a :func:`single_channel_conv` with a ReLU or no activation; ``norm`` a batch norm of
    its filters; ``pool`` a max over the whole width of a "valid" convolution (:class:`SpectralWidthMax`,
    or :class:`ToeplitzWidthMax` for an export with int8 weights: ``quantized``) or over the whole height
    of a one-row kernel's (:class:`ToeplitzHeightMax`). Each pays for wide kernels only (the export
    replaces chains 16 or more wide).
    """
    if not (
        single_channel_conv(conv)
        and type(norm) is keras.layers.BatchNormalization
        and type(pool) is keras.layers.MaxPooling2D
    ):
        return None
    if not (
        pool.data_format == "channels_last"
        and norm.axis in (-1, 3)
        and conv.get_config()["activation"] in ("relu", "linear")
        and pool.padding == "valid"
        and tuple(pool.pool_size) == tuple(pool.strides)
    ):
        return None
    kh = conv.kernel.shape[0]
    height, width = conv.output.shape[1:3]
    if conv.padding == "valid" and tuple(pool.pool_size) == (1, width):
        return ToeplitzWidthMax if quantized else SpectralWidthMax
    if kh == 1 and tuple(pool.pool_size) == (height, 1):
        return ToeplitzHeightMax
    return None


class _MaxPooledConv(keras.layers.Layer):
    """What both layers share: the batch norm and the activation after the maximum.

    Parameters (of both layers; this base takes the middle four)
    ----------
    kernel : np.ndarray
        The convolution's ``(kh, kw, 1, filters)`` kernel.
    bias : np.ndarray
        The convolution's ``(filters,)`` bias.
    scale, offset : np.ndarray
        The batch norm as ``scale * x + offset`` per filter (:func:`batch_norm_affine`).
    relu : bool
        Whether the convolution has a ReLU (else no activation).
    padding : {"valid", "same"}
        The convolution's padding (:class:`SpectralWidthMax`: "valid" only, see :func:`replacement`).
    shape : (int, int)
        The ``(height, width)`` of the input.
    """

    def __init__(self, bias, scale, offset, relu: bool, **kwargs):
        super().__init__(**kwargs)
        # max of a decreasing map = the map of the min = -max(-x); exact in float32 (the float64 kernels
        # times it stay float64)
        self.sign = np.where(scale < 0, -1.0, 1.0).astype(np.float32)
        self.bias = (bias * self.sign).astype(np.float32)
        self.scale, self.offset, self.relu = scale.astype(np.float32), offset.astype(np.float32), relu
        self.filters = len(bias)

    @classmethod
    def from_layers(cls, conv, norm, pool):
        """The layer that computes ``pool(norm(conv(x)))``, named as ``conv``."""
        kernel, *bias = conv.get_weights()
        scale, offset = batch_norm_affine(norm)
        return cls(
            kernel.astype(np.float64),
            bias[0] if bias else np.zeros(kernel.shape[-1]),
            scale,
            offset,
            conv.get_config()["activation"] == "relu",
            conv.padding,
            conv.input.shape[1:3],
            name=conv.name,
        )

    def after_max(self, peak):
        """``peak``: the maximum of the sign-flipped convolution without its bias."""
        peak = (peak + self.bias) * self.sign
        if self.relu:
            peak = ops.relu(peak)
        return peak * self.scale + self.offset


class SpectralWidthMax(_MaxPooledConv):
    """``MaxPooling2D((1, F))(BatchNormalization()(Conv2D(filters, (kh, kw), activation)(x)))`` on an
    ``(height, width, 1)`` input, through a real DFT along the width (:func:`dft_matrices`); output
    ``(height - kh + 1, 1, filters)``."""

    def __init__(self, kernel, bias, scale, offset, relu: bool, padding: str, shape: tuple[int, int], **kwargs):
        super().__init__(bias, scale, offset, relu, **kwargs)
        self.kernel_height, self.bins = kernel.shape[0], shape[1] // 2 + 1
        self.matrices = dft_matrices(kernel * self.sign, shape[1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] - self.kernel_height + 1, 1, self.filters)

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        rows, kh, bins = height - self.kernel_height + 1, self.kernel_height, self.bins
        spectra = ops.matmul(ops.reshape(inputs, (-1, height, width)), self.matrices["dft"])  # (n, height, 2 bins)
        peaks = []
        for start in range(0, rows, ROWS):
            stop = min(rows, start + ROWS)
            taps = ops.stack([spectra[:, start + k : stop + k] for k in range(kh)], axis=2)  # (n, r, kh, 2 bins)
            taps = ops.transpose(ops.reshape(taps, (-1, stop - start, kh, 2, bins)), (4, 0, 1, 3, 2))
            taps = ops.reshape(taps, (bins, -1, 2 * kh))  # per bin, per (slice, row): real parts, imaginary parts
            spectrum = ops.concatenate(
                [ops.matmul(taps, self.matrices["real"]), ops.matmul(taps, self.matrices["imag"])]
            )
            # One row per (slice, row, filter) with its 2 x bins values, for a matrix product with the
            # constant on the right: XNNPACK transposes and runs that faster than one with it on the left.
            spectrum = ops.transpose(ops.reshape(spectrum, (2 * bins, -1)))
            peak = ops.max(ops.matmul(spectrum, self.matrices["inverse"]), axis=1)
            peaks.append(ops.reshape(peak, (-1, stop - start, 1, self.filters)))
        return self.after_max(ops.concatenate(peaks, axis=1) if len(peaks) > 1 else peaks[0])


class ToeplitzHeightMax(_MaxPooledConv):
    """``MaxPooling2D((H, 1))(BatchNormalization()(Conv2D(filters, (1, kw), padding, activation)(x)))`` on
    an ``(height, width, 1)`` input, :data:`BLOCK` outputs of a row at a time as one product with a
    banded matrix (:func:`toeplitz_matrix`); output ``(1, width', filters)``."""

    def __init__(self, kernel, bias, scale, offset, relu: bool, padding: str, shape: tuple[int, int], **kwargs):
        super().__init__(bias, scale, offset, relu, **kwargs)
        kw, width = kernel.shape[1], shape[1]
        self.kernel_width = kw
        self.before = (kw - 1) // 2 if padding == "same" else 0  # TensorFlow's split of "same" padding
        self.positions = width if padding == "same" else width - kw + 1
        self.blocks = -(-self.positions // BLOCK)
        self.matrix = toeplitz_matrix(kernel * self.sign)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, self.positions, self.filters)

    def call(self, inputs):
        height, width, window = inputs.shape[1], inputs.shape[2], BLOCK + self.kernel_width - 1
        after = self.blocks * BLOCK + self.kernel_width - 1 - width - self.before  # zeros past the last block too
        padded = ops.pad(ops.reshape(inputs, (-1, height, width)), ((0, 0), (0, 0), (self.before, after)))
        windows = ops.stack([padded[:, :, b * BLOCK : b * BLOCK + window] for b in range(self.blocks)], axis=2)
        peak = ops.max(ops.matmul(windows, self.matrix), axis=1)  # (n, blocks, BLOCK * filters)
        peak = ops.reshape(peak, (-1, self.blocks * BLOCK, self.filters))[:, : self.positions]
        return self.after_max(ops.reshape(peak, (-1, 1, self.positions, self.filters)))


class ToeplitzWidthMax(_MaxPooledConv):
    """What :class:`SpectralWidthMax` computes, :data:`BLOCK` positions of a row at a time as one product of
    its ``kh`` rows' window with a banded matrix (:func:`toeplitz_matrix`); output
    ``(height - kh + 1, 1, filters)``."""

    def __init__(self, kernel, bias, scale, offset, relu: bool, padding: str, shape: tuple[int, int], **kwargs):
        super().__init__(bias, scale, offset, relu, **kwargs)
        self.kernel_height, self.kernel_width = kernel.shape[:2]
        self.positions = shape[1] - self.kernel_width + 1
        self.blocks = -(-self.positions // BLOCK)
        self.matrix = toeplitz_matrix(kernel * self.sign)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] - self.kernel_height + 1, 1, self.filters)

    def call(self, inputs):
        height, width, kh = inputs.shape[1], inputs.shape[2], self.kernel_height
        rows, window = height - kh + 1, BLOCK + self.kernel_width - 1
        after = self.blocks * BLOCK + self.kernel_width - 1 - width  # zeros past the last block
        padded = ops.pad(ops.reshape(inputs, (-1, height, width)), ((0, 0), (0, 0), (0, after)))
        taps = ops.stack([padded[:, k : k + rows] for k in range(kh)], axis=2)  # (n, rows, kh, width')
        windows = ops.stack([taps[:, :, :, b * BLOCK : b * BLOCK + window] for b in range(self.blocks)], axis=2)
        windows = ops.reshape(windows, (-1, rows, self.blocks, kh * window))
        values = ops.reshape(ops.matmul(windows, self.matrix), (-1, rows, self.blocks * BLOCK, self.filters))
        peak = ops.max(values[:, :, : self.positions], axis=2)
        return self.after_max(ops.reshape(peak, (-1, rows, 1, self.filters)))


class Computed(keras.layers.Layer):
    """Stands, as the identity, where the batch norm and the max that a layer of this module computes
    were (it takes their call arguments, such as ``mask``)."""

    def call(self, inputs, **kwargs):
        return inputs
