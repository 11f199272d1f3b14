"""gridfit: FERRE-style fitting against a grid of model spectra held in memory."""
