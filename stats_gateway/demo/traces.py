"""Demo generator for traced calls (``calls``) and their model usage (``call-usage``).

The two domains describe the same calls, so they are generated together: a trace is a
root call of its project's root op and child calls of its steps, started one after the
other; chat projects group traces into threads (the root call is the turn), evaluations
run inside W&B runs. The root reads the project's versioned prompt or dataset (a new
version every 45 days), retrieval steps return refs to documents, and LLM calls read the
prompt and the documents retrieved before them (``inputRefs``/``outputRefs``). Then each
call of an LLM op gets one usage event per model it used, carrying the call's own fields
and time.

The allocation fixes both counts; the generator meets them exactly: usage events go one
per LLM call, extra ones to calls of fallback ops first (they retry on a second model),
and when there are fewer usage events than LLM calls, some calls report none.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from stats_gateway.demo.sampling import Columns, Picker, event_times, hour_index, money, zipf
from stats_gateway.demo.workloads import token_cost
from stats_gateway.demo.world import MODELS, Org, Project, Step, user_names

CALL_COLUMNS = ("workspace_id", "project_id", "call_id", "op_name", "trace_id", "parent_id",
                "thread_id", "turn_id", "wb_user_id", "wb_run_id", "input_refs",
                "output_refs")


@dataclass
class Call:
    """One generated call; ``step`` and ``fields`` may change once (see _usage_per_call)."""

    t: float
    step: Step | None  # None: the trace's root call
    fields: tuple  # values of CALL_COLUMNS
    latency_ms: float | None
    error: bool


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def trace_shapes(org: Org, rng: random.Random, n_calls: int
                 ) -> list[tuple[Project, list[tuple[Step | None, float, float]]]]:
    """Traces totalling exactly ``n_calls`` calls: per trace its project and, per call,
    (step or None for the root, start offset in ms, latency in ms); the root spans its
    children. The last trace is cut short if needed."""
    uniform, lognorm, randint = rng.random, rng.lognormvariate, rng.randint
    projects = Picker(org.projects, [p.weight for p in org.projects]).take(rng, n_calls)
    shapes, total = [], 0
    for project in projects:
        if total >= n_calls:
            break
        offset = 2.0 + 10.0 * uniform()
        members: list = [None]
        for step in project.steps:
            if uniform() >= step.chance:
                continue
            for _ in range(1 if step.repeat == 1 else randint(1, step.repeat)):
                ms = step.latency_ms * lognorm(0.0, 0.5)
                members.append((step, offset, ms))
                offset += ms + 1.0 + 4.0 * uniform()
        members[0] = (None, 0.0, offset + 5.0 + 25.0 * uniform())
        members = members[:n_calls - total]
        shapes.append((project, members))
        total += len(members)
    return shapes


def _calls(org: Org, rng: random.Random, n_calls: int, cumulative: list[float],
           now: datetime) -> list[Call]:
    """Every call of the org's traces, in time order."""
    uniform, randrange, randint = rng.random, rng.randrange, rng.randint
    shapes = trace_shapes(org, rng, n_calls)
    times = event_times(cumulative, len(shapes), now, rng)
    users = [user_id for user_id, _ in user_names(org)]
    who = Picker(users, zipf(len(users), 1.0)).take(rng, len(shapes))
    latest = now.timestamp() - 0.001
    calls = []
    for (project, members), t, user in zip(shapes, times, who):
        hour = hour_index(t, now)
        day = hour // 24
        trace_id, root_id = _uuid(rng), _uuid(rng)
        thread = turn = None
        if project.chat:  # a conversation: a few turns within a few hours
            thread, turn = f"thread-{user}-{hour // 4}-{randrange(2)}", root_id
        run = f"{project.id}/run-d{day:03d}-{randrange(3)}" if project.evaluation else None
        place = (project.workspace, project.id)
        prompt = ([f"weave:///{project.id}/object/{project.input_ref}:v{1 + day // 45}"]
                  if project.input_ref else [])
        retrieved: list[str] = []  # what the trace's retrieval steps returned so far
        failed_child = False
        for step, offset, ms in members[1:]:
            assert step is not None  # only the root (members[0]) has no step
            failed = uniform() < (0.025 if step.models else 0.007)
            failed_child |= failed
            inputs = outputs = None
            if step.models and (prompt or retrieved):  # an LLM call reads the prompt and docs
                inputs = prompt + retrieved
            if step.refs_out:
                outputs = [f"weave:///{project.id}/object/{step.refs_out}-{randrange(1, 400)}:v1"
                           for _ in range(randint(1, 3))]
                retrieved = retrieved + outputs
            fields: tuple = place + (_uuid(rng), step.op, trace_id, root_id, thread, turn, user, run,
                              inputs, outputs)
            calls.append(Call(min(t + offset / 1000, latest), step, fields,
                              round(ms, 1), failed))
        inputs = list(prompt) or None
        if inputs and project.evaluation:
            inputs.append(f"weave:///{project.id}/op/{project.steps[0].op}:v{1 + day // 60}")
        outputs = ([f"weave:///{project.id}/object/EvaluationResults:{trace_id[:8]}"]
                   if project.evaluation else None)
        root_latency = round(members[0][2], 1) if uniform() > 0.003 else None  # still running
        fields = place + (root_id, project.root, trace_id, None, thread, turn, user, run,
                          inputs, outputs)
        failed = (failed_child and uniform() < 0.6) or uniform() < 0.004
        calls.append(Call(t, None, fields, root_latency, failed))
    calls.sort(key=lambda c: c.t)
    return calls


def _usage_per_call(org: Org, rng: random.Random, calls: list[Call], n_usage: int
                    ) -> dict[int, int]:
    """How many models each LLM call (by index) used, summing exactly to ``n_usage``."""
    llm = [i for i, c in enumerate(calls) if c.step and c.step.models]
    if n_usage and not llm:  # only in tiny datasets: make the first call an LLM call
        step = next(s for p in org.projects for s in p.steps if s.models)
        calls[0].step = step
        calls[0].fields = calls[0].fields[:3] + (step.op,) + calls[0].fields[4:]
        llm = [0]
    per_call = dict.fromkeys(llm, 1)
    extra = n_usage - len(llm)
    if extra < 0:  # some calls did not report usage
        for i in rng.sample(llm, -extra):
            per_call[i] = 0
        return per_call
    fallback = [i for i in llm if (s := calls[i].step) is not None and s.fallback]
    retried = rng.sample(fallback, min(extra, len(fallback)))
    for i in retried:
        per_call[i] += 1
    for j in range(extra - len(retried)):
        per_call[llm[j % len(llm)]] += 1
    return per_call


def _models(step: Step, k: int, rng: random.Random) -> list[str]:
    """The models one call used: the usual one (or another of the op's), then the fallbacks."""
    first = step.models[0] if len(step.models) == 1 or rng.random() < 0.7 \
        else rng.choice(step.models[1:])
    others = [m for m in step.models if m != first] + [m for m in MODELS if m not in step.models]
    return [first] + [others[j % len(others)] for j in range(k - 1)]


def calls_with_usage(org: Org, rng: random.Random, n_calls: int, n_usage: int,
                     cumulative: list[float], now: datetime
                     ) -> tuple[tuple[list[float], Columns], tuple[list[float], Columns]]:
    """(times, columns) of the calls and of their usage events, each in time order."""
    calls = _calls(org, rng, n_calls, cumulative, now) if n_calls else []
    per_call = _usage_per_call(org, rng, calls, n_usage) if calls else {}
    call_columns: Columns = {name: list(values)
                             for name, values in zip(CALL_COLUMNS, zip(*(c.fields for c in calls)))}
    call_columns["latency_ms"] = [c.latency_ms for c in calls]
    call_columns["error"] = [c.error for c in calls]
    lognorm = rng.lognormvariate
    sources: list[int] = []  # the call of each usage event
    usage: Columns = {name: [] for name in ("model", "input_tokens", "output_tokens",
                                             "input_cost", "output_cost")}
    for i, k in per_call.items():
        if not k:
            continue
        step = calls[i].step
        assert step is not None  # calls with usage are LLM steps
        models = _models(step, k, rng)
        for j, model_id in enumerate(models):
            model = MODELS[model_id]
            tokens_in = int(model.tokens_in * lognorm(0.0, 0.8))
            # a failed attempt before a fallback produced no output
            tokens_out = int(model.tokens_out * lognorm(0.0, 0.7)) if j == len(models) - 1 else 0
            cost_in, cost_out = token_cost(model, tokens_in, tokens_out)
            sources.append(i)
            for name, value in (("model", model_id), ("input_tokens", tokens_in),
                                ("output_tokens", tokens_out),
                                ("input_cost", money(cost_in, 6)),
                                ("output_cost", money(cost_out, 6))):
                usage[name].append(value)
    for name, values in zip(CALL_COLUMNS, zip(*(c.fields for c in calls))):
        usage[name] = [values[i] for i in sources]
    return ([c.t for c in calls], call_columns), ([calls[i].t for i in sources], usage)
