"""Short runbooks per detector id, kept as review/runbooks/<detector>.md and rendered to safe HTML
(a tiny subset of Markdown: ``## headings``, ``- lists``, paragraphs; everything escaped)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from markupsafe import Markup, escape

RUNBOOKS = Path(__file__).resolve().parent / "runbooks"


@lru_cache(maxsize=64)
def runbook(detector: str) -> Markup | None:
    if not detector.replace("_", "").isalnum():
        return None
    path = RUNBOOKS / f"{detector}.md"
    if not path.is_file():
        return None
    return render(path.read_text(encoding="utf-8"))


def render(text: str) -> Markup:
    out: list[str] = []
    para: list[str] = []
    in_list = False

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append(f"<p>{escape(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#"):
            flush()
            out.append(f"<h4>{escape(line.lstrip('#').strip())}</h4>")
        elif in_list and not para and raw[:1].isspace():  # a list item's continuation line
            out[-1] = out[-1][: -len("</li>")] + f" {escape(line)}</li>"
        elif line.startswith(("- ", "* ", "1. ")):
            if para:
                out.append(f"<p>{escape(' '.join(para))}</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{escape(line.split(' ', 1)[1])}</li>")
        else:
            para.append(line)
    flush()
    return Markup("".join(out))
