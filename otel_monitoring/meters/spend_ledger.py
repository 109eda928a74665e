"""Budget spend that outlives the process: one small ledger in the snapshot directory.

A budget's period (a UTC day or month) is longer than a process' life: a deploy or a crash
must not start the day's spend from $0 again, and the processes sharing a snapshot directory
spend from the same budget. Every cost is added to ``budgets.json`` under an ``flock`` (costs
are per LLM call or per order, so a file update each is cheap), and the process reads back the
directory's total for the period. A threshold (80 %, 90 %, 100 %) is announced by the process
whose cost crosses it, once per directory, period and limit, and a restarted process does not
announce again what its predecessor already did. A changed limit starts the announcements afresh:
80 % of a new limit is another amount than 80 % of the old one, and every level the spend has
crossed of the new limit is announced, in order, with the next cost.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from decimal import Decimal, InvalidOperation
from typing import Any

LEDGER_FILE = "budgets.json"
KEEP_PERIODS = 64  # entries kept (older periods are dropped): a few months of daily budgets


class SpendLedger:
    def __init__(self, directory: str):
        self.directory = directory
        self.path = os.path.join(directory, LEDGER_FILE)
        self._lock_path = os.path.join(directory, f".{LEDGER_FILE}.lock")

    def _locked(self, update: Any, wait: float | None = None) -> Any:
        """``update(ledger)`` under the file lock; ``wait``: seconds to wait for it at most
        (then None is returned and nothing is done)."""
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if wait is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            elif not _flock_within(fd, wait):
                return None
            try:
                with open(self.path, encoding="utf-8") as handle:
                    ledger = json.load(handle)
                if not isinstance(ledger, dict):
                    ledger = {}
            except (OSError, ValueError):
                ledger = {}
            result, changed = update(ledger)
            if changed:
                if len(ledger) > KEEP_PERIODS:
                    for key in sorted(ledger, key=lambda k: str(ledger[k].get("period_start", "")))[:-KEEP_PERIODS]:
                        del ledger[key]
                temporary = f"{self.path}.{os.getpid()}.tmp"
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(ledger, handle, indent=1, sort_keys=True)
                os.replace(temporary, self.path)
            return result
        finally:
            os.close(fd)

    @staticmethod
    def _entry(ledger: dict[str, Any], key: str, period_start: str, limit: Decimal | None = None) -> tuple[Decimal, set[str]]:
        entry = ledger.get(key)
        if not isinstance(entry, dict) or entry.get("period_start") != period_start:
            return Decimal(0), set()
        try:
            spent = Decimal(str(entry.get("spent_usd", "0")))
        except InvalidOperation:
            spent = Decimal(0)
        announced = {str(t) for t in entry.get("announced", [])}
        if limit is not None and entry.get("limit_usd") is not None and str(entry.get("limit_usd")) != str(limit):
            announced = set()  # announced against another limit
        return spent, announced

    def read(self, key: str, period_start: str, limit: Decimal | None = None,
             wait: float | None = None) -> tuple[Decimal, set[str]] | None:
        """The directory's spend of one budget in one period, and the thresholds already announced
        (of ``limit``: none when they were announced against another limit). None if the file
        lock was not free within ``wait`` seconds."""
        return self._locked(lambda ledger: (self._entry(ledger, key, period_start, limit), False), wait)

    def add(self, key: str, period_start: str, amount: Decimal, limit: Decimal,
            thresholds: tuple[Decimal, ...]) -> tuple[Decimal, list[Decimal]]:
        """Add ``amount``; returns the new total and the thresholds this addition crossed first."""
        def update(ledger: dict[str, Any]) -> tuple[tuple[Decimal, list[Decimal]], bool]:
            spent, announced = self._entry(ledger, key, period_start, limit)
            spent += amount
            crossed = [t for t in sorted(thresholds) if str(t) not in announced and spent >= t * limit]
            announced |= {str(t) for t in crossed}
            ledger[key] = {"period_start": period_start, "spent_usd": str(spent), "limit_usd": str(limit),
                           "announced": sorted(announced, key=Decimal)}
            return (spent, crossed), True

        return self._locked(update)


def _flock_within(fd: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
