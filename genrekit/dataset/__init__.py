"""From an audio folder to ``processed.h5``: scan the folder (:mod:`.scan`), one shard per track
(:mod:`.shards`) on a local pool or a Dask cluster (:mod:`.cluster`), artist groups and the
track-wise split (:mod:`.groups`, :mod:`.splits`), the assembly of ``dataset.h5`` (:mod:`.build`);
then normalization statistics (:mod:`.statistics`, :mod:`.normalization`), the out-of-core
shuffle (:mod:`.shuffle`) and ``processed.h5`` (:mod:`.process`).

May import :mod:`genrekit.core` and :mod:`genrekit.audio`.
"""
