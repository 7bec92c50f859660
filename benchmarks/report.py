"""What a run ran on, and its results as JSON (everything, raw samples included) and Markdown."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends.openssl.backend import backend

import bearerguard


def machine() -> dict[str, Any]:
    """CPU, cores, load, Python and the crypto stack: what a reader needs to compare figures."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openssl": backend.openssl_version_text(),
        "cryptography": version("cryptography"),
        "pyjwt": version("pyjwt"),
        "bearerguard": _bearerguard_version(),
        "commit": _commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _bearerguard_version() -> str:
    return f"{bearerguard.__version__} ({Path(bearerguard.__file__).parent})"


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def write(results: dict[str, Any], directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _time(ns: float) -> str:
    if abs(ns) >= 1_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    if abs(ns) >= 1000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns:.0f} ns"


def _figure(value: float, unit: str) -> str:
    if unit == "ns":
        return _time(value)
    if unit == "x":
        return f"{value:.3f} x"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:.2f} {unit}"


def markdown(results: dict[str, Any]) -> str:
    info, settings = results["machine"], results["settings"]
    quick = settings["quick"]
    lines = [
        f"# Benchmark results ({'quick smoke run' if quick else 'full run'})",
        "",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['system']}",
        f"- {info['python']}; {info['openssl']}; cryptography {info['cryptography']}; "
        f"PyJWT {info['pyjwt']}",
        f"- bearerguard {info['bearerguard']}; benchmarks at commit {info['commit']}",
        f"- load average before / after: {info['load_average']} / {results['load_after']}",
        f"- {results['settings']['rounds']} rounds per case, interleaved; median, and the "
        "interquartile range across rounds; ratios are taken round by round",
        f"- garbage collector {'on' if settings.get('gc', False) else 'OFF (the old method)'}"
        "; each call on a fresh copy of its input; a never-seen token is one of a stream through"
        f" a full cache ({settings.get('cache_size', '?')} entries) and is inserted,"
        " evictions included",
        f"- command: `{results['command']}`, {results['started']}, {results['seconds']} s",
    ]
    for group in results["groups"]:
        lines += ["", f"## {group['name']}", "", group["doc"], ""]
        if "skipped" in group:
            lines.append(f"Skipped: {group['skipped']}")
            continue
        lines += [
            "| case | median | mean | IQR | spread | full collections while timed |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for case in group["cases"]:
            unit = case.get("unit", "ns")
            mean = sum(case["samples_ns"]) / len(case["samples_ns"])
            count = case.get("full_collections", 0)
            full = f"{count} ({_time(case.get('full_collections_ns', 0))})" if count else ""
            lines.append(
                f"| {case['name']} | {_figure(case['median_ns'], unit)} | {_figure(mean, unit)} | "
                f"{_figure(case['q1_ns'], unit)} to {_figure(case['q3_ns'], unit)} | "
                f"{case['spread_pct']:.1f} % | {full} |"
            )
        if group["checks"]:
            lines += [
                "",
                "| figure | median | IQR | budget | verdict |",
                "|---|---:|---:|---:|---|",
            ]
            for check in group["checks"]:
                unit = check["unit"]
                sign = "≥" if check.get("at_least") else "≤"
                limit = check["budget"]
                budget = "" if limit is None else f"{sign} {_figure(limit, unit)}"
                value = _figure(check["value"], unit)
                if "ratio_of_means" in check:
                    value = f"{value} (ratio of means: {_figure(check['ratio_of_means'], unit)})"
                if "median_of_rounds" in check:
                    rounds = _figure(check["median_of_rounds"], unit)
                    value = f"{value} (the mean; median of rounds {rounds})"
                lines.append(
                    f"| {check['label']} | {value} | "
                    f"{_figure(check['q1'], unit)} to {_figure(check['q3'], unit)} | "
                    f"{budget} | {check['verdict']} |"
                )
        notes = list(group["notes"])
        if group.get("rounds", results["settings"]["rounds"]) != results["settings"]["rounds"]:
            notes.append(f"{group['rounds']} rounds (each case a bounded run of its own)")
        if notes:
            lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"
