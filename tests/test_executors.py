"""executors/: the registry names every executor the settings know, and each keeps the contract."""
import inspect

import pytest

from s3rules.executors.base import Executor, Handle, RunOptions
from s3rules.executors.registry import CLASSES, executor_class
from s3rules.settings import EXECUTORS


def test_the_registry_and_the_settings_name_the_same_executors():
    assert list(CLASSES) == list(EXECUTORS)


@pytest.mark.parametrize("name", list(CLASSES))
def test_every_registered_executor_is_complete(name):
    cls = executor_class(name)
    assert issubclass(cls, Executor) and cls.name == name
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves abstract verbs: {cls.__abstractmethods__}"


def test_the_local_executor_returns_handles_with_the_process_id(tmp_path):
    from workflows import DATA, PIPELINE, SHEET, load
    from s3rules.planner import plan
    from s3rules.storage import Storage
    wf = load(tmp_path, PIPELINE, SHEET, DATA)
    job = next(iter(plan(wf, Storage()).pending))
    (tmp_path / "out/trim").mkdir(parents=True)   # the runner makes parent directories
    executor = executor_class("local").create(RunOptions(wf.base_dir, str(tmp_path / ".s3rules"), jobs=1), Storage())
    handle = executor.submit(job, [])
    assert isinstance(handle, Handle) and handle.job is job and handle.job_id.isdigit()
    assert executor.capacity() == 0
    finished = []
    while not finished:
        finished = executor.poll(1.0)
    assert finished[0][0] is job and finished[0][1].ok
    assert executor.states() is None and executor.cancel() == []
