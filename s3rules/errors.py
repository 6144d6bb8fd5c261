"""One family of user-facing errors.

Anything the user can fix (a Batchfile typo, a bad sample sheet, a missing queue) is an
``S3RulesError``; the CLI prints its message as one paragraph and exits with ``exit_code``.
Everything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class S3RulesError(Exception):
    """A mistake the user can fix; ``str()`` is the whole message."""

    exit_code = 2


class BatchfileError(S3RulesError):
    """A Batchfile error, located at file:line:col with the offending line and a caret."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 column: int | None = None, source_line: str | None = None):
        self.message, self.path, self.line, self.column = message, path, line, column
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.path or "<Batchfile>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.source_line is not None and self.column is not None:
            text += f"\n    {self.source_line.rstrip()}\n    {' ' * (self.column - 1)}^"
        return text


class SampleSheetError(S3RulesError):
    """A sample-sheet error, located at file:row[:column]."""

    def __init__(self, message: str, path: str, row: int | None = None, column: str | None = None):
        self.message, self.path, self.row, self.column = message, path, row, column
        where = path
        if row is not None:
            where += f":{row}"
        if column is not None:
            where += f":{column}"
        super().__init__(f"{where}: {message}")


class PlanError(S3RulesError):
    """The rules cannot produce what was asked: ambiguity, cycles, missing sources, bad targets."""


class StorageError(S3RulesError):
    """A target could not be checked or written for a reason other than 'not found'."""


class AwsSetupError(S3RulesError):
    """AWS is not set up as the workflow needs (queue, job definition, credentials, permissions)."""


class JobFailed(S3RulesError):
    """One or more jobs failed; the message lists them. Exit status 1."""

    exit_code = 1


class Interrupted(S3RulesError):
    """Ctrl-C stopped the run; the message says what was stopped, finished and never started."""

    exit_code = 130
