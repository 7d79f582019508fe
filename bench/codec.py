"""Decode + validate per event (orjson.loads then stream.contract.codec.validate, as the pipeline does),
in CPU microseconds, on three shapes of the replay workload's events: as generated (closed: every field is
an Event attribute), with extra ECS fields (as normalised vendor logs carry), and with a dotted key.

    python bench/codec.py                              # this tree
    python bench/codec.py --base /tmp/base             # beside another checkout, alternated rounds

``--base``: a checkout of an earlier commit (``git archive <commit> | tar -x -C /tmp/base``); its
``stream/contract/codec.py`` (before session 6) or ``stream/contract/codec.py`` is loaded in this process with its
own ``detectors/event.py``, so both run on the same lines in the same process.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import timeit
from pathlib import Path
from types import ModuleType

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def load_base(base: Path) -> ModuleType:
    """The codec of another checkout, with its own Event (swapped in while it is imported)."""
    import detectors.event as ours

    sys.modules["detectors.event"] = _load(base / "detectors" / "event.py", "base_detectors_event")
    try:
        old = base / "stream" / "schema.py"
        if old.exists():
            return _load(old, "base_schema")
        raise SystemExit(f"{base}: only checkouts with stream/schema.py (before stream/contract/) are supported")
    finally:
        sys.modules["detectors.event"] = ours


def shapes(n: int) -> dict[str, list[bytes]]:
    from bench.replay import make_lines

    closed = make_lines(n, max(1, n // 10), time.time())

    def extra(line: bytes) -> bytes:
        doc = orjson.loads(line)
        # what stream/normalise adds to nearly every vendor event (tests/data/scenarios, sources)
        doc["event"].update({"dataset": "o365.audit", "module": "o365", "provider": "SharePoint"})
        doc["source"] = {"ip": "192.0.2.10"}
        return orjson.dumps(doc)

    def dotted(line: bytes) -> bytes:
        doc = orjson.loads(line)
        doc["user.id"] = doc.pop("user")["id"]
        return orjson.dumps(doc)

    return {"closed": closed, "extra_fields": [extra(x) for x in closed], "dotted_key": [dotted(x) for x in closed]}


def per_event_us(codec: ModuleType, lines: list[bytes], number: int) -> float:
    validate, limits, loads = codec.validate, codec.DEFAULT_LIMITS, orjson.loads

    def run() -> None:
        for line in lines:
            validate(loads(line), line, limits, keep_doc=False)

    # CPU time of this process: on a shared machine, wall time mostly measures the other processes
    return timeit.Timer(run, timer=time.process_time).timeit(number) / number / len(lines) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=100)
    parser.add_argument("--base", type=Path)
    args = parser.parse_args()
    from stream.contract import codec

    sides = {"this": codec}
    if args.base is not None:
        sides = {"base": load_base(args.base), **sides}
    for shape, lines in shapes(args.events).items():
        best = {name: min(per_event_us(mod, lines, args.number) for _ in range(1)) for name, mod in sides.items()}
        for _ in range(args.rounds - 1):  # alternated rounds, best of each
            for name, mod in sides.items():
                best[name] = min(best[name], per_event_us(mod, lines, args.number))
        text = "  ".join(f"{name} {us:.2f} us" for name, us in best.items())
        ratio = f"  this/base {best['this'] / best['base']:.2f}" if "base" in best else ""
        print(f"{shape:13} {text}{ratio}")


if __name__ == "__main__":
    main()
