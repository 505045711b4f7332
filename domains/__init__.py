"""Every domain the gateway serves. Adding one: write its module, list it here."""

from domains import (
    ai, call_usage, calls, credits, model_usage, policies, private_chat, runs, storage,
    workflow_cu,
)

DOMAINS = (
    storage.DOMAIN,
    ai.DOMAIN,
    private_chat.DOMAIN,
    policies.DOMAIN,
    credits.DOMAIN,
    runs.DOMAIN,
    model_usage.DOMAIN,
    workflow_cu.DOMAIN,
    calls.DOMAIN,
    call_usage.DOMAIN,
)
