"""Shared ground of every stage: the typed configuration (:mod:`.config`), errors, atomic file
writes, the HDF5 layout, BLAS thread control and the command-line helpers.

Imports nothing from the other stages.
"""
