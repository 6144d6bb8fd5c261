"""Ways to show a plan or a workflow: the dry-run table, JSON for scripts, Graphviz DOT, a rule list."""
from __future__ import annotations

import os
from typing import Callable, TextIO

from .model import Job, Workflow, is_url
from .planner import REASONS, Plan


def display_path(path: str) -> str:
    """How s3rules prints a path: URLs as they are, local paths relative to the current directory
    (absolute when that would climb two levels or more). Either form works as a target."""
    if is_url(path):
        return path
    rel = os.path.relpath(path)
    return path if rel.startswith("../..") else rel


def plan_table(plan: Plan, out: TextIO, list_jobs: bool = True,
               command: Callable[[Job], str] | None = None) -> None:
    """The dry-run table; with ``command``, each pending job's command under it."""
    summary = plan.summary()
    rows = [(rule, s["pending"], s["done"], s["total"]) for rule, s in summary.items()]
    totals = tuple(sum(r[i] for r in rows) for i in (1, 2, 3))
    width = max([len("total"), len("rule")] + [len(r[0]) for r in rows])
    out.write(f"{'rule':<{width}}  {'pending':>9}  {'done':>9}  {'total':>9}\n")
    for rule, p, d, t in rows + [("total",) + totals]:
        out.write(f"{rule:<{width}}  {p:>9}  {d:>9}  {t:>9}\n")
    if not list_jobs or not plan.pending:
        out.write("nothing to do: every requested target exists\n" if not plan.pending else "")
        return
    counts = {r: 0 for r in REASONS}
    for reason in plan.pending.values():
        counts[reason] += 1
    out.write("\npending (" + ", ".join(f"{n} {r}" for r, n in counts.items() if n) + "):\n")
    lines = []
    for job, reason in plan.pending.items():
        outputs = " ".join(display_path(o) for o in job.outputs)
        lines.append(f"  {reason:<17} {job.describe()}  {outputs}\n")
        if command is not None:
            lines.append(command_lines(command(job)))
    out.writelines(lines)


def command_lines(text: str, indent: str = "      ") -> str:
    """A command under its job: ``$ `` before the first line, every line indented."""
    body = text.strip("\n").splitlines() or [""]
    return "".join(f"{indent}{'$ ' if i == 0 else '  '}{line}\n" for i, line in enumerate(body))


def plan_json(plan: Plan, command: Callable[[Job], str] | None = None) -> dict:
    """The plan for scripts: local paths absolute; with ``command``, each job's ``command`` too."""
    jobs = [{"rule": job.rule.name, "wildcards": job.wildcards, "outputs": list(job.outputs), "reason": reason}
            for job, reason in plan.pending.items()]
    if command is not None:
        for doc, job in zip(jobs, plan.pending):
            doc["command"] = command(job)
    summary = plan.summary()
    return {
        "jobs": jobs,
        "summary": {
            "rules": summary,
            "pending": sum(s["pending"] for s in summary.values()),
            "done": sum(s["done"] for s in summary.values()),
            "total": sum(s["total"] for s in summary.values()),
        },
    }


def write_json(document: dict, out: TextIO) -> None:
    import json   # not for the plain table: it would only slow every dry run's start
    json.dump(document, out, indent=1)
    out.write("\n")


def _dot(out: TextIO, nodes, edges, style: Callable) -> None:
    import json
    out.write("digraph s3rules {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=sans];\n")
    for node_id, label, item in nodes:
        out.write(f"  {node_id} [label={json.dumps(label)}, {style(item)}];\n")
    for a, b in edges:
        out.write(f"  {a} -> {b};\n")
    out.write("}\n")


def dag_dot(plan: Plan, out: TextIO) -> None:
    """The job graph; pending jobs are filled, done ones are grey."""
    ids = {job: f"j{i}" for i, job in enumerate(plan.jobs)}
    nodes = [(ids[j], j.describe(), j) for j in plan.jobs]
    edges = [(ids[d], ids[j]) for j in plan.jobs for d in j.deps]

    import json

    def style(job):
        if job in plan.pending:
            return f"fillcolor=\"#ffd38a\", tooltip={json.dumps(plan.pending[job])}"
        return "fillcolor=\"#dddddd\""
    _dot(out, nodes, edges, style)


def rulegraph_dot(plan: Plan, out: TextIO) -> None:
    rules = list(dict.fromkeys(j.rule for j in plan.jobs))
    ids = {r: f"r{i}" for i, r in enumerate(rules)}
    edges = list(dict.fromkeys((ids[d.rule], ids[j.rule]) for j in plan.jobs for d in j.deps))
    pending_rules = {j.rule for j in plan.pending}
    _dot(out, [(ids[r], r.name, r) for r in rules], edges,
         lambda r: "fillcolor=\"#ffd38a\"" if r in pending_rules else "fillcolor=\"#dddddd\"")


def rule_list(workflow: Workflow, out: TextIO) -> None:
    def show(text: str) -> str:
        base = workflow.base_dir.rstrip("/") + "/"
        return text[len(base):] if text.startswith(base) else text
    for rule in workflow.rules.values():
        kind = " (target list)" if rule.is_target_list else ""
        where = "" if not rule.path or rule.path == workflow.path else f"{display_path(rule.path)}:"
        out.write(f"rule {rule.name}{kind}  [{where or 'line '}{rule.line}]\n")
        if rule.when is not None:
            out.write(f"    when:   {rule.when.text}\n")
        for spec in rule.inputs:
            shown = f"expand({show(spec.pattern.text)})" if spec.expand else show(spec.pattern.text)
            out.write(f"    input:  {spec.name + ': ' if spec.name else ''}{shown}\n")
        for i, p in enumerate(rule.outputs):
            kinds = [k for k, on in (("temp", i in rule.temp), ("directory", i in rule.directories)) if on]
            shown = show(p.text)
            for k in kinds:
                shown = f"{k}({shown})"
            name = rule.output_names[i] if rule.output_names else None
            out.write(f"    output: {name + ': ' if name else ''}{shown}\n")
        for p in rule.logs:
            out.write(f"    log:    {show(p.text)}\n")
