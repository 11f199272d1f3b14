"""SDSS data: the spectrum every reader returns, the data products (apStar and apVisit
of DR16/DR17) declared with their SDSS path templates, and their FITS readers."""
