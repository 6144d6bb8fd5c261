"""Array manifests and staged scripts on S3: written before a job is submitted, read later.

They live beside the submission lease, in ``s3://<bucket>/.s3rules/jobs/`` (``naming.jobs_home``).
An array's JSON manifest names each child's identity, which is how a later run recognises the
children of an array still in flight; its ``.values`` file (only for arrays too big to carry
their values inline) and a long job's ``.sh`` script are what the jobs fetch and run.
"""
from __future__ import annotations

import json

from .client import aws_errors, s3_client as new_s3_client
from .lease import split_s3_url


class ManifestStore:
    def __init__(self, s3_client=None):
        self._s3 = s3_client
        self._read: dict[str, list[str] | None] = {}

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = new_s3_client()
        return self._s3

    def write(self, files: dict[str, str]) -> None:
        for url, text in files.items():
            bucket, key = split_s3_url(url)
            with aws_errors(f"writing the array manifest {url}"):
                self.s3.put_object(Bucket=bucket, Key=key, Body=text.encode(),
                                   ContentType="application/json" if url.endswith(".json") else "text/plain")

    def children(self, url: str) -> list[str] | None:
        """The identities of an array's children, by index; None when the manifest is gone."""
        if url not in self._read:
            from botocore.exceptions import ClientError
            bucket, key = split_s3_url(url)
            try:
                with aws_errors(f"reading the array manifest {url}"):
                    try:
                        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                            body = None
                        else:
                            raise
                self._read[url] = json.loads(body)["children"] if body else None
            except (ValueError, KeyError, TypeError):
                self._read[url] = None
        return self._read[url]
