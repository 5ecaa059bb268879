"""The anomaly signals the evidence tools compute, in code, from store data.

Each :class:`tools.base.Flag` carries one of these ``signal`` names, the lineage node it
concerns, a severity (``major`` = out of spec, ``minor`` = unusual but within spec) and
its timing relative to the capture. Reasoners read these; they never parse log text.

============================== ============================ ==================================
signal                         tool                         raised when
============================== ============================ ==================================
health.<metric>.low/.high      get_device_health            a metric near capture deviates
                                                            from the device's trailing
                                                            baseline or its nominal spec
run.status                     get_run                      the run's status is not 'ok'
run.metric.<name>              get_run                      a run metric deviates from the
                                                            same component's recent runs
log.error / log.warn           search_logs                  ERROR / WARN lines in the
                                                            output's lineage runs
version.changed                get_component_changes        a component's version changed
                                                            in the window before capture
release.behaviour_changed      get_component_changes        the new version's runs measure
                                                            differently from the previous
                                                            version's at the same hours
                                                            (rank-sum test, median shift)
config.changed                 get_config_history           a key in force for the output
                                                            changed in the window (major
                                                            when the change is large)
config.precedence_mismatch     get_config_in_force          the value a run used differs from
                                                            the value the precedence chain
                                                            resolves
config.shadowed_recent_change  get_config_in_force          a recent change at a less
                                                            specific scope is shadowed by
                                                            an older, more specific value
threshold.stale                get_config_in_force          a threshold in force predates the
                                                            current model release and differs
                                                            from the registry's recommended
                                                            threshold for that version
param.changed                  get_run                      a parameter the run used differs
                                                            from the same component's recent
                                                            runs (or is new / gone)
param.missing                  get_config_in_force          a key in force for the component
                                                            is absent from the run's params
                                                            (renamed or dropped key)
param.default_used             get_config_in_force          the run used a value that no
                                                            version of the key in force ever
                                                            had, while the key is missing
evaluator.unreliable           get_evaluator_reliability    adjudicated agreement is low
evaluator.unknown              get_evaluator_reliability    too few adjudications (or too wide
                                                            an interval) to trust the evaluator
evaluation.contested           get_evaluator_reliability    other evaluations of the same output
                                                            disagree with this one
evaluator.degrading            get_evaluator_reliability    recent agreement fell clearly
                                                            below the earlier record
input.out_of_distribution      get_input_drift              the output's own input lies in a
                                                            tail the baseline barely covers
input.drift                    get_input_drift              PSI of recent inputs vs baseline
============================== ============================ ==================================
"""

from __future__ import annotations

from typing import Final

RUN_STATUS: Final = "run.status"
RUN_METRIC: Final = "run.metric"
LOG_ERROR: Final = "log.error"
LOG_WARN: Final = "log.warn"
VERSION_CHANGED: Final = "version.changed"
RELEASE_BEHAVIOUR_CHANGED: Final = "release.behaviour_changed"
CONFIG_CHANGED: Final = "config.changed"
CONFIG_PRECEDENCE_MISMATCH: Final = "config.precedence_mismatch"
CONFIG_SHADOWED_RECENT_CHANGE: Final = "config.shadowed_recent_change"
THRESHOLD_STALE: Final = "threshold.stale"
EVALUATOR_UNRELIABLE: Final = "evaluator.unreliable"
EVALUATOR_UNKNOWN: Final = "evaluator.unknown"
EVALUATION_CONTESTED: Final = "evaluation.contested"
PARAM_CHANGED: Final = "param.changed"
PARAM_MISSING: Final = "param.missing"
PARAM_DEFAULT_USED: Final = "param.default_used"
EVALUATOR_DEGRADING: Final = "evaluator.degrading"
INPUT_OOD: Final = "input.out_of_distribution"
INPUT_DRIFT: Final = "input.drift"


def health(metric: str, direction: str) -> str:
    """Signal name for a health metric anomaly, e.g. ``health.focus_score.low``."""
    return f"health.{metric}.{direction}"


def run_metric(name: str) -> str:
    """Signal name for a run metric deviation, e.g. ``run.metric.resolution_h``."""
    return f"{RUN_METRIC}.{name}"
