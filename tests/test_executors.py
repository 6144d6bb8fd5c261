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


def test_a_local_command_longer_than_one_argument_may_be_runs_from_a_file(tmp_path):
    """Linux refuses one argument over 128 KiB: a longer script (an aggregate over 10,000 inputs)
    runs from a file beside its log instead of failing with "Argument list too long"."""
    from workflows import s3rules, write
    names = [f"in/sample-{i:05d}-with-a-long-descriptive-name.txt" for i in range(3000)]
    files = {name: "x\n" for name in names}
    write(tmp_path, '''
        n = lines("rows.txt")
        rule count:
            input: expand("in/sample-{n}-with-a-long-descriptive-name.txt")
            output: "count.txt"
            shell: "echo {input} | wc -w > {output}"
        ''', files={**files, "rows.txt": "".join(f"{i:05d}\n" for i in range(3000))})
    r = s3rules("run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "count.txt").read_text().strip() == "3000"
