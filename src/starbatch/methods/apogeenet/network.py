"""The APOGEENet-style network: the torch module, its input preparation, its weights
file, and vectorised inference with noise-draw uncertainties (training:
starbatch.offline.train_apogeenet).

Architecture (after APOGEE Net v1, Olney et al. 2020): 12 Conv1d layers with kernel 3
(padding 1) and ReLU, channels 1-8-8-16-16-16-16-32-32-32-32-64-64, a max-pool of 2 after
every pair, so the 8575-pixel apStar spectrum becomes 64 x 133 features; then a small
dense head (8512 -> ``hidden`` -> 3; the published net's dense part was larger, shrunk
here to keep the weights ~1 MB). Outputs are standardised (Teff, logg, [Fe/H]).

Input preparation: starbatch.methods.apogeenet.inputs (per-chip continuum, local
flattening, clipping; version PREP_VERSION, stored in the weights).

Uncertainties, as in the original: the prepared flux is perturbed ``n_draws`` times with
Gaussian noise of its (clipped) error, every draw goes through the network, and the
standard deviation of the outputs is the reported error. The reported value is the mean
of the outputs over the draws (without draws, the output for the unperturbed spectrum):
the mean is smoother than a single output on inputs unlike the training set. The
standard-normal noise pattern comes from a fixed seed and is the same for every
spectrum, so a spectrum's result is deterministic and does not depend on the batch it is
in. The draws measure noise propagation only; the network's
own error is ``model_error`` (per label, calibrated at training time on held-out spectra
so that (estimate - truth) / error has unit robust spread; starbatch.offline.calibration),
added in quadrature by the analysis.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from starbatch.engine.atomic import atomic_path
from starbatch.methods.emulator import LABEL_NAMES
from starbatch.sdss.spectrum import APSTAR_NPIX

from .inputs import INPUT_SCALE, PREP_VERSION

CHANNELS = (1, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 64, 64)
FORMAT = "starbatch-apogeenet"
DRAW_SEED = 20200101


def _torch():
    import torch

    return torch


def build_network(hidden: int = 32, npix: int = APSTAR_NPIX):
    """The torch module (built lazily: importing this module does not import torch)."""
    torch = _torch()
    nn = torch.nn
    layers: list = []
    for i in range(len(CHANNELS) - 1):
        layers += [nn.Conv1d(CHANNELS[i], CHANNELS[i + 1], 3, padding=1), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool1d(2))
    n = npix
    for _ in range((len(CHANNELS) - 1) // 2):
        n //= 2
    net = nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(CHANNELS[-1] * n, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 3),
    )
    # He initialisation: without it the activations shrink ~2x per layer over 12 plain
    # conv layers and training stalls at the start.
    for m in net:
        if isinstance(m, (nn.Conv1d, nn.Linear)) and m is not net[-1]:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def resolve_device(device: str) -> str:
    torch = _torch()
    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return device


class ApogeeNetModel:
    """A loaded network plus what inference needs (label scaling, continuum pixels)."""

    def __init__(self, net, meta: dict, device: str):
        self.net = net
        self.device = device
        self.cont_mask = np.asarray(meta["cont_mask"], dtype=bool)
        self.label_mean = np.asarray(meta["label_mean"], dtype=np.float64)
        self.label_std = np.asarray(meta["label_std"], dtype=np.float64)
        self.label_min = np.asarray(meta["label_min"], dtype=np.float64)
        self.label_max = np.asarray(meta["label_max"], dtype=np.float64)
        self.model_error = np.asarray(meta.get("model_error", np.zeros(3)), dtype=np.float64)
        self.meta = meta
        self.reference = None  # an Emulator for the goodness of fit, set by the analysis

    @property
    def rows(self) -> int:
        """Network inputs per forward pass. On CPU small batches are fastest (measured on
        2 cores: 0.6 ms per input at 32 rows, 2.0 ms at 256: the activations stop fitting
        in cache); a GPU wants large ones."""
        return 32 if self.device == "cpu" else 1024

    def _forward(self, x: np.ndarray, rows: int | None = None) -> np.ndarray:
        """Standardised outputs for inputs (m, npix), ``rows`` at a time."""
        torch = _torch()
        rows = rows or self.rows
        out = []
        with torch.no_grad():
            for start in range(0, len(x), rows):
                batch = torch.from_numpy(np.ascontiguousarray(x[start : start + rows]))
                batch = batch.to(self.device).unsqueeze(1)
                out.append(self.net(batch).double().cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, 3))

    def predict(
        self, x: np.ndarray, e: np.ndarray, n_draws: int = 0, rows: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (n, 3) and their noise-draw standard deviations (n, 3; NaN without
        draws) for prepared inputs. With draws the label is the mean over them, else the
        output for the unperturbed input. The draws of all spectra go through the network
        together, ``rows`` inputs per forward pass (bounds memory)."""
        if n_draws < 2 or not len(x):
            values = self._forward(x, rows) * self.label_std + self.label_mean
            return values, np.full_like(values, np.nan)
        z = np.random.default_rng(DRAW_SEED).standard_normal((n_draws, x.shape[1]))
        z = z.astype(np.float32)
        drawn = np.clip(x[:, None, :] + z[None] * e[:, None, :], -INPUT_SCALE, 0.5 * INPUT_SCALE)
        out = self._forward(drawn.reshape(-1, x.shape[1]), rows).reshape(len(x), n_draws, 3)
        # The mean over the (fixed-seed) draws, not the output for the unperturbed input:
        # it is smoother on inputs unlike the training set (other noise, other reductions).
        values = out.mean(axis=1) * self.label_std + self.label_mean
        return values, out.std(axis=1, ddof=1) * self.label_std


def save_model(path: str | Path, net, meta: dict) -> None:
    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": 2,
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "hidden": int(meta["hidden"]),
        "label_names": list(LABEL_NAMES),
        "label_mean": torch.tensor(meta["label_mean"], dtype=torch.float64),
        "label_std": torch.tensor(meta["label_std"], dtype=torch.float64),
        "label_min": torch.tensor(meta["label_min"], dtype=torch.float64),
        "label_max": torch.tensor(meta["label_max"], dtype=torch.float64),
        "model_error": torch.tensor(meta["model_error"], dtype=torch.float64),
        "cont_mask": torch.from_numpy(np.asarray(meta["cont_mask"], dtype=bool)),
        "prep_version": PREP_VERSION,
        "input_scale": INPUT_SCALE,
        "config_json": json.dumps(meta.get("config", {}), sort_keys=True),
    }
    # Serialised in memory: the zip then holds no trace of the file name, so the same
    # training gives the same bytes wherever it is written.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_model(path: str | Path, device: str = "auto") -> ApogeeNetModel:
    """Load weights saved by save_model, with torch.load(weights_only=True)."""
    torch = _torch()
    device = resolve_device(device)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not readable as apogeenet weights ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} weights file")
    if payload.get("prep_version") != PREP_VERSION or payload.get("input_scale") != INPUT_SCALE:
        raise ValueError(f"{path}: made with another input preparation; retrain")
    net = build_network(int(payload["hidden"]))
    net.load_state_dict(payload["state_dict"])
    net.eval().to(device)
    meta = {
        k: payload[k].numpy()
        for k in ("label_mean", "label_std", "label_min", "label_max", "model_error", "cont_mask")
    }
    meta["config"] = json.loads(payload["config_json"])
    return ApogeeNetModel(net, meta, device)
