"""Every domain the gateway serves. Adding one: write its module, list it here."""

from domains import ai, credits, policies, private_chat, storage

DOMAINS = (
    storage.DOMAIN,
    ai.DOMAIN,
    private_chat.DOMAIN,
    policies.DOMAIN,
    credits.DOMAIN,
)
