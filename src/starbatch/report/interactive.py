"""The interactive comparison page for the report: for the label one picks (Teff, log g,
[Fe/H]), each analysis against gridfit's, and their differences, one point per
observation; hovering shows the star, the file kind, the batches and the flags. Made
with plotly (no hand-written JavaScript); the page embeds plotly.js, so it works
offline and inside the Snakemake report."""

from __future__ import annotations

import pandas as pd

from starbatch.engine.atomic import write_atomic

# Above this many points per trace the browser draws with WebGL (SVG slows down).
SVG_MAX_POINTS = 5000
# label: (name, unit, hover format)
LABELS = {
    "teff": ("Teff", "K", ".0f"),
    "logg": ("log g", "dex", ".2f"),
    "feh": ("[Fe/H]", "dex", ".2f"),
}
OTHERS = ("apogeenet", "cannon")
COLOURS = {"apogeenet": "#1f77b4", "cannon": "#d62728"}


def _hover(rows: pd.DataFrame, reference: str, other: str) -> pd.Series:
    return (
        "star " + rows["star"].astype(str) + " (" + rows["product"].astype(str) + ")"
        "<br>batches " + rows[f"{reference}_batch"].astype(str)
        + ", " + rows[f"{other}_batch"].astype(str)
        + "<br>flags " + rows["flag_names"].replace("", "none").astype(str)
    )  # fmt: skip


def _label_traces(table: pd.DataFrame, reference: str, label: str) -> list:
    """The traces of one label: each analysis against the reference (top) and their
    difference (bottom), then the 1:1 and zero lines."""
    import plotly.graph_objects as go

    name, unit, form = LABELS[label]
    x_col = f"{reference}_{label}"
    traces, lo, hi = [], None, None
    for other in (o for o in OTHERS if f"{o}_{label}" in table and x_col in table):
        y_col = f"{other}_{label}"
        rows = table[table[x_col].notna() & table[y_col].notna()]
        text = _hover(rows, reference, other)
        scatter = go.Scattergl if len(rows) > SVG_MAX_POINTS else go.Scatter
        style = {"size": 6, "opacity": 0.75, "color": COLOURS.get(other)}
        traces.append(
            scatter(
                x=rows[x_col], y=rows[y_col], mode="markers", name=other, text=text,
                legendgroup=other, marker=style, xaxis="x", yaxis="y",
                hovertemplate=f"%{{text}}<br>{reference} %{{x:{form}}}, {other} "
                f"%{{y:{form}}} {unit}<extra></extra>",
            )
        )  # fmt: skip
        traces.append(
            scatter(
                x=rows[x_col], y=rows[y_col] - rows[x_col], mode="markers", name=other,
                text=text, legendgroup=other, marker=style, showlegend=False,
                xaxis="x2", yaxis="y2",
                hovertemplate=f"%{{text}}<br>{other} - {reference} %{{y:{form}}} {unit}"
                "<extra></extra>",
            )
        )  # fmt: skip
        if len(rows):
            values = [rows[x_col].min(), rows[y_col].min(), rows[x_col].max(), rows[y_col].max()]
            lo = min(values[:2] + ([lo] if lo is not None else []))
            hi = max(values[2:] + ([hi] if hi is not None else []))
    if lo is not None:
        line = {"color": "grey", "dash": "dash"}
        traces.append(
            go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="1:1", line=line,
                       hoverinfo="skip", xaxis="x", yaxis="y")
        )  # fmt: skip
        traces.append(
            go.Scatter(x=[lo, hi], y=[0, 0], mode="lines", name="no difference", line=line,
                       hoverinfo="skip", showlegend=False, xaxis="x2", yaxis="y2")
        )  # fmt: skip
    return traces


def _axes(reference: str, label: str, n: int) -> dict:
    name, unit, _ = LABELS[label]
    return {
        "title.text": f"{name}: each analysis against {reference}, {n} observations",
        "xaxis.title.text": f"{reference} {name} ({unit})",
        "yaxis.title.text": f"{name} ({unit})",
        "xaxis2.title.text": f"{reference} {name} ({unit})",
        "yaxis2.title.text": f"analysis - {reference} ({unit})",
    }


def comparison_figure(table: pd.DataFrame, reference: str = "gridfit"):
    """One figure for every label, the label picked with the buttons above it (Teff
    first); the other labels' traces are drawn only when picked."""
    import plotly.graph_objects as go

    per_label = {label: _label_traces(table, reference, label) for label in LABELS}
    fig = go.Figure()
    owner = []
    for label, traces in per_label.items():
        for trace in traces:
            trace.visible = label == "teff"
            fig.add_trace(trace)
            owner.append(label)
    buttons = [
        {
            "label": LABELS[label][0],
            "method": "update",
            "args": [{"visible": [o == label for o in owner]}, _axes(reference, label, len(table))],
        }
        for label in LABELS
    ]
    fig.update_layout(
        template="plotly_white",
        width=900,
        height=900,
        xaxis={"domain": [0, 1], "anchor": "y"},
        yaxis={"domain": [0.42, 1]},
        xaxis2={"domain": [0, 1], "anchor": "y2", "matches": "x"},
        yaxis2={"domain": [0, 0.33]},
        legend={"orientation": "h", "x": 0, "y": 1.06},
        margin={"t": 140},
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "buttons": buttons,
                "x": 1,
                "y": 1.13,
                "xanchor": "right",
                "showactive": True,
            }
        ],  # fmt: skip
    )
    for key, value in _axes(reference, "teff", len(table)).items():
        fig.layout[key] = value
    return fig


def comparison_page(compare_parquet, output_html) -> None:
    """Write the self-contained HTML page for the comparison table."""
    import plotly.io as pio

    fig = comparison_figure(pd.read_parquet(compare_parquet))
    html = pio.to_html(fig, include_plotlyjs=True, full_html=True, div_id="comparison")
    write_atomic(output_html, lambda tmp: tmp.write_text(html))
