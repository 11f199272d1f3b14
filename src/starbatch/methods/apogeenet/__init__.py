"""apogeenet: an APOGEE Net-style 1-D CNN for Teff, logg and [Fe/H]."""
