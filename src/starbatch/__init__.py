"""starbatch: batch analysis of SDSS APOGEE spectra, paying expensive set-up once per batch.

Layers, each importing only those below it (checked by lint-imports):
offline > report > analyses > methods > sdss > engine (and the shipped resources)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("starbatch")
except PackageNotFoundError:  # run from a checkout without installing
    __version__ = "0+checkout"
