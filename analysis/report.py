"""``report.html`` (one self-contained page, images embedded) and ``report.md`` of an analysis."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd


class Sentences(list[str]):
    """A report section of plain sentences, shown as a bulleted list."""


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"
    cells = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _image_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"/>'
        f"<figcaption>{html.escape(path.stem)}</figcaption></figure>"
    )


def write_reports(out: Path, title: str, sections: dict[str, Any], plots: list[Path]) -> tuple[Path, Path]:
    """``sections`` maps headings to DataFrames, ``Sentences`` (a bulleted list of plain
    sentences) or JSON-able values, shown in order."""
    body, md = [f"<h1>{html.escape(title)}</h1>"], [f"# {title}\n"]
    for heading, content in sections.items():
        body.append(f"<h2>{html.escape(heading)}</h2>")
        md.append(f"## {heading}\n")
        if isinstance(content, pd.DataFrame):
            body.append(content.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
            md.append(markdown_table(content))
        elif isinstance(content, Sentences):
            body.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in content) + "</ul>")
            md.append("".join(f"- {line}\n" for line in content))
        else:
            text = json.dumps(content, indent=2, default=str)
            body.append(f"<pre>{html.escape(text)}</pre>")
            md.append(f"```json\n{text}\n```\n")
    body.append("<h2>Plots</h2>")
    md.append("## Plots\n")
    for path in plots:
        body.append(_image_tag(path))
        md.append(f"![{path.stem}]({path.name})\n")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    html_path, md_path = out / "report.html", out / "report.md"
    html_path.write_text(page)
    md_path.write_text("\n".join(md))
    return html_path, md_path
