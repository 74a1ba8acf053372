"""The outbox store: durable, idempotent, bounded, safe from many threads (SQLite in a temp dir)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storefront.klevu.analytics import outbox as outbox_module
from storefront.klevu.analytics.outbox import (
    ClientShareFull,
    OutboxError,
    OutboxFull,
    OutboxStore,
    _Put,
)

CLAIM: dict[str, Any] = {"lease_seconds": 60.0, "max_attempts": 20, "max_age": 3600.0}


def events(n: int, prefix: str = "e") -> list[tuple[str, dict]]:
    return [
        (f"{prefix}{i:04d}", {"event": "view_recs_list", "id": f"{prefix}{i:04d}"})
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path, clock):
    return OutboxStore(str(tmp_path), max_events=10, clock=clock)


def test_put_counts_new_events_and_ignores_repeated_ids(store):
    assert store.put(events(3)) == 3
    assert store.put(events(3)) == 0  # the same clicks sent again
    assert store.put([("x", {"a": 1}), ("x", {"a": 2})]) == 1  # twice in one call
    assert store.stats()["depth"] == 4


def test_an_id_stays_known_after_delivery_until_it_expires(store, clock):
    store.put(events(1))
    store.ack(store.claim(50, **CLAIM))
    assert store.put(events(1)) == 0, "a late retry of a delivered event must not resend it"
    clock.now += 3601
    store.forget_seen(clock.now - 3600)
    assert store.put(events(1)) == 1


def test_expiring_ids_keeps_those_of_events_still_queued(store, clock):
    store.put(events(1))
    clock.now += 7200
    store.forget_seen(clock.now - 3600)
    assert store.put(events(1)) == 0


def test_a_full_outbox_refuses_the_whole_put_and_counts_the_drop(store):
    store.put(events(8))
    with pytest.raises(OutboxFull, match="8 of 10"):
        store.put(events(3, prefix="new"))
    stats = store.stats()
    assert stats["depth"] == 8, "all or nothing: no part of a refused put is queued"
    assert stats["drops"]["full"] == 3
    assert store.put(events(8)) == 0, "repeats of queued events are not drops"
    assert store.put(events(2, prefix="new")) == 2
    assert store.stats()["drops"]["full"] == 3


def test_repeats_are_not_refused_when_the_capacity_was_lowered_below_the_depth(tmp_path):
    OutboxStore(str(tmp_path), max_events=10).put(events(8))
    smaller = OutboxStore(str(tmp_path), max_events=5)
    assert smaller.put(events(8)) == 0
    with pytest.raises(OutboxFull):
        smaller.put(events(1, prefix="new"))


def test_the_refused_events_can_be_put_again_once_there_is_room(store):
    store.put(events(10))
    with pytest.raises(OutboxFull):
        store.put(events(1, prefix="late"))
    store.ack(store.claim(5, **CLAIM))
    assert store.put(events(1, prefix="late")) == 1


def test_bad_input_is_refused_before_touching_the_database(store):
    with pytest.raises(ValueError, match="event id must be a non-empty string"):
        store.put([("", {})])
    with pytest.raises(TypeError):
        store.put([("ok", {"when": object()})])
    assert store.stats()["depth"] == 0


def test_a_locked_database_is_an_outbox_error(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_module, "BUSY_TIMEOUT", 0.05)
    store = OutboxStore(str(tmp_path))
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OutboxError, match="locked"):
            store.put(events(1))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.put(events(1)) == 1


def test_commits_are_durable_against_power_loss(store):
    db = store._db()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_many_threads_put_at_once_and_each_id_counts_once(tmp_path):
    store = OutboxStore(str(tmp_path))
    new = []

    def worker(n: int) -> None:
        # Every id is put by two threads: exactly one of them may see it as new.
        for i in range(150):
            new.append(store.put([(f"id{(n // 2) * 1000 + i}", {"n": n})]))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(new) == 4 * 150
    assert store.stats()["depth"] == 4 * 150


def test_events_survive_reopening_the_store(tmp_path):
    OutboxStore(str(tmp_path)).put(events(3))
    reopened = OutboxStore(str(tmp_path))
    assert [row.event_id for row in reopened.claim(50, **CLAIM)] == ["e0000", "e0001", "e0002"]


def test_claimed_events_come_back_when_their_lease_lapses(store, clock):
    store.put(events(2))
    assert len(store.claim(50, **CLAIM)) == 2
    assert store.claim(50, **CLAIM) == []
    clock.now += 60
    again = store.claim(50, **CLAIM)
    assert [row.attempts for row in again] == [2, 2]


def test_stats_report_what_an_operator_watches(store, clock):
    assert store.stats() == {
        "depth": 0,
        "capacity": 10,
        "oldest_age_seconds": None,
        "in_flight": 0,
        "delivered": 0,
        "retried": 0,
        "dead_letters": 0,
        "drops": {
            "full": 0,
            "client_share": 0,
            "dead_letter_attempts": 0,
            "dead_letter_age": 0,
            "rejected_4xx": 0,
        },
        "last_delivery_at": None,
        "last_error": None,
    }
    store.put(events(3))
    clock.now += 12.5
    store.put(events(1, prefix="later"))
    claimed = store.claim(2, **CLAIM)
    store.ack(claimed[:1])
    store.dead_letter(claimed[1:], "rejected_4xx", "HTTP 400")
    store.note_error("POST /collect: HTTP 500")
    stats = store.stats()
    assert stats["depth"] == 2 and stats["in_flight"] == 0
    assert stats["oldest_age_seconds"] == 12.5
    assert stats["delivered"] == 1 and stats["dead_letters"] == 1
    assert stats["drops"]["rejected_4xx"] == 1
    assert stats["last_error"] == {
        "message": "POST /collect: HTTP 500",
        "at": "2023-11-14T22:13:32+00:00",
    }
    store.claim(1, **CLAIM)
    assert store.stats()["in_flight"] == 1
    store.release(store.claim(1, **CLAIM), [clock.now + 1], "HTTP 503", refund=True)
    assert store.stats()["retried"] == 1


# -- group commit -------------------------------------------------------------------------------
def test_concurrent_puts_share_commits_and_every_event_is_kept(tmp_path, monkeypatch):
    store = OutboxStore(str(tmp_path))
    commits: list[int] = []
    commit = store._commit

    def counted(group):
        commits.append(len(group))
        commit(group)

    monkeypatch.setattr(store, "_commit", counted)
    barrier = threading.Barrier(16)

    def writer(n):
        barrier.wait()
        return sum(store.put([(f"e-{n}-{i}", {"i": i})]) for i in range(40))

    with ThreadPoolExecutor(16) as pool:
        accepted = sum(pool.map(writer, range(16)))

    assert accepted == 640 == store.stats()["depth"]
    assert sum(commits) == 640 and len(commits) < 640  # some puts shared a commit


def test_in_one_group_a_put_that_does_not_fit_fails_alone_and_ids_count_once(tmp_path):
    store = OutboxStore(str(tmp_path), max_events=3)
    first = _Put({"a": "{}", "b": "{}"})
    too_many = _Put({"c": "{}", "d": "{}"})
    repeat = _Put({"a": "{}", "e": "{}"})

    store._commit([first, too_many, repeat])

    assert (first.fresh, first.error) == (2, None)
    assert too_many.fresh == 0 and isinstance(too_many.error, OutboxFull)
    assert (repeat.fresh, repeat.error) == (1, None)  # "a" was already in, "e" fits
    assert store.stats()["depth"] == 3 and store.stats()["drops"]["full"] == 2


def _open_store(data_dir: str, barrier) -> None:
    barrier.wait()
    OutboxStore(data_dir)


def test_processes_starting_together_on_a_new_data_dir_all_open_the_outbox(tmp_path):
    # As gunicorn's workers do at start-up (without --preload): each one opens the outbox,
    # and the first to switch a new database to WAL once made another fail "database is
    # locked", so that worker never came up.
    context = multiprocessing.get_context("fork")
    for attempt in range(12):
        data_dir = str(tmp_path / f"data-{attempt}")
        barrier = context.Barrier(4)
        workers = [context.Process(target=_open_store, args=(data_dir, barrier)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0] * 4, f"attempt {attempt}"


def test_one_client_fills_only_its_share_and_another_client_still_gets_in(tmp_path):
    store = OutboxStore(str(tmp_path), max_events=2000, client_share=0.05)
    assert store.put(events(100, "a"), client="10.0.0.1") == 100
    with pytest.raises(ClientShareFull):
        store.put(events(1, "more"), client="10.0.0.1")
    assert store.put(events(1, "b"), client="10.0.0.2") == 1
    assert store.stats()["drops"]["client_share"] == 1


def test_ids_are_never_forgotten_early_to_make_room_the_queue_refuses_instead(store, clock):
    for n in range(store.max_seen):  # delivered at once: the queue itself stays empty
        store.put(events(1, f"d{n}-"))
        store.ack(store.claim(50, **CLAIM))
    with pytest.raises(OutboxFull):
        store.put(events(1, "one-more"))
    assert store.put(events(1, "d0-")) == 0  # still known: a replay is still a duplicate
    clock.now += 3601
    store.forget_seen(clock.now - 3600)
    assert store.put(events(1, "one-more")) == 1


def test_dead_letters_are_pruned_after_a_week(store, clock):
    store.put(events(2))
    store.dead_letter(store.claim(50, **CLAIM), "rejected_4xx", "HTTP 400")
    assert store.stats()["dead_letters"] == 2
    clock.now += 6 * 86400
    store.forget_seen(clock.now - 3600)
    assert store.stats()["dead_letters"] == 2
    clock.now += 2 * 86400
    store.forget_seen(clock.now - 3600)
    assert store.stats()["dead_letters"] == 0


def test_a_database_from_before_client_shares_is_upgraded(tmp_path):
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        db.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
            "payload TEXT NOT NULL, created_at REAL NOT NULL, attempts INTEGER NOT NULL "
            "DEFAULT 0, next_attempt_at REAL NOT NULL, lease_until REAL, last_error TEXT)"
        )
        db.execute(
            "INSERT INTO outbox (event_id, payload, created_at, next_attempt_at) "
            "VALUES ('old', '{}', unixepoch(), unixepoch())"
        )
    store = OutboxStore(str(tmp_path))
    assert store.put(events(1), client="10.0.0.1") == 1
    assert [row.event_id for row in store.claim(50, **CLAIM)] == ["old", "e0000"]
