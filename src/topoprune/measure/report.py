"""A small human-readable table of :class:`~topoprune.measure.counts.Counts`."""

from __future__ import annotations

from topoprune.measure.counts import Counts


def _millions(n: int) -> str:
    return f"{n / 1e6:.3f} M"


def _mega_or_giga(n: int) -> str:
    return f"{n / 1e9:.3f} G" if n >= 10**9 else _millions(n)


def _total_line(label: str, kept: int, dense: int, unit) -> str:
    removed = f", {1 - kept / dense:.2%} removed" if dense else ""
    return f"{label:<22}{unit(kept):>12} of {unit(dense)} dense{removed}"


def format_counts(counts: Counts, *, layers: bool = True) -> str:
    """Counts as text: one row per layer (exact integers, kept/dense), then the totals.

    Totals give params in M, MACs in M or G, and FLOPs labelled as 2 × MACs.

    Example
    -------
    >>> print(format_counts(Counts(1000, 2000, 4000, 8000, (3,)), layers=False))
    params                     0.001 M of 0.004 M dense, 75.00% removed
    MACs                       0.002 M of 0.008 M dense, 75.00% removed
    FLOPs (= 2 x MACs)         0.004 M of 0.016 M dense, 75.00% removed
    """
    lines = []
    if layers and counts.layers:
        rows = [("layer", "type", "params", "dense params", "MACs", "dense MACs", "masked")]
        rows += [
            (
                layer.name or "<model>",
                layer.type,
                f"{layer.params:,}",
                f"{layer.dense_params:,}",
                f"{layer.macs:,}",
                f"{layer.dense_macs:,}",
                "yes" if layer.masked else "",
            )
            for layer in counts.layers
        ]
        widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
        for row in rows:
            cells = [
                cell.ljust(width) if col < 2 else cell.rjust(width)
                for col, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append("")
    lines.append(_total_line("params", counts.params, counts.dense_params, _millions))
    lines.append(_total_line("MACs", counts.macs, counts.dense_macs, _mega_or_giga))
    lines.append(_total_line("FLOPs (= 2 x MACs)", counts.flops, counts.dense_flops, _mega_or_giga))
    if counts.uncounted:
        lines.append(f"MACs not counted (no rule) for: {', '.join(counts.uncounted)}")
    return "\n".join(lines)
