"""aws/policy.py: pacing, poll backoff and Batch's own retry strategy."""
from s3rules.aws.policy import RateLimit


def test_batch_requests_are_paced_below_the_account_limit():
    """Every Batch request waits its turn in one token bucket: whatever the burst, no second
    of (simulated) time sees more than rate + burst requests."""
    now = [0.0]
    sent: list[float] = []

    def sleep(seconds):
        now[0] += seconds

    pace = RateLimit(rate=40, burst=10, clock=lambda: now[0], sleep=sleep)
    for i in range(1000):                  # 1,000 DescribeJobs at once (100,000 jobs in flight)
        pace.wait()
        sent.append(now[0])
        if i % 7 == 0:
            now[0] += 0.001                # a little work between some of them
    busiest = max(sum(1 for t in sent if start <= t < start + 1) for start in sent)
    assert busiest <= 40 + 10
    assert sent[-1] >= (1000 - 10) / 40 - 0.01   # paced, not dropped: it took about 25 s


def test_the_default_pace_is_40_requests_a_second_and_S3RULES_BATCH_RPS_changes_it():
    import os
    import subprocess
    import sys
    code = "from s3rules.aws.policy import PACE; print(PACE.rate)"
    env = {k: v for k, v in os.environ.items() if k != "S3RULES_BATCH_RPS"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "40.0"
    env["S3RULES_BATCH_RPS"] = "7"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "7.0"


def test_batch_clients_wait_for_the_pace_before_every_request():
    from s3rules.aws.policy import PACE
    from s3rules.aws.service import BatchService
    waited = []
    real = PACE.wait
    PACE.wait = lambda **kw: waited.append(kw.get("event_name"))
    try:
        import boto3
        session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1")
        service = BatchService(session=session)
        service.batch.meta.events.emit("before-send.batch.ListJobs", request=None)
        service.submitter_client.meta.events.emit("before-send.batch.SubmitJob", request=None)
        assert len(waited) == 2
    finally:
        PACE.wait = real


def test_backoff_doubles_while_nothing_changes_up_to_its_limit_and_resets_on_news():
    from s3rules.aws.policy import POLL_LIMIT, Backoff
    b = Backoff(2.0)
    seen = []
    for _ in range(6):
        b.polled(False)
        seen.append(b.interval)
    assert seen == [4.0, 8.0, 16.0, 30.0, 30.0, 30.0] and POLL_LIMIT == 30.0
    b.polled(True)
    assert b.interval == 2.0
