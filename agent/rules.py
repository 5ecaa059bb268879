"""The rules reasoner: scores hypotheses from the sweep's code-computed flags.

It reads only tool results (flags, node kinds, lineage edges) — never component names,
message text or anything the demo simulator knows. The principles, in order:

1. Temporal precedence: an anomaly that began after the capture cannot have caused it.
2. Sufficiency: a hypothesis needs a major (out-of-spec) signal; minor ones only add up
   in the component-interaction pattern (two in-spec changes, one downstream deviation).
3. Upstream-most sufficient cause wins; deviations downstream of it are propagated.
4. A reliable evaluation of a clean pipeline is a model error; an unreliable evaluator
   with a clean pipeline is noise.
5. Abstain (inconclusive, escalate) when two sufficient causes on unrelated branches
   score within the abstain margin, or when nothing reaches sufficiency.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from agent.dag import Lineage
from agent.schemas import (
    ACTION_FOR_CATEGORY,
    ActionPlan,
    Category,
    ComponentAssessment,
    Evaluation,
    Evidence,
    Hypothesis,
    HypothesisStatus,
    Role,
    VerdictDraft,
)
from tools import signals as s
from tools.base import Flag

__all__ = ["reason_with_rules"]

SUFFICIENT = 0.5
_SYMPTOMS = ("data_pipeline_regression", "model_regression", "distribution_shift")
# causes whose action keeps the evaluation as data (an edge case to collect): without a
# claim worth keeping they explain nothing the evaluator's record does not
_KEEPS_THE_CLAIM = ("distribution_shift",)


@dataclass
class Candidate:
    category: Category
    node: str | None
    score: float
    evidence_ids: list[str]
    why: str
    via: str | None = None  # the upstream partner of an interaction
    effect: bool = True  # False: a change with no deviation of its own to show it mattered


@dataclass
class _Signals:
    """Flags before (or not after) capture, grouped by node, each with its evidence id."""

    by_node: dict[str, list[tuple[Flag, str]]] = field(default_factory=lambda: defaultdict(list))
    evaluator: list[tuple[Flag, str]] = field(default_factory=list)
    unknown: list[tuple[Flag, str]] = field(default_factory=list)  # too little record
    health_clean: set[str] = field(default_factory=set)  # devices examined, nothing flagged
    model: str | None = None  # the model node that made the output's decision
    # a threshold set before the model's release, whose registry recommends another: the
    # release announced a new score scale, so its scores moving is what it said it did
    recalibrated: bool = False

    def of(self, node: str, prefix: str, severity: str | None = None) -> list[tuple[Flag, str]]:
        return [
            (f, e)
            for f, e in self.by_node.get(node, [])
            if f.signal.startswith(prefix) and (severity is None or f.severity == severity)
        ]


def _collect(evidence: list[Evidence], lineage: Lineage) -> _Signals:
    out = _Signals(model=_output_model(lineage, evidence))
    for ev in evidence:
        examined = ev.tool == "get_device_health" and ev.status == "ok" and ev.node
        scene = _shared_with_peers(ev) if examined else set()
        if examined and all(f.relative == "after_capture" or f.signal in scene for f in ev.flags):
            out.health_clean.add(str(ev.node))
        for flag in ev.flags:
            if flag.relative == "after_capture" or flag.signal in scene:
                # a change the device's peers in its regime show at the same moment is the
                # scene's (daylight, weather), not the device's
                continue
            if flag.signal == s.EVALUATOR_UNKNOWN:
                out.unknown.append((flag, ev.id))
                continue
            if flag.signal.startswith(("evaluator.", "evaluation.")):
                out.evaluator.append((flag, ev.id))
                continue
            node = flag.node or ev.node
            if node is None and flag.signal.startswith("input."):
                node = out.model
            if node in lineage.nodes:
                out.by_node[node].append((flag, ev.id))
            if flag.signal == s.THRESHOLD_STALE:
                out.recalibrated = True
    return out


def _shared_with_peers(ev: Evidence) -> set[str]:
    """The health signals of a device-health result that its alike peers share."""
    metrics = ev.data.get("metrics") if isinstance(ev.data, dict) else None
    out = set()
    for m in metrics or []:
        peers = m.get("peers") if isinstance(m, dict) else None
        if isinstance(peers, dict) and peers.get("shared"):
            out |= {s.health(str(m["metric"]), d) for d in ("low", "high")}
    return out


def _ids(pairs: list[tuple[Flag, str]]) -> list[str]:
    return sorted({e for _, e in pairs}, key=lambda e: int(e[1:]))


def _details(pairs: list[tuple[Flag, str]]) -> str:
    return "; ".join(f"{f.detail} ({e})" for f, e in pairs[:3])


def _node_candidates(node: str, kind: str, sig: _Signals) -> list[Candidate]:
    out: list[Candidate] = []
    health = sig.of(node, "health.", "major")
    own = sig.of(node, s.RUN_METRIC, "major") + sig.of(node, s.RUN_STATUS, "major")
    if kind == "sensor" and health:
        out.append(Candidate("sensor_fault", node, 0.9, _ids(health), _details(health)))
    elif kind == "sensor" and own:
        # the sensor's own measurements are out of line; minor health drift corroborates.
        # Where its health was examined against the same time of day and is clean, its run
        # figures (compared with the last 24 h) most likely follow the day, not a fault.
        pairs = own + sig.of(node, "health.", "minor")
        score = 0.85 if len(pairs) > len(own) else 0.7
        if node in sig.health_clean:
            score = 0.45
        out.append(Candidate("sensor_fault", node, score, _ids(pairs), _details(pairs)))
    stale = sig.of(node, s.THRESHOLD_STALE, "major")  # major: the decision would have flipped
    if stale:
        out.append(Candidate("threshold_miscalibration", node, 0.85, _ids(stale), _details(stale)))
    policy = sig.of(node, s.CONFIG_PRECEDENCE_MISMATCH) + sig.of(
        node, s.CONFIG_SHADOWED_RECENT_CHANGE
    )
    if policy and kind != "sink":
        # a sink delivers the decision the stages before it made: which value of its
        # settings won cannot have made that decision
        out.append(Candidate("policy_misresolution", node, 0.85, _ids(policy), _details(policy)))
    deviation = sig.of(node, s.RUN_METRIC, "major") + sig.of(node, s.RUN_STATUS, "major")
    errors = sig.of(node, s.LOG_ERROR)
    version = sig.of(node, s.VERSION_CHANGED)
    config_major = sig.of(node, s.CONFIG_CHANGED, "major")
    # params that moved with the change show it reached this component; that it took
    # effect is not that it did harm (two in-spec changes may interact downstream)
    params = sig.of(node, s.PARAM_CHANGED) if config_major else []
    if not config_major and deviation and not version and kind != "sensor":
        # an in-spec change to this very component, no release, and then it deviates:
        # the change explains the deviation better than an unexplained regression
        small = sig.of(node, s.CONFIG_CHANGED, "minor")
        if small:
            pairs = small + deviation
            out.append(Candidate("config_drift", node, 0.7, _ids(pairs), _details(pairs)))
    if config_major:
        score = (0.85 if deviation else 0.75) + (0.03 if params else 0.0)
        pairs = config_major + params + deviation
        out.append(
            Candidate(
                "config_drift", node, score, _ids(pairs), _details(pairs), effect=bool(deviation)
            )
        )
    # a key in force no longer reaches the component, which ran on a default instead
    defaulted = sig.of(node, s.PARAM_DEFAULT_USED, "major")
    if defaulted:
        pairs = defaulted + sig.of(node, s.PARAM_MISSING) + deviation + sig.of(node, s.LOG_WARN)
        score = 0.9 if deviation else 0.75
        out.append(
            Candidate(
                "config_drift", node, score, _ids(pairs), _details(pairs), effect=bool(deviation)
            )
        )
    if kind != "sensor" and (deviation or errors):
        score = (0.6 if deviation else 0.5) + (0.25 if version else 0) + (0.1 if errors else 0)
        if (config_major and not version) or defaulted:
            score -= 0.2  # the configuration change explains the deviation better
        pairs = deviation + version + errors
        # a model that started behaving differently with a new release regressed: roll the
        # release back rather than train on its mistakes
        regressed = kind == "model" and bool(version and deviation)
        category: Category = "model_regression" if regressed else "data_pipeline_regression"
        out.append(Candidate(category, node, min(score, 0.95), _ids(pairs), _details(pairs)))
    behaved = sig.of(node, s.RELEASE_BEHAVIOUR_CHANGED, "major")
    if kind == "model" and version and behaved and not deviation and not sig.recalibrated:
        # this run is not out of line, but the release changed what the model measures
        # across its runs: an error of the new version is more likely the release's
        pairs = version + behaved
        out.append(Candidate("model_regression", node, 0.75, _ids(pairs), _details(pairs)))
    if kind == "model":
        ood = sig.of(node, s.INPUT_OOD, "major")
        drift = sig.of(node, s.INPUT_DRIFT, "major")
        if ood or drift:
            score = 0.75 if ood else 0.55
            out.append(
                Candidate(
                    "distribution_shift", node, score, _ids(ood + drift), _details(ood + drift)
                )
            )
    return out


def _interaction(lineage: Lineage, sig: _Signals) -> list[Candidate]:
    """Two in-spec config changes on different components, and an unexplained deviation."""
    changed = [
        n
        for n in lineage.order
        if sig.of(n, s.CONFIG_CHANGED, "minor") and not sig.of(n, s.CONFIG_CHANGED, "major")
    ]
    if len(changed) < 2:
        return []
    out = []
    for b in reversed(changed):
        deviation = sig.of(b, s.RUN_METRIC, "major")
        if not deviation or sig.of(b, s.VERSION_CHANGED):
            continue
        partners = [a for a in changed if a != b and b in lineage.descendants(a)]
        a = partners[0] if partners else next(n for n in changed if n != b)
        pairs = sig.of(a, s.CONFIG_CHANGED) + sig.of(b, s.CONFIG_CHANGED) + deviation
        out.append(Candidate("component_interaction", b, 0.8, _ids(pairs), _details(pairs), a))
    return out


def _upstream_release(lineage: Lineage, sig: _Signals) -> list[Candidate]:
    """A stage that deviates with no change of its own, fed directly by a stage that was
    just released: the release precedes and explains the deviation (a component that
    changed its output's timing or shape shows it downstream, where it is measured)."""
    out = []
    for parent, child in lineage.edges:
        deviation = sig.of(child, s.RUN_METRIC, "major")
        released = sig.of(parent, s.VERSION_CHANGED)
        own = sig.of(child, s.VERSION_CHANGED) + sig.of(child, s.CONFIG_CHANGED)
        if not deviation or not released or own or lineage.kind(parent) == "sensor":
            continue
        pairs = released + deviation
        out.append(Candidate("data_pipeline_regression", parent, 0.7, _ids(pairs), _details(pairs)))
    return out


def _evaluator(sig: _Signals) -> Candidate | None:
    strong = [(f, e) for f, e in sig.evaluator if f.severity == "major"]
    if strong:
        return Candidate("evaluation_unreliable", None, 0.8, _ids(strong), _details(strong))
    if sig.evaluator:
        return Candidate(
            "evaluation_unreliable", None, 0.4, _ids(sig.evaluator), _details(sig.evaluator)
        )
    return None


def _output_model(lineage: Lineage, evidence: list[Evidence]) -> str | None:
    """The model node that made the output's decision: the one the registry names for the
    output's model, else the last model node of the lineage."""
    for ev in evidence:
        if ev.tool == "get_output" and isinstance(ev.data, dict):
            named = ev.data.get("model_component")
            if named in lineage.nodes and lineage.kind(named) == "model":
                return str(named)
    model_nodes = [n for n in lineage.order if lineage.kind(n) == "model"]
    return model_nodes[-1] if model_nodes else None


def _release_check(evidence: list[Evidence], node: str | None) -> str | None:
    """What the release comparison found for a node released in the window: 'changed',
    'unchanged' (measured on enough runs at the same hours, nothing moved), 'unmeasured'
    or 'rollback' (back to a version the device ran before)."""
    for ev in evidence:
        if ev.tool == "get_component_changes" and isinstance(ev.data, dict):
            for entry in ev.data.get("components", []):
                if isinstance(entry, dict) and entry.get("node_id") == node:
                    check = entry.get("release_check")
                    return str(check) if check is not None else None
    return None


def _model_error(evidence: list[Evidence], sig: _Signals) -> Candidate:
    node = sig.model
    reliability = [e for e in evidence if e.tool == "get_evaluator_reliability"]
    failed = [e for e in evidence if e.status == "error"]
    minors = sum(len(v) for v in sig.by_node.values())
    score = 0.82 - 0.1 * min(len(failed), 3) - 0.02 * min(minors, 5)
    cited = [e.id for e in reliability if e.status == "ok"]
    if not cited:
        score -= 0.2  # nobody vouches for the evaluator
        standing = "the evaluator has no adjudicated record"
    elif sig.unknown:
        standing = "the evaluator's record is too small to trust on its own"
    elif sig.evaluator:
        standing = "the evaluator's record is doubtful"
    else:
        standing = "the evaluator's record is reliable"
    if node is not None:
        cited += [e.id for e in evidence if e.node == node and e.tool == "get_run"]
    why = f"no out-of-spec signal before capture anywhere in the lineage; {standing}"
    return Candidate("model_error", node, score, cited, why)


def _choose(
    cands: list[Candidate], lineage: Lineage, margin: float
) -> tuple[Candidate | None, list[Candidate]]:
    """Upstream-most sufficient cause, and the independent faults beside it."""
    sufficient = [c for c in cands if c.score >= SUFFICIENT and c.node is not None]
    if not sufficient:
        return None, []
    sufficient.sort(key=lambda c: (lineage.index(c.node or ""), -c.score))
    chosen = sufficient[0]
    # causal precedence needs an effect: a change that shows none yields to a stronger
    # cause downstream of it (the change did not visibly reach the output)
    below = [
        c
        for c in sufficient
        if c.node in lineage.descendants(chosen.node or "") and c.score > chosen.score
    ]
    if not chosen.effect and below:
        chosen = max(below, key=lambda c: c.score)
        sufficient = [chosen, *[c for c in sufficient if c is not chosen]]
    downstream = lineage.descendants(chosen.node or "")
    upstream = {n for n in lineage.nodes if chosen.node in lineage.descendants(n)}
    rivals = [
        c
        for c in sufficient[1:]
        if c.node != chosen.node and c.node not in downstream and c.node not in upstream
    ]
    if rivals and max(r.score for r in rivals) >= chosen.score - margin:
        best = max(rivals, key=lambda r: r.score)
        return None, [chosen, best]
    # deviations below the cause are its symptoms; independent faults stay contributors
    others = [
        c
        for c in sufficient[1:]
        if c.node != chosen.node and not (c.node in downstream and c.category in _SYMPTOMS)
    ]
    return chosen, others


def reason_with_rules(
    evaluation: Evaluation, lineage: Lineage, evidence: list[Evidence], *, abstain_margin: float
) -> VerdictDraft:
    sig = _collect(evidence, lineage)
    cands = [c for n in lineage.order for c in _node_candidates(n, lineage.kind(n), sig)]
    cands += _interaction(lineage, sig)
    cands += _upstream_release(lineage, sig)
    chosen, others = _choose(cands, lineage, abstain_margin)
    evaluator = _evaluator(sig)
    model = _model_error(evidence, sig)
    if chosen is None and others:  # two unrelated sufficient causes too close to call
        return _draft_abstain(evaluation, lineage, evidence, cands, others, evaluator, model)
    # a doubtful claim outweighs a change with no visible effect: such a change explains
    # nothing, an evaluator that is often wrong explains the evaluation. It outweighs an
    # input shift too, whose action would keep this very claim as an edge case
    if (
        evaluator is not None
        and evaluator.score >= SUFFICIENT
        and (chosen is None or not chosen.effect or chosen.category in _KEEPS_THE_CLAIM)
    ):
        chosen, others = evaluator, []
    if chosen is None:
        chosen = model if model.score >= SUFFICIENT else None
    if chosen is None:
        return _draft_abstain(evaluation, lineage, evidence, cands, [], evaluator, model)
    if chosen is model and (sig.unknown or sig.evaluator):
        # a clean pipeline and an evaluator with too little or a doubtful record: whether
        # the model or the evaluator erred cannot be told apart — a person decides
        why = (
            "the pipeline shows no cause, and the evaluator's record is too small or too "
            "doubtful to tell a model error from a wrong evaluation"
        )
        return _draft_abstain(
            evaluation,
            lineage,
            evidence,
            cands,
            [],
            evaluator,
            model,
            why=why,
            cited=_ids(sig.unknown + sig.evaluator),
        )
    return _draft(evaluation, lineage, evidence, chosen, others, cands, evaluator, model, sig)


def _path(lineage: Lineage, chosen: Candidate) -> list[str]:
    if chosen.node is None:
        return []
    if chosen.via is not None:
        return lineage.path_to_sink(chosen.via, via=chosen.node)
    return lineage.path_to_sink(chosen.node)


def _components(
    lineage: Lineage,
    evidence: list[Evidence],
    chosen: Candidate | None,
    others: list[Candidate],
    path: list[str],
) -> list[ComponentAssessment]:
    run_ev = {e.node: e.id for e in evidence if e.tool == "get_run" and e.status == "ok"}
    contributors = {c.node: c for c in others}
    out = []
    for node in lineage.order:
        cited = [run_ev[node]] if node in run_ev else []
        if chosen is not None and node == chosen.node and chosen.category != "model_error":
            out.append(
                ComponentAssessment(
                    node=node,
                    role="root_cause",
                    evidence_ids=chosen.evidence_ids,
                    rationale=chosen.why[:400],
                )
            )
        elif chosen is not None and node == chosen.via:
            out.append(
                ComponentAssessment(
                    node=node,
                    role="contributor",
                    evidence_ids=cited,
                    rationale="in-spec change that interacts downstream",
                )
            )
        elif node in contributors:
            c = contributors[node]
            out.append(
                ComponentAssessment(
                    node=node,
                    role="contributor",
                    evidence_ids=c.evidence_ids,
                    rationale=f"independent {c.category}: {c.why}"[:400],
                )
            )
        elif chosen is not None and node in path[1:]:
            out.append(
                ComponentAssessment(
                    node=node,
                    role="propagated",
                    evidence_ids=cited,
                    rationale="downstream of the cause",
                )
            )
        elif chosen is not None and chosen.category == "model_error" and node == chosen.node:
            out.append(
                ComponentAssessment(
                    node=node,
                    role="root_cause",
                    evidence_ids=cited,
                    rationale="the model erred on a healthy input",
                )
            )
        else:
            role: Role = "healthy" if cited else "not_examined"
            out.append(ComponentAssessment(node=node, role=role, evidence_ids=cited))
    return out


def _hypotheses(
    cands: list[Candidate],
    chosen: Candidate | None,
    evaluator: Candidate | None,
    model: Candidate,
    evidence: list[Evidence],
) -> list[Hypothesis]:
    seen: dict[tuple[str, str | None], Hypothesis] = {}
    for c in [*cands, model, *([evaluator] if evaluator else [])]:
        supported = chosen is not None and (c.category, c.node) == (chosen.category, chosen.node)
        status: HypothesisStatus = "supported" if supported else "refuted"
        key = (c.category, c.node)
        if key not in seen or supported:
            seen[key] = Hypothesis(
                category=c.category,
                node=c.node,
                status=status,
                evidence_ids=c.evidence_ids,
                rationale=c.why[:400],
            )
    if evaluator is None:
        rel = [e for e in evidence if e.tool == "get_evaluator_reliability"]
        rel_status: HypothesisStatus = "refuted" if rel and rel[0].status == "ok" else "untested"
        seen[("evaluation_unreliable", None)] = Hypothesis(
            category="evaluation_unreliable",
            status=rel_status,
            evidence_ids=[rel[0].id] if rel and rel_status == "refuted" else [],
            rationale="adjudicated agreement shows no problem"
            if rel_status == "refuted"
            else "no adjudication history for this evaluator",
        )
    return list(seen.values())


def _draft(
    evaluation: Evaluation,
    lineage: Lineage,
    evidence: list[Evidence],
    chosen: Candidate,
    others: list[Candidate],
    cands: list[Candidate],
    evaluator: Candidate | None,
    model: Candidate,
    sig: _Signals,
) -> VerdictDraft:
    path = _path(lineage, chosen)
    action = ACTION_FOR_CATEGORY[chosen.category]
    target = evaluation.source_id if chosen.category == "evaluation_unreliable" else chosen.node
    confidence = chosen.score
    if chosen.category == "model_error" and (evaluator is not None or sig.unknown):
        confidence = min(confidence, 0.6)  # a shaky or unknown evaluator must not train
    suspects = [
        n
        for n in sig.by_node
        if chosen.category == "model_error"
        and n != chosen.node
        and sig.of(n, s.VERSION_CHANGED)
        and (sig.of(n, s.RUN_METRIC) or sig.of(n, s.RELEASE_BEHAVIOUR_CHANGED))
    ]
    released = chosen.category == "model_error" and sig.of(chosen.node or "", s.VERSION_CHANGED)
    if released and _release_check(evidence, chosen.node) != "rollback":
        # the model was just released (not rolled back to a version known before): its
        # error may be the release's regression — metrics that did not move do not show
        # its accuracy did not — so the evaluation waits for the release's record
        confidence = min(confidence, 0.65)
        summary_note = "; the model was released recently, so this is held, not trained"
    elif suspects:
        # another component was just released and its runs are unusual (if in spec): the
        # output may carry its regression, so the evaluation is held rather than trained
        confidence = min(confidence, 0.65)
        summary_note = (
            f"; {suspects[0]} was released recently and behaves unusually, so this is held"
        )
    else:
        summary_note = ""
    summary = (
        f"{chosen.category} at {chosen.node or evaluation.source_id}: {chosen.why}{summary_note}"
    )
    return VerdictDraft(
        category=chosen.category,
        failing_node=chosen.node if chosen.category != "evaluation_unreliable" else None,
        causal_path=path if chosen.category != "evaluation_unreliable" else [],
        components=_components(lineage, evidence, chosen, others, path),
        hypotheses=_hypotheses(cands, chosen, evaluator, model, evidence),
        action=ActionPlan(
            kind=action,
            target=target,
            instructions=f"{action.replace('_', ' ')} for {target}: {chosen.why}"[:1000],
        ),
        confidence=round(max(0.0, min(confidence, 0.97)), 3),
        summary=summary[:2000],
        evidence_ids=chosen.evidence_ids,
    )


def _draft_abstain(
    evaluation: Evaluation,
    lineage: Lineage,
    evidence: list[Evidence],
    cands: list[Candidate],
    close: list[Candidate],
    evaluator: Candidate | None,
    model: Candidate,
    *,
    why: str | None = None,
    cited: list[str] | None = None,
) -> VerdictDraft:
    found = {e for c in close for e in c.evidence_ids} | set(cited or [])
    cited = sorted(found, key=lambda e: int(e[1:]))
    if why is not None:
        summary = f"Inconclusive: {why}."
    elif close:
        versus = " vs ".join(f"{c.category} at {c.node} ({c.score:.2f})" for c in close)
        summary = f"Evidence does not separate the top hypotheses: {versus}."
    else:
        summary = "No hypothesis reached sufficiency and the sweep cannot vouch for a model error."
    return VerdictDraft(
        category="inconclusive",
        failing_node=None,
        causal_path=[],
        components=_components(lineage, evidence, None, close, []),
        hypotheses=_hypotheses(cands, None, evaluator, model, evidence),
        action=ActionPlan(
            kind="escalate_human",
            target=evaluation.evaluation_id,
            instructions="A person should review: " + summary,
        ),
        confidence=0.3,
        summary=summary,
        evidence_ids=cited,
    )
