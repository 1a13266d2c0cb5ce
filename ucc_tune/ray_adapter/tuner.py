"""A search plan as a Ray Tune ``Tuner`` (searcher, scheduler, budget, callbacks), run or resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import ray.tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from ucc_tune.ray_adapter.budget import BudgetLimiter, TimeBudget
from ucc_tune.ray_adapter.callbacks import progress_view, quiet_driver_output
from ucc_tune.ray_adapter.cluster import RayResources
from ucc_tune.ray_adapter.searcher import PruningOptunaSearch, prefill_searcher_study, search_callbacks
from ucc_tune.ray_adapter.trainable import make_trainable
from ucc_tune.schema import error_text
from ucc_tune.search.plan import SearchPlan
from ucc_tune.search.samplers import make_sampler
from ucc_tune.search.spaces import SpaceWithConstants


def make_tuner(plan: SearchPlan, resources: RayResources) -> ray.tune.Tuner:
    """The plan as a ``Tuner`` (restored from its storage when the plan resumes)."""
    trainable = ray.tune.with_resources(make_trainable(plan.experiment_uri, resources), resources.trial)
    if plan.resume:
        prefill_searcher_study(plan, None)
        return ray.tune.Tuner.restore(
            plan.experiment_uri, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    searcher = PruningOptunaSearch(
        space=SpaceWithConstants(plan.space, plan.fixed),
        metric=list(plan.metrics) if len(plan.metrics) > 1 else plan.metrics[0],
        mode=list(plan.modes) if len(plan.modes) > 1 else plan.modes[0],
        sampler=make_sampler(plan.space.grid, len(plan.metrics), plan.seed),
        storage=optuna.storages.RDBStorage(plan.study_url),
        study_name=plan.name,
        epochs=plan.epochs,
    )
    prefill_searcher_study(plan, searcher)
    budget = TimeBudget(plan.time_budget_s)
    scheduler = FIFOScheduler()
    if plan.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="epochs_done",  # 1-based; Tune's training_iteration restarts after a retry
            metric=plan.metrics[0],
            mode=plan.modes[0],
            max_t=plan.epochs,
            grace_period=plan.grace_period,
            reduction_factor=plan.reduction_factor,
        )
    return ray.tune.Tuner(
        trainable,
        tune_config=ray.tune.TuneConfig(
            search_alg=BudgetLimiter(searcher, resources.concurrency, budget),
            scheduler=scheduler,
            num_samples=plan.num_samples,
            # a finished trial's process runs the next trial: no new actor, imports or CUDA
            # context per trial (the main share of an in-process trial's overhead)
            reuse_actors=True,
        ),
        run_config=ray.tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            callbacks=[*search_callbacks(plan), budget, progress_view(plan)],
            stop=budget,
            failure_config=ray.tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=ray.tune.CheckpointConfig(num_to_keep=plan.keep_checkpoints),
            verbose=0,  # Ray's trial table off: progress_view prints ours
        ),
    )


def experiment_exists(location: str) -> bool:
    return ray.tune.Tuner.can_restore(location)


def run_search(plan: SearchPlan, resources: RayResources) -> list[dict[str, Any]]:
    """Run (or resume) the search; per trial: ``trial_id``, its folder's name, ``error``."""
    quiet_driver_output()
    grid = make_tuner(plan, resources).fit()
    results = [grid[i] for i in range(len(grid))]
    return [
        {
            "trial_id": (r.metrics or {}).get("trial_id") or Path(r.path).name,
            "folder": Path(r.path).name,
            "error": error_text(r.error) if r.error else None,
            "config": dict(r.config or {}),
        }
        for r in results
    ]
