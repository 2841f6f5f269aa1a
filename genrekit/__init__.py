"""genrekit: music genre classification by divide and conquer.

The package is cut by pipeline stage; each stage imports only from the stages above it in
this list, never from one below, and analysis never from training: a machine that only
analyzes needs none of it (``tests/test_layout.py`` checks both, and that no import cycle
exists):

1. :mod:`genrekit.core`: configuration, errors, atomic files, the HDF5 layout, the command line.
2. :mod:`genrekit.audio`: decoding, slicing and features: the one audio path.
3. :mod:`genrekit.dataset`: the build of ``dataset.h5`` and its processing into ``processed.h5``.
4. :mod:`genrekit.models`: the networks, the pretrained taggers, the baselines, the run folder's
   bundle and the registry of model families.
5. :mod:`genrekit.training`: training runs, their data, augmentation and evaluation.
6. :mod:`genrekit.inference`: analyzing tracks and folders with a trained run or a ready tagger.

The top-level scripts and ``track_analyzer`` are thin command lines over these.
"""

STAGES = ("core", "audio", "dataset", "models", "training", "inference")
# What each stage may import besides itself: the stages above it, but inference not training.
MAY_IMPORT = {stage: set(STAGES[:i]) for i, stage in enumerate(STAGES)}
MAY_IMPORT["inference"].discard("training")
