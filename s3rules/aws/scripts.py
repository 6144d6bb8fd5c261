"""How s3rules' bash wrappers hand a script to a shell: on a file descriptor, not as an argument.

Linux refuses one argument longer than 128 KiB ("Argument list too long"), and the script of an
aggregate over 10,000 inputs is longer than that; ``bash -c "$script"`` would fail on it.
"""
from __future__ import annotations

RUN = 'exec {shell} /dev/fd/3 3<<<"$script"\n'   # the script held in $script


def here_document(script: str, then: str = "") -> str:
    """``script`` as a quoted here-document (its text as it is), from ``<<`` to its end line;
    ``then`` ends the command line it is on (`` &``)."""
    end = "S3RULES_SCRIPT_END"
    while end in script.splitlines():
        end += "_"
    return f"<<'{end}'{then}\n{script}\n{end}"


def heredoc(shell: str, script: str, background: bool = False) -> str:
    """Bash running ``script`` in ``shell`` from a here-document (``background``: with ``&``)."""
    return f"{shell} /dev/fd/3 3{here_document(script, ' &' if background else '')}"
