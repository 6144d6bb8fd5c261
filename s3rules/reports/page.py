"""The report as one self-contained HTML page: Jinja2 templates, inline SVG, no script from anywhere.

Jinja2 escapes every value (wildcards and log lines are data), and the page needs no network to
open: styles are inline and the charts are SVG drawn here, so its size follows the number of
rules and bars (``document.MAX_BARS``), not of jobs.
"""
from __future__ import annotations

import datetime
import functools
import shlex

from .document import MAX_FAILURES

#: one colour per rule, in order (Tableau 10: told apart also by most colour-blind readers)
PALETTE = ("#4e79a7", "#f28e2b", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f", "#bab0ac",
           "#ff9da7", "#e15759")   # red last: failures are red
WIDTH, LABELS = 1200, 150   # the timeline's drawing width and its left column for rule names


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("s3rules.reports", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=duration, size=size, money=money, when=when, number=number, hours=hours,
                       shquote=shlex.quote)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}   # rules in the Batchfile's order
    env.globals.update(colour=colour, PALETTE=PALETTE)
    return env


def render(doc: dict, logs_command: str) -> str:
    """The report page of ``doc`` (``document.build``); ``logs_command`` is how to print a job's
    log (``s3rules logs <Batchfile>``), shown beside each failure."""
    return environment().get_template("report.html").render(
        doc=doc, timeline=draw_timeline(doc["timeline"], [r["rule"] for r in doc["rules"]]),
        histograms={r["rule"]: draw_histogram(r["histogram"]) for r in doc["rules"]},
        failures=doc["failures"][:MAX_FAILURES], logs_command=logs_command)


def dashboard(latest: dict) -> str:
    """The dashboard's page: the statuses it has now, redrawn by the page from ``/status.json``."""
    return environment().get_template("dashboard.html").render(latest=latest, interval=latest["interval"],
                                                               count=len(latest["workflows"]))


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.3g} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(n) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def money(x) -> str:
    if x is None:
        return "-"
    if 0 < x < 0.0001:
        return "< $0.0001"
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}" if x else "$0"


def hours(x) -> str:
    """vCPU-hours and GiB-hours: three significant digits, so small ones still add up."""
    if not x:
        return "0"
    if x < 0.001:
        return "< 0.001"
    return f"{x:,.1f}" if x >= 100 else f"{x:.3g}"


def number(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def when(t) -> str:
    if not t:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def draw_histogram(hist: dict | None, width: int = 120, height: int = 28) -> list[tuple]:
    """Bars of a rule's runtime histogram: (x, y, width, height, its tooltip)."""
    if not hist:
        return []
    counts = hist["counts"]
    top = max(counts) or 1
    w = width / len(counts)
    low, step = hist["low"], (hist["high"] - hist["low"]) / len(counts)
    return [(round(i * w, 1), round(height - c / top * height, 1), round(w - 1, 1), round(c / top * height, 1),
             f"{c} job{'s' if c != 1 else ''} of {duration(low + i * step)} to {duration(low + (i + 1) * step)}")
            for i, c in enumerate(counts)]


#: steps a time axis may tick at, in seconds: round numbers of seconds, minutes, hours and days
STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
         3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)


def _ticks(span: float, most: int = 8) -> list[tuple[float, str]]:
    """Time-axis ticks at a round step, at most ``most`` + 1 of them: (seconds from the start, label)."""
    if span <= 0:
        return [(0.0, "0")]
    step = next((s for s in STEPS if span / s <= most), span / most)
    count = int(span / step + 1e-9)
    return [(step * i, duration(step * i) if i else "0") for i in range(count + 1)]


def draw_timeline(tl: dict, rules: list[str]) -> dict | None:
    """The timeline's SVG shapes, in pixels: bars per job (queue wait pale, run time solid) or,
    binned, each rule's band of running and queued jobs per time bin."""
    if tl["mode"] == "empty":
        return None
    span = tl["end"] - tl["start"] or 1.0
    left = 10 if tl["mode"] == "jobs" else LABELS   # rule names need a column only when binned
    scale = (WIDTH - left - 30) / span

    def x(t: float) -> float:
        return round(left + t * scale, 2)

    ticks = [(x(t), label) for t, label in _ticks(span)]
    if tl["mode"] == "jobs":
        lane = max(3, min(14, 360 // max(1, tl["lanes"])))
        shapes = []
        for row, rule, queued, started, ended, label, failed in tl["bars"]:
            y = 20 + row * lane
            tip = (f"{label}{' FAILED' if failed else ''}: waited {duration(started - queued)}, "
                   f"ran {duration(ended - started)}")
            shapes.append({"x": x(queued), "w": max(0.0, round(x(started) - x(queued), 2)), "y": y,
                           "h": lane - 1, "colour": colour(rule), "wait": True, "tip": tip})
            shapes.append({"x": x(started), "w": max(1.0, round(x(ended) - x(started), 2)), "y": y, "h": lane - 1,
                           "colour": colour(rule), "wait": False, "tip": tip, "failed": failed})
        height = 20 + tl["lanes"] * lane + 24
        return {"mode": "jobs", "shapes": shapes, "height": height, "ticks": ticks, "axis": height - 20,
                "width": WIDTH, "labels": [], "left": left}
    band = 40
    shapes, labels = [], []
    step = (WIDTH - LABELS - 30) / tl["bins"]
    for i, name in enumerate(rules):
        rows = tl["rules"].get(name)
        if not rows:
            continue
        top = max(max(rows["running"]), max(rows["queued"])) or 1
        y0 = 20 + i * (band + 6)
        labels.append({"y": y0 + band / 2 + 4, "text": name, "colour": colour(i), "top": top})
        for k in range(tl["bins"]):
            for what, pale in (("queued", True), ("running", False)):
                n = rows[what][k]
                if n:
                    h = round(n / top * band, 1)
                    shapes.append({"x": round(LABELS + k * step, 2), "w": round(max(step - 0.3, 0.5), 2),
                                   "y": round(y0 + band - h, 1), "h": h, "colour": colour(i), "wait": pale,
                                   "tip": f"{name}: {n} job{'s' if n != 1 else ''} {what} at "
                                          f"{duration(k * tl['bin_seconds'])}"})
    height = 20 + len(rules) * (band + 6) + 24
    return {"mode": "bins", "shapes": shapes, "height": height, "ticks": ticks, "axis": height - 20,
            "width": WIDTH, "labels": labels, "left": LABELS}
