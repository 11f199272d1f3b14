"""Analyses: thin adapters that declare parameters, result columns and load/analyse,
over the methods' numerics, and the registry that also finds users' analyses
(starbatch.analyses.registry). Modules import heavy libraries (torch, astropy) inside
`load`/`analyse`, since planning imports every analysis module."""
