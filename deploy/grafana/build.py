"""Write deploy/grafana/dashboards/*.json from dashboards.py; ``--check`` only compares (exit 1 if any differ).

    python deploy/grafana/build.py          # regenerate after editing dashboards.py
    python deploy/grafana/build.py --check  # what the test runs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dashboards import DASHBOARDS  # noqa: E402
from model import render  # noqa: E402

OUT = HERE / "dashboards"


def generated() -> dict[Path, str]:
    return {OUT / d.file: json.dumps(render(d), indent=2) + "\n" for d in DASHBOARDS}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in generated().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    if check and stale:
        names = ", ".join(p.name for p in stale)
        print(f"{names} differ from deploy/grafana/dashboards.py: edit dashboards.py and run "
              "`python deploy/grafana/build.py`", file=sys.stderr)
        return 1
    print(f"{len(DASHBOARDS)} dashboards {'up to date' if check else 'written'}"
          + (f" ({len(stale)} changed)" if stale and not check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
