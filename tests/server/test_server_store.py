"""The durable queue on its own: leases, retries, cancels, limits (no server process)."""

import sqlite3
import time

import pytest

from mediagen.server.files import DataDir, NotFound, check_job_id, new_job_id
from mediagen.server.store import JobStore, QueueFull


def _job(store: JobStore, max_queue: int = 10) -> str:
    jid = new_job_id()
    store.submit({"id": jid, "created": time.time(), "source": "test", "mode": "t2i", "model": "tiny",
                  "prompt": "p", "request": "{}"}, max_queue)
    return jid


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "db.sqlite")
    yield s
    s.close()


def test_wal_mode_and_durable_sync(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_claim_is_fifo_and_leased(store):
    a, b = _job(store), _job(store)
    got = store.claim("w1")
    assert got["id"] == a and got["status"] == "running" and got["attempts"] == 1
    assert store.claim("w2")["id"] == b
    assert store.claim("w3") is None
    # only the lease holder may report progress, add outputs or finish
    assert not store.progress(a, "w2", item=0, items=1, step=1, steps=2, preview=False)
    assert store.progress(a, "w1", item=0, items=1, step=1, steps=2, preview=False)
    assert not store.finish(a, "w2", "succeeded")
    assert store.finish(a, "w1", "succeeded")
    assert store.get(a)["status"] == "succeeded"


def test_worker_death_retries_then_fails(store):
    jid = _job(store)
    for attempt in (1, 2):
        assert store.claim(f"w{attempt}")["attempts"] == attempt
        assert store.release(f"w{attempt}", "worker died", max_attempts=3) == [jid]
        job = store.get(jid)
        assert job["status"] == "queued" and job["last_error"] == "worker died"
    store.claim("w3")
    store.release("w3", "worker died (killed by signal 9)", max_attempts=3)
    job = store.get(jid)
    assert job["status"] == "failed" and job["error_code"] == "worker_died"
    assert "tried 3 times" in job["error"] and "signal 9" in job["error"]


def test_server_restart_gives_the_attempt_back(store):
    jid = _job(store)
    store.claim("w1")
    store.release(None, "interrupted", max_attempts=1, charge=False)
    job = store.get(jid)
    assert job["status"] == "queued" and job["attempts"] == 0
    # the old worker's lease is gone: it can no longer finish the job
    assert not store.finish(jid, "w1", "succeeded")


def test_cancel_queued_and_running(store):
    a, b = _job(store), _job(store)
    store.claim("w1")
    assert store.request_cancel(b) == "cancelled"
    assert store.request_cancel(a) == "running"
    assert not store.progress(a, "w1", item=0, items=1, step=2, steps=9, preview=False)  # the worker sees the flag
    assert store.should_stop(a, "w1")


def test_queue_limit(store):
    _job(store, 2), _job(store, 2)
    with pytest.raises(QueueFull) as e:
        _job(store, 2)
    assert e.value.retry_after >= 1


def test_search_escapes_like_wildcards(store):
    jid = new_job_id()
    store.submit({"id": jid, "created": time.time(), "source": "t", "mode": "t2i", "model": None,
                  "prompt": "100% red_cube", "request": "{}"}, 10)
    _job(store)
    assert [j["id"] for j in store.search(text="0% RED_")] == [jid]
    assert store.search(text="%") and len(store.search(text="_c")) == 1


def test_job_ids_are_never_paths(tmp_path):
    data = DataDir.create(tmp_path / "d")
    for bad in ("../../etc/passwd", "..", "", "A" * 32, "0" * 31, "0" * 32 + "/x"):
        with pytest.raises(NotFound):
            check_job_id(bad)
    with pytest.raises(NotFound):
        data.upload_path("uploads/../mediagen.db")
    assert data.job_dir("0" * 32).parent == data.root / "jobs"


def test_secret_is_private_and_stable(tmp_path):
    data = DataDir.create(tmp_path / "d")
    key = data.secret()
    assert data.secret() == key and len(key) == 32
    assert (data.root / "secret").stat().st_mode & 0o077 == 0


def test_two_connections_share_the_queue(tmp_path):
    a, b = JobStore(tmp_path / "db"), JobStore(tmp_path / "db")
    jid = _job(a)
    assert b.claim("w")["id"] == jid
    assert a.get(jid)["status"] == "running"
    assert isinstance(a.db, sqlite3.Connection)
    a.close(), b.close()
