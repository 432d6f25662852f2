"""The durable job queue: jobs, their progress, outputs and history in SQLite (WAL, synchronous=FULL).

The HTTP process and the worker process each open their own connection. Every state change is one
short transaction; a job's `worker` column is its lease, so a worker that lost its job (the server
restarted, the job was released after a crash) can never overwrite what another run wrote.

Job states: queued -> running -> succeeded | failed | cancelled; running -> queued when the worker
died and the job has attempts left.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ACTIVE + TERMINAL

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  version INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL,
  status TEXT NOT NULL,
  phase TEXT,
  source TEXT NOT NULL,
  mode TEXT NOT NULL,
  model TEXT,
  prompt TEXT NOT NULL,
  request TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker TEXT,
  cancel INTEGER NOT NULL DEFAULT 0,
  started REAL,
  first_step REAL,
  first_done INTEGER,
  progress_at REAL,
  finished REAL,
  item INTEGER,
  items INTEGER,
  step INTEGER,
  steps INTEGER,
  preview INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  error_code TEXT,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs(created);
CREATE TABLE IF NOT EXISTS outputs (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  kind TEXT NOT NULL,
  media_type TEXT NOT NULL,
  path TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  width INTEGER,
  height INTEGER,
  frames INTEGER,
  fps REAL,
  duration REAL,
  has_audio INTEGER NOT NULL DEFAULT 0,
  seed INTEGER,
  recipe TEXT,
  PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL NOT NULL);
"""


class QueueFull(Exception):
    """The queue holds max_queue active jobs; retry after `retry_after` seconds."""

    def __init__(self, active: int, retry_after: int):
        super().__init__(f"the queue is full ({active} jobs waiting or running): retry in {retry_after} s")
        self.retry_after = retry_after


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, full fsync on commit and foreign keys."""
    db = sqlite3.connect(str(path), timeout=15.0, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class JobStore:
    """All reads and writes of jobs, outputs and the model-info cache."""

    def __init__(self, path: Path):
        self.db = connect(path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken up front, so it never deadlocks on upgrade)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- submitting and reading ------------------------------------------------------------------
    def submit(self, job: dict[str, Any], max_queue: int) -> None:
        """Insert a queued job, or raise QueueFull when max_queue jobs are active."""
        with self._tx() as db:
            active = db.execute("SELECT count(*) FROM jobs WHERE status IN ('queued','running')").fetchone()[0]
            if active >= max_queue:
                raise QueueFull(active, self._retry_after(active - max_queue + 1))
            row = {**job, "status": "queued", "version": 1}
            cols = ", ".join(row)
            db.execute(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    def _retry_after(self, slots: int) -> int:
        """Seconds until `slots` queue places free up, from recent run times (at least 1)."""
        avg = self.db.execute(
            "SELECT avg(finished - started) FROM (SELECT finished, started FROM jobs WHERE status='succeeded' "
            "AND started IS NOT NULL ORDER BY finished DESC LIMIT 20)").fetchone()[0]
        return max(1, math.ceil((avg or 5.0) * slots))

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return dict(row) if row else None

    def outputs(self, job_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Outputs of each job, in index order."""
        out: dict[str, list[dict[str, Any]]] = {j: [] for j in job_ids}
        if not job_ids:
            return out
        rows = self.db.execute(
            f"SELECT * FROM outputs WHERE job_id IN ({', '.join('?' * len(job_ids))}) ORDER BY job_id, idx",
            job_ids).fetchall()
        for r in rows:
            out[r["job_id"]].append(dict(r))
        return out

    def output(self, job_id: str, idx: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM outputs WHERE job_id=? AND idx=?", (job_id, idx)).fetchone()
        return dict(row) if row else None

    def queue_position(self, job: dict[str, Any]) -> int | None:
        """0-based place of a queued job in the queue (None when it is not queued)."""
        if job["status"] != "queued":
            return None
        return self.db.execute("SELECT count(*) FROM jobs WHERE status='queued' AND (created < ? OR "
                               "(created = ? AND rowid < (SELECT rowid FROM jobs WHERE id=?)))",
                               (job["created"], job["created"], job["id"])).fetchone()[0]

    def search(self, *, text: str | None = None, mode: str | None = None, status: str | None = None,
               before: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """History, newest first, filtered by prompt text (substring, case-insensitive), mode and status."""
        where, args = [], []
        if text:
            esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("prompt LIKE ? ESCAPE '\\'")
            args.append(f"%{esc}%")
        if mode:
            where.append("mode = ?")
            args.append(mode)
        if status:
            where.append("status = ?")
            args.append(status)
        if before is not None:
            where.append("created < ?")
            args.append(before)
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.db.execute(sql + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of jobs per status."""
        rows = self.db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {r[0]: r[1] for r in rows}

    def total_output_bytes(self) -> int:
        return int(self.db.execute("SELECT coalesce(sum(bytes), 0) FROM outputs").fetchone()[0])

    # -- the worker's side -----------------------------------------------------------------------
    def claim(self, worker: str) -> dict[str, Any] | None:
        """Take the oldest queued job for `worker` (its lease) and count the attempt."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY created, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status='running', phase='loading', worker=?, attempts=attempts+1, started=?, "
                "first_step=NULL, first_done=NULL, progress_at=NULL, item=NULL, items=NULL, step=NULL, steps=NULL, "
                "version=version+1 WHERE id=?", (worker, time.time(), row["id"]))
        return self.get(row["id"])

    def progress(self, job_id: str, worker: str, *, item: int, items: int, step: int, steps: int,
                 preview: bool) -> bool:
        """Record a step; False when the job is no longer this worker's or a cancel was asked for."""
        now = time.time()
        done = item * steps + step
        row = self.db.execute(
            "UPDATE jobs SET phase='generating', item=?, items=?, step=?, steps=?, progress_at=?, "
            "first_step=coalesce(first_step, ?), first_done=coalesce(first_done, ?), "
            "preview=preview+?, version=version+1 WHERE id=? AND worker=? AND status='running' RETURNING cancel",
            (item, items, step, steps, now, now, done, int(preview), job_id, worker)).fetchall()
        return bool(row) and not row[0]["cancel"]  # fetchall: a RETURNING statement ends when read out

    def should_stop(self, job_id: str, worker: str) -> bool:
        """True when a cancel was asked for or the job is no longer this worker's."""
        row = self.db.execute("SELECT cancel, worker, status FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row is None or bool(row["cancel"]) or row["worker"] != worker or row["status"] != "running"

    def set_phase(self, job_id: str, worker: str, phase: str) -> None:
        self.db.execute("UPDATE jobs SET phase=?, version=version+1 WHERE id=? AND worker=? AND status='running'",
                        (phase, job_id, worker))

    def add_output(self, job_id: str, worker: str, out: dict[str, Any]) -> bool:
        """Record a saved output; False when the job is no longer this worker's."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM jobs WHERE id=? AND worker=? AND status='running'",
                          (job_id, worker)).fetchone() is None:
                return False
            row = {"job_id": job_id, **out}
            db.execute(f"INSERT OR REPLACE INTO outputs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))
            db.execute("UPDATE jobs SET version=version+1 WHERE id=?", (job_id,))
        return True

    def finish(self, job_id: str, worker: str, status: str, error: str | None = None,
               code: str | None = None) -> bool:
        """End a running job held by `worker`; False when it was not (any more) its job."""
        assert status in TERMINAL
        cur = self.db.execute(
            "UPDATE jobs SET status=?, phase=NULL, error=?, error_code=?, finished=?, version=version+1 "
            "WHERE id=? AND worker=? AND status='running'", (status, error, code, time.time(), job_id, worker))
        return cur.rowcount == 1

    # -- the server's side -----------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> str | None:
        """Cancel a queued job at once, flag a running one (its worker stops within a step); the new status."""
        with self._tx() as db:
            row = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                return None
            if row["status"] == "queued":
                db.execute("UPDATE jobs SET status='cancelled', error='cancelled before it started', "
                           "error_code='cancelled', finished=?, version=version+1 WHERE id=?", (time.time(), job_id))
                return "cancelled"
            if row["status"] == "running":
                db.execute("UPDATE jobs SET cancel=1, version=version+1 WHERE id=?", (job_id,))
            return row["status"]

    def release(self, worker: str | None, reason: str, max_attempts: int, *, charge: bool = True) -> list[str]:
        """Jobs left running by a dead worker (or by any worker when None): retry, or fail once out of attempts.

        charge=False (the server stopped or restarted, not the job's fault) gives the attempt back.
        """
        now = time.time()
        with self._tx() as db:
            if worker is None:
                rows = db.execute("SELECT id, attempts, cancel FROM jobs WHERE status='running'").fetchall()
            else:
                rows = db.execute("SELECT id, attempts, cancel FROM jobs WHERE status='running' AND worker=?",
                                  (worker,)).fetchall()
            for r in rows:
                if r["cancel"]:
                    db.execute("UPDATE jobs SET status='cancelled', phase=NULL, error=?, error_code='cancelled', "
                               "finished=?, version=version+1 WHERE id=?", (f"cancelled ({reason})", now, r["id"]))
                elif charge and r["attempts"] >= max_attempts:
                    msg = (f"{reason}; the job was tried {r['attempts']} times and is not retried again "
                           "(it may need more memory than the machine has: try a smaller size or fewer outputs)")
                    db.execute("UPDATE jobs SET status='failed', phase=NULL, error=?, error_code='worker_died', "
                               "last_error=?, finished=?, version=version+1 WHERE id=?", (msg, reason, now, r["id"]))
                else:
                    db.execute("UPDATE jobs SET status='queued', phase=NULL, worker=NULL, last_error=?, "
                               "attempts=attempts-?, item=NULL, items=NULL, step=NULL, steps=NULL, "
                               "version=version+1 WHERE id=?", (reason, 0 if charge else 1, r["id"]))
        return [r["id"] for r in rows]

    def delete(self, job_id: str) -> bool:
        """Remove a finished job and its output rows."""
        cur = self.db.execute(f"DELETE FROM jobs WHERE id=? AND status IN {TERMINAL}", (job_id,))
        return cur.rowcount == 1

    # -- model information cache -----------------------------------------------------------------
    def cache_get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM cache WHERE key=?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def cache_set(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO cache (key, value, at) VALUES (?, ?, ?)",
                        (key, json.dumps(value), time.time()))

    def cache_clear(self) -> None:
        self.db.execute("DELETE FROM cache")
