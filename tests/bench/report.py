"""The bench's report: the results table, per-step table, scaling ratios and targets.

    python tests/bench/report.py bench-results/latest.json                 # render one run again
    python tests/bench/report.py bench-results/A.json bench-results/B.json  # merge runs (e.g. S,M + L)

Merging keeps the newest case per (server, scale, source release), so an L run made separately
from the S and M run still gets its L/M ratios. ``--json OUT`` writes the merged result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TARGETS = {"noop_s": 0.3, "preflight_s": 5.0, "rss_mb": 300.0, "data_L_s": 300.0, "big_ddl_s": 10.0}
RAGFLOW_REFERENCE = {"tenant_llm_rows": 95_000, "seconds": 330.0}  # RAGFlow's own script here: ~5-6 min
SCALE_ORDER = {"XS": 0, "S": 1, "M": 2, "L": 3}


def finish(result: dict[str, Any]) -> str:
    """Add ratios and targets to a run's result; return its Markdown report."""
    result["cases"].sort(key=lambda c: (c["server"], SCALE_ORDER.get(c["scale"], 9), [-int(x) for x in c["from"].lstrip("v").split(".")]))
    result["ratios"] = ratios(result["cases"])
    result["targets"] = targets(result["cases"])
    return render(result)


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    results = sorted(results, key=lambda r: r.get("started", ""))
    merged = dict(results[-1])
    merged["servers"] = {k: v for r in results for k, v in r.get("servers", {}).items()}
    cases: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in results:
        for c in r["cases"]:
            cases[(c["server"], c["scale"], c["from"])] = c
    merged["cases"] = list(cases.values())
    merged["started"] = ", ".join(r["started"] for r in results)
    merged["merged_from"] = [r.get("started") for r in results]
    return merged


def ratios(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = {(c["server"], c["from"], c["scale"]): c for c in cases if "error" not in c}
    out = []
    for (server, release, scale), big in sorted(ok.items()):
        smaller = {"M": "S", "L": "M"}.get(scale)
        small = ok.get((server, release, smaller)) if smaller else None
        if not small:
            continue
        def r(key: str, a: dict[str, Any] = big, b: dict[str, Any] = small) -> float | None:
            return round(a[key] / b[key], 2) if b.get(key) else None
        out.append({"server": server, "from": release, "ratio": f"{scale}/{smaller}", "upgrade": r("wall_s"),
                    "schema": r("schema_s"), "data": r("data_s"), "peak_rss": r("peak_rss_mb"),
                    "noop": round(big["noop"]["median_s"] / small["noop"]["median_s"], 2),
                    "generate": round(big["generate"]["seconds"] / small["generate"]["seconds"], 2)})
    return out


def targets(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = [c for c in cases if "error" not in c]
    out = []

    def add(name: str, limit: str, worst: float | None, met: bool | None, where: str = "") -> None:
        out.append({"target": name, "limit": limit, "measured": worst, "met": met, "where": where})

    if ok:
        worst = max(ok, key=lambda c: c["noop"]["median_s"])
        add("no-op run, wall from process start (median)", "<= 0.3 s", worst["noop"]["median_s"],
            worst["noop"]["median_s"] <= TARGETS["noop_s"], f"{worst['server']} {worst['scale']} {worst['from']}")
        worst = max(ok, key=lambda c: c.get("preflight_s", 0))
        add("preflight (every pending step checked before the first write)", "a few seconds (<= 5 s)",
            worst.get("preflight_s"), worst.get("preflight_s", 0) <= TARGETS["preflight_s"],
            f"{worst['server']} {worst['scale']} {worst['from']}")
        worst = max(ok, key=lambda c: max(c["peak_rss_mb"], c["noop"]["peak_rss_mb"]))
        rss = max(worst["peak_rss_mb"], worst["noop"]["peak_rss_mb"])
        add("peak RSS of the tool", "< 300 MB", rss, rss < TARGETS["rss_mb"],
            f"{worst['server']} {worst['scale']} {worst['from']}")
        ddl = [(s, c) for c in ok for s in c["statements"]["big_table_ddl"]]
        if ddl:
            s, c = max(ddl, key=lambda x: x[0].get("duration_s") or 0)
            add("schema DDL on document/task/tenant_llm", "seconds (instant/in-place)", s.get("duration_s"),
                (s.get("duration_s") or 0) < TARGETS["big_ddl_s"] and not c["statements"]["copy"],
                f"{c['server']} {c['scale']} {c['from']}: {(s.get('sql') or '')[:90]}")
        copies = [c for c in ok if c["statements"]["copy"]]
        add("no ALTER falls back to COPY", "none", len(copies), not copies,
            ", ".join(f"{c['server']} {c['scale']} {c['from']}" for c in copies))
        large = [c for c in ok if c["scale"] == "L" and c["data_s"] > 0]
        if large:
            worst = max(large, key=lambda c: c["data_s"])
            add("L: whole data migration", "<= 300 s", worst["data_s"], worst["data_s"] <= TARGETS["data_L_s"],
                f"{worst['server']} {worst['from']}")
        mids = [c for c in ok if c["scale"] == "M" and c["data_s"] > 0]
        if mids:
            worst = max(mids, key=lambda c: c["data_s"] * RAGFLOW_REFERENCE["tenant_llm_rows"] / c["tenant_llm_rows"])
            ours = worst["data_s"] * RAGFLOW_REFERENCE["tenant_llm_rows"] / worst["tenant_llm_rows"]
            speedup = round(RAGFLOW_REFERENCE["seconds"] / ours, 1) if ours else None
            add("faster than RAGFlow's script (~330 s for 95k tenant_llm)", ">= 10x (aim 50x)", speedup,
                bool(speedup and speedup >= 10), f"{worst['server']} M {worst['from']}, data stages {worst['data_s']}s")
    return out


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"# ragflow-migrate benchmark, {result['started']}",
             f"machine: {m.get('cores')} cores ({m.get('cpu', '?')}), {m.get('ram_gb', '?')} GB RAM, "
             f"{m.get('platform')}, Python {m.get('python')}; tool {m.get('tool_version')} (commit {m.get('commit', '?')}"
             + (f" + uncommitted src, digest {m.get('src_digest')}" if m.get("src_uncommitted_changes") else "") + ")",
             "servers: " + ", ".join(f"{k} {v}" for k, v in result["servers"].items())
             + f"; innodb_buffer_pool_size={result['settings']['buffer_pool']}",
             "", "| server | scale | from | tenant_llm rows | DB MB | generate s | upgrade s | preflight s | schema s "
             "| data s | verify s | tenant_llm rows/s | peak RSS MB | no-op s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cases"]:
        if "error" in c:
            lines.append(f"| {c['server']} | {c['scale']} | {c['from']} | FAILED: {c['error'][:120]} ||||||||||")
            continue
        lines.append(
            f"| {c['server']} | {c['scale']} | {c['from']} | {c['tenant_llm_rows']:,} | {c['size_mb']:.0f} "
            f"| {c['generate']['seconds']:.1f} | {c['wall_s']:.1f} | {c.get('preflight_s', 0):.2f} "
            f"| {c['schema_s']:.1f} | {c['data_s']:.1f} "
            f"| {c['verify_s']:.1f} | {c.get('tenant_llm_rows_per_s', '–')} | {c['peak_rss_mb']:.0f} "
            f"| {c['noop']['median_s']:.2f} |")
    lines += ["", "Per step (seconds; rows/s where the step reports rows):", ""]
    ok = [c for c in result["cases"] if "error" not in c]
    names: list[str] = []
    for c in ok:
        for s in c["steps"]:
            if s["step"] not in names:
                names.append(s["step"])
    if ok:
        head = "| step | " + " | ".join(f"{c['server'].split('-')[0]} {c['scale']} {c['from']}" for c in ok) + " |"
        lines += [head, "|---|" + "---:|" * len(ok)]
        for name in names:
            cells = []
            for c in ok:
                s = next((s for s in c["steps"] if s["step"] == name), None)
                cells.append("" if s is None else f"{s['duration_s']:.2f}"
                             + (f" ({s['rows_per_s']:,}/s)" if s.get("rows_per_s") else ""))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result["ratios"]:
        lines += ["", "Scaling (10x the rows each; linear = 10, flat memory = 1):", "",
                  "| server | from | ratio | upgrade | schema | data | peak RSS | no-op | generate |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["ratios"]:
            lines.append(f"| {r['server']} | {r['from']} | {r['ratio']} | {r['upgrade']} | {r['schema']} | {r['data']} "
                         f"| {r['peak_rss']} | {r['noop']} | {r['generate']} |")
    if result["targets"]:
        lines += ["", "Targets:", "", "| target | limit | measured (worst) | met | where |", "|---|---|---:|---|---|"]
        for t in result["targets"]:
            met = "yes" if t["met"] else ("no" if t["met"] is not None else "?")
            lines.append(f"| {t['target']} | {t['limit']} | {t['measured']} | {met} | {t['where']} |")
    slow = [(s, c) for c in ok for s in c["statements"]["slowest"][:3]]
    if slow:
        lines += ["", "Slowest statements (per case, top 3):", ""]
        for s, c in slow:
            lines.append(f"- {c['server']} {c['scale']} {c['from']} · {s['step']} · {s['duration_s']}s"
                         + (f" · {s['algorithm']}" if s.get("algorithm") else "")
                         + f" · `{(s.get('sql') or '')[:140]}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="write the merged result here")
    args = parser.parse_args(argv)
    result = merge([json.loads(f.read_text()) for f in args.files])
    text = finish(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
