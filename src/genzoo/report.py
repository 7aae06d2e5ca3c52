"""``genzoo report RUN [RUN ...] --out report.html``: one self-contained HTML page per set of runs.

For every run: its config, the training curves, the per-epoch grids over training, every plot that
applies to the model, and its evaluation (eval.json) beside the real-vs-real floors; for several
runs, a side-by-side comparison first. Pictures are inlined as base64 PNGs, so the file opens
anywhere, with no network and nothing beside it.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
import time
from pathlib import Path

from . import __version__
from .config import to_toml
from .errors import GenzooError
from .plots import PlotOptions, kinds_for, make_plot
from .runs import Run, read_metrics

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d1d1f; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f6; }
pre { background: #f7f7f9; border: 1px solid #e3e3e8; padding: .7rem; font-size: .8rem; overflow-x: auto; }
figure { margin: 0; } figcaption { font-size: .85rem; color: #555; margin: .2rem 0 1rem; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
.plots img { width: 100%; height: auto; border: 1px solid #eee; image-rendering: pixelated; }
.note { color: #777; font-size: .85rem; }
"""


def _png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def evaluation(run: Run) -> dict | None:
    """The run's eval.json (``genzoo evaluate``), if it has one."""
    for folder in (run.output_dir, run.path):
        path = folder / "eval.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                return None
    return None


def summary(run: Run) -> dict[str, str]:
    """One row of the comparison table."""
    try:
        _, epochs = read_metrics(run.path)
    except GenzooError:
        epochs = []
    row = {"run": html.escape(run.name), "model": html.escape(run.config.model),
           "epochs": str(epochs[-1]["epoch"]) if epochs else "0",
           "train time": f"{sum(e['seconds'] for e in epochs) / 60:.1f} min" if epochs else "-",
           "test loss": _number(epochs[-1].get("test/loss")) if epochs else "-"}
    result = evaluation(run)
    for key in ("fd", "classifier_score", "classes_covered", "conditional_accuracy", "nll", "reconstruction_mse"):
        if result and key in result["metrics"]:
            floor = result["floors"].get(key)
            row[key] = _number(result["metrics"][key]) + (f" ({_number(floor)})" if floor is not None else "")
    return row


def run_section(run: Run, index: int, scratch: Path, seed: int) -> str:
    parts = [f'<h2 id="run-{index}">{html.escape(run.name)}: {html.escape(run.config.model)}</h2>']
    result = evaluation(run)
    if result:
        rows = [[html.escape(name), _number(value), _number(result["floors"].get(name, ""))]
                for name, value in result["metrics"].items()]
        parts += ["<h3>Evaluation</h3>", _table(["metric", "value", "real-vs-real floor"], rows),
                  f'<p class="note">protocol: {html.escape(json.dumps(result["protocol"]))}</p>']
    else:
        parts.append(f'<p class="note">No evaluation yet: <code>genzoo evaluate {html.escape(run.name)}</code> '
                     "adds one.</p>")
    figures = []
    for kind in ["losses", "progress", *[k for k in kinds_for(run.model) if k not in ("losses", "progress")]]:
        out = scratch / f"{index}-{kind}.png"
        try:
            make_plot(run, kind, out, PlotOptions(seed=seed))
        except GenzooError as exc:
            figures.append(f'<figure><figcaption>{html.escape(kind)}: not drawn ({html.escape(str(exc))})'
                           "</figcaption></figure>")
            continue
        figures.append(f'<figure><img src="{_png(out)}" alt="{html.escape(kind)}">'
                       f"<figcaption>{html.escape(kind)}</figcaption></figure>")
    parts += ["<h3>Pictures</h3>", f'<div class="plots">{"".join(figures)}</div>',
              "<h3>Config</h3>", f"<pre>{html.escape(to_toml(run.config))}</pre>"]
    return "\n".join(parts)


def build_report(runs: list[Run], *, seed: int = 0) -> str:
    """The HTML of a report on ``runs`` (loaded runs or zoo models)."""
    title = "genzoo report: " + ", ".join(run.name for run in runs)
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">genzoo {__version__}, {time.strftime("%Y-%m-%d %H:%M")}; every picture drawn '
            f"from the run by genzoo (seed {seed}).</p>"]
    rows = [summary(run) for run in runs]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    body += ["<h2>Comparison</h2>" if len(runs) > 1 else "<h2>Summary</h2>",
             _table(columns, [[row.get(c, "-") if c != "run" else f'<a href="#run-{i}">{row[c]}</a>'
                               for c in columns] for i, row in enumerate(rows)]),
             '<p class="note">Values in parentheses: the real-vs-real floor of the same metric.</p>']
    with tempfile.TemporaryDirectory(prefix="genzoo-report-") as scratch:
        body += [run_section(run, i, Path(scratch), seed) for i, run in enumerate(runs)]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
