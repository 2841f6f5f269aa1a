"""Training runs of ``train_crnn.py`` and ``train_baselines.py``: ``processed.h5``'s batches
(:mod:`.data`) with augmentation (:mod:`.augment`), the device (:mod:`.device`), callbacks and
resume (:mod:`.callbacks`), a frozen backbone's features (:mod:`.frozen_features`), the run and
its folder (:mod:`.train`, :mod:`.baselines`) and evaluation (:mod:`.evaluate`).

May import every stage but :mod:`genrekit.inference`.
"""
