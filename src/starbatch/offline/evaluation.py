"""Accuracy and cost of the analyses, through their Analysis classes (the
same load / analyse_many code a batch job runs), on seeded synthetic apStar spectra.

- accuracy: a held-out synthetic set (labels from the realistic prior, seeded apart from
  every training set) at several S/N; per analysis, label and S/N: bias = median(estimate
  - truth) and scatter = 1.4826 x MAD of (estimate - truth), plus truth-vs-estimate plots.
- cost: per analysis, the set-up time (``load``) and the time per spectrum when the
  spectra are handed over one at a time (``analyse_many`` on 1 task) and in the
  analysis's vectorised chunks (``chunk_size`` tasks), reading excluded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from starbatch.analyses.registry import BUILTIN, LABEL_ANALYSES
from starbatch.engine.analysis import Analysis, Task
from starbatch.engine.atomic import atomic_path
from starbatch.engine.flags import describe
from starbatch.methods.emulator import LABEL_NAMES, Emulator

from .stats import label_stats
from .synthetic import make_synthetic_star
from .training_set import make_random_set

UNITS = {"teff": "K", "logg": "dex", "feh": "dex"}
# The columns of an accuracy or robustness row the entry points print.
ROW_COLUMNS = (
    *("analysis", "snr", "label", "bias", "scatter", "median_err", "pull", "n"),
    *("flags", "max_chi2_excess"),
)


def add_set_arguments(ap, seed: int) -> None:
    """The held-out set's command-line options, shared by the benchmark entry points."""
    from starbatch.resources import EMULATOR

    ap.add_argument("--n", type=int, default=100, help="stars per S/N")
    ap.add_argument("--snr", type=float, nargs="+", default=[20.0, 50.0, 100.0, 200.0])
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--analyses", nargs="+", default=list(LABEL_ANALYSES))
    ap.add_argument("--emulator", default=str(EMULATOR))


def default_params(cls: type[Analysis], **overrides) -> dict:
    params = {p.name: p.default for p in cls.all_parameters()}
    params.update(overrides)
    return params


def default_model_files(names: Sequence[str] = LABEL_ANALYSES) -> list[str]:
    """The model files the analyses load with default parameters (shipped ones, a
    project's own, grids that build_grid makes)."""
    return [f for name in names for f in BUILTIN[name].model_files(default_params(BUILTIN[name]))]


def make_tasks(spectra, params: dict) -> list[Task]:
    return [
        Task(line=i + 1, keys={}, params=dict(params), path=Path(f"synthetic-{i}"), spectrum=s)
        for i, s in enumerate(spectra)
    ]


def run(analysis: Analysis, model, tasks: Sequence[Task], chunk: int) -> list:
    """analyse_many over ``tasks`` in chunks of ``chunk`` (what the runner does)."""
    out: list = []
    for start in range(0, len(tasks), max(1, chunk)):
        out.extend(analysis.analyse_many(model, tasks[start : start + chunk]))
    return out


def estimates(results: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values (n, 3), errors (n, 3), flags (n,)); NaN rows for failed tasks."""
    values = np.full((len(results), 3), np.nan)
    errors = np.full((len(results), 3), np.nan)
    flag = np.zeros(len(results), dtype=np.int64)
    for i, r in enumerate(results):
        if isinstance(r, Exception):
            flag[i] = getattr(r, "flag", 4)
            continue
        values[i] = [r[n] for n in LABEL_NAMES]
        errors[i] = [r[n + "_err"] for n in LABEL_NAMES]
        flag[i] = r.get("flag", 0)
    return values, errors, flag


def accuracy(
    emulator: Emulator,
    n: int,
    snrs: Sequence[float],
    seed: int,
    names: Sequence[str] = LABEL_ANALYSES,
    params: dict | None = None,
    star=make_synthetic_star,
) -> tuple[list[dict], dict]:
    """Rows (analysis, snr, label, and label_stats: bias, scatter, rms, n, median_err,
    pull) and the raw estimates {analysis: {snr: (truth, values)}} for plotting, on
    spectra made by ``star`` (clean; offline.augment.perturbed_star for robustness)."""
    params = params or {}
    sets = {snr: make_random_set(emulator, n, snr, seed + k, star) for k, snr in enumerate(snrs)}
    rows, raw = [], {}
    for name in names:
        cls = BUILTIN[name]
        p = default_params(cls, **params.get(name, {}))
        analysis = cls()
        model = analysis.load(p)
        raw[name] = {}
        for snr, data in sets.items():
            results = run(analysis, model, make_tasks(data.spectra(), p), cls.chunk_size)
            values, errors, flag = estimates(results)
            raw[name][snr] = (data.labels, values)
            stats = label_stats(data.labels, values, errors)
            quality = {
                "flags": flag_counts(flag),
                "max_chi2_excess": _largest(results, "chi2_excess"),
            }
            for label in LABEL_NAMES:
                s = stats[label]
                rows.append({"analysis": name, "snr": snr, "label": label, **s, **quality})
    return rows, raw


def flag_counts(flag) -> str:
    """How many results carry each flag bit, "GRID_EDGE 3, POOR_FIT 1" (empty: none). On
    held-out spectra the models describe, POOR_FIT and OFF_BEST_FIT are false alarms."""
    counts = Counter(name for f in flag for name in describe(int(f)).split("; ") if name)
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))


def _largest(results: list, column: str) -> str:
    """The largest value of a result column over the set ("" if the analysis has none)."""
    values = [r[column] for r in results if isinstance(r, dict) and column in r]
    return f"{max(values):.3f}" if values else ""


def format_rows(rows: list[dict], columns: Sequence[str]) -> str:
    """A Markdown table (also readable as plain text)."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_tsv(rows: list[dict], path: str | Path) -> None:
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)


def accuracy_plot(raw: dict, path: str | Path) -> None:
    """Truth vs estimate: one row per analysis, one column per label, colour = S/N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(raw)
    fig, axes = plt.subplots(len(names), 3, figsize=(12, 3.6 * len(names)), squeeze=False)
    limits = {"teff": (3400, 7600), "logg": (-0.3, 5.3), "feh": (-2.6, 0.7)}
    for r, name in enumerate(names):
        snrs = list(raw[name])
        colours = plt.cm.viridis(np.linspace(0, 0.9, len(snrs)))
        for c, label in enumerate(LABEL_NAMES):
            ax = axes[r, c]
            for colour, snr in zip(colours, snrs, strict=True):
                truth, values = raw[name][snr]
                ax.scatter(truth[:, c], values[:, c], s=6, color=colour, label=f"S/N {snr:g}")
            ax.plot(limits[label], limits[label], "k-", lw=0.6)
            ax.set_xlim(limits[label])
            ax.set_ylim(limits[label])
            ax.set_xlabel(f"true {label} [{UNITS[label]}]")
            ax.set_ylabel(f"{name} {label} [{UNITS[label]}]")
            if r == 0 and c == 0:
                ax.legend(fontsize=8, markerscale=2)
    fig.suptitle("Held-out synthetic spectra: truth vs estimate")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def cost(
    emulator: Emulator,
    n: int,
    seed: int,
    names: Sequence[str] = LABEL_ANALYSES,
    params: dict | None = None,
    snr: float = 100.0,
) -> list[dict]:
    """Per analysis: set-up seconds, seconds per spectrum single vs vectorised."""
    params = params or {}
    spectra = make_random_set(emulator, n, snr, seed).spectra()
    rows = []
    for name in names:
        cls = BUILTIN[name]
        p = default_params(cls, **params.get(name, {}))
        analysis = cls()
        t0 = time.perf_counter()
        model = analysis.load(p)
        setup = time.perf_counter() - t0
        run(analysis, model, make_tasks(spectra[:1], p), 1)  # warm-up (lazy imports)
        timings = {}
        for mode, chunk in (("single", 1), ("vectorised", cls.chunk_size)):
            tasks = make_tasks(spectra, p)
            t0 = time.perf_counter()
            results = run(analysis, model, tasks, chunk)
            timings[mode] = (time.perf_counter() - t0) / n
            failed = sum(isinstance(r, Exception) for r in results)
            if failed:
                raise RuntimeError(f"{name}: {failed} of {n} synthetic spectra failed")
        rows.append(
            {
                "analysis": name,
                "n_spectra": n,
                "chunk_size": cls.chunk_size,
                "setup_s": round(setup, 3),
                "single_s_per_spectrum": round(timings["single"], 4),
                "vectorised_s_per_spectrum": round(timings["vectorised"], 4),
                "speedup": round(timings["single"] / timings["vectorised"], 2),
            }
        )
    return rows


REAL_FILES = (
    "dr17/apogee/spectro/redux/dr17/stars/apo25m/000+02/apStar-dr17-2M17335483-2753043.fits",
    "dr17/apogee/spectro/redux/dr17/stars/apo25m/K04_083+13/apStar-dr17-2M19485057+5005279.fits",
    "dr17/apogee/spectro/redux/r13/visit/apo25m/120-08-RV/9518/57729/"
    "apVisit-r13-9518-57729-104.fits",
    "dr17/apogee/spectro/redux/r13/visit/apo25m/N188/5095/55844/apVisit-r13-5095-55844-128.fits",
)


# Agreement with the independent labels in the files' own headers: apStar HDU0
# RV_TEFF/RV_LOGG/RV_FEH (the DR17 RV-template fit, interpolated) within these bounds;
# apVisit RVTEFF/RVLOGG/RVFEH are the best template's grid point (steps of ~500 K and
# 1 dex), so half a step more. Giants (logg < GIANT_LOGG) must stay giants, dwarfs dwarfs.
REAL_BOUNDS = {"apStar": (300.0, 0.5), "apVisit": (550.0, 1.0)}
GIANT_LOGG = 3.8


def agreement(row: dict) -> tuple[bool, str]:
    """(agrees, why not) for one real_results row against its header reference."""
    if "error" in row:
        return False, row["error"]
    dteff, dlogg = REAL_BOUNDS[row["kind"]]
    why = []
    if abs(row["teff"] - row["ref_teff"]) > dteff:
        why.append(f"Teff {row['teff']:.0f} vs {row['ref_teff']:.0f} (> {dteff:g} K)")
    if abs(row["logg"] - row["ref_logg"]) > dlogg:
        why.append(f"logg {row['logg']:.2f} vs {row['ref_logg']:.2f} (> {dlogg:g})")
    if (row["logg"] < GIANT_LOGG) != (row["ref_logg"] < GIANT_LOGG):
        why.append("giant/dwarf class differs")
    return not why, "; ".join(why)


def real_results(sas_root: str | Path, names: Sequence[str] = LABEL_ANALYSES) -> list[dict]:
    """Every analysis on the real files (apStar stacks with ``name``, apVisit spectra with
    ``name_visit``), with default parameters, through load / analyse_many, beside the
    header's reference labels. gridfit reads its grid relative to the working directory
    (resources/grids/demo.npz)."""
    rows = []
    for name in names:
        for suffix, kind in (("", "apStar"), ("_visit", "apVisit")):
            cls = BUILTIN[name + suffix]
            paths = [Path(sas_root) / f for f in REAL_FILES if Path(f).name.startswith(kind)]
            params = default_params(cls)
            analysis = cls()
            model = analysis.load(params)
            spectra = [cls.product.read(p) for p in paths]
            results = analysis.analyse_many(model, make_tasks(spectra, params))
            for spectrum, result in zip(spectra, results, strict=True):
                meta = spectrum.meta
                row = {"analysis": cls.name, "obj": meta.get("objid", ""), "kind": kind}
                row["snr"] = round(float(meta.get("snr", float("nan"))), 1)
                row.update({f"ref_{k}": meta.get(f"rv_{k}", float("nan")) for k in LABEL_NAMES})
                if isinstance(result, Exception):
                    row["error"] = f"{type(result).__name__}: {result}"
                else:
                    row.update(result)
                    row["flags"] = describe(result.get("flag", 0))
                rows.append(row)
    return rows


def out_of_model_results(emulator: Emulator, names: Sequence[str] = LABEL_ANALYSES) -> list[dict]:
    """fit_chi2, line_snr and POOR_FIT of every analysis on offline.out_of_model's spectra
    (default parameters; gridfit on resources/grids/demo.npz in the working directory)."""
    from .out_of_model import out_of_model_spectra

    cases = out_of_model_spectra(emulator)
    rows = []
    for name in names:
        cls = BUILTIN[name]
        params = default_params(cls)
        analysis = cls()
        results = run(analysis, analysis.load(params), make_tasks(list(cases.values()), params), 8)
        for case, r in zip(cases, results, strict=True):
            rows.append(
                {
                    "analysis": name,
                    "spectrum": case,
                    "fit_chi2": round(r["fit_chi2"], 2),
                    "line_snr": round(r["line_snr"], 1),
                    "flags": describe(r["flag"]),
                }
            )
    return rows


def format_real(rows: list[dict]) -> str:
    lines = [
        "| star | file | S/N | header reference Teff / logg / [Fe/H] | analysis | Teff [K] "
        "| logg | [Fe/H] | fit_chi2 | flags | agrees |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["kind"], r["obj"], r["analysis"])):
        ref = f"{r['ref_teff']:.0f} / {r['ref_logg']:.2f} / {r['ref_feh']:+.2f}"
        head = f"| {r['obj']} | {r['kind']} | {r['snr']:g} | {ref} | {r['analysis']}"
        if "error" in r:
            lines.append(f"{head} | {r['error']} | | | | | no |")
            continue
        ok, why = agreement(r)
        lines.append(
            f"{head} | {r['teff']:.0f} ± {r['teff_err']:.0f} | "
            f"{r['logg']:.2f} ± {r['logg_err']:.2f} | {r['feh']:+.2f} ± {r['feh_err']:.2f} | "
            f"{r['fit_chi2']:.1f} | {r['flags']} | {'yes' if ok else 'no: ' + why} |"
        )
    return "\n".join(lines)
