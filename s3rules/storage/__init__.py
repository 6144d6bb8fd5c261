"""Existence and modification times of many targets, gathered by listing.

A plan over a million targets must not cost a million ``stat``/``HEAD`` calls: paths are
grouped by parent directory (or S3 prefix); a parent holding one requested path costs one
lookup of it, a parent holding several costs one listing of the parent.

* :mod:`.base`: the contract (only "not found" means missing, everything else raises
  ``StorageError``; only a file counts, unless the path is named as a directory: then a
  directory holding a file), caching, secret scrubbing, shared helpers;
* :mod:`.facade`: :class:`Storage`, which groups paths by backend and dispatches;
* :mod:`.local`: local paths and ``file://`` (``os.stat`` / ``os.scandir``, no cache);
* :mod:`.s3`: S3 through s3fs's client (``HeadObject`` / ``ListObjectsV2``, concurrent);
* :mod:`.s3sweep`: sibling S3 prefixes (per-sample folders) settled by listing their ancestor;
* :mod:`.generic`: any other fsspec filesystem (``info`` / ``ls``).

Planning local paths imports neither fsspec nor s3fs nor boto3.
"""
from __future__ import annotations

from .facade import Storage

__all__ = ["Storage"]
