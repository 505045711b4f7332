"""Private Chat: the Flashback chat application's model usage (``/v2/stats/private-chat``).

One event is one chat message answered by a model, sent by ``userId``. The ``users``
breakdown adds ``conversationsCount`` (distinct ``conversationId``: a HyperLogLog estimate
where daily or 30-day rollup slots cover the range, off by at most 3% or 3, whichever is
larger; a page sorted by it is ranked by those same estimates, so its order is the order
of the values it shows) and ``lastActiveAt`` (unix seconds of the user's newest event in
the range).
"""

import random
from datetime import datetime

from domains.sample_events import MODELS, common, fmt_ts, maybe
from stats_gateway.core.domain import (
    BreakdownView, Count, Dimension, DistinctCount, Domain, EventField, FieldType,
    LatestTime, Metric, ResourceFilter, Samples, SeriesView, Sum,
)
from stats_gateway.demo.sampling import Columns, Picker, home_workspaces, hour_index, zipf
from stats_gateway.demo.world import MODELS as DEMO_MODELS, Org, user_names

T = FieldType


def private_chat_event(rng: random.Random, i: int, t: datetime) -> dict:
    user = rng.choice(["u1", "u2", "u3", "u4"])
    e = {"eventId": f"pc-{i}", "ts": fmt_ts(t, i), "model": rng.choice(list(MODELS)),
         "userId": user}
    common(rng, e)
    maybe(rng, e, "userName", f"User {user}", 0.4)
    cfg = rng.choice([None, "cfg1", "cfg2"])
    if cfg:
        e["aiLlmId"] = cfg
    maybe(rng, e, "conversationId", f"{user}-c{rng.randint(1, 4)}", 0.8)
    maybe(rng, e, "tokensIn", rng.randint(0, 10_000))
    maybe(rng, e, "tokensOut", rng.randint(0, 10_000))
    return e


def private_chat_columns(org: Org, rng: random.Random, times: list[float],
                         now: datetime) -> Columns:
    """Chat messages: a long tail of users, each with a home workspace; prompts carry the
    conversation history, so they are longer than API prompts; a few chats a day each."""
    n, lognorm, randrange = len(times), rng.lognormvariate, rng.randrange
    users = user_names(org)
    home = home_workspaces(org)
    who = Picker(range(len(users)), zipf(len(users), 1.1)).take(rng, n)
    configs = Picker(org.ai_configs, [c.weight for c in org.ai_configs]).take(rng, n)
    tin, tout, conversations = [], [], []
    for t, u, config in zip(times, who, configs):
        model = DEMO_MODELS[config.model]
        tin.append(int(model.tokens_in * 1.6 * lognorm(0.0, 0.9)))
        tout.append(int(model.tokens_out * lognorm(0.0, 0.7)))
        conversations.append(f"chat-{u}-{hour_index(t, now) // 24}-{randrange(3)}")
    return {
        "workspace_id": [home[u] for u in who], "user_id": [users[u][0] for u in who],
        "model": [c.model for c in configs], "ai_llm_id": [c.id for c in configs],
        "conversation_id": conversations, "tokens_in": tin, "tokens_out": tout,
    }


DOMAIN = Domain(
    name="private-chat",
    retention=180,  # raw-event days: chat metadata: shorter, for privacy
    table="events_private_chat",
    title="PrivateChat",
    doc=__doc__,
    fields=(
        EventField(name="model", column="model", type=T.TEXT, required=True, doc="model id"),
        EventField(name="aiLlmId", column="ai_llm_id", type=T.TEXT, names_kind="aiConfig",
                   name_field="aiLlmName", doc="AI configuration id"),
        EventField(name="aiLlmName", column="ai_llm_name", type=T.TEXT, doc="its display name"),
        EventField(name="userId", column="user_id", type=T.TEXT, required=True,
                   names_kind="user", name_field="userName", high_cardinality=True,
                   doc="chat user"),
        EventField(name="userName", column="user_name", type=T.TEXT, doc="user display name"),
        EventField(name="conversationId", column="conversation_id", type=T.TEXT,
                   high_cardinality=True, doc="conversation"),
        EventField(name="tokensIn", column="tokens_in", type=T.BIGINT, default=0, min_value=0),
        EventField(name="tokensOut", column="tokens_out", type=T.BIGINT, default=0, min_value=0),
    ),
    metrics=(
        Metric(name="tokensIn", agg=Sum("tokens_in")),
        Metric(name="tokensOut", agg=Sum("tokens_out")),
        Metric(name="requests", agg=Count()),
        Metric(name="conversationsCount", agg=DistinctCount("conversation_id")),
        Metric(name="lastActiveAt", agg=LatestTime()),
    ),
    series=(SeriesView(primary="requests"),),
    breakdown=BreakdownView(primary="requests"),
    dimensions=(
        Dimension(by="models", column="model"),
        Dimension(by="users", column="user_id", names_kind="user",
                  extra_metrics=("conversationsCount", "lastActiveAt")),
    ),
    filters=(
        ResourceFilter(param="model", column="model"),
        ResourceFilter(param="userId", column="user_id"),
        ResourceFilter(param="apiKeyId", column="api_key_id"),
        ResourceFilter(param="aiLlmId", column="ai_llm_id"),
    ),
    samples=Samples(prefix="pc", event=private_chat_event, columns=private_chat_columns),
)
