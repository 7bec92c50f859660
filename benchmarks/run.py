"""Run the benchmark groups and write the results: `python benchmarks/run.py [--quick] [GROUP ...]`.

Groups are registered by the `bench_*.py` modules next to this file; `--list` shows them. Results
go to `benchmarks/results/NAME.json` (every sample) and `NAME.md` (the table).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="group names or prefixes (default: all)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: few rounds")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 31, quick 3)")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results directory")
    parser.add_argument("--name", default=None, help="results file name (default: latest/quick)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a figure is over budget")
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="the garbage collector off around each timed pass (the old method; comparison only)",
    )
    parser.add_argument(
        "--profile", metavar="TEXT", help="profile the cases whose name contains TEXT; no results"
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    harness = importlib.import_module("harness")
    report = importlib.import_module("report")
    # The verification groups first: the growth groups and the rest read as variations of them.
    modules = sorted(HERE.glob("bench_*.py"), key=lambda p: (p.stem != "bench_verify", p.stem))
    for module in modules:
        importlib.import_module(module.stem)
    if args.list:
        for entry in harness.REGISTRY.values():
            print(f"{entry.name:24} {entry.doc}")
        return 0

    settings = harness.Settings.for_mode(quick=args.quick)
    if args.rounds:
        settings = harness.Settings(**{**vars(settings), "rounds": args.rounds})
    if args.no_gc:
        settings = harness.Settings(**{**vars(settings), "gc": False})
    if args.profile:
        for entry in harness.select(args.groups):
            harness.profile(entry, settings, args.profile)
        return 0
    results = {
        "command": " ".join(["python benchmarks/run.py", *(argv or sys.argv[1:])]),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "settings": vars(settings),
        "machine": report.machine(),
        "groups": [],
    }
    started = time.perf_counter()
    for entry in harness.select(args.groups):
        print(f"{entry.name} ...", end=" ", flush=True)
        try:
            group = harness.run_group(entry, settings)
        except harness.Skip as skip:
            print(f"skipped: {skip}")
            results["groups"].append({"name": entry.name, "doc": entry.doc, "skipped": str(skip)})
            continue
        results["groups"].append(group)
        over = [c["label"] for c in group["checks"] if c["verdict"] == "over"]
        print(f"{group['seconds']} s" + (f" (over budget: {'; '.join(over)})" if over else ""))
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    name = args.name or ("quick" if args.quick else "latest")
    for path in report.write(results, args.out, name):
        print(f"wrote {path}")
    checks = [c for g in results["groups"] for c in g.get("checks", ())]
    over_budget = any(c["verdict"] == "over" for c in checks)
    return 1 if args.check and over_budget else 0


if __name__ == "__main__":
    sys.exit(main())
