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

TARGETS = {"noop_s": 0.3, "preflight_s": 5.0, "rss_mb": 100.0, "big_ddl_s": 10.0,
           "data_M_floor_ratio": 1.5, "data_M_mariadb_s": 11.0, "data_L_s": {"mariadb": 150.0, "mysql": 200.0}}
#: RAGFlow's own path (its v0.27.0 startup and migration script), measured earlier on this machine kind:
#: M, MariaDB 10.11, v0.25.6 data, RAGFlow's catalogue; seconds per stage as the tool names them.
RAGFLOW_REFERENCE: dict[str, Any] = {
    "what": "M, MariaDB 10.11, v0.25.6 data, 10,000 tenants, 94,634 tenant_llm rows, RAGFlow's catalogue",
    "tenant_llm_rows": 94_634, "schema_s": 3.3, "wall_s": 579.6, "peak_rss_mb": 498.0,
    "stages": {"data tenant_model_provider": 1.1, "data tenant_model_instance": 2.0, "data tenant_model": 1.6,
               "data model_id_config": 50.4, "seeding + merge": 345.3, "data tenant_model_id_migration": 175.2},
}
RAGFLOW_REFERENCE["data_s"] = round(sum(RAGFLOW_REFERENCE["stages"].values()), 1)
SCALE_ORDER = {"XS": 0, "S": 1, "M": 2, "L": 3}
FLAVORS = {"mariadb": "MariaDB", "mysql": "MySQL", "postgres": "PostgreSQL"}
SEED_MERGE = ("data tenant_model_seeding", "data model_type_merge")


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
        add("peak RSS of the tool", "<= 100 MB", rss, rss <= TARGETS["rss_mb"],
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
        floored = [c for c in ok if c.get("floor")]
        if floored:
            bad = [c for c in floored if not c["floor"].get("match")]
            add("the floor's end state equals the tool's", "every case", f"{len(floored) - len(bad)}/{len(floored)}",
                not bad, ", ".join(f"{c['server']} {c['scale']} {c['from']}" for c in bad))
        mids = [c for c in ok if c["scale"] == "M" and c["data_s"] > 0]
        for flavor, name in FLAVORS.items():
            mine = [c for c in mids if c["server"].startswith(flavor)]
            with_floor = [c for c in mine if floor_data(c)]
            if with_floor:
                worst = max(with_floor, key=lambda c: c["data_s"] / floor_data(c))
                ratio = round(worst["data_s"] / floor_data(worst), 2)
                add(f"M {flavor}: data stages vs the floor", "<= 1.5x the floor", ratio,
                    ratio <= TARGETS["data_M_floor_ratio"],
                    f"{worst['from']}: tool {worst['data_s']:.1f} s, floor {floor_data(worst):.1f} s")
            if mine:
                worst = max(mine, key=lambda c: c["data_s"])
                limit = m_data_limit(cases, worst)
                add(f"M {flavor}: data stages", "<= 11 s" if flavor == "mariadb" else
                    f"<= 11 s x ({name} floor / MariaDB floor)" + (f" = {limit:.1f} s" if limit else ""),
                    worst["data_s"], None if limit is None else worst["data_s"] <= limit, f"from {worst['from']}")
        for flavor, name in FLAVORS.items():
            large = [c for c in ok if c["scale"] == "L" and c["data_s"] > 0 and c["server"].startswith(flavor)]
            if large:
                worst = max(large, key=lambda c: c["data_s"])
                fixed = TARGETS["data_L_s"].get(flavor)
                limit = fixed or relative_limit(cases, worst, TARGETS["data_L_s"]["mariadb"])
                add(f"L {flavor}: data stages", f"<= {fixed:.0f} s" if fixed else
                    f"<= {TARGETS['data_L_s']['mariadb']:.0f} s x ({name} floor / MariaDB floor)"
                    + (f" = {limit:.1f} s" if limit else ""),
                    worst["data_s"], None if limit is None else worst["data_s"] <= limit, f"from {worst['from']}")
        same_kind = [c for c in mids if c["server"].startswith("mariadb")]  # RAGFlow's figures are MariaDB's
        if same_kind:
            ref = RAGFLOW_REFERENCE
            worst = max(same_kind, key=lambda c: c["data_s"] * ref["tenant_llm_rows"] / c["tenant_llm_rows"])
            ours = worst["data_s"] * ref["tenant_llm_rows"] / worst["tenant_llm_rows"]
            speedup = round(ref["data_s"] / ours, 1) if ours else None
            add(f"faster than RAGFlow's own path ({ref['data_s']:.0f} s of data stages for 94,634 tenant_llm rows)",
                ">= 10x (aim 50x)", speedup, bool(speedup and speedup >= 10),
                f"{worst['server']} M {worst['from']}, data stages {worst['data_s']}s (per tenant_llm row)")
    return out


def floor_data(case: dict[str, Any]) -> float | None:
    f = case.get("floor") or {}
    return f.get("data_s") if f.get("data_s") and "error" not in f else None


def m_data_limit(cases: list[dict[str, Any]], case: dict[str, Any]) -> float | None:
    """The M data-stage limit: 11 s on MariaDB; on MySQL and PostgreSQL 11 s times how much slower their
    floor is than MariaDB's on the same case (None without both floors)."""
    if case["server"].startswith("mariadb"):
        return TARGETS["data_M_mariadb_s"]
    return relative_limit(cases, case, TARGETS["data_M_mariadb_s"])


def relative_limit(cases: list[dict[str, Any]], case: dict[str, Any], mariadb_limit: float) -> float | None:
    """MariaDB's limit times ``case``'s floor over MariaDB's floor at the same scale and source release
    (None without both floors)."""
    other = next((c for c in cases if "error" not in c and c["server"].startswith("mariadb")
                  and c["scale"] == case["scale"] and c["from"] == case["from"] and floor_data(c)), None)
    mine = floor_data(case)
    if not other or not mine:
        return None
    return round(mariadb_limit * mine / floor_data(other), 1)


def stage_rows(case: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(step, tool s, floor s) of one case: the schema releases together, each data stage, seeding and
    the merge together (the tool's seeding only counts here: the merge writes its rows), the data
    stages, the verification and the whole run."""
    tool = {s["step"]: s["duration_s"] for s in case["steps"]}
    fl = case.get("floor") or {}
    low = {s["step"]: s["duration_s"] for s in fl.get("steps") or []}
    rows: list[tuple[str, float | None, float | None]] = [("schema (every release)", case["schema_s"],
                                                           fl.get("schema_s"))]
    for s in case["steps"]:
        if s["kind"] == "data":
            rows.append((s["step"], s["duration_s"], low.get(s["step"])))
    if all(n in tool for n in SEED_MERGE):
        rows.append(("seeding + merge", round(sum(tool[n] for n in SEED_MERGE), 3),
                     round(sum(low[n] for n in SEED_MERGE), 3) if all(n in low for n in SEED_MERGE) else None))
    rows.append(("data stages", case["data_s"], fl.get("data_s")))
    rows.append(("verify", case["verify_s"], None))
    floor_wall = round(fl["schema_s"] + fl["data_s"], 3) if fl.get("data_s") is not None and fl.get("schema_s") \
        is not None else None
    rows.append(("schema + data", round(case["schema_s"] + case["data_s"], 3), floor_wall))
    return rows


def _ratio(tool: float | None, low: float | None) -> str:
    if tool is None or low is None:
        return "–"
    if low < 0.005:
        return "–"
    return f"{tool / low:.1f}x"


def _times(theirs: float, ours: float | None) -> str:
    if not ours:
        return ""
    x = theirs / ours
    return f"{x:.1f}x" if x < 10 else f"{x:.0f}x"


def render_floor(cases: list[dict[str, Any]]) -> list[str]:
    """Tool vs floor, per stage: one table per case (tool s, floor s, ratio)."""
    floored = [c for c in cases if "error" not in c and c.get("floor")]
    if not floored:
        return []
    lines = ["", "Tool vs floor, per stage (seconds; the floor: the least SQL producing the same end state, "
             "tests/bench/floor.py, on PostgreSQL floor_pg.py; its schema is the tool's own `schema apply`):", ""]
    head = "| step | " + " | ".join(f"{c['server'].split('-')[0]} {c['scale']} {c['from']}" for c in floored) + " |"
    lines += [head, "|---|" + "---:|" * len(floored)]
    table = [dict((r[0], r[1:]) for r in stage_rows(c)) for c in floored]
    names: list[str] = []
    for c in floored:
        for r in stage_rows(c):
            if r[0] not in names:
                names.append(r[0])
    for name in names:
        cells = []
        for rows in table:
            tool, low = rows.get(name, (None, None))
            if tool is None:
                cells.append("")
            elif low is None:
                cells.append(f"{tool:.2f} / –")
            else:
                cells.append(f"{tool:.2f} / {low:.2f} = {_ratio(tool, low)}")
        label = f"**{name}**" if name in ("data stages", "schema + data") else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    checks = []
    for c in floored:
        f = c["floor"]
        checks.append("error: " + f["error"][:60] if "error" in f else
                      ("same" if f.get("match") else "DIFFERS: " + ", ".join(f.get("differing", []))[:80]))
    lines.append("| end state (floor vs tool) | " + " | ".join(checks) + " |")
    loads = []
    for c in floored:
        seq = [c.get("load_before"), c.get("load_after"), c["floor"].get("load_after")]
        loads.append(" → ".join(f"{x[0]:.1f}" for x in seq if x))
    if any(loads):
        lines.append("| load (1 min): before, after the tool, after the floor | " + " | ".join(loads) + " |")
    cell = "tool / floor = ratio"
    lines += ["", f"Cells: {cell}. The tool's seeding stage only prepares and counts here (the merge writes the "
              "seeded rows, merged), and so does the floor's: compare them together (seeding + merge)."]
    return lines


def render_ragflow(cases: list[dict[str, Any]]) -> list[str]:
    ref = RAGFLOW_REFERENCE
    st = ref["stages"]
    lines = ["", f"RAGFlow's own path, measured earlier on this machine kind ({ref['what']}): schema "
             f"{ref['schema_s']} s, tenant_model_provider {st['data tenant_model_provider']}, tenant_model_instance "
             f"{st['data tenant_model_instance']}, tenant_model {st['data tenant_model']}, model_id_config "
             f"{st['data model_id_config']}, seeding + model_type_merge {st['seeding + merge']}, "
             f"tenant_model_id_migration {st['data tenant_model_id_migration']}, wall {ref['wall_s']} s, "
             f"peak RSS {ref['peak_rss_mb']:.0f} MB."]
    case = next((c for c in cases if "error" not in c and c["server"].startswith("mariadb") and c["scale"] == "M"
                 and c["from"] == "v0.25.6"), None)
    if case is None:
        return lines + ["(no MariaDB M v0.25.6 case in this run to set beside it)"]
    tool = {r[0]: r[1] for r in stage_rows(case)}
    lines += ["", f"The tool on the same kind of case (MariaDB M v0.25.6, {case['tenant_llm_rows']:,} tenant_llm rows"
              + (f", catalogue {Path(case.get('catalog', '')).name}" if case.get("catalog") else "") + "):", "",
              "| step | RAGFlow s | tool s | RAGFlow / tool |", "|---|---:|---:|---:|"]
    pairs = [("schema (every release)", ref["schema_s"])] + list(st.items()) + [("data stages", ref["data_s"])]
    for name, theirs in pairs:
        ours = tool.get(name)
        lines.append(f"| {name} | {theirs} | {'' if ours is None else f'{ours:.2f}'} | {_times(theirs, ours)} |")
    lines.append(f"| wall | {ref['wall_s']} | {case['wall_s']:.2f} | {_times(ref['wall_s'], case['wall_s'])} |")
    lines.append(f"| peak RSS MB | {ref['peak_rss_mb']:.0f} | {case['peak_rss_mb']:.0f} | "
                 f"{_times(ref['peak_rss_mb'], case['peak_rss_mb'])} |")
    return lines


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [f"# ragflow-migrate benchmark, {result['started']}",
             f"machine: {m.get('cores')} cores ({m.get('cpu', '?')}), {m.get('ram_gb', '?')} GB RAM, "
             f"{m.get('platform')}, Python {m.get('python')}; tool {m.get('tool_version')} (commit {m.get('commit', '?')}"
             + (f" + uncommitted src, digest {m.get('src_digest')}" if m.get("src_uncommitted_changes") else "") + ")",
             "servers: " + ", ".join(f"{k} {v}" for k, v in result["servers"].items())
             + f"; innodb_buffer_pool_size={result['settings']['buffer_pool']}"
             + ("; PostgreSQL " + ", ".join(f"{k}={v}" for k, v in result["settings"]["postgres"].items())
                if result["settings"].get("postgres") else ""),
             f"catalogue: {result['settings'].get('catalog', '?')}",
             "", "| server | scale | from | tenant_llm rows | DB MB | generate s | upgrade s | preflight s | schema s "
             "| data s | floor data s | data / floor | verify s | tenant_llm rows/s | peak RSS MB | no-op s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cases"]:
        if "error" in c:
            lines.append(f"| {c['server']} | {c['scale']} | {c['from']} | FAILED: {c['error'][:120]} ||||||||||||")
            continue
        low = floor_data(c)
        check = "" if not c.get("floor") or low is None else ("" if c["floor"].get("match") else " (differs)")
        lines.append(
            f"| {c['server']} | {c['scale']} | {c['from']} | {c['tenant_llm_rows']:,} | {c['size_mb']:.0f} "
            f"| {c['generate']['seconds']:.1f} | {c['wall_s']:.1f} | {c.get('preflight_s', 0):.2f} "
            f"| {c['schema_s']:.1f} | {c['data_s']:.1f} | {'–' if low is None else f'{low:.1f}'}{check} "
            f"| {_ratio(c['data_s'], low)} "
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
    lines += render_floor(result["cases"])
    lines += render_ragflow(result["cases"])
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
    slow_floor = [(s, c) for c in ok if c.get("floor") for s in (c["floor"].get("slowest") or [])[:3]]
    if slow:
        lines += ["", "Slowest statements (per case, top 3):", ""]
        for s, c in slow:
            lines.append(f"- {c['server']} {c['scale']} {c['from']} · {s['step']} · {s['duration_s']}s"
                         + (f" · {s['algorithm']}" if s.get("algorithm") else "")
                         + f" · `{(s.get('sql') or '')[:140]}`")
    if slow_floor:
        lines += ["", "The floor's slowest statements (per case, top 3):", ""]
        for s, c in slow_floor:
            lines.append(f"- {c['server']} {c['scale']} {c['from']} · {s['step']} · {s['duration_s']}s"
                         f" · `{(s.get('sql') or '')[:140]}`")
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
