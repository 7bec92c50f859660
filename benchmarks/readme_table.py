"""The README's performance tables from full runs: `python benchmarks/readme_table.py A B`.

Prints Markdown rows in the README's form, every figure a ratio measured within a run (or, for
memory, bytes and objects per cached entry), one column per run: first the budget lines of
design.md (every figure of the runs that has a budget, with its verdict over all runs), then one
row per signature algorithm. Absolute times are left out on purpose: they move with the machine
and its load, the ratios much less. A ratio is the median of its per-round ratios; where the
ratio of the means over the same rounds is kept too (misses: it includes the rare full
collections), it follows in parentheses. A group or figure missing from a run prints "-".

A run may be given as `A.json+B.json`: run A with the groups that B (a run of some groups alone,
say a group rerun with a reference case added) measured in their place; the column keeps A's
name and the comment line above the table says which groups came from where.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")
# (column, figure label) of each verify group, in the per-algorithm table.
ALGORITHM_COLUMNS = (
    (
        "never seen ÷ minimal verifier, both keeping the result",
        "miss: bearerguard / minimal verifier, both keeping the result",
    ),
    (
        "cache off ÷ minimal verifier, no cache",
        "miss, cache off: bearerguard / minimal verifier, no cache",
    ),
    ("never seen ÷ PyJWT", "miss: bearerguard / PyJWT"),
    ("never seen ÷ authlib", "miss: bearerguard / authlib"),
    ("keeping the result: cache on ÷ off", "keeping the result: bearerguard cache on / off"),
    (
        "seen: `verify()` ÷ minimal verifier's hit",
        "hit: bearerguard verify() / minimal verifier, keeping",
    ),
)
# Figures without a budget that the README shows beside the budget lines.
INFORMATION = (
    ("asgi.starlette", "hit: middleware + requires() / bare app"),
    ("asgi.starlette", "hit: minimal guard, keeping / bare app"),
    ("asgi.starlette", "hit: middleware / minimal guard, keeping (both hits)"),
    ("http.uvicorn", "requests/s: minimal guard / bare app"),
    ("http.uvicorn", "requests/s: middleware / minimal guard"),
    ("wsgi.plain", "hit: middleware / bare app"),
    ("wsgi.flask", "hit: middleware / bare app"),
    ("asgi.fastapi", "hit: requires() / route without a dependency"),
    ("cache.fill", None),  # every figure of the group
    ("gc.pause", None),
    ("cache.memory", "per entry, bytes (RSS)"),
    ("cache.memory", "of which the token's own string"),
)


def _checks(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (group["name"], check["label"]): check
        for group in run["groups"]
        for check in group.get("checks", ())
    }


def _value(check: dict[str, Any] | None) -> str:
    if check is None:
        return "-"
    value, unit = check["value"], check["unit"]
    if unit == "x" and "ratio_of_means" in check:
        return f"{value:.2f} x ({check['ratio_of_means']:.2f} x)"
    if unit == "x":
        return f"{value:.2f} x"
    if unit == "ns":
        return f"{value / 1e6:.1f} ms" if value >= 1e6 else f"{value / 1e3:.2f} µs"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:.2f} {unit}"


def _budget(check: dict[str, Any]) -> str:
    sign = "≥" if check.get("at_least") else "≤"
    limit = {"value": check["budget"], "unit": check["unit"]}
    return f"{sign} {_value(limit)}"


def _verdict(found: Sequence[dict[str, Any] | None]) -> str:
    verdicts = {check["verdict"] for check in found if check is not None}
    if verdicts == {"ok"}:
        return "ok"
    if verdicts == {"over"}:
        return "**over**"
    return "mixed: " + " / ".join(c["verdict"] if c else "-" for c in found) if verdicts else "-"


def budget_rows(runs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """Every figure with a budget in any run, then the information figures, one row each."""
    tables = [_checks(run) for run in runs]
    keys: list[tuple[str, str]] = []
    for table in tables:
        keys += [
            key for key, check in table.items() if check["budget"] is not None and key not in keys
        ]
    lines = [
        "| group | figure | budget | " + " | ".join(names) + " | verdict |",
        "|---|---|---:|" + "---:|" * len(names) + "---|",
    ]
    for key in keys:
        found = [table.get(key) for table in tables]
        first = next(check for check in found if check is not None)
        cells = " | ".join(_value(check) for check in found)
        lines.append(f"| {key[0]} | {key[1]} | {_budget(first)} | {cells} | {_verdict(found)} |")
    for group, label in INFORMATION:
        wanted = [
            key
            for table in tables[:1]
            for key in table
            if key[0] == group and (label is None or key[1] == label) and key not in keys
        ]
        for key in wanted:
            cells = " | ".join(_value(table.get(key)) for table in tables)
            lines.append(f"| {key[0]} | {key[1]} | | {cells} | info |")
    return lines


def algorithm_rows(runs: Sequence[dict[str, Any]]) -> list[str]:
    """One row per algorithm: each cell the runs' values joined by " / "."""
    tables = [_checks(run) for run in runs]
    lines = [
        "| algorithm | " + " | ".join(column for column, _ in ALGORITHM_COLUMNS) + " |",
        "|---|" + "---:|" * len(ALGORITHM_COLUMNS),
    ]
    for alg in ALGORITHMS:
        group = f"verify.{alg}"
        if not any(key[0] == group for table in tables for key in table):
            continue
        cells = [
            " / ".join(_value(table.get((group, label))) for table in tables)
            for _, label in ALGORITHM_COLUMNS
        ]
        lines.append(f"| {alg} | " + " | ".join(cells) + " |")
    return lines


def load(spec: str) -> dict[str, Any]:
    """The run of `spec`: one result file, or `A.json+B.json` (B's groups replace A's)."""
    first: dict[str, Any]
    first, *others = (json.loads(Path(part).read_text()) for part in spec.split("+"))
    for other in others:
        replaced = {group["name"]: group for group in other["groups"]}
        first["groups"] = [replaced.pop(g["name"], g) for g in first["groups"]]
        first["groups"] += replaced.values()
    return first


def render(specs: Sequence[str]) -> str:
    runs = [load(spec) for spec in specs]
    names = [Path(spec.split("+")[0]).stem for spec in specs]
    loads = ", ".join(
        f"{name}: load {run['machine']['load_average'][0]} → {run.get('load_after', ['?'])[0]}"
        for name, run in zip(names, runs, strict=True)
    )
    quick = [name for name, run in zip(names, runs, strict=True) if run["settings"]["quick"]]
    lines = [
        f"<!-- benchmarks/readme_table.py {' '.join(specs)}; {loads} -->",
        *(["<!-- QUICK SMOKE RUNS, NOT RESULTS: " + ", ".join(quick) + " -->"] if quick else []),
        "",
        *budget_rows(runs, names),
        "",
        f"Per algorithm ({' / '.join(names)}):",
        "",
        *algorithm_rows(runs),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="result JSON files of full runs (A.json+B.json)")
    args = parser.parse_args()
    print(render(args.results), end="")


if __name__ == "__main__":
    main()
