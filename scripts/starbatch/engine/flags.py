"""Per-observation flag bits written to the ``flag`` column of every result."""

from __future__ import annotations

READ_ERROR = 1 << 0
BAD_DATA = 1 << 1
ANALYSIS_ERROR = 1 << 2
GRID_EDGE = 1 << 3
POOR_FIT = 1 << 4
LOW_SNR = 1 << 5
NOT_RUN = 1 << 6
NO_SPECTRUM = 1 << 7
OFF_BEST_FIT = 1 << 8
NOT_COOL_STAR = 1 << 12

DESCRIPTIONS = {
    READ_ERROR: "READ_ERROR: file missing, unreadable or not a valid spectrum file",
    BAD_DATA: "BAD_DATA: spectrum unusable (wrong wavelength grid, no good pixels)",
    ANALYSIS_ERROR: "ANALYSIS_ERROR: the analysis raised an error; see the error column",
    GRID_EDGE: "GRID_EDGE: best fit at the edge of the model grid or training range",
    POOR_FIT: "POOR_FIT: the model does not describe the data (reduced chi-square with the "
    "model-error floor above max_chi2_red, or no stellar lines explained)",
    LOW_SNR: "LOW_SNR: median S/N below the analysis threshold",
    NOT_RUN: "NOT_RUN: spectrum file missing at planning (results/plan/skipped.csv)",
    NO_SPECTRUM: "NO_SPECTRUM: the file has no spectrum from this instrument/observatory "
    "(e.g. an mwmStar of a BOSS-only star: empty APOGEE HDU)",
    OFF_BEST_FIT: "OFF_BEST_FIT: the physical model fits the spectrum markedly better at other "
    "labels (chi2_excess above max_chi2_excess): a learned analysis misread it",
    NOT_COOL_STAR: "NOT_COOL_STAR: not a star the label analyses describe (strong Brackett lines "
    "without metal lines: a hot star; or hydrogen emission), by a test that uses no stellar "
    "model; the labels are written but must not be trusted",
}

# Flags that mean "no result": the row's values are NaN.
FAILED = READ_ERROR | BAD_DATA | ANALYSIS_ERROR | NOT_RUN | NO_SPECTRUM


def describe(flag: int) -> str:
    return "; ".join(text.split(":")[0] for bit, text in DESCRIPTIONS.items() if flag & bit)


def header_cards() -> list[tuple[str, int, str]]:
    """FITS header cards documenting each bit (FLAGBITn = value / meaning)."""
    return [
        (f"FLAGBIT{bit.bit_length() - 1}", bit, text.split(":")[0])
        for bit, text in DESCRIPTIONS.items()
    ]
