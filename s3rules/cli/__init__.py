"""The ``s3rules`` command: the only package that prints errors and chooses exit codes.

Exit status (README.md, "The command line"): 0 every requested target exists afterwards; 1 a
job failed; 2 a usage, Batchfile, sample-sheet or set-up error; 130 interrupted by Ctrl-C.
"""
from __future__ import annotations

import sys

from ..errors import Interrupted, JobFailed, S3RulesError
from .args import locate_batchfile, parse_args

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command in ("status", "dashboard"):   # one Batchfile or several
            from . import status
            return getattr(status, f"cmd_{args.command}")(args)
        locate_batchfile(args)
        if args.command == "run":
            from .run import cmd_run
            return cmd_run(args)
        if args.command == "report":
            from .report import cmd_report
            return cmd_report(args)
        if args.command == "clean":
            from .clean import cmd_clean
            return cmd_clean(args)
        from . import batch
        return getattr(batch, f"cmd_{args.command}")(args)
    except (JobFailed, Interrupted) as exc:
        print(f"s3rules: {exc}", file=sys.stderr)
        return exc.exit_code
    except S3RulesError as exc:
        print(f"s3rules: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("s3rules: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
