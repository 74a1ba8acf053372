"""Page view ids: 128 random bits each, never shared, drawn in blocks (``budget.page_view_id``)."""

import os
import re
import threading

from storefront.klevu import budget


def test_ids_are_128_random_bits_in_hex_and_never_repeat():
    ids = [budget.page_view_id() for _ in range(3 * budget.IDS_PER_READ + 7)]

    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_one_read_of_the_system_random_source_serves_a_block_of_page_views(monkeypatch):
    reads = []
    real = os.urandom

    def counted(n: int) -> bytes:
        reads.append(n)
        return real(n)

    budget._ids.clear()
    monkeypatch.setattr(budget.os, "urandom", counted)

    for _ in range(2 * budget.IDS_PER_READ):
        budget.page_view_id()

    assert reads == [16 * budget.IDS_PER_READ] * 2


def test_threads_taking_ids_at_once_never_share_one():
    budget._ids.clear()
    taken: list[list[str]] = [[] for _ in range(8)]

    def take(into: list[str]) -> None:
        for _ in range(1000):
            into.append(budget.page_view_id())

    threads = [threading.Thread(target=take, args=(into,)) for into in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [i for into in taken for i in into]
    assert len(set(every)) == len(every) == 8000


def test_a_forked_worker_draws_its_own_ids():
    """A worker forked after its parent drew a block must not give out the parent's ids."""
    budget._ids.clear()
    budget.page_view_id()  # the parent holds the rest of a block
    left = set(budget._ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.close(read)
        os.write(write, " ".join(budget.page_view_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)

    assert len(child) == 10
    assert not child & left
