"""cannon: The Cannon, quadratic in (Teff, logg, [Fe/H])."""
