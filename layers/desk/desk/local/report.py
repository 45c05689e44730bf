"""A self-contained HTML report: one file, figures embedded as PNG data URIs, no network.

Used by the demo. matplotlib is a development dependency; this module is never packaged into a
Lambda function.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1d2330;
line-height:1.45;padding:0 1rem}
h1{font-size:1.8rem;margin-bottom:.2rem} h2{border-bottom:2px solid #e3e7ef;padding-bottom:.3rem;margin-top:2.4rem}
.meta{color:#5a6478;font-size:.9rem} figure{margin:1rem 0} img{max-width:100%;border:1px solid #e3e7ef}
figcaption{color:#5a6478;font-size:.88rem} table{border-collapse:collapse;margin:.8rem 0;font-size:.86rem}
th,td{border:1px solid #d9dee8;padding:.25rem .5rem;text-align:right} th{background:#f3f5f9}
td:first-child,th:first-child{text-align:left}
.note{background:#f7f9fc;border-left:3px solid #8aa2d6;padding:.5rem .8rem}
nav a{margin-right:1rem}
"""


@dataclass
class Section:
    title: str
    parts: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    def table(self, frame: pd.DataFrame | pd.Series, caption: str = "", float_format: str = "{:,.4f}") -> None:
        df = frame.to_frame() if isinstance(frame, pd.Series) else frame

        def fmt(v: Any) -> str:
            return float_format.format(v) if isinstance(v, float) else str(v)

        body = df.to_html(formatters=dict.fromkeys(df.columns, fmt), border=0, escape=True)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f"<figure>{body}{cap}</figure>")

    def figure(self, fig: Any, caption: str = "") -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">{cap}</figure>'
        )
        import matplotlib.pyplot as plt

        plt.close(fig)


@dataclass
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        sec = Section(title)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in self.sections)
        body = "\n".join(
            f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for s in self.sections
        )
        return (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"<p class='meta'>{html.escape(self.subtitle)}</p><nav>{nav}</nav>{body}</body></html>"
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
