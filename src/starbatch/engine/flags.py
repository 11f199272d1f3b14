"""Per-observation flag bits written to the ``flag`` column of every result: one table
for every analysis and every result file (docs/results.md lists it; a test checks). The
engine sets the failure bits (READ_ERROR ... OUT_OF_MEMORY); the label analyses set the
others (GRID_EDGE, POOR_FIT, LOW_SNR, OFF_BEST_FIT, NOT_COOL_STAR)."""

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
# The batch job's supervisor sets these when a member stops the analysis's worker
# process (engine/runner.py): the member gets this row, the others go on.
CRASHED = 1 << 9
TIMEOUT = 1 << 10
OUT_OF_MEMORY = 1 << 11
# A test outside every model (methods/hydrogen.py) sets this one.
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
    CRASHED: "CRASHED: the analysis's process died on this observation (a signal such as "
    "SIGSEGV, or an exit), or the batch job was killed twice while analysing it",
    TIMEOUT: "TIMEOUT: the observation ran past its time limit (time_limit_per_obs_s); the "
    "analysis's process was stopped",
    OUT_OF_MEMORY: "OUT_OF_MEMORY: the analysis's process went past the batch job's memory "
    "(mem_mb) on this observation and was stopped (by the supervisor, or the kernel's OOM "
    "killer)",
    NOT_COOL_STAR: "NOT_COOL_STAR: not a star the label analyses describe (strong Brackett lines "
    "without metal lines: a hot star; or hydrogen emission), by a test that uses no stellar "
    "model; the labels are written but must not be trusted",
}

# A member the analysis itself failed on (not its file): many of them in one batch mean
# the analysis is broken (max_failed_fraction).
ANALYSIS_FAILED = ANALYSIS_ERROR | CRASHED | TIMEOUT | OUT_OF_MEMORY
# Flags that mean "no result": the row's values are NaN.
FAILED = READ_ERROR | BAD_DATA | NOT_RUN | NO_SPECTRUM | ANALYSIS_FAILED


def describe(flag: int) -> str:
    return "; ".join(text.split(":")[0] for bit, text in DESCRIPTIONS.items() if flag & bit)


def header_cards() -> list[tuple[str, int, str]]:
    """FITS header cards documenting each bit (FLAGBITn = value / meaning; FLAGBnn from
    bit 10, as a FITS keyword has at most 8 characters)."""
    out = []
    for bit, text in DESCRIPTIONS.items():
        n = bit.bit_length() - 1
        out.append((f"FLAGBIT{n}" if n < 10 else f"FLAGB{n}", bit, text.split(":")[0]))
    return out
