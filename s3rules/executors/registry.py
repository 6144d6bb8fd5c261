"""Executor name -> executor class, read by the command line; the names are ``settings.EXECUTORS``.

Each class is imported only when its executor is used, so local runs never import boto3.
"""
from __future__ import annotations

from importlib import import_module

from .base import Executor

#: name -> "module:class"; the same names as settings.EXECUTORS (tests/test_executors.py checks)
CLASSES = {
    "local": "s3rules.executors.local:LocalExecutor",
    "batch": "s3rules.executors.batch:BatchExecutor",
}


def executor_class(name: str) -> type[Executor]:
    module, _, cls = CLASSES[name].partition(":")
    return getattr(import_module(module), cls)
