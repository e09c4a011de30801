"""The printed results table of `gentool eval`."""

from __future__ import annotations

import math

from gentool.evaluate.suites import Row


def _number(value: float) -> str:
    """4 significant digits; a metric left undefined (NaN, e.g. the reverse KL of samples with no
    high-quality one) is shown as a dash."""
    if math.isnan(value):
        return "—"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"


def format_table(rows: list[Row], title: str, note: str | None = None) -> str:
    """A plain-text table: metric, the model's value, and the references beside it."""
    references = ["; ".join(f"{label} {_number(value)}" for label, _, value in row.references)
                  for row in rows]
    width = max([len("metric")] + [len(row.label) for row in rows])
    lines = [title, f"{'metric':<{width}}  {'model':>11}  reference",
             f"{'-' * width}  {'-' * 11}  {'-' * 9}"]
    lines += [f"{row.label:<{width}}  {_number(row.value):>11}  {ref}".rstrip()
              for row, ref in zip(rows, references)]
    if note:
        lines.append(f"note: {note}")
    return "\n".join(lines)
