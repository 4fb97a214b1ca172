"""Targets (PASS / MISS with the measured value), the stdout table and the README markdown snippet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = tuple[str, ...]


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: the section did not run

    @property
    def verdict(self) -> str:
        return "SKIP" if self.passed is None else "PASS" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal, "measured": self.measured, "verdict": self.verdict}


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def evaluate_targets(results: dict[str, Any], cfg: dict[str, Any]) -> list[Target]:
    sections = results.get("sections", {})
    latency_ms = float(cfg["latency_ms"])
    targets: list[Target] = []
    latency = sections.get("latency")
    if latency:
        warm = latency["summary"]["paths"]["warm"]
        calls_max = max(int(run["paths"]["warm"]["arm_calls_max"]) for run in latency["runs"])
        targets.append(
            Target(
                "warm path ARM calls",
                "≤ 2",
                f"max {calls_max}, p50 {_n(warm['arm_calls_p50'])}",
                calls_max <= 2,
            )
        )
        limit = 2 * latency_ms + 5
        targets.append(
            Target(
                "warm path p50",
                f"≤ 2 × {latency_ms:g} ms + 5 ms = {limit:g} ms",
                f"{_n(warm['p50_ms'])} ms = ARM {_n(warm['arm_wait_p50_ms'])} + in-process "
                f"{_n(warm['overhead_p50_ms'])} (SDK floor {_n(latency['summary']['sdk_floor_ms'], 2)}/call)",
                float(warm["p50_ms"]) <= limit,
            )
        )
        ratio = latency["summary"]["ratio_vs_warm"].get("latency_p50")
        targets.append(
            Target(
                f"baseline/ours p50 at {latency['unrelated_resources']:,} resources",
                "≥ 5",
                f"× {_n(ratio)}",
                ratio is not None and float(ratio) >= 5,
            )
        )
    else:
        targets += [
            Target(n, g, "-", None)
            for n, g in (("warm path ARM calls", "≤ 2"), ("warm path p50", "-"), ("baseline/ours p50", "≥ 5"))
        ]
    scaling = sections.get("scaling")
    if scaling:
        flat = scaling["flatness"]
        change = float(flat["ours_warm_p50_change_pct"])
        same_calls = flat["ours_warm_calls"][0] == flat["ours_warm_calls"][1]
        targets.append(
            Target(
                f"flat in resource count ({flat['from_resources']:,} → {flat['to_resources']:,})",
                "warm p50 within 10 %, same ARM calls",
                f"{change:+.1f} %, calls {_n(flat['ours_warm_calls'][0])} → {_n(flat['ours_warm_calls'][1])}",
                abs(change) <= 10.0 and same_calls,
            )
        )
    else:
        targets.append(Target("flat in resource count", "within 10 %", "-", None))
    storm = sections.get("storm")
    if storm:
        targets.append(Target("storm duplicates", "0", _n(storm["duplicates"]), storm["duplicates"] == 0))
        targets.append(Target("storm limit overshoot", "0", _n(storm["overshoot"]), storm["overshoot"] == 0))
    else:
        targets += [
            Target("storm duplicates", "0", "-", None),
            Target("storm limit overshoot", "0", "-", None),
        ]
    faults = sections.get("faults")
    if faults:
        targets.append(
            Target(
                f"answered within {faults['budget_s']:g} s with 5 % 429s",
                "100 %",
                f"{_n(faults['within_budget_pct'], 2)} % (p99 {_n(faults['p99_ms'])} ms)",
                faults["within_budget"] == faults["alerts"],
            )
        )
    else:
        targets.append(Target("answered within budget under faults", "100 %", "-", None))
    delivery = sections.get("delivery")
    if delivery:
        answers = [d for run in delivery["runs"] for d in run["deliveries"]]
        slowest = max(d["seconds"] for d in answers)
        biggest = max(run["targets"] for run in delivery["runs"])
        targets.append(
            Target(
                f"deliveries of up to {biggest} targets answered within the budget",
                f"≤ {delivery['budget_s']:g} s + 1 s",
                f"max {_n(slowest * 1000, 0)} ms over {len(answers)} answers",
                slowest <= delivery["budget_s"] + 1.0,
            )
        )
    else:
        targets.append(Target("many-target delivery answered within the budget", "≤ 8 s", "-", None))
    recorder = sections.get("recorder")
    if recorder:
        targets.append(
            Target(
                "alert → ring frozen, warm ARM calls",
                "≤ 4",
                f"{recorder['warm_arm_calls_max']} ({_n(recorder['warm_ms_p50'])} ms p50)",
                recorder["warm_arm_calls_max"] <= 4 and recorder["all_frozen"],
            )
        )
        targets.append(
            Target(
                "pre-alert traffic in the recorder's report",
                "> 0 s",
                f"{_n(recorder['pre_alert_seconds_p50'])} s",
                bool(recorder["pre_alert_seconds_p50"]) and recorder["all_reported"],
            )
        )
    else:
        targets.append(Target("alert → ring frozen", "≤ 4 ARM calls", "-", None))
    return targets


# ------------------------------------------------------------------ tables


def _table(rows: list[Row], markdown: bool) -> list[str]:
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return out
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _latency_rows(latency: dict[str, Any]) -> list[Row]:
    summary = latency["summary"]
    rows: list[Row] = [
        ("path", "n", "p50 ms", "p95 ms", "p99 ms", "ARM calls", "ARM wait ms", "overhead ms", "own code ms")
    ]
    labels = {"first": "first-ever alert", "cold": "cold (VM region unknown)", "warm": "warm"}
    for key, label in labels.items():
        s = summary["paths"][key]
        rows.append(
            (
                label,
                _n(s["n"]),
                _n(s["p50_ms"]),
                _n(s["p95_ms"]),
                _n(s["p99_ms"]),
                _n(s["arm_calls_p50"], 0),
                _n(s["arm_wait_p50_ms"]),
                _n(s["overhead_p50_ms"]),
                _n(s.get("own_code_p50_ms")),
            )
        )
    for key, label in (
        ("baseline_first", "baseline, first per watcher"),
        ("baseline", "baseline (documented)"),
    ):
        b = summary[key]
        if b.get("n"):
            rows.append(
                (
                    label,
                    _n(b["n"]),
                    _n(b["p50_ms"]),
                    _n(b["p95_ms"]),
                    _n(b["p99_ms"]),
                    _n(b["arm_calls_p50"], 0),
                    f"{_n(b['arm_wait_p50_ms'])} + {_n(b['lro_wait_p50_ms'])} LRO",
                    _n(b["overhead_p50_ms"]),
                    "-",
                )
            )
    return rows


def _scaling_rows(entries: list[dict[str, Any]], key: str, label: str) -> list[Row]:
    rows: list[Row] = [
        (
            label,
            "ours warm p50 ms",
            "calls",
            "ours cold p50 ms",
            "calls",
            "baseline p50 ms",
            "calls",
            "resources listed",
            "ratio p50",
            "ratio calls",
        )
    ]
    for e in entries:
        w, c, b, r = e["ours_warm"], e["ours_cold"], e["baseline"], e["ratio_vs_warm"]
        rows.append(
            (
                _n(e[key]),
                _n(w["p50_ms"]),
                _n(w["arm_calls_p50"], 0),
                _n(c["p50_ms"]),
                _n(c["arm_calls_p50"], 0),
                _n(b.get("p50_ms")),
                _n(b.get("arm_calls_p50"), 0),
                _n(b.get("resources_listed")),
                f"× {_n(r.get('latency_p50'))}",
                f"× {_n(r.get('arm_calls_p50'))}",
            )
        )
    return rows


def _kv_rows(pairs: list[tuple[str, str]]) -> list[Row]:
    return [("measure", "value"), *pairs]


def render(results: dict[str, Any], *, markdown: bool = False) -> str:
    cfg = results["config"]
    sections = results.get("sections", {})
    lines: list[str] = []
    heading: Callable[[str], None] = (
        (lambda t: lines.extend(["", f"#### {t}", ""]))
        if markdown
        else (lambda t: lines.extend(["", t, "=" * len(t)]))
    )
    m = results["machine"]
    if markdown:
        lines.append(
            f"Measured {m['date'][:10]} on {m['cpu_count']} CPUs ({m.get('cpu', '?')}), Python "
            f"{m['python']}, against the local ARM emulator with {cfg['latency_ms']:g} ms per ARM call "
            f"(`make bench`; all numbers from one run)."
        )
    latency = sections.get("latency")
    if latency:
        heading(
            f"Webhook latency: {cfg['latency_ms']:g} ms per ARM call, {latency['unrelated_resources']:,} "
            f"unrelated resources (median of {len(latency['runs'])} run(s))"
        )
        lines += _table(_latency_rows(latency), markdown)
        s = latency["summary"]
        rw, rc = s["ratio_vs_warm"], s["ratio_vs_cold"]
        if rw:
            lines += [
                "",
                f"Baseline / ours: p50 × {_n(rw['latency_p50'])} vs warm (× {_n(rc['latency_p50'])} vs "
                f"cold), ARM calls × {_n(rw['arm_calls_p50'], 2)} vs warm (× {_n(rc['arm_calls_p50'], 2)} "
                f"vs cold). Without the baseline's LRO waits (ours never waits for the LRO, by design) "
                f"its p50 is still × {_n(rw['latency_p50_without_lro_wait'])} ours (warm). SDK floor: "
                f"{_n(s['sdk_floor_ms'], 2)} ms client-side per bare ARM call.",
                "",
                f"Method: latency at the HTTP client (app served by the local host); ARM calls and ARM "
                f"wait from the emulator's request log; overhead = latency − ARM wait; own code = overhead − "
                f"calls × SDK floor. Baseline: Microsoft's documented alert-triggered capture function "
                f"re-implemented with the same Python SDK (list every resource in the subscription in pages "
                f"of {cfg['page_size']:,}, get the watcher, list captures, delete the same-named capture and "
                f"wait, list again, create and wait), given the region and a long-lived token; its LRO waits "
                f"follow Retry-After: {cfg['retry_after']} s (the live service sends none on create, where "
                f"the SDK would wait 30 s), so its numbers are a lower bound.",
            ]
    scaling = sections.get("scaling")
    if scaling:
        heading("Scaling: subscription size (1 existing capture per watcher)")
        lines += _table(_scaling_rows(scaling["by_resources"], "unrelated_resources", "resources"), markdown)
        heading(
            f"Scaling: existing captures on the watcher "
            f"({scaling['by_captures'][0]['unrelated_resources']:,} resources)"
        )
        lines += _table(
            _scaling_rows(scaling["by_captures"], "existing_captures_per_watcher", "captures"), markdown
        )
    storm = sections.get("storm")
    if storm:
        heading(
            f"Alert storm: {storm['deliveries']:,} deliveries ({storm['alerts']} alerts × "
            f"{storm['copies_per_alert']:g}), {storm['vms']} VMs in 2 regions, {storm['callers']} callers, "
            f"app in its own process"
        )
        lines += _table(
            _kv_rows(
                [
                    ("total time", f"{_n(storm['total_s'], 2)} s"),
                    ("throughput", f"{_n(storm['throughput_per_s'])} deliveries/s"),
                    (
                        "latency p50 / p95 / p99",
                        f"{_n(storm['p50_ms'])} / {_n(storm['p95_ms'])} / {_n(storm['p99_ms'])} ms",
                    ),
                    (
                        "captures created",
                        f"{storm['captures_created']} (started answers {storm['started_answers']})",
                    ),
                    (
                        "captures per watcher",
                        ", ".join(f"{k}: {v}" for k, v in sorted(storm["captures_per_watcher"].items())),
                    ),
                    ("duplicates (captures per alert+VM > 1)", _n(storm["duplicates"])),
                    (
                        f"limit overshoot (limit {storm['max_sessions_per_watcher']} per watcher)",
                        _n(storm["overshoot"]),
                    ),
                    ("non-2xx answers", _n(storm["non_2xx"])),
                    ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(storm["outcomes"].items()))),
                    ("ARM calls per delivery", _n(storm["arm_calls_per_delivery"], 2)),
                    (
                        "app process CPU",
                        f"{_n(storm['host_cpu_s'], 2)} s "
                        f"({_n(storm['host_cpu_ms_per_delivery'], 2)} ms per delivery)",
                    ),
                    ("app process peak RSS", f"{_n(storm['host_peak_rss_mb'])} MB"),
                    (
                        "ARM connection pool overflows (urllib3 warnings)",
                        _n(storm["host_pool_full_warnings"]),
                    ),
                ]
            ),
            markdown,
        )
    cold = sections.get("coldstart")
    if cold:
        s, imp = cold["summary"], cold["imports"]
        heading("Cold start: new process, first alert through the local host")
        lines += _table(
            _kv_rows(
                [
                    ("spawn → listening", f"{_n(s['ready_ms'], 0)} ms"),
                    (
                        "first alert (request → answer)",
                        f"{_n(s['first_alert_ms'], 0)} ms "
                        f"({s['first_alert_arm_calls']} ARM + {s['first_alert_identity_calls']} "
                        f"identity calls)",
                    ),
                    ("spawn → first answer", f"{_n(s['process_to_first_answer_ms'], 0)} ms"),
                    ("second alert, same process (cold VM)", f"{_n(s['second_alert_ms'])} ms"),
                    (
                        "peak RSS listening / after first alert",
                        f"{_n(s['peak_rss_ready_mb'])} / {_n(s['peak_rss_mb'])} MB",
                    ),
                    (
                        "import function_app (fresh interpreter)",
                        f"{_n(imp['function_app_import_ms'], 0)} ms "
                        f"(process {_n(imp['function_app_process_ms'], 0)} ms, bare "
                        f"interpreter {_n(imp['bare_interpreter_ms'], 0)} ms)",
                    ),
                    ("SDK imported lazily by the first alert", f"{_n(imp['sdk_lazy_import_ms'], 0)} ms"),
                    (
                        "import time by package (self)",
                        ", ".join(f"{t['package']} {_n(t['self_ms'], 0)} ms" for t in imp["top_imports"][:4]),
                    ),
                ]
            ),
            markdown,
        )
    faults = sections.get("faults")
    if faults:
        heading(
            f"Under faults: {faults['fault']['probability']:.0%} of ARM calls answered 429 Retry-After "
            f"{faults['fault']['retry_after_s']:g} ({faults['alerts']} alerts, {faults['callers']} callers)"
        )
        lines += _table(
            _kv_rows(
                [
                    (
                        "latency p50 / p95 / p99 / max",
                        f"{_n(faults['p50_ms'])} / {_n(faults['p95_ms'])} / "
                        f"{_n(faults['p99_ms'])} / {_n(faults['max_ms'])} ms",
                    ),
                    (f"answered within {faults['budget_s']:g} s", f"{_n(faults['within_budget_pct'], 2)} %"),
                    (
                        "429s injected / alerts that retried",
                        f"{faults['injected_429']} / {faults['alerts_retried']}",
                    ),
                    ("answers", ", ".join(f"{k}: {v}" for k, v in sorted(faults["statuses"].items()))),
                ]
            ),
            markdown,
        )
    delivery = sections.get("delivery")
    if delivery:
        heading(
            f"One delivery, many targets: {_n(delivery['latency_ms_per_call'], 0)} ms per ARM call, "
            f"budget {delivery['budget_s']:g} s, redelivered (as Azure Monitor retries a 503) until "
            "nothing is unavailable"
        )
        delivery_rows: list[Row] = [
            ("targets", "delivery", "HTTP", "answer time", "outcomes", "ARM calls", "answer size", "captures")
        ]
        for run in delivery["runs"]:
            for i, d in enumerate(run["deliveries"]):
                delivery_rows.append(
                    (
                        str(run["targets"]) if i == 0 else "",
                        "first" if i == 0 else f"retry {i}",
                        str(d["status"]),
                        f"{_n(d['seconds'] * 1000, 0)} ms",
                        ", ".join(f"{k} {v}" for k, v in sorted(d["counts"].items())),
                        str(d["arm_calls"]),
                        f"{d['answer_bytes']:,} B",
                        str(run["captures_created"]) if i == len(run["deliveries"]) - 1 else "",
                    )
                )
        lines += _table(delivery_rows, markdown)
    analysis = sections.get("analysis")
    if analysis:
        a = analysis["summary"]
        big = analysis["files"][-1]
        heading(f"Capture analysis: {_n(big['file_mb'], 0)} MB capture, {big['packets']:,} packets")
        pairs = [
            ("throughput", f"{_n(a['mb_per_s'])} MB/s, {_n(a['packets_per_s'], 0)} packets/s"),
            ("peak RSS", f"{_n(a['peak_rss_mb'])} MB (growth vs ¼ size file {_n(a['rss_growth_mb'])} MB)"),
        ]
        if "speedup_vs_tshark" in a:
            pairs.append(
                (
                    "vs tshark -z conv,tcp",
                    f"× {_n(a['speedup_vs_tshark'], 2)} faster, "
                    f"{_n(a['rss_fraction_of_tshark'] * 100, 0)} % of its RSS",
                )
            )
        lines += _table(_kv_rows(pairs), markdown)
    recorder = sections.get("recorder")
    if recorder:
        heading(
            f"Flight recorder: alert → ring frozen ({len(recorder['runs'])} freezes, "
            f"{_n(recorder['latency_ms'], 0)} ms ARM latency)"
        )
        lines += _table(
            _kv_rows(
                [
                    ("cold: ms / ARM calls", f"{_n(recorder['cold_ms'])} ms / {recorder['cold_arm_calls']}"),
                    (
                        "warm: ms p50 / ARM calls",
                        f"{_n(recorder['warm_ms_p50'])} ms / {recorder['warm_arm_calls_max']}",
                    ),
                    ("pre-alert traffic in the report (p50)", f"{_n(recorder['pre_alert_seconds_p50'])} s"),
                ]
            ),
            markdown,
        )
    follow = sections.get("followthrough")
    if follow:
        first = follow["runs"][0]
        heading(
            f"Follow-through: {first['captures']} captures of {_n(first['file_mb'])} MB finishing at once"
        )
        pairs = [
            (
                f"{r['workers']} worker process(es)",
                f"last report after {_n(r['seconds_to_last_report'])} s "
                f"({_n(r['captures_per_s'])} captures/s), "
                f"peak RSS per worker {', '.join(f'{_n(m)} MB' for m in r['peak_rss_mb_per_worker'])}",
            )
            for r in follow["runs"]
        ]
        calls = first["arm_calls_per_capture"]
        pairs.append(
            (
                "ARM calls per capture at its end",
                f"{_n(calls['status'])} status, {_n(calls['get'])} get, {_n(calls['delete'])} delete "
                f"(+ {calls['lists_per_run']} list calls per scheduler run, shared)",
            )
        )
        for label, key in (("60 s capture", "60s"), ("5-hour capture", "5h")):
            life = follow["lifetime_arm_calls"][key]
            pairs.append(
                (
                    f"ARM calls over a {label}'s life",
                    f"{life['total']} ({life['status_queries']} status queries"
                    f" + {life['worker']} by the worker)",
                )
            )
        lines += _table(_kv_rows(pairs), markdown)
    heading("Targets")
    rows: list[Row] = [("verdict", "target", "goal", "measured")]
    rows += [(t["verdict"], t["name"], t["goal"], t["measured"]) for t in results.get("targets", [])]
    lines += _table(rows, markdown)
    errors = results.get("errors") or {}
    if errors:
        heading("Sections that failed")
        lines += [f"{name}: {text.strip().splitlines()[-1]}" for name, text in errors.items()]
    if not markdown:
        lines += [
            "",
            f"total {results.get('duration_s', 0):.0f} s; sections {results.get('section_seconds', {})}",
        ]
    return "\n".join(lines).lstrip("\n") + "\n"
