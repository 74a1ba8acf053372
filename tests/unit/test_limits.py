"""The beacon's in-process counters: per window, and a full table that forgets no count."""

from __future__ import annotations

import math

from storefront.klevu.analytics.limits import WindowCounter, client_key
from tests.helpers import FakeClock


def test_counts_restart_with_each_window_and_say_how_long_it_lasts():
    clock = FakeClock(1000.0)
    counter = WindowCounter(10, clock=clock)
    assert counter.hit("a") == (1, 10.0)
    clock.advance(4)
    assert counter.hit("a") == (2, 6.0)
    clock.advance(6)
    assert counter.hit("a") == (1, 10.0)


def test_a_full_table_counts_a_new_key_as_over_every_limit_and_keeps_the_old_counts():
    counter = WindowCounter(10, max_keys=2, clock=FakeClock(1000.0))
    counter.hit("a")
    counter.hit("b")
    assert counter.hit("c")[0] == math.inf
    assert counter.hit("a")[0] == 2


def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_itself():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1") == "10.0.0.1"
    assert client_key(None) == "-"
