"""Methods: the numerics of each analysis, inference only (continuum normalisation, the
emulator, gridfit's grids and chi-square fit, the apogeenet network and its input
preparation, the Cannon model and its fit). Training lives in starbatch.offline."""
