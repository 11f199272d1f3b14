"""Train a learned analysis (apogeenet or cannon) on synthetic spectra from the
emulator (Snakemake `script:` or CLI).

CLI: python $SCRIPTS/train.py apogeenet resources/models/apogeenet-v1.train.json \
         resources/models/apogeenet-v1.pt resources/models/apogeenet-v1.scores.json \
         [--emulator EMULATOR.npz]
     (cannon likewise, with resources/models/cannon-v1.{train.json,npz,scores.json})
"""

import argparse
import logging

import _importable  # noqa: F401 (before starbatch: makes it importable)

from starbatch.engine.entry import run_entry
from starbatch.resources import EMULATOR

log = logging.getLogger("starbatch")
KINDS = ("apogeenet", "cannon")


def trainer(kind: str):
    if kind == "apogeenet":
        from starbatch.offline.train_apogeenet import train_and_save
    elif kind == "cannon":
        from starbatch.offline.train_cannon import train_and_save
    else:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return train_and_save


def main(kind, config, emulator, model, scores) -> None:
    doc = trainer(kind)(config, emulator, model, scores)
    log.info("wrote %s and %s", model, scores)
    for snr, stats in doc["validation"]["by_snr"].items():
        log.info(
            "validation S/N %s: %s",
            snr,
            ", ".join(
                f"{k} bias {v['bias']:+.3g} scatter {v['scatter']:.3g}" for k, v in stats.items()
            ),
        )


def from_snakemake(smk) -> None:
    main(smk.params.kind, smk.input.config, smk.input.emulator, smk.output.model, smk.output.scores)


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("config", help="training config JSON")
    ap.add_argument("model", help="output model file")
    ap.add_argument("scores", help="output validation scores JSON")
    ap.add_argument("--emulator", default=str(EMULATOR))
    a = ap.parse_args()
    main(a.kind, a.config, a.emulator, a.model, a.scores)


run_entry(from_snakemake, cli, globals())
