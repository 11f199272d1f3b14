"""The interactive comparison page for the report: each analysis's Teff against
gridfit's, one point per observation; hovering shows the star, the file kind, the
batches and the flags. Made with plotly (no hand-written JavaScript); the page embeds
plotly.js, so it works offline and inside the Snakemake report."""

from __future__ import annotations

import pandas as pd

from starbatch.engine.atomic import write_atomic

# Above this many points per trace the browser draws with WebGL (SVG slows down).
SVG_MAX_POINTS = 5000


def comparison_figure(table: pd.DataFrame, reference: str = "gridfit", label: str = "teff"):
    import plotly.graph_objects as go

    fig = go.Figure()
    x_col = f"{reference}_{label}"
    others = [b for b in ("apogeenet", "cannon") if f"{b}_{label}" in table]
    lo, hi = None, None
    for other in others if x_col in table else []:
        y_col = f"{other}_{label}"
        rows = table[table[x_col].notna() & table[y_col].notna()]
        hover = (
            "star "
            + rows["star"].astype(str)
            + " ("
            + rows["product"].astype(str)
            + ")"
            + "<br>batches "
            + rows[f"{reference}_batch"].astype(str)
            + ", "
            + rows[f"{other}_batch"].astype(str)
            + "<br>flags "
            + rows["flag_names"].replace("", "none").astype(str)
        )
        scatter = go.Scattergl if len(rows) > SVG_MAX_POINTS else go.Scatter
        fig.add_trace(
            scatter(
                x=rows[x_col],
                y=rows[y_col],
                mode="markers",
                name=other,
                text=hover,
                hovertemplate="%{text}<br>"
                + f"{reference} %{{x:.0f}}, {other} %{{y:.0f}}"
                + "<extra></extra>",
                marker={"size": 6, "opacity": 0.75},
            )
        )
        if len(rows):
            lo = min(v for v in (lo, rows[x_col].min(), rows[y_col].min()) if v is not None)
            hi = max(v for v in (hi, rows[x_col].max(), rows[y_col].max()) if v is not None)
    if lo is not None:
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="1:1",
                line={"color": "grey", "dash": "dash"},
                hoverinfo="skip",
            )
        )
    unit = "K" if label == "teff" else "dex"
    fig.update_layout(
        title=f"{label} of each analysis vs {reference}: {len(table)} observations",
        xaxis_title=f"{reference} {label} ({unit})",
        yaxis_title=f"{label} ({unit})",
        template="plotly_white",
        width=900,
        height=700,
    )
    return fig


def comparison_page(compare_parquet, output_html) -> None:
    """Write the self-contained HTML page for the comparison table."""
    import plotly.io as pio

    fig = comparison_figure(pd.read_parquet(compare_parquet))
    html = pio.to_html(fig, include_plotlyjs=True, full_html=True, div_id="comparison")
    write_atomic(output_html, lambda tmp: tmp.write_text(html))
