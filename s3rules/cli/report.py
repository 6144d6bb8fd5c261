"""``s3rules report``: a workflow's jobs, timeline, runtimes, costs and failures in one HTML page."""
from __future__ import annotations

import os
import sys

from ..errors import S3RulesError
from . import EXIT_OK


def cmd_report(args) -> int:
    from ..views import write_json
    from .status import logs_command, report_of
    workflow, doc = report_of(args, with_jobs=args.json)
    if args.json:
        if args.output:
            with _opened(args.output) as fh:
                write_json(doc, fh)
        else:
            write_json(doc, sys.stdout)
        return EXIT_OK
    from ..reports.page import render
    from ..views import display_path
    target = args.output or "report.html"
    with _opened(target) as fh:
        fh.write(render(doc, logs_command(display_path(workflow.path))))
    t = doc["totals"]
    print(f"s3rules: report of {t['jobs']} jobs ({t['states']['done']} done, {t['states']['failed']} failed) "
          f"written to {display_path(os.path.abspath(target))}", file=sys.stderr)
    return EXIT_OK


def _opened(path: str):
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise S3RulesError(f"cannot write the report to {path}: {exc.strerror or exc}; pick another path with -o") \
            from None
