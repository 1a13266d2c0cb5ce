"""The Optuna searcher of a search, what keeps the study true across a killed driver, and the
search's Tune callbacks.

``PruningOptunaSearch`` is Ray's ``OptunaSearch`` with two changes:

- **Trials a scheduler stopped early are PRUNED**, with their per-epoch values as intermediate
  values at step ``epoch`` (plain ``OptunaSearch`` tells them COMPLETE with an early value, which
  misleads TPE); ``samplers.trial_outcome`` decides the state.
- **The study in storage is the truth, not the pickled searcher.** Tune saves the searcher now
  and then; a driver killed between two saves is restored with a searcher that is behind its own
  study. So every report and every tell first asks the storage whether that Optuna trial has
  already finished (it is then never reported to or told again: no ``UpdateFinishedTrialError``,
  one tell per trial); and an Optuna trial the study holds as RUNNING that no Tune trial owns (it
  was asked for just before the kill) is **reused** by the next trial Tune asks for, with its
  parameters, or adopted by a resumed Tune trial with the same parameters, never duplicated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import ray.tune
from ray.tune.search.optuna import OptunaSearch

from ucc_tune.ray_adapter.callbacks import tracker_callbacks
from ucc_tune.schema import STUDY_FILE
from ucc_tune.search.plan import SearchPlan, publish
from ucc_tune.search.prefill import prefill_study
from ucc_tune.search.samplers import trial_outcome
from ucc_tune.storage import Storage
from ucc_tune.train.session import RunFolder

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


class PruningOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna the truth about stopped trials and stays true to its study's
    storage after a restore (see the module docstring)."""

    def __init__(self, *args: Any, epochs: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._epochs = epochs
        self._planned_epochs: dict[str, int] = {}
        self._reported_epochs: dict[str, set[int]] = {}

    # --- the study's storage as the truth ------------------------------------------------------

    def _stored(self, trial_id: str) -> optuna.trial.FrozenTrial | None:
        """The Optuna trial of ``trial_id`` as the storage holds it now."""
        assert self._ot_study is not None
        ot_trial = self._ot_trials.get(trial_id)
        return None if ot_trial is None else self._ot_study._storage.get_trial(ot_trial._trial_id)

    def _finished_in_storage(self, trial_id: str) -> bool:
        """True (and remembered) when ``trial_id``'s Optuna trial has already been told."""
        if trial_id in self._completed_trials:
            return True
        stored = self._stored(trial_id)
        if stored is not None and stored.state in FINISHED:
            self._completed_trials.add(trial_id)
            return True
        return False

    def _unowned_running(self) -> list[optuna.trial.FrozenTrial]:
        """RUNNING trials of the study that no Tune trial owns (asked for just before a kill)."""
        assert self._ot_study is not None
        owned = {t._trial_id for t in self._ot_trials.values()}
        running = self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return [t for t in running if t._trial_id not in owned]

    def _adopt(self, trial_id: str, config: dict[str, Any] | None) -> bool:
        """Map a resumed Tune trial the searcher does not know to the unowned RUNNING Optuna
        trial with its parameters; False when there is none."""
        if trial_id in self._ot_trials:
            return True
        assert self._ot_study is not None
        for frozen in self._unowned_running():
            if config is not None and all(_same(config.get(k), v) for k, v in frozen.params.items()):
                self._ot_trials[trial_id] = optuna.trial.Trial(self._ot_study, frozen._trial_id)
                return True
        return False

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if trial_id not in self._ot_trials and (unowned := self._unowned_running()):
            assert self._ot_study is not None
            self._ot_trials[trial_id] = optuna.trial.Trial(self._ot_study, unowned[0]._trial_id)
        config = super().suggest(trial_id)  # a reused trial's suggest_* return its stored values
        if isinstance(config, dict):  # a space may search ``epochs`` itself
            self._planned_epochs[trial_id] = int(config.get("epochs", self._epochs))
        return config

    # --- reports and tells -----------------------------------------------------------------------

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, list) or not self._adopt(trial_id, result.get("config")):
            return
        if not self._finished_in_storage(trial_id):
            self._report_intermediate(trial_id, result)

    def _report_intermediate(self, trial_id: str, result: dict[str, Any]) -> None:
        value, epoch = result.get(str(self.metric)), int(result.get("epoch", 0))
        steps = self._reported_epochs.setdefault(trial_id, set())
        stored = self._stored(trial_id)
        if stored is not None:
            steps |= set(stored.intermediate_values)  # what an earlier driver already reported
        if value is not None and math.isfinite(value) and epoch not in steps:
            self._ot_trials[trial_id].report(float(value), epoch)
            steps.add(epoch)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if not self._adopt(trial_id, (result or {}).get("config")) or self._finished_in_storage(trial_id):
            return
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        values = [result.get(m) if result else None for m in metrics]
        epochs_run = (int(result.get("epoch", -1)) if result else -1) + 1
        planned = self._planned_epochs.get(trial_id, self._epochs)
        if result and isinstance(result.get("config"), dict):
            planned = int(result["config"].get("epochs", planned))
        state, told = trial_outcome(values, error, epochs_run, planned)
        if state == optuna.trial.TrialState.PRUNED and result is not None and len(metrics) == 1:
            # the scheduler's stop comes with the result that triggered it, which Tune does not
            # pass to on_trial_result (a trial stopped at its first rung would have no values)
            self._report_intermediate(trial_id, result)
        assert self._ot_study is not None
        self._completed_trials.add(trial_id)  # first: a failing tell must not be retried
        self._ot_study.tell(self._ot_trials[trial_id], told, state=state)


def _same(given: Any, stored: Any) -> bool:
    """A config value equals a stored Optuna parameter (floats to rounding)."""
    if isinstance(stored, float) and isinstance(given, (int, float)):
        return math.isclose(float(given), stored, rel_tol=1e-12, abs_tol=1e-15)
    return bool(given == stored)


class MarkEnded(ray.tune.Callback):
    """Writes ``ended: true`` into the ``run.json`` of every trial that finished or was stopped,
    as soon as the driver knows: a driver killed before its next snapshot of the experiment state
    restores such a trial as running, and the trial then reports its last row instead of
    training again (no recomputed epoch, no epoch after a scheduler's stop)."""

    def __init__(self, experiment: str):
        self.experiment = experiment

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        RunFolder(Storage(self.experiment).child(Path(trial.path).name)).update_info(ended=True)


class PublishStudy(ray.tune.Callback):
    """Uploads ``optuna.db`` after every finished or failed trial of a remote experiment, so
    that the stored study is at most one trial behind if the driver dies."""

    def __init__(self, plan: SearchPlan):
        self.plan = plan

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        publish(self.plan, STUDY_FILE)

    on_trial_error = on_trial_complete


def prefill_searcher_study(plan: SearchPlan, searcher: PruningOptunaSearch | None) -> None:
    """Give the study the searcher asks (``None``: a resumed search's, loaded from its storage)
    the plan's enqueued configurations and warm-start trials before Tune asks for a trial."""
    study = searcher._ot_study if searcher is not None else None
    if study is None:
        study = optuna.load_study(study_name=plan.name, storage=plan.study_url)
    prefill_study(study, plan)


def search_callbacks(plan: SearchPlan) -> list[ray.tune.Callback]:
    """The Tune callbacks of a search: trials marked ended, the study published (remote
    experiments), the ``--log-to`` trackers."""
    return [
        MarkEnded(plan.experiment_uri),
        *([PublishStudy(plan)] if plan.remote else []),
        *tracker_callbacks(plan),
    ]
