"""What a running search shows a person: a compact view of its trials, built from plain dicts.

``SearchProgress`` collects what the Ray adapter sees (a trial and its searched parameters, each
epoch's row, its status) and ``lines(width)`` renders it:

- a head line: trials by status, time elapsed and left (of ``--time-budget``, else an estimate
  from the epochs still to run);
- the best configuration so far by the final ranking's rule (``ucc_tune.search.ranking.rank_trials``:
  trials that ran their whole budget, by the objective at their last epoch); before any trial has,
  the leader by its current value, marked as not final;
- one row per trial shown: id, searched parameters, the objective now and its best epoch, epochs
  done of planned and status (``ucc_tune.schema.trial_status``). With many trials only the top
  ranked and the running ones are shown, with a count of the rest by status.

Every line fits ``width``: parameter columns are narrowed (names abbreviated), then the trial
id and the status, before a line is cut. No Ray here; ``parse_duration`` reads ``--time-budget`` values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ucc_tune.schema import metric_direction, trial_status
from ucc_tune.search.ranking import describe, rank_trials

TOP_SHOWN = 3  # finished trials shown by rank when there are too many to show all
ALL_SHOWN = 10  # up to this many trials, every one is shown
GAP = "  "
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds of ``"2h"``, ``"90m"``, ``"3600s"``, ``"1h30m"`` or a plain number of seconds."""
    value = text.strip().lower()
    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", value)
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif parts:
        seconds = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", value))
    else:
        raise ValueError(f"{text!r}: give a duration such as 2h, 90m, 3600s or 1h30m")
    if not seconds > 0:
        raise ValueError(f"{text!r}: must be longer than 0 s")
    return seconds


def format_duration(seconds: float) -> str:
    """``"1h05m"``, ``"12m03s"``, ``"45s"``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass
class TrialProgress:
    """What is known of one trial: Ray's status, its parameters and its objective so far."""

    trial_id: str
    params: dict[str, Any] = field(default_factory=dict)
    planned: int | None = None  # epochs
    ray_status: str = "PENDING"
    error: bool = False
    epochs_done: int = 0
    current: float | None = None  # the objective at the last reported epoch
    best: float | None = None  # over its epochs, in the objective's direction
    train_s: float | None = None  # its training time at the last reported epoch (the row's time_s)

    def status(self) -> str:
        live = self.ray_status if self.ray_status in ("RUNNING", "PENDING", "PAUSED") else None
        return trial_status(self.error, self.epochs_done, self.planned, live)


class SearchProgress:
    """The state of a search as a person watches it (see the module docstring)."""

    def __init__(
        self,
        searched: list[str],
        metric: str,
        num_samples: int,
        mode: str | None = None,
        budget_s: float | None = None,
    ) -> None:
        self.searched, self.metric, self.num_samples = list(searched), metric, num_samples
        self.mode = mode or metric_direction(metric)
        self.budget_s = budget_s
        self.trials: dict[str, TrialProgress] = {}
        self._most_at_once = 0  # trials seen running at once

    def trial(self, trial_id: str, params: dict[str, Any], planned: int | None, ray_status: str) -> bool:
        """Record a trial's parameters and Ray status; True when anything changed."""
        t = self.trials.setdefault(trial_id, TrialProgress(trial_id))
        before = (t.params, t.planned, t.ray_status)
        t.params = {p: params[p] for p in self.searched if p in params}
        t.planned, t.ray_status = planned, ray_status
        t.error = t.error or ray_status == "ERROR"
        return before != (t.params, t.planned, t.ray_status)

    def result(self, trial_id: str, row: dict[str, Any]) -> None:
        """Record one reported epoch of a trial."""
        t = self.trials.setdefault(trial_id, TrialProgress(trial_id))
        done = row.get("epochs_done")
        t.epochs_done = max(t.epochs_done, int(done)) if isinstance(done, (int, float)) else t.epochs_done
        seconds = row.get("time_s")
        if isinstance(seconds, (int, float)) and math.isfinite(seconds):
            t.train_s = max(t.train_s or 0.0, float(seconds))
        value = row.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            t.current = float(value)
            better = t.best is None or (value > t.best if self.mode == "max" else value < t.best)
            t.best = float(value) if better else t.best

    # --- rendering -------------------------------------------------------------------------------

    def ranked(self) -> list[TrialProgress]:
        """Trials that ran their whole budget, best first, by the final ranking's rule."""
        import pandas as pd

        rows = [
            {"trial_id": t.trial_id, "status": t.status(), f"last_{self.metric}": t.current, "n_seeds": 1}
            for t in self.trials.values()
        ]
        if not rows:
            return []
        frame = rank_trials(pd.DataFrame(rows), self.metric, self.mode)
        return [self.trials[i] for i in frame[frame["rank"].notna()]["trial_id"]]

    def _by_current(self, trials: list[TrialProgress]) -> list[TrialProgress]:
        sign = -1.0 if self.mode == "max" else 1.0
        return sorted(trials, key=lambda t: (t.current is None, sign * (t.current or 0.0), t.trial_id))

    def shown(self) -> tuple[list[TrialProgress], dict[str, int]]:
        """The trials shown, in order (ranked, running, then the rest), and the rest by status."""
        ranked = self.ranked()
        running = self._by_current([t for t in self.trials.values() if t.status() == "RUNNING"])
        others = self._by_current([t for t in self.trials.values() if t not in ranked and t not in running])
        if len(self.trials) <= ALL_SHOWN:
            return [*ranked, *running, *others], {}
        shown = [*ranked[:TOP_SHOWN], *running]
        rest: dict[str, int] = {}
        for t in [*ranked[TOP_SHOWN:], *others]:
            rest[t.status()] = rest.get(t.status(), 0) + 1
        return shown, rest

    def head(self, elapsed_s: float) -> str:
        counts: dict[str, int] = {}
        for t in self.trials.values():
            counts[t.status()] = counts.get(t.status(), 0) + 1
        words = {
            "RUNNING": "running",
            "TERMINATED": "finished",
            "STOPPED": "stopped",
            "ERROR": "failed",
            "PENDING": "pending",
        }
        states = ", ".join(f"{counts[s]} {w}" for s, w in words.items() if counts.get(s))
        return (
            f"trials {len(self.trials)}/{self.num_samples}: {states or 'none yet'} | {self.clock(elapsed_s)}"
        )

    def clock(self, elapsed_s: float) -> str:
        """Time elapsed, and left: of the budget, else estimated from the epochs still to run."""
        text = f"elapsed {format_duration(elapsed_s)}"
        if self.budget_s is not None:
            left = max(0.0, self.budget_s - elapsed_s)
            return f"{text}, {format_duration(left)} left of the {format_duration(self.budget_s)} budget"
        done = sum(t.epochs_done for t in self.trials.values())
        planned = max((t.planned or 0 for t in self.trials.values()), default=0)
        ended = [t for t in self.trials.values() if t.status() in ("TERMINATED", "STOPPED", "ERROR")]
        still = planned * (self.num_samples - len(ended)) - sum(
            t.epochs_done for t in self.trials.values() if t not in ended
        )
        if done and planned:
            left = self._seconds_per_epoch(elapsed_s, done) * max(0, still)
            text += f", about {format_duration(left)} left at most"
        return text

    def _seconds_per_epoch(self, elapsed_s: float, done: int) -> float:
        """Wall seconds the search takes per epoch of a trial. From the trials' own training time
        (``time_s``) spread over the most trials seen running at once, when they report it: a rate that
        leaves out the cluster's start and the first trials' set-up, which the elapsed time holds
        (with those, the estimate fell from 23 to 11 minutes in the demo's first two minutes).
        Else the elapsed time per epoch done."""
        timed = [t for t in self.trials.values() if t.train_s is not None and t.epochs_done]
        if not timed:
            return elapsed_s / done
        per_epoch = sum(t.train_s or 0.0 for t in timed) / sum(t.epochs_done for t in timed)
        running = sum(t.status() == "RUNNING" for t in self.trials.values())
        self._most_at_once = max(self._most_at_once, running)  # not 1 between two launches
        return per_epoch / max(1, self._most_at_once)

    def best_line(self) -> str:
        ranked = self.ranked()
        if ranked:
            b = ranked[0]
            return f"best: {self._words(b)}: {self.metric} {b.current:.4f} (ran all {b.planned} epochs)"
        leaders = [t for t in self._by_current(list(self.trials.values())) if t.current is not None]
        if not leaders:
            return "best: no result yet"
        b = leaders[0]
        return (
            f"leading (not final): {self._words(b)}: "
            f"{self.metric} {b.current:.4f} after {b.epochs_done}/{b.planned} epochs"
        )

    def _words(self, t: TrialProgress) -> str:
        return describe({"trial_id": t.trial_id, **t.params}, self.searched)

    def lines(self, width: int, elapsed_s: float) -> list[str]:
        """The view, every line at most ``width`` characters."""
        shown, rest = self.shown()
        header = ["trial", *self.searched, self.metric, "best", "epochs", "status"]
        rows = [
            [
                t.trial_id,
                *(_cell(t.params.get(p)) for p in self.searched),
                _cell(t.current),
                _cell(t.best),
                f"{t.epochs_done}/{t.planned if t.planned is not None else '?'}",
                t.status(),
            ]
            for t in shown
        ]
        # parameters first, then the trial id (7 characters still tell 50 trials apart), status last
        stages = [
            (range(1, 1 + len(self.searched)), 4),
            (range(1), 7),
            (range(len(header) - 1, len(header)), 4),
        ]
        table = fit_table(header, rows, width, narrow=stages)
        head = self.head(elapsed_s)
        if len(head) > width:  # the clock on a line of its own rather than cut off
            head, clock = head.split(" | ", 1)
            out = [head, clock]
        else:
            out = [head]
        out = [*out, self.best_line(), *table]
        if rest:
            out.append(
                f"+{sum(rest.values())} more: " + ", ".join(f"{n} {s}" for s, n in sorted(rest.items()))
            )
        return [_cut(line, width) for line in out]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


def fit_table(
    header: list[str], rows: list[list[str]], width: int, narrow: list[tuple[range, int]]
) -> list[str]:
    """Left-aligned columns two spaces apart, at most ``width`` wide. Each stage of ``narrow``
    (columns, the fewest characters they keep) is cut in turn, widest first, their names and
    values ending in ``~`` where cut; what still does not fit is cut at the line's end."""
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    for columns, floor in narrow:
        cap = max((widths[i] for i in columns), default=0)
        while sum(widths) + len(GAP) * (len(widths) - 1) > width and cap > floor:
            cap -= 1
            widths = [min(w, cap) if i in columns else w for i, w in enumerate(widths)]
    return [
        GAP.join(_cut(cell, w).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (header, *rows)
    ]
