"""The drill's figures, goals, plots and Markdown report (called by scripts/drill.py).

Inputs: the load's request records (one JSON line each), the phase windows,
the uploaded calls and their final states, the breakers' transitions and the
simulator's sent emails. Output: docs/drill/<date>-<commit>.md and its plot.

Definitions used in the report:
- dashboard: the calls list requests (dashboard, scroll, filter);
- error: no response at all (status 0: refused, reset, timed out) or a 5xx;
- time to recover: from the end of the fault to the end of the last request
  of the phase that was an error or slower than 3x the baseline's p95;
- cache-miss seconds: the cache misses from the fault's start to the phase's
  end beyond what the baseline's hit rate predicts for as many reads (hits and
  reads from each response's Server-Timing), in seconds of the baseline's
  cache reads: "the failover cost N seconds of cache misses";
- breaker opens: closed -> open transitions (a breaker opening); a failed
  half-open trial (half_open -> open) keeps it open and is counted apart.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

DASHBOARD = {"dashboard", "scroll", "filter"}
# Seconds after the primary is back during which its restart may still show (connections re-made).
RESTART_GRACE = 5.0
MISS_SECONDS_GOAL = 5
P95_FACTOR_GOAL = 3.0
REDIS_OUTAGES = ("redis-kill", "redis-stop", "web-cut")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def kinds(rows: list[dict]) -> list[tuple[str, str]]:
    return [(status_class(r), r["kind"]) for r in rows]


def is_error(r: dict) -> bool:
    return r["status"] == 0 or r["status"] >= 500


def status_class(r: dict) -> str:
    return "error" if r["status"] == 0 else f"{r['status'] // 100}xx"


def hit_rate(rows: list[dict]) -> float | None:
    reads = sum(r.get("cache_reads", 0) for r in rows)
    return sum(r.get("cache_hits", 0) for r in rows) / reads if reads else None


def between(rows: list[dict], start: float, end: float) -> list[dict]:
    return [r for r in rows if start <= r["t"] < end]


def phase_figures(
    rows: list[dict], w: dict, base: dict, uploads: dict, states: dict, emails: Counter, events: list
) -> dict:
    in_phase = between(rows, w["start"], w["end"])
    in_fault = between(rows, w["fault_start"], max(w["fault_end"], w["fault_start"] + 1))
    ms = [r["ms"] for r in in_phase]
    dash = [r["ms"] for r in in_phase if r["kind"] in DASHBOARD]
    dash_fault = [r["ms"] for r in in_fault if r["kind"] in DASHBOARD]
    slow = 3 * base.get("p95", float("inf"))
    bad = [r for r in between(rows, w["fault_start"], w["end"]) if is_error(r) or r["ms"] > slow]
    recover = max((r["t"] + r["ms"] / 1000 - w["fault_end"] for r in bad), default=0.0)
    ids = [cid for cid, (t, _) in uploads.items() if w["start"] <= t < w["end"]]
    after = between(rows, w["fault_start"], w["end"])
    reads = sum(r.get("cache_reads", 0) for r in after)
    misses = reads - sum(r.get("cache_hits", 0) for r in after)
    extra = misses - reads * (1 - (base.get("hit_rate") or 0))
    miss_seconds = max(0.0, extra) / base["reads_per_s"] if base.get("reads_per_s") else 0.0
    return {
        "name": w["name"],
        "action": w["action"],
        "fault_seconds": w["fault_end"] - w["fault_start"],
        "requests": len(in_phase),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "dash_p95": percentile(dash, 95),
        "dash_p95_fault": percentile(dash_fault, 95),
        "classes": Counter(status_class(r) for r in in_phase),
        "uploaded": len(ids),
        "completed": sum(1 for i in ids if states.get(i) == "completed"),
        "duplicated": sum(1 for i in ids if emails[uploads[i][1]] > 1),
        "breakers": [e for e in events if w["start"] <= e["at"] < w["end"]],
        "hit_rate": hit_rate(in_phase),
        "hit_rate_fault": hit_rate(in_fault),
        "miss_seconds": miss_seconds,
        "recover": max(recover, 0.0),
    }


def goals(
    rows: list[dict],
    windows: list[dict],
    phases: list[dict],
    uploads: dict,
    states: dict,
    emails: Counter,
    events: list,
) -> list[dict]:
    by = {p["name"]: p for p in phases}
    win = {w["name"]: w for w in windows}
    restart = win.get("pg-primary-restart")

    def in_restart(r: dict) -> bool:
        return restart is not None and restart["fault_start"] <= r["t"] <= restart["fault_end"] + RESTART_GRACE

    errors = [r for r in rows if r["kind"] != "uploaded" and is_error(r)]
    outside = [r for r in errors if not in_restart(r)]
    inside = [r for r in errors if in_restart(r)]
    unfriendly = [r for r in inside if not (r["status"] == 503 and r.get("retry_after") and r.get("friendly"))]
    result = [
        {
            "name": "No 5xx (or no answer) outside the primary's restart; there only 503 + Retry-After + friendly page",
            "ok": not outside and not unfriendly,
            "detail": f"{len(outside)} outside ({dict(Counter(kinds(outside)).most_common(6))}); "
            f"{len(inside)} inside the restart window, {len(unfriendly)} of them not a friendly 503",
        }
    ]
    lost = [cid for cid in uploads if states.get(cid) != "completed"]
    duplicated = [cid for cid, (_, title) in uploads.items() if emails[title] > 1]
    result.append(
        {
            "name": "No uploaded call lost or processed twice",
            "ok": bool(uploads) and not lost and not duplicated,
            "detail": f"{len(uploads)} uploaded, {len(uploads) - len(lost)} completed, not completed: "
            f"{dict(Counter(states.get(c, 'missing') for c in lost))}, emailed twice: {len(duplicated)}",
        }
    )
    if "provider-outage" in by:
        outage = win["provider-outage"]
        during = [e for e in events if outage["fault_start"] <= e["at"]]
        services = sorted({e["service"] for e in during})
        opens = {
            s: sum(1 for e in during if (e["service"], e["from_state"], e["to_state"]) == (s, "closed", "open"))
            for s in services
        }
        reopens = {
            s: sum(1 for e in during if (e["service"], e["from_state"], e["to_state"]) == (s, "half_open", "open"))
            for s in services
        }
        closed = {s: [e for e in during if e["service"] == s][-1]["to_state"] == "closed" for s in services}
        result.append(
            {
                "name": "Each breaker opens once per provider outage (fleet-wide) and closes after",
                "ok": bool(opens) and all(n == 1 for n in opens.values()) and all(closed.values()),
                "detail": f"opens per service {opens or 'none'}; failed trials (half_open -> open) {reopens or '-'}; "
                f"closed at the end {closed or '-'}",
            }
        )
    if "redis-kill" in by:
        p = by["redis-kill"]
        errs = p["classes"].get("5xx", 0) + p["classes"].get("error", 0)
        result.append(
            {
                "name": f"A Redis failover costs at most {MISS_SECONDS_GOAL} s of cache misses and no errors",
                "ok": errs == 0 and p["miss_seconds"] <= MISS_SECONDS_GOAL,
                "detail": f"{errs} errors, {p['miss_seconds']:.1f} s of the baseline's cache reads "
                "missed beyond its hit rate",
            }
        )
    base_p95 = by["baseline"]["dash_p95"] if "baseline" in by else float("nan")
    for name in REDIS_OUTAGES:
        if name in by:
            ratio = by[name]["dash_p95_fault"] / base_p95 if base_p95 else float("nan")
            result.append(
                {
                    "name": f"Dashboard p95 during the Redis outage ({name}) within {P95_FACTOR_GOAL:g}x of normal",
                    "ok": ratio <= P95_FACTOR_GOAL,
                    "detail": f"{by[name]['dash_p95_fault']:.0f} ms vs baseline {base_p95:.0f} ms = {ratio:.2f}x",
                }
            )
    return result


def plot(path: Path, rows: list[dict], windows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = windows[0]["start"]
    fig, (lat, status, cache) = plt.subplots(3, 1, figsize=(13, 9), sharex=True, height_ratios=[3, 2, 1.2])
    requests = [r for r in rows if r["kind"] != "uploaded"]
    for kind, color in (("dashboard-like", "tab:blue"), ("other", "tab:gray")):
        pick = [r for r in requests if (r["kind"] in DASHBOARD) == (kind == "dashboard-like")]
        lat.scatter(
            [r["t"] - t0 for r in pick], [max(r["ms"], 1) for r in pick], s=3, alpha=0.35, color=color, label=kind
        )
    buckets: dict[int, list[dict]] = defaultdict(list)
    for r in requests:
        buckets[int((r["t"] - t0) // 5) * 5].append(r)
    xs = sorted(buckets)
    lat.plot(xs, [percentile([r["ms"] for r in buckets[x]], 95) for x in xs], color="tab:red", label="p95 (5 s)")
    lat.set_yscale("log")
    lat.set_ylabel("latency (ms)")
    lat.legend(loc="upper right", fontsize=8)
    per_second: dict[int, Counter] = defaultdict(Counter)
    for r in requests:
        per_second[int(r["t"] - t0)][status_class(r)] += 1
    seconds = sorted(per_second)
    bottom = [0] * len(seconds)
    for cls, color in (
        ("2xx", "tab:green"),
        ("3xx", "tab:olive"),
        ("4xx", "tab:orange"),
        ("5xx", "tab:red"),
        ("error", "black"),
    ):
        heights = [per_second[s][cls] for s in seconds]
        status.bar(seconds, heights, bottom=bottom, width=1.0, color=color, label=cls)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    status.set_ylabel("requests / s")
    status.legend(loc="upper right", fontsize=8, ncol=5)
    rates = [(s, hit_rate([r for r in requests if int(r["t"] - t0) == s])) for s in seconds]
    cache.plot([s for s, v in rates if v is not None], [v for _, v in rates if v is not None], color="tab:purple")
    cache.set_ylabel("cache hit rate")
    cache.set_ylim(0, 1.05)
    cache.set_xlabel("seconds since the drill started")
    for ax in (lat, status, cache):
        for w in windows:
            if w["name"] != "baseline":
                ax.axvspan(
                    w["fault_start"] - t0, max(w["fault_end"], w["fault_start"] + 1) - t0, color="tab:red", alpha=0.12
                )
    for w in windows:
        lat.text(w["start"] - t0, lat.get_ylim()[1], w["name"], fontsize=7, va="top", rotation=90)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.0f}{unit}" if unit == " ms" else f"{value:.2f}{unit}"


def write(
    *,
    out_dir: Path,
    records: Path,
    windows: list[dict],
    uploads: dict[str, str],
    call_states: dict[str, str],
    breaker_events: list[dict],
    emails: list[dict],
    settings: dict,
) -> dict:
    rows = [json.loads(line) for line in records.read_text().splitlines()]
    call_states = {int(k): v for k, v in call_states.items()}
    upload_times = {r["call_id"]: (r["t"], r["title"]) for r in rows if r["kind"] == "uploaded"}
    requests = [r for r in rows if r["kind"] != "uploaded"]
    per_title = Counter(e["subject"].removeprefix("Call analysed: ") for e in emails)
    baseline_w = next((w for w in windows if w["name"] == "baseline"), windows[0])
    base_rows = [r for r in between(requests, baseline_w["start"], baseline_w["end"]) if r["kind"] in DASHBOARD]
    base_all = between(requests, baseline_w["start"], baseline_w["end"])
    base = {
        "p95": percentile([r["ms"] for r in base_rows], 95),
        "hit_rate": hit_rate(base_all),
        "reads_per_s": sum(r.get("cache_reads", 0) for r in base_all) / (baseline_w["end"] - baseline_w["start"]),
    }
    phases = [phase_figures(requests, w, base, upload_times, call_states, per_title, breaker_events) for w in windows]
    checks = goals(rows, windows, phases, upload_times, call_states, per_title, breaker_events)

    commit = settings["commit"]
    day = time.strftime("%Y-%m-%d", time.gmtime(windows[0]["start"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{day}-{commit}"
    plot(out_dir / f"{name}.png", requests, windows)
    t0 = windows[0]["start"]
    lines = [
        f"# Production drill {day} at {commit}",
        "",
        f"Command: `{settings['command']}` (written by scripts/drill.py; definitions in scripts/drill_report.py).",
        f"Fleet: scripts/fleet.py over {settings['calls']:,} demo calls; {settings['users']} signed-in users through "
        "the "
        f"round-robin plus an upload every {settings['upload_every']:g} s; phases of {settings['phase_seconds']:g} s, "
        f"faults held {settings['fault_seconds']:g} s; breakers' open period {settings['breaker_open_seconds']:g} s; "
        f"pipeline drained {settings['drain_seconds']:g} s after the load.",
        "",
        "## Goals",
        "",
        "| goal | result | measured |",
        "|---|---|---|",
        *(f"| {g['name']} | {'PASS' if g['ok'] else '**FAIL**'} | {g['detail']} |" for g in checks),
        "",
        "## Phases",
        "",
        "| phase | fault | requests | p50 | p95 | p99 | dashboard p95 (fault) | 2xx/3xx/4xx/5xx/none | "
        "uploaded / completed / duplicated | "
        "cache hit rate (fault) | miss s | recovered after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        c = p["classes"]
        lines.append(
            f"| {p['name']} | {p['action']} ({p['fault_seconds']:.1f} s) | {p['requests']} | {fmt(p['p50'], ' ms')} | "
            f"{fmt(p['p95'], ' ms')} | {fmt(p['p99'], ' ms')} | "
            f"{fmt(p['dash_p95'], ' ms')} ({fmt(p['dash_p95_fault'], ' ms')}) | "
            f"{c.get('2xx', 0)}/{c.get('3xx', 0)}/{c.get('4xx', 0)}/{c.get('5xx', 0)}/{c.get('error', 0)} | "
            f"{p['uploaded']} / {p['completed']} / {p['duplicated']} | "
            f"{fmt(p['hit_rate'])} ({fmt(p['hit_rate_fault'])}) | "
            f"{p['miss_seconds']:.1f} | {p['recover']:.1f} s |"
        )
    lines += ["", "## Breaker transitions", ""]
    lines += [
        f"- +{e['at'] - t0:.1f} s {e['service']}: {e['from_state']} -> {e['to_state']}"
        f"{'' if e['shared'] else ' (local)'}"
        for e in breaker_events
    ] or ["- none"]
    lines += ["", f"![latency, status classes and cache hit rate over time, faults shaded]({name}.png)", ""]
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines))
    return {"path": path, "goals": checks, "phases": phases}
