"""Planned failures per simulated service, so the shop's resilience can be shown and tested.

A plan is deterministic — every Nth request fails, the first N do, or all do while "down" —
so a test can say "a third of collects fail" and know exactly which ones. Latency applies to
every request of the service, failed or not, like a slow network would.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

SERVICES = ("visitor", "config", "search", "collect")


class BadFaultPlan(ValueError):
    """A fault plan in a control request is malformed."""


@dataclass(frozen=True)
class FaultPlan:
    fail_every: int = 0  # 0: never; 1: every request; 3: the 3rd, 6th, 9th ...
    status: int = 503
    retry_after: int | None = None
    down: bool = False
    latency_ms: int = 0
    fail_first: int = 0  # the first N requests fail, then the service is back

    @classmethod
    def from_json(cls, body: object) -> FaultPlan:
        if not isinstance(body, dict) or set(body) - set(cls.__dataclass_fields__):
            raise BadFaultPlan(
                f"a fault plan is an object with keys {list(cls.__dataclass_fields__)}"
            )
        plan = cls(**body)
        checks = {
            "fail_every": _whole(plan.fail_every),
            "status": _whole(plan.status) and 400 <= plan.status <= 599,
            "retry_after": plan.retry_after is None or _whole(plan.retry_after),
            "down": isinstance(plan.down, bool),
            "latency_ms": _whole(plan.latency_ms) and plan.latency_ms <= 60_000,
            "fail_first": _whole(plan.fail_first),
        }
        wrong = [key for key, ok in checks.items() if not ok]
        if wrong:
            raise BadFaultPlan(f"fault plan values out of range: {', '.join(wrong)}")
        return plan

    def fails(self, nth_request: int) -> bool:
        return (
            self.down
            or nth_request <= self.fail_first
            or (self.fail_every > 0 and nth_request % self.fail_every == 0)
        )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Faults:
    def __init__(self):
        self._lock = threading.Lock()
        self._plans: dict[str, FaultPlan] = {}
        self._requests: dict[str, int] = {}

    def plan(self, service: str, plan: FaultPlan | None) -> None:
        """Set (or with ``None`` clear) a service's plan; its request count starts again."""
        with self._lock:
            self._requests[service] = 0
            if plan is None:
                self._plans.pop(service, None)
            else:
                self._plans[service] = plan

    def next_request(self, service: str) -> tuple[float, FaultPlan | None]:
        """Seconds to delay this request, and the plan when it must fail."""
        with self._lock:
            plan = self._plans.get(service)
            if plan is None:
                return 0.0, None
            self._requests[service] += 1
            return plan.latency_ms / 1000, plan if plan.fails(self._requests[service]) else None

    def describe(self) -> dict:
        with self._lock:
            return {
                service: {**_shown(plan), "requests": self._requests[service]}
                for service, plan in self._plans.items()
            }


def _shown(plan: FaultPlan) -> dict:
    """The plan's fields; ``fail_first`` only when a plan uses it (scenario packs do)."""
    fields = asdict(plan)
    if not plan.fail_first:
        del fields["fail_first"]
    return fields
