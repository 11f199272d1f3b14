"""Offline tooling, never imported by a batch job: training the learned analyses and
their training sets, synthetic spectra, the demo generator, model grids, the emulator's
derivation, accuracy/cost evaluation and the statistics they share."""
