"""The fictional world the demo data describes: orgs, their workspaces, repos, buckets,
nodes, users, policy rules and AI configurations, plus the models and storage endpoints
they use.

Plain data, no randomness and no database: the generator samples from it and the loader
writes its display names to the entity catalogue, so both always agree on ids and names.
Ids are readable slugs (``ws-platform``) so the printed curl examples are easy to edit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Model:
    """A model, who serves it, and the shape of its traffic (lognormal medians/sigmas)."""

    id: str
    provider: str
    tokens_in: int  # median prompt tokens
    tokens_out: int  # median completion tokens
    latency_ms: float  # median time to first byte + generation overhead
    ms_per_token: float  # generation speed
    credits_per_mtok: int  # credits per million tokens, in/out blended


MODELS = {m.id: m for m in (
    Model("gpt-4o", "openai", 1_400, 380, 420.0, 11.0, 6_000),
    Model("gpt-4o-mini", "openai", 900, 260, 260.0, 6.0, 400),
    Model("claude-sonnet-4", "anthropic", 2_100, 520, 510.0, 13.0, 7_500),
    Model("claude-haiku-3.5", "anthropic", 800, 210, 240.0, 5.5, 1_200),
    Model("llama-3.1-70b", "meta", 1_100, 300, 330.0, 9.0, 900),
    Model("mistral-large", "mistral", 1_000, 280, 360.0, 10.0, 2_500),
    Model("gemini-1.5-pro", "google", 2_600, 450, 480.0, 12.0, 4_000),
)}


@dataclass(frozen=True)
class Endpoint:
    """A storage provider endpoint: the storage ``providers`` breakdown is keyed by it."""

    provider: str
    protocol: str
    host: str
    latency_ms: float  # median small-object latency


ENDPOINTS = {e.host: e for e in (
    Endpoint("aws", "S3", "s3.us-east-1.amazonaws.com", 38.0),
    Endpoint("aws", "S3", "s3.eu-central-1.amazonaws.com", 45.0),
    Endpoint("gcp", "GCS", "storage.googleapis.com", 52.0),
    Endpoint("azure", "AZURE_BLOB", "globexlabs.blob.core.windows.net", 58.0),
    Endpoint("cloudflare", "S3", "7c1e.r2.cloudflarestorage.com", 64.0),
    Endpoint("wasabi", "S3", "s3.ap-northeast-1.wasabisys.com", 71.0),
)}


@dataclass(frozen=True)
class Rule:
    """A policy rule: how often it fires and what it does when it does."""

    id: str
    name: str
    violation_rate: float
    actions: tuple[float, float, float]  # weights of log, alert, block
    severities: tuple[float, float, float]  # weights of low, medium, high


RULES = {r.id: r for r in (
    Rule("rule-pii", "PII in prompts", 0.035, (0.3, 0.45, 0.25), (0.25, 0.5, 0.25)),
    Rule("rule-secrets", "Secrets and credentials", 0.008, (0.05, 0.25, 0.7), (0.0, 0.2, 0.8)),
    Rule("rule-injection", "Prompt injection", 0.015, (0.2, 0.4, 0.4), (0.2, 0.4, 0.4)),
    Rule("rule-toxicity", "Toxic or abusive content", 0.006, (0.5, 0.3, 0.2), (0.4, 0.4, 0.2)),
    Rule("rule-exfiltration", "Data exfiltration", 0.002, (0.0, 0.3, 0.7), (0.0, 0.1, 0.9)),
    Rule("rule-off-topic", "Off-topic usage", 0.06, (0.85, 0.15, 0.0), (0.9, 0.1, 0.0)),
    Rule("rule-jailbreak", "Jailbreak attempts", 0.004, (0.1, 0.3, 0.6), (0.1, 0.3, 0.6)),
)}


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    weight: float  # share of the org's traffic
    repos: tuple[tuple[str, str], ...]  # (repo id, repo name)


@dataclass(frozen=True)
class Bucket:
    id: str
    name: str
    workspace: str
    repo: str | None
    endpoint: str  # Endpoint.host
    weight: float


@dataclass(frozen=True)
class AiConfig:
    id: str
    name: str
    model: str  # Model.id
    weight: float
    policy_checked: bool  # its requests also spend policy-evaluation tokens


@dataclass(frozen=True)
class Org:
    """One tenant and everything about its size, rhythm and resources."""

    key: str  # stable handle inside the demo (names get a prefix in tests)
    name: str
    share: float  # share of all events
    timezone: str  # where its people work: drives the daily rhythm
    growth: float  # traffic multiplier over the year (1.0 = flat)
    active_days: int  # days since the org started sending events (<= 365)
    mix: dict[str, float]  # domain name -> share of the org's events
    workspaces: tuple[Workspace, ...]
    buckets: tuple[Bucket, ...]
    nodes: tuple[tuple[str, str], ...]  # (node id, node name)
    ai_configs: tuple[AiConfig, ...]
    rules: tuple[str, ...]  # Rule ids
    users: int


def _ws(slug: str, name: str, weight: float, *repos: str) -> Workspace:
    return Workspace(f"ws-{slug}", name, weight, tuple((f"repo-{r}", r) for r in repos))


def _bucket(name: str, workspace: str, repo: str | None, endpoint: str,
            weight: float) -> Bucket:
    return Bucket(f"bkt-{name}", name, f"ws-{workspace}", repo and f"repo-{repo}",
                  endpoint, weight)


ORGS: tuple[Org, ...] = (
    Org(
        key="acme", name="Acme Corp", share=0.63, timezone="America/New_York", growth=1.8,
        active_days=365,
        mix={"storage": 0.30, "ai": 0.33, "private-chat": 0.15, "policies": 0.17,
             "credits": 0.05},
        workspaces=(
            _ws("platform", "Platform Engineering", 0.35, "api-gateway", "billing-service",
                "auth-service", "infra-terraform"),
            _ws("data", "Data & Analytics", 0.30, "etl-pipelines", "warehouse-models",
                "demand-forecasting"),
            _ws("mobile", "Mobile Apps", 0.15, "ios-app", "android-app"),
            _ws("support", "Customer Support AI", 0.20, "support-bot", "kb-indexer"),
        ),
        buckets=(
            _bucket("acme-prod-assets", "platform", "api-gateway",
                    "s3.us-east-1.amazonaws.com", 0.30),
            _bucket("acme-backups", "platform", "infra-terraform",
                    "s3.eu-central-1.amazonaws.com", 0.10),
            _bucket("acme-datalake-raw", "data", "etl-pipelines", "storage.googleapis.com",
                    0.30),
            _bucket("acme-ml-features", "data", None, "storage.googleapis.com", 0.10),
            _bucket("acme-mobile-media", "mobile", "ios-app", "7c1e.r2.cloudflarestorage.com",
                    0.12),
            _bucket("acme-support-kb", "support", "kb-indexer", "s3.us-east-1.amazonaws.com",
                    0.08),
        ),
        nodes=(("node-use1-a", "gw-us-east-1a"), ("node-use1-b", "gw-us-east-1b"),
               ("node-euc1-a", "gw-eu-central-1a")),
        ai_configs=(
            AiConfig("cfg-support-assistant", "Support assistant", "gpt-4o", 0.30, True),
            AiConfig("cfg-code-review", "Code review bot", "claude-sonnet-4", 0.22, True),
            AiConfig("cfg-triage", "Ticket triage", "gpt-4o-mini", 0.25, True),
            AiConfig("cfg-summarizer", "Meeting summarizer", "claude-haiku-3.5", 0.13, False),
            AiConfig("cfg-onprem-llama", "On-prem Llama", "llama-3.1-70b", 0.10, False),
        ),
        rules=("rule-pii", "rule-secrets", "rule-injection", "rule-toxicity",
               "rule-exfiltration", "rule-jailbreak"),
        users=80,
    ),
    Org(
        key="globex", name="Globex Labs", share=0.27, timezone="Europe/Berlin", growth=3.5,
        active_days=365,
        mix={"storage": 0.25, "ai": 0.40, "private-chat": 0.14, "policies": 0.16,
             "credits": 0.05},
        workspaces=(
            _ws("research", "Research", 0.45, "llm-evals", "retrieval-lab"),
            _ws("product", "Product", 0.35, "web-dashboard", "notifications"),
            _ws("ml-ops", "ML Ops", 0.20, "model-serving"),
        ),
        buckets=(
            _bucket("globex-eval-sets", "research", "llm-evals",
                    "globexlabs.blob.core.windows.net", 0.35),
            _bucket("globex-embeddings", "research", "retrieval-lab",
                    "globexlabs.blob.core.windows.net", 0.25),
            _bucket("globex-web-static", "product", "web-dashboard",
                    "s3.eu-central-1.amazonaws.com", 0.25),
            _bucket("globex-model-artifacts", "ml-ops", "model-serving",
                    "s3.eu-central-1.amazonaws.com", 0.15),
        ),
        nodes=(("node-euw1-a", "gw-eu-west-1a"), ("node-euc1-b", "gw-eu-central-1b")),
        ai_configs=(
            AiConfig("cfg-eval-harness", "Eval harness", "gemini-1.5-pro", 0.30, False),
            AiConfig("cfg-rag-answers", "RAG answers", "claude-sonnet-4", 0.30, True),
            AiConfig("cfg-product-copilot", "Product copilot", "gpt-4o", 0.25, True),
            AiConfig("cfg-mistral-batch", "Batch classification", "mistral-large", 0.15,
                     False),
        ),
        rules=("rule-pii", "rule-injection", "rule-off-topic", "rule-jailbreak"),
        users=30,
    ),
    Org(
        key="initech", name="Initech", share=0.10, timezone="Asia/Tokyo", growth=1.3,
        active_days=210,
        mix={"storage": 0.45, "ai": 0.25, "private-chat": 0.12, "policies": 0.12,
             "credits": 0.06},
        workspaces=(
            _ws("core", "Core Systems", 0.7, "tps-reports", "legacy-bridge"),
            _ws("ops", "Operations", 0.3, "runbooks"),
        ),
        buckets=(
            _bucket("initech-archive", "core", "tps-reports",
                    "s3.ap-northeast-1.wasabisys.com", 0.6),
            _bucket("initech-ops-logs", "ops", None, "s3.ap-northeast-1.wasabisys.com", 0.4),
        ),
        nodes=(("node-apne1-a", "gw-ap-northeast-1a"),),
        ai_configs=(
            AiConfig("cfg-report-writer", "Report writer", "gpt-4o-mini", 0.7, True),
            AiConfig("cfg-ops-helper", "Ops helper", "llama-3.1-70b", 0.3, False),
        ),
        rules=("rule-pii", "rule-secrets", "rule-off-topic"),
        users=8,
    ),
)

FIRST_NAMES = ("Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Lena", "Omar", "Priya", "Jonas",
               "Sofia", "Kenji", "Amara", "Lucas", "Hana", "Mateo", "Ines", "Ravi", "Chloe",
               "Tomas", "Yara", "Felix", "Aiko", "Diego")
LAST_NAMES = ("Nguyen", "Schmidt", "Okafor", "Tanaka", "Garcia", "Kowalski", "Haddad",
              "Johansson", "Patel", "Rossi", "Moreau", "Kim", "Silva", "Novak", "Fischer",
              "Sato", "Murphy", "Costa", "Ivanova", "Mensah")


def user_names(org: Org) -> list[tuple[str, str]]:
    """(user id, display name) for the org's users; deterministic, no randomness needed."""
    users = []
    for i in range(org.users):
        first = FIRST_NAMES[(i * 7 + len(org.key)) % len(FIRST_NAMES)]
        last = LAST_NAMES[(i * 11 + i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        users.append((f"u-{org.key}-{i + 1:03d}", f"{first} {last}"))
    return users


def entities(org: Org) -> list[tuple[str, str, str | None, str]]:
    """Every (kind, id, parent id, name) the org's events can mention, for the catalogue."""
    rows: list[tuple[str, str, str | None, str]] = []
    for ws in org.workspaces:
        rows.append(("workspace", ws.id, None, ws.name))
        rows += [("repo", repo_id, ws.id, name) for repo_id, name in ws.repos]
    rows += [("bucket", b.id, None, b.name) for b in org.buckets]
    rows += [("node", node_id, None, name) for node_id, name in org.nodes]
    rows += [("user", user_id, None, name) for user_id, name in user_names(org)]
    rows += [("rule", rule_id, None, RULES[rule_id].name) for rule_id in org.rules]
    rows += [("aiConfig", c.id, None, c.name) for c in org.ai_configs]
    return rows
