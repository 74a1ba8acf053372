"""The ``klevu_segments`` cookie: step 1's answer kept in the browser, signed, for one session
and one exchange id, until it runs out; anything else reads as no cookie at all."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeSerializer

from storefront.klevu.segments.cookie import MAX_CHARS, SALT, KeptSegments, seal, unseal

SECRET = "test-secret"
KEPT = KeptSegments("session-0001", "ab" * 16, ("seg_outdoor", "seg_vip"), 1_000.0)


def read(value, *, secret=SECRET, session_id="session-0001", exchange_hash="ab" * 16, now=900.0):
    return unseal(secret, value, session_id=session_id, exchange_hash=exchange_hash, now=now)


def test_a_sealed_answer_reads_back_whole_and_small():
    value = seal(SECRET, KEPT)

    assert read(value) == KEPT
    assert read(value).seconds_left(900.2) == 100
    assert len(value) < 300


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "another-secret"},
        {"session_id": "session-0002"},
        {"session_id": None},
        {"exchange_hash": "cd" * 16},
        {"now": 1_000.0},  # ran out
    ],
    ids=["other secret", "other session", "no session", "other exchange id", "expired"],
)
def test_an_answer_for_another_visitor_key_or_time_is_not_read(kwargs):
    assert read(seal(SECRET, KEPT), **kwargs) is None


def test_a_value_already_read_is_still_checked_against_each_request():
    value = seal(SECRET, KEPT)
    assert read(value) == KEPT  # now remembered

    assert read(value, session_id="session-0002") is None
    assert read(value, exchange_hash="cd" * 16) is None
    assert read(value, now=1_000.0) is None
    assert read(value, secret="another-secret") is None
    assert read(value) == KEPT


@pytest.mark.parametrize(
    "payload",
    [
        {"session": "session-0001"},
        [1, "ab" * 16, ["seg_outdoor"], 1_000.0],
        ["session-0001", "ab" * 16, ["seg_outdoor"]],
        ["session-0001", "ab" * 16, "seg_outdoor", 1_000.0],
        ["session-0001", "ab" * 16, [1, 2], 1_000.0],
        ["session-0001", "ab" * 16, ["seg_outdoor"], True],
        ["session-0001", "ab" * 16, ["seg_outdoor"], "1000"],
    ],
)
def test_a_signed_value_of_the_wrong_shape_is_not_read(payload):
    assert read(URLSafeSerializer(SECRET, salt=SALT).dumps(payload)) is None


@pytest.mark.parametrize(
    "value", [None, "", "garbage", "a.b.c", "é" * 10, seal(SECRET, KEPT) + "x" * MAX_CHARS]
)
def test_malformed_or_oversized_values_are_not_read(value):
    assert read(value) is None
