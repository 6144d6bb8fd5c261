#!/usr/bin/env python3
"""Tiny S3 CLI for test jobs (reaches S3 through the environment: boto3 reads
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, credentials and region from env).

    s3tool.py cat s3://bucket/key        object -> stdout
    s3tool.py put s3://bucket/key        stdin  -> object
    s3tool.py cp SRC DST                 either side s3://... or a local path
    s3tool.py ls s3://bucket/prefix      one key per line

Exit status 1 with a message on stderr on any error (e.g. a missing key).
"""

from __future__ import annotations

import shutil
import sys


def _split(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url}")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url}")
    return bucket, key


def _client():
    import boto3

    return boto3.client("s3")


def cat(url: str) -> None:
    bucket, key = _split(url)
    body = _client().get_object(Bucket=bucket, Key=key)["Body"]
    shutil.copyfileobj(body, sys.stdout.buffer)
    sys.stdout.buffer.flush()


def put(url: str) -> None:
    bucket, key = _split(url)
    _client().put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read())


def cp(src: str, dst: str) -> None:
    if src.startswith("s3://"):
        bucket, key = _split(src)
        data = _client().get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        with open(src, "rb") as fh:
            data = fh.read()
    if dst.startswith("s3://"):
        bucket, key = _split(dst)
        _client().put_object(Bucket=bucket, Key=key, Body=data)
    else:
        with open(dst, "wb") as fh:
            fh.write(data)


def ls(url: str) -> None:
    bucket, prefix = _split(url)
    paginator = _client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            print(obj["Key"])


COMMANDS = {"cat": (cat, 1), "put": (put, 1), "cp": (cp, 2), "ls": (ls, 1)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS or len(args) - 1 != COMMANDS[args[0]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = COMMANDS[args[0]]
    try:
        func(*args[1:])
    except Exception as err:  # noqa: BLE001 - a CLI: report, exit 1
        print(f"s3tool {args[0]}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
