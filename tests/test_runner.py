"""runner.py's Schedule: what may go now, and what a failure rules out."""
from s3rules.planner import plan
from s3rules.runner import Schedule
from s3rules.storage import Storage
from workflows import DATA, PIPELINE, SHEET, load


def pending(tmp_path):
    p = plan(load(tmp_path, PIPELINE, SHEET, DATA), Storage())
    return p.pending, {job.describe(): job for job in p.pending}


def drain(schedule):
    out = []
    while (job := schedule.next()) is not None:
        out.append(job.describe())
    return out


def test_jobs_become_ready_when_the_last_job_they_need_succeeded(tmp_path):
    jobs, by_name = pending(tmp_path)
    s = Schedule(jobs, whole_graph=False)
    assert drain(s) == ["trim[sample=A]", "trim[sample=B]", "trim[sample=C]"]
    s.succeeded(by_name["trim[sample=A]"])
    assert drain(s) == ["count[sample=A]"]
    for name in ("count[sample=A]", "trim[sample=B]", "trim[sample=C]", "count[sample=B]"):
        s.succeeded(by_name[name])
    assert drain(s) == ["count[sample=B]", "count[sample=C]"]
    s.succeeded(by_name["count[sample=C]"])
    assert drain(s) == ["summary"]


def test_a_whole_graph_executor_gets_every_job_at_once(tmp_path):
    jobs, _ = pending(tmp_path)
    s = Schedule(jobs, whole_graph=True)
    assert len(drain(s)) == len(jobs) == 7
    s.succeeded(next(iter(jobs)))
    assert drain(s) == []


def test_a_failure_blocks_everything_below_it_and_nothing_else(tmp_path):
    jobs, by_name = pending(tmp_path)
    s = Schedule(jobs, whole_graph=True)
    newly = s.block_below(by_name["trim[sample=B]"])
    assert sorted(j.describe() for j in newly) == ["count[sample=B]", "summary"]
    assert s.block_below(by_name["count[sample=B]"]) == []     # already blocked
    assert sorted(drain(s)) == ["count[sample=A]", "count[sample=C]", "trim[sample=A]", "trim[sample=B]",
                                "trim[sample=C]"]
