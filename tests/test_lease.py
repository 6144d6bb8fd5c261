"""The submission lease on S3: one holder at a time, on moto and on SeaweedFS."""
import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from s3rules.errors import AwsSetupError
from s3rules.aws.lease import Lease


@pytest.fixture
def lease_url(s3_backend):
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    s3_backend.make_bucket(bucket)
    return f"s3://{bucket}/.s3rules/leases/q.json", s3_backend.client()


def test_only_one_of_many_racers_holds_it(lease_url):
    url, client = lease_url
    holders, inside, overlap = [], [0], []
    start = threading.Barrier(8)
    lock = threading.Lock()

    def contender(i):
        lease = Lease(url, client, ttl=30, wait=60)
        start.wait()
        lease.acquire()
        with lock:
            inside[0] += 1
            overlap.append(inside[0])
            holders.append(i)
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        lease.release()

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(holders) == list(range(8))   # everyone got it in the end
    assert max(overlap) == 1                    # never two at once


def test_recent_submissions_reach_the_next_holder(lease_url):
    url, client = lease_url
    first = Lease(url, client)
    first.acquire()
    first.remember("s3rules-a-0123456789abcdef", "job-1")
    first.release()
    second = Lease(url, client)
    second.acquire()
    assert [r["jobId"] for r in second.recent] == ["job-1"]
    second.release()


def test_an_expired_lease_is_taken_over_and_the_old_holder_finds_out(lease_url):
    url, client = lease_url
    old = Lease(url, client, ttl=0.6)
    old.acquire()
    time.sleep(0.8)                      # old stops renewing: it expires
    new = Lease(url, client, ttl=30, wait=5)
    new.acquire()
    assert new.held
    old.renewed_at = 0                   # old wakes up and tries to renew
    with pytest.raises(AwsSetupError, match="lost the submission lease"):
        old.renew_if_due()
    old.release()                        # releasing a lost lease must not end the new holder's
    body = json.loads(client.get_object(Bucket=new.bucket, Key=new.key)["Body"].read())
    assert body["owner"] == new.owner and body["expires"] > time.time()


def test_a_dead_holder_on_this_machine_is_taken_over_at_once(lease_url):
    url, client = lease_url
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    squatter = Lease(url, client, ttl=3600)
    squatter.acquire()
    # rewrite the lease as if a process that has exited held it, for an hour
    body = json.loads(squatter._body())
    body["pid"] = int(dead.stdout)
    client.put_object(Bucket=squatter.bucket, Key=squatter.key, Body=json.dumps(body).encode())
    heir = Lease(url, client, ttl=30, wait=2)
    heir.acquire()
    assert heir.held
    heir.release()


def test_a_live_holder_makes_others_wait_then_give_up(lease_url):
    url, client = lease_url
    holder = Lease(url, client, ttl=3600)
    holder.acquire()
    said = []
    waiter = Lease(url, client, ttl=30, wait=0.5, on_wait=said.append)
    with pytest.raises(AwsSetupError, match=r"another s3rules run .* holds s3://"):
        waiter.acquire()
    assert said and "waiting for another s3rules run" in said[0]
    holder.release()
    waiter.acquire()
    assert waiter.held
