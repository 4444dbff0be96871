#!/usr/bin/env python3
"""bench_table.py DP.json PALLOC.json [--json] [--check] — one table from the two benchmarks.

DP.json is bench_dp's document (cases 1-4 and the memory row), PALLOC.json bench_palloc's
(case 5, allocation at 0/50/90/99/100% occupancy, and the memory per flow/tuple/space).
Prints one table, or with --json one document {"dataplane": ..., "allocation": ...}.
--check: exit 1 unless every case ran and produced figures (the smoke test in tools/test;
it never judges a figure). Exit 2 on unreadable input.
"""
import json
import sys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_table: {path}: {e}", file=sys.stderr)
        sys.exit(2)


def check(dp, pa):
    """What is missing: every case with packets and cycles, both directions, both ts modes."""
    missing = []
    cases = dp.get("cases", [])

    def rows(name):
        return [c for c in cases if c.get("case") == name]

    for name in ("floor", "conn", "udp"):
        r = rows(name)
        if not r or r[0].get("packets", 0) <= 0 or r[0].get("cycles", 0) <= 0:
            missing.append(name)
    for name in ("conn", "udp"):
        r = rows(name)
        if r and r[0].get("connections", 0) <= 0:
            missing.append(name + " connections")
    est = rows("est")
    flows = sorted({c["flows"] for c in est})
    if not flows:
        missing.append("est")
    for n in flows:
        for d in ("c->b", "b->c"):
            for ts in ("on", "off"):
                ok = [c for c in est if c["flows"] == n and c["dir"] == d
                      and c["ts_rewrite"] == ts and c.get("packets", 0) > 0
                      and c.get("cycles", 0) > 0]
                if not ok:
                    missing.append(f"est {n} {d} ts {ts}")
    levels = {lv.get("occupancy_pct") for lv in pa.get("levels", [])
              if lv.get("alloc_cycles", {}).get("median", 0) > 0}
    for pct in (0, 50, 90, 99):
        if pct not in levels:
            missing.append(f"alloc {pct}%")
    return missing


def fmt_n(v):
    return f"{v:,.0f}"


def table(dp, pa):
    cases = dp["cases"]
    floor = next(c for c in cases if c["case"] == "floor")
    fc = floor["cycles_per_packet"]
    hz = dp["tsc_hz"]
    out = []
    out.append(f"Sluice dataplane, one worker lcore (CPU {dp['cpu']}), TSC {hz / 1e9:.2f} GHz, "
               f"bursts of {dp['burst']}, ring ethdevs{' (--quick)' if dp.get('quick') else ''}")
    out.append("cycles: TSC ticks in worker_poll() (rx burst to tx burst) per packet; "
               "of floor: the floor's cycles / the case's")
    out.append("")
    hdr = (f"{'case':<40} {'flows':>9} {'Mpps':>8} {'cyc/pkt':>8} {'of floor':>8} "
           f"{'conn/s':>10} {'cyc/conn':>9}")
    out.append(hdr)
    out.append("-" * len(hdr))

    def row(label, c, flows="-", conn=False):
        cpp = c["cycles_per_packet"]
        extra = ""
        if conn:
            extra = f" {fmt_n(c['connections_per_s']):>10} {c['cycles_per_connection']:>9.0f}"
        out.append(f"{label:<40} {flows:>9} {c['mpps']:>8.2f} {cpp:>8.1f} "
                   f"{fc / cpp * 100:>7.0f}%{extra}")

    row("1 floor: rx, swap MACs, tx", floor)
    for c in cases:
        if c["case"] == "est":
            row(f"2 established {c['dir']}, ts {c['ts_rewrite']}", c, fmt_n(c["flows"]))
    for c in cases:
        if c["case"] == "conn":
            row("3 connections, 7 packets each", c, conn=True)
            if c.get("lost"):
                out.append(f"  ({c['lost']} connections lost)")
    for c in cases:
        if c["case"] == "udp":
            row("4 udp request/response, flow each", c, conn=True)
            if c.get("lost"):
                out.append(f"  ({c['lost']} flows lost)")
    out.append("")
    out.append(f"5 allocation (palloc_get, one backend, {fmt_n(pa['tuples'])} tuples):"
               f" cycles median / p99")
    for lv in pa["levels"]:
        a = lv["alloc_cycles"]
        res = " (ENOSPC)" if lv.get("result") else ""
        out.append(f"  {lv['occupancy_pct']:>3}% occupied  {a['median']:>7.0f} / {a['p99']:.0f}{res}")
    r = pa.get("alloc_median_ratio")
    if r:
        out.append(f"  99%/0% median ratio {r['ratio']:.2f} (goal: at most {r['goal_max']:.0f})")
    out.append("")
    mem = [c for c in cases if c["case"] == "memory"]
    m = pa.get("memory", {})
    out.append(f"memory: struct flow {m.get('flow_struct_bytes', '?')} bytes (both directions); "
               f"per flow with its hash slots {m['bytes_per_live_flow'][0]['bytes']:.0f} bytes; "
               f"per quarantined tuple {m.get('bytes_per_quarantined_tuple', '?')} bytes")
    for c in mem:
        out.append(f"        resident set at {fmt_n(c['flows'])} established flows: "
                   f"{c['rss_bytes'] / 2**20:,.0f} MiB (flow table {c['table_bytes_per_flow']:.0f}"
                   f" bytes per flow of capacity)")
    return "\n".join(out)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    opts = {a for a in argv[1:] if a.startswith("--")}
    if len(args) != 2 or opts - {"--json", "--check"}:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    dp, pa = load(args[0]), load(args[1])
    missing = check(dp, pa)
    if "--json" in opts:
        print(json.dumps({"dataplane": dp, "allocation": pa}, indent=1))
    elif not missing:
        print(table(dp, pa))
    if missing:
        print("bench_table: missing: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
