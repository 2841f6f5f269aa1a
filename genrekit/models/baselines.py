"""Classical baselines (``train_baselines.py``): scikit-learn models on per-slice feature vectors.

Every slice of ``dataset.h5`` (its stored log-mel spectrogram in dB) becomes one feature
vector (:func:`slice_features`); the vectors are standardized with the train split's mean
and standard deviation, and four families are fit on the train split:

* ``logreg``: multinomial logistic regression (L2, lbfgs), ``C`` chosen on val;
* ``knn``: k nearest neighbours (Euclidean, uniform weights), ``k`` chosen on val;
* ``gnb``: Gaussian naive Bayes, ``var_smoothing`` chosen on val;
* ``svm``: an RBF support vector machine with Platt-scaled probabilities, ``C`` chosen on val.

Each grid value is fit on train and scored on the validation slices (accuracy, then the lower
log-loss breaks ties); the best one is the model (without a validation split, the first grid
value). Test slices are scored and aggregated per track exactly as for the CRNN
(:func:`genrekit.training.evaluate.evaluate_predictions`, the ``sum`` of slice probabilities).

Saved models execute no code on load: the fitted parameters are plain arrays in
``model.npz`` (read with ``allow_pickle=False``) and the hyper-parameters are JSON in
``bundle.json``; :func:`predict_scores` recomputes each family's ``predict_proba`` from those
arrays with NumPy alone (the tests check it against the live scikit-learn model). The analyzer
loads such a run folder like a CRNN's: the same slices (:func:`genrekit.audio.features.load_track_slices`),
the same :func:`slice_features`, no Keras.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.core.config import FeaturesConfig
from genrekit.core.errors import GenrekitError

FAMILIES = ("logreg", "knn", "gnb", "svm")
FAMILY_NAMES = {
    "logreg": "logistic regression",
    "knn": "k nearest neighbours",
    "gnb": "Gaussian naive Bayes",
    "svm": "RBF support vector machine",
}
MODEL_FILE = "model.npz"
FEATURE_SET = "slice-stats-v1"  # the version of slice_features; stored in each bundle
N_MFCC = 20
CHUNK_ROWS = 256  # slices per feature chunk (a few MB)


# --------------------------------------------------------------------------- features


def mel_centres_khz(features: FeaturesConfig) -> np.ndarray:
    """Centre frequency of every mel band, kHz (librosa's mel scale, as the spectrograms use)."""
    import librosa

    fmax = features.fmax if features.fmax is not None else features.sample_rate / 2
    return librosa.mel_frequencies(features.n_mels + 2, fmin=features.fmin, fmax=fmax)[1:-1] / 1000.0


def feature_names(features: FeaturesConfig) -> list[str]:
    """Name of every entry of a :func:`slice_features` vector, in order."""
    n_mfcc = min(N_MFCC, features.n_mels)
    names = [f"mel{b}_mean" for b in range(features.n_mels)] + [f"mel{b}_std" for b in range(features.n_mels)]
    for stat in ("mean", "std", "delta"):
        names += [f"mfcc{i}_{stat}" for i in range(n_mfcc)]
    for stat in ("mean", "std", "delta"):
        names += [f"{d}_{stat}" for d in ("centroid", "bandwidth", "flatness", "loudness")]
    return names


def slice_features(specs: np.ndarray, features: FeaturesConfig) -> np.ndarray:
    """One feature vector per slice, from its log-mel spectrogram in dB.

    Parameters
    ----------
    specs : np.ndarray, shape (n, frames, n_mels) or (n, frames, n_mels, 1)
        Log-mel spectrograms in dB, as ``dataset.h5`` stores them (float16) or as the analyzer
        computes them (float32: rounded to float16 first, so both give the same vectors).
    features : FeaturesConfig
        The spectrograms' settings (for the mel band frequencies).

    Returns
    -------
    np.ndarray, shape (n, 2 n_mels + 3 n_mfcc + 12), float64
        In order (see :func:`feature_names`): per mel band the mean and standard deviation over
        time; 20 MFCCs (the orthonormal DCT-II of the dB spectrum, what
        ``librosa.feature.mfcc(S=...)`` computes) by their mean, standard deviation and mean
        absolute frame-to-frame change (delta); and four per-frame descriptors of the mel power
        spectrum (spectral centroid and bandwidth in kHz, flatness and loudness in dB) by the same
        three statistics.
    """
    import scipy.fft

    S = np.asarray(specs)
    if S.ndim == 4:
        S = S[..., 0]
    S = S.astype(np.float16).astype(np.float64)  # dataset.h5's precision, for training and analysis alike
    n_mfcc = min(N_MFCC, S.shape[-1])
    mfcc = scipy.fft.dct(S, type=2, norm="ortho", axis=-1)[..., :n_mfcc]
    power = 10.0 ** (S / 10.0)
    freqs = mel_centres_khz(features)
    total = power.sum(axis=-1)
    centroid = (power * freqs).sum(axis=-1) / total
    bandwidth = np.sqrt((power * (freqs - centroid[..., None]) ** 2).sum(axis=-1) / total)
    flatness = S.mean(axis=-1) - 10.0 * np.log10(total / S.shape[-1])  # geometric over arithmetic mean, dB
    loudness = 10.0 * np.log10(total)
    descriptors = np.stack([centroid, bandwidth, flatness, loudness], axis=-1)

    def delta(x: np.ndarray) -> np.ndarray:
        if x.shape[1] < 2:
            return np.zeros((x.shape[0], x.shape[2]))
        return np.abs(np.diff(x, axis=1)).mean(axis=1)

    parts = [S.mean(axis=1), S.std(axis=1)]
    for x in (mfcc, descriptors):
        parts += [x.mean(axis=1), x.std(axis=1), delta(x)]
    return np.concatenate(parts, axis=1)


def features_multiply_adds(frames: int, n_mels: int) -> int:
    """Multiply-adds of :func:`slice_features` for one slice: the DCT (a matrix product) and about
    ten operations per spectrogram value for the statistics and descriptors."""
    return int(frames * n_mels * (min(N_MFCC, n_mels) + 10))


# --------------------------------------------------------------------------- predictions from arrays


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _logreg_scores(a: dict, X: np.ndarray) -> np.ndarray:
    z = X @ a["coef"].T + a["intercept"]
    if z.shape[1] == 1:  # two labels: one logistic output for the second
        p = 1.0 / (1.0 + np.exp(-z[:, 0]))
        return np.stack([1.0 - p, p], axis=1)
    return _softmax(z)


def _knn_scores(a: dict, X: np.ndarray, k: int, n_labels: int) -> np.ndarray:
    train, labels = a["train_x"], a["train_y"].astype(np.int64)
    out = np.zeros((len(X), n_labels))
    train_sq = (train**2).sum(axis=1)
    for begin in range(0, len(X), CHUNK_ROWS):  # bounded memory: a chunk of queries against all of train
        q = X[begin : begin + CHUNK_ROWS]
        d2 = (q**2).sum(axis=1)[:, None] - 2.0 * q @ train.T + train_sq[None, :]
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
        votes = labels[nearest]
        for c in range(n_labels):
            out[begin : begin + len(q), c] = (votes == c).sum(axis=1)
    return out / k


def _gnb_scores(a: dict, X: np.ndarray) -> np.ndarray:
    theta, var = a["theta"], a["var"]
    jll = (
        np.log(a["class_prior"])[None, :]
        - 0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)[None, :]
        - 0.5 * (((X[:, None, :] - theta[None]) ** 2) / var[None]).sum(axis=2)
    )
    return _softmax(jll)


def _svm_decision(a: dict, X: np.ndarray, gamma: float) -> np.ndarray:
    """libsvm's one-against-one decision values ``(n, k (k - 1) / 2)``, pairs (0,1), (0,2), ..., (1,2), ..."""
    sv = a["support_vectors"]
    d2 = (X**2).sum(axis=1)[:, None] - 2.0 * X @ sv.T + (sv**2).sum(axis=1)[None, :]
    kernel = np.exp(-gamma * np.maximum(d2, 0.0))
    n_support, coef, intercept = a["n_support"].astype(np.int64), a["dual_coef"], a["intercept"]
    start = np.concatenate([[0], np.cumsum(n_support)])
    k = len(n_support)
    out, p = np.zeros((len(X), k * (k - 1) // 2)), 0
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
            out[:, p] = kernel[:, si] @ coef[j - 1, si] + kernel[:, sj] @ coef[i, sj] + intercept[p]
            p += 1
    return out


def _pairwise_coupling(r: np.ndarray) -> np.ndarray:
    """libsvm's ``multiclass_probability`` (Wu, Lin and Weng 2004, method 2) for many samples at once.

    ``r[n, i, j]``: the probability of label ``i`` against ``j`` for sample ``n``. Each sample
    follows libsvm's iteration exactly and stops where libsvm stops it.
    """
    n, k, _ = r.shape
    Q = -r.transpose(0, 2, 1) * r  # Q[t, j] = -r[j, t] r[t, j]
    diag = (r.transpose(0, 2, 1) ** 2 * (1 - np.eye(k))).sum(axis=2)  # sum over j != t of r[j, t]^2
    Q[:, np.arange(k), np.arange(k)] = diag
    p = np.full((n, k), 1.0 / k)
    active = np.ones(n, dtype=bool)
    eps = 0.005 / k
    for _ in range(max(100, k)):
        Qp = np.einsum("ntj,nj->nt", Q, p)
        pQp = (p * Qp).sum(axis=1)
        active &= np.abs(Qp - pQp[:, None]).max(axis=1) >= eps
        if not active.any():
            break
        a = np.flatnonzero(active)
        pa, Qpa, Qa, pQpa = p[a], Qp[a], Q[a], pQp[a]
        for t in range(k):
            diff = (-Qpa[:, t] + pQpa) / Qa[:, t, t]
            pa[:, t] += diff
            pQpa = (pQpa + diff * (diff * Qa[:, t, t] + 2 * Qpa[:, t])) / (1 + diff) / (1 + diff)
            Qpa = (Qpa + diff[:, None] * Qa[:, t, :]) / (1 + diff[:, None])
            pa /= 1 + diff[:, None]
        p[a] = pa
    return p


def _svm_scores(a: dict, X: np.ndarray, gamma: float) -> np.ndarray:
    dec = _svm_decision(a, X, gamma)
    fApB = dec * a["prob_a"] + a["prob_b"]
    with np.errstate(over="ignore"):
        pairwise = np.where(
            fApB >= 0, np.exp(-np.abs(fApB)) / (1.0 + np.exp(-np.abs(fApB))), 1.0 / (1.0 + np.exp(-np.abs(fApB)))
        )
    pairwise = np.clip(pairwise, 1e-7, 1 - 1e-7)
    k = len(a["n_support"])
    r = np.zeros((len(X), k, k))
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            r[:, i, j], r[:, j, i] = pairwise[:, p], 1 - pairwise[:, p]
            p += 1
    return _pairwise_coupling(r)


def predict_scores(family: str, arrays: dict, params: dict, X: np.ndarray, n_labels: int) -> np.ndarray:
    """Each family's ``predict_proba`` on standardized feature vectors ``X``, from its saved arrays.

    Parameters
    ----------
    family : {"logreg", "knn", "gnb", "svm"}
    arrays : dict of np.ndarray
        What :func:`export_arrays` returned (or ``model.npz`` holds).
    params : dict
        The hyper-parameters (``n_neighbors`` for kNN, ``gamma`` for the SVM).
    X : np.ndarray, shape (n, n_features)
    n_labels : int

    Returns
    -------
    np.ndarray, shape (n, n_labels), float64
        Probabilities, rows adding up to 1.
    """
    X = np.asarray(X, dtype=np.float64)
    if family == "logreg":
        return _logreg_scores(arrays, X)
    if family == "knn":
        return _knn_scores(arrays, X, int(params["n_neighbors"]), n_labels)
    if family == "gnb":
        return _gnb_scores(arrays, X)
    if family == "svm":
        return _svm_scores(arrays, X, float(params["gamma"]))
    raise ValueError(f"unknown baseline family {family!r}")


# --------------------------------------------------------------------------- scikit-learn side


def make_estimator(family: str, params: dict, seed: int):
    """The scikit-learn estimator of a family with one grid point's hyper-parameters."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    if family == "logreg":
        return LogisticRegression(C=params["C"], max_iter=2000)
    if family == "knn":
        return KNeighborsClassifier(n_neighbors=params["n_neighbors"], algorithm="brute")
    if family == "gnb":
        return GaussianNB(var_smoothing=params["var_smoothing"])
    if family == "svm":
        return SVC(C=params["C"], kernel="rbf", gamma="scale", probability=True, random_state=seed)
    raise ValueError(f"unknown baseline family {family!r}")


def export_arrays(family: str, estimator, X_train: np.ndarray, y_train: np.ndarray) -> tuple[dict, dict]:
    """The fitted parameters of an estimator as plain arrays, and the hyper-parameters prediction needs.

    ``X_train`` and ``y_train`` are what it was fit on (kNN keeps them: they are its model).
    """
    if family == "logreg":
        return {"coef": estimator.coef_, "intercept": estimator.intercept_}, {"C": estimator.C}
    if family == "knn":
        return (
            {"train_x": np.asarray(X_train, np.float64), "train_y": np.asarray(y_train, np.int16)},
            {"n_neighbors": int(estimator.n_neighbors)},
        )
    if family == "gnb":
        return (
            {"theta": estimator.theta_, "var": estimator.var_, "class_prior": estimator.class_prior_},
            {"var_smoothing": estimator.var_smoothing},
        )
    if family == "svm":
        # libsvm's own layout (scikit-learn's private copies; its public ones flip signs for two labels)
        return (
            {
                "support_vectors": estimator.support_vectors_,
                "n_support": estimator.n_support_.astype(np.int64),
                "dual_coef": estimator._dual_coef_,
                "intercept": estimator._intercept_,
                "prob_a": estimator._probA,
                "prob_b": estimator._probB,
            },
            {"C": estimator.C, "gamma": float(estimator._gamma)},
        )
    raise ValueError(f"unknown baseline family {family!r}")


def stored_values(arrays: dict) -> int:
    """How many numbers a model stores (its "parameters")."""
    return int(sum(np.asarray(v).size for v in arrays.values()))


def model_multiply_adds(family: str, arrays: dict, n_features: int, n_labels: int) -> int:
    """Multiply-adds to score one feature vector (standardization included)."""
    if family == "logreg":
        core = n_features * n_labels
    elif family == "knn":
        core = len(arrays["train_x"]) * n_features  # a distance to every training vector
    elif family == "gnb":
        core = 2 * n_features * n_labels
    else:  # kernel against every support vector, then the pairwise sums
        core = len(arrays["support_vectors"]) * (n_features + n_labels - 1)
    return int(core + 2 * n_features)


# --------------------------------------------------------------------------- the saved model


@dataclass(frozen=True)
class BaselineModel:
    """A fitted baseline: takes spectrograms in dB like a Keras model takes processed ones."""

    family: str
    params: dict
    arrays: dict  # the family's fitted arrays
    mean: np.ndarray  # standardization of the feature vectors (train split)
    scale: np.ndarray
    features: FeaturesConfig
    n_labels: int

    def predict(self, specs: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, n_labels)`` float32 of spectrograms ``(n, frames, n_mels[, 1])`` in dB."""
        X = (slice_features(specs, self.features) - self.mean) / self.scale
        return predict_scores(self.family, self.arrays, self.params, X, self.n_labels).astype(np.float32)


def save_model(folder: Path, model: BaselineModel) -> Path:
    """``model.npz``: the fitted arrays and the standardization, no Python objects (atomically)."""
    path = Path(folder) / MODEL_FILE
    tmp = path.with_name("model.partial.npz")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            scaler_mean=model.mean,
            scaler_scale=model.scale,
            **{f"model_{k}": np.asarray(v) for k, v in model.arrays.items()},
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_model(path: Path, info: dict, features: FeaturesConfig, n_labels: int) -> BaselineModel:
    """Read ``model.npz`` (``allow_pickle=False``: arrays only) with the bundle's ``baseline`` entry."""
    family = info.get("family")
    if family not in FAMILIES:
        raise GenrekitError(f"{path}: unknown baseline family {family!r} (known: {', '.join(FAMILIES)})")
    if info.get("feature_set") != FEATURE_SET:
        raise GenrekitError(
            f"{path}: made with feature set {info.get('feature_set')!r}; this version computes "
            f"{FEATURE_SET!r}: train it again"
        )
    with np.load(path, allow_pickle=False) as npz:
        data = {name: npz[name] for name in npz.files}
    arrays = {name[len("model_") :]: value for name, value in data.items() if name.startswith("model_")}
    return BaselineModel(
        family, dict(info.get("params", {})), arrays, data["scaler_mean"], data["scaler_scale"], features, n_labels
    )
