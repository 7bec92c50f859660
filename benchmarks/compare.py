"""Put the results of several runs side by side: `python benchmarks/compare.py A.json B.json ...`.

Prints a Markdown table per group: each case's median and each figure (ratio, slope, limit) in
every run, matched by name. Runs on different machines or under different load compare badly;
ratios measured within one run (minimal verifier, PyJWT) travel best.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _label(path: Path, results: dict[str, Any]) -> str:
    return f"{path.stem} (load {results['machine']['load_average'][0]})"


def _time(ns: float) -> str:
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def _median(case: dict[str, Any]) -> str:
    unit = case.get("unit", "ns")  # a probe's series in bytes or objects (cache.memory)
    return _time(case["median_ns"]) if unit == "ns" else f"{case['median_ns']:,.2f} {unit}"


def _figure(check: dict[str, Any]) -> str:
    value, unit = check["value"], check["unit"]
    if unit == "ns":
        return _time(value)
    return f"{value:.3f} x" if unit == "x" else f"{value:.2f} {unit}"


def compare(paths: list[Path], *, groups: list[str]) -> str:
    runs = [json.loads(path.read_text()) for path in paths]
    header = "| | " + " | ".join(_label(p, r) for p, r in zip(paths, runs, strict=True)) + " |"
    rule = "|---|" + "---:|" * len(runs)
    lines: list[str] = []
    names = [g["name"] for g in runs[0]["groups"] if not groups or g["name"] in groups]
    for run in runs:  # a group skipped in a run (no load generator there) has no figures
        run["groups"] = [g for g in run["groups"] if "cases" in g]
    for name in names:
        found = [next((g for g in r["groups"] if g["name"] == name), None) for r in runs]
        lines += ["", f"### {name}", "", header, rule]
        for case in found[0]["cases"] if found[0] else []:
            cells = [
                next((_median(c) for c in g["cases"] if c["name"] == case["name"]), "") if g else ""
                for g in found
            ]
            lines.append(f"| {case['name']} | " + " | ".join(cells) + " |")
        for check in found[0]["checks"] if found[0] else []:
            cells = [
                next((_figure(c) for c in g["checks"] if c["label"] == check["label"]), "")
                if g
                else ""
                for g in found
            ]
            lines.append(f"| **{check['label']}** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="result JSON files, oldest first")
    parser.add_argument("--group", action="append", default=[], help="only these groups")
    args = parser.parse_args()
    print(compare(args.results, groups=args.group))


if __name__ == "__main__":
    main()
