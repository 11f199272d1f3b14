"""starbatch: batch analysis of APOGEE spectra, paying expensive set-up once per batch."""
