"""What a model is: the networks (:mod:`.networks`: CRNN, 1D CNN, MobileNetV2), the pretrained
musicnn taggers (:mod:`.musicnn`) and their use as a backbone (:mod:`.backbone`), the classical
baselines (:mod:`.baselines`), slice-to-track aggregation (:mod:`.aggregate`), the run folder's
``bundle.json`` (:mod:`.bundle`), the LiteRT exports analysis runs without TensorFlow
(:mod:`.litert`), and the registry of model families (:mod:`.registry`: how each is built, saved,
exported and loaded).

May import :mod:`genrekit.core`, :mod:`genrekit.audio` and :mod:`genrekit.dataset`.
"""
