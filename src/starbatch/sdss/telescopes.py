"""APOGEE telescopes and the file-name prefixes SDSS gives their products (shared by
the product declarations and the readers)."""

TELESCOPE_PREFIX = {"apo25m": "ap", "apo1m": "ap", "lco25m": "as"}
# apStar file-name prefix -> telescope (the DR17 apStar header has no TELESCOP card).
PREFIX_TELESCOPE = {"ap": "apo25m", "as": "lco25m"}
