"""The fictional world the demo data describes: orgs, their workspaces, repos, buckets,
nodes, users, policy rules, AI configurations, run targets, workflows and traced projects,
plus the models, storage endpoints and ops they use.

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
    name: str  # display name
    cents_in: int  # list price, US cents per million input tokens
    cents_out: int  # ... and per million output tokens


MODELS = {m.id: m for m in (
    Model("gpt-4o", "openai", 1_400, 380, 420.0, 11.0, 6_000, "GPT-4o", 250, 1_000),
    Model("gpt-4o-mini", "openai", 900, 260, 260.0, 6.0, 400, "GPT-4o mini", 15, 60),
    Model("claude-sonnet-4", "anthropic", 2_100, 520, 510.0, 13.0, 7_500, "Claude Sonnet 4",
          300, 1_500),
    Model("claude-haiku-3.5", "anthropic", 800, 210, 240.0, 5.5, 1_200, "Claude 3.5 Haiku",
          80, 400),
    Model("llama-3.1-70b", "meta", 1_100, 300, 330.0, 9.0, 900, "Llama 3.1 70B Instruct",
          88, 88),
    Model("mistral-large", "mistral", 1_000, 280, 360.0, 10.0, 2_500, "Mistral Large",
          200, 600),
    Model("gemini-1.5-pro", "google", 2_600, 450, 480.0, 12.0, 4_000, "Gemini 1.5 Pro",
          125, 500),
)}
PROVIDER_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "meta": "Meta",
                  "mistral": "Mistral", "google": "Google"}
"""How model-usage events spell providers (Runtype shows display names, the gateway ids)."""


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
class RunTarget:
    """Something a run runs: a hosted model, a flow or a ComfyUI workflow."""

    type: str  # model | flow | comfyui
    slug: str
    name: str
    median_ms: float  # median run duration
    sigma: float  # lognormal spread of durations
    micro_usd_per_s: int  # spend while running, millionths of a dollar per second
    playground: float  # share of its runs started from the playground
    old_name: str | None = None  # its display name before RENAMED_DAYS_AGO

    @property
    def key(self) -> str:
        return f"{self.type}:{self.slug}"


RENAMED_DAYS_AGO = 120
RUN_TARGETS = {t.key: t for t in (
    RunTarget("model", "flux-schnell", "FLUX.1 [schnell]", 1_800, 0.35, 1_600, 0.22),
    RunTarget("model", "sdxl-lightning", "SDXL Lightning", 1_200, 0.30, 1_200, 0.18),
    RunTarget("model", "whisper-large-v3", "Whisper large v3", 14_000, 0.80, 230, 0.05),
    RunTarget("model", "llama-3-8b-instruct", "Llama 3 8B Instruct", 2_600, 0.60, 300, 0.12),
    RunTarget("model", "upscaler", "Real-ESRGAN 4x upscaler", 3_800, 0.40, 500, 0.10),
    RunTarget("flow", "product-photo-studio", "Product photo studio", 26_000, 0.45, 900, 0.08),
    RunTarget("flow", "podcast-to-blog", "Podcast to blog post", 95_000, 0.60, 400, 0.06,
              old_name="Podcast summarizer"),
    RunTarget("flow", "ticket-triage", "Ticket triage", 6_000, 0.50, 350, 0.04),
    # the same slug as the model: targets are told apart by type ("comfyui:upscaler")
    RunTarget("comfyui", "upscaler", "4x upscale (ComfyUI)", 9_000, 0.40, 700, 0.15),
    RunTarget("comfyui", "portrait-restyle", "Portrait restyle", 34_000, 0.50, 1_100, 0.25),
    RunTarget("comfyui", "anime-lineart", "Anime line art", 21_000, 0.45, 1_000, 0.30),
)}


@dataclass(frozen=True)
class Workflow:
    """A workflow that consumes compute units when it runs."""

    id: str
    name: str
    workspace: str
    weight: float
    stream: float  # share of its runs that stream their output
    triggers: tuple[float, float, float, float]  # weights of api, schedule, webhook, manual
    median_ms: float
    cu_per_minute: float


TRIGGERS = ("api", "schedule", "webhook", "manual")


@dataclass(frozen=True)
class Step:
    """One kind of child call in a trace: an op, how often it runs, and what it calls."""

    op: str
    chance: float  # share of traces that run it
    latency_ms: float  # median
    repeat: int = 1  # a trace runs it 1..repeat times
    models: tuple[str, ...] = ()  # models an LLM op calls (first the usual one)
    fallback: bool = False  # retries on another model: some calls use two
    refs_out: str | None = None  # objects it returns refs to, e.g. "kb-article"


@dataclass(frozen=True)
class Project:
    """A traced project ("entity/project"): each trace is a root op and its steps."""

    id: str
    workspace: str
    weight: float
    root: str
    steps: tuple[Step, ...]
    input_ref: str | None = None  # versioned object the root call reads (a prompt, a dataset)
    chat: bool = False  # traces are turns of conversation threads
    evaluation: bool = False  # traces run inside W&B runs


OPENAI_CHAT = "openai.chat.completions.create"
ANTHROPIC_CHAT = "anthropic.Messages.create"


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
    byok: bool = False  # runs on the user's own provider key (model-usage billing "user")


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
    run_targets: tuple[tuple[str, float], ...]  # (RunTarget key, weight)
    workflows: tuple[Workflow, ...]
    projects: tuple[Project, ...]


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
        mix={"storage": 0.17, "ai": 0.19, "private-chat": 0.08, "policies": 0.10,
             "credits": 0.03, "runs": 0.07, "model-usage": 0.10, "workflow-cu": 0.06,
             "calls": 0.14, "call-usage": 0.065},
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
            AiConfig("cfg-code-review", "Code review bot", "claude-sonnet-4", 0.22, True,
                     byok=True),
            AiConfig("cfg-triage", "Ticket triage", "gpt-4o-mini", 0.25, True),
            AiConfig("cfg-summarizer", "Meeting summarizer", "claude-haiku-3.5", 0.13, False),
            AiConfig("cfg-onprem-llama", "On-prem Llama", "llama-3.1-70b", 0.10, False),
        ),
        rules=("rule-pii", "rule-secrets", "rule-injection", "rule-toxicity",
               "rule-exfiltration", "rule-jailbreak"),
        users=80,
        run_targets=(("model:flux-schnell", 0.30), ("model:sdxl-lightning", 0.15),
                     ("model:whisper-large-v3", 0.10), ("model:upscaler", 0.08),
                     ("flow:product-photo-studio", 0.12), ("flow:ticket-triage", 0.10),
                     ("comfyui:upscaler", 0.07), ("comfyui:portrait-restyle", 0.08)),
        workflows=(
            Workflow("wf-support-reply", "Support reply drafter", "ws-support", 0.35, 0.85,
                     (0.70, 0.0, 0.25, 0.05), 9_000, 2.5),
            Workflow("wf-lead-enrichment", "Lead enrichment", "ws-data", 0.28, 0.0,
                     (0.20, 0.60, 0.20, 0.0), 42_000, 1.2),
            Workflow("wf-invoice-extraction", "Invoice extraction", "ws-platform", 0.20, 0.0,
                     (0.30, 0.10, 0.60, 0.0), 15_000, 1.8),
            Workflow("wf-app-review-triage", "App review triage", "ws-mobile", 0.12, 0.2,
                     (0.10, 0.50, 0.30, 0.10), 20_000, 1.5),
            Workflow("wf-weekly-digest", "Weekly digest", "ws-data", 0.05, 0.0,
                     (0.0, 0.90, 0.0, 0.10), 180_000, 0.9),
        ),
        projects=(
            Project("acme/support-chatbot", "ws-support", 0.45, "SupportBot.respond", (
                Step("retrieve_kb_articles", 0.9, 120, refs_out="kb-article"),
                Step(OPENAI_CHAT, 1.0, 1_400, models=("gpt-4o", "gpt-4o-mini")),
                Step("moderate_reply", 0.35, 180),
            ), input_ref="SupportPrompt", chat=True),
            Project("acme/code-review-agent", "ws-platform", 0.35, "ReviewAgent.run", (
                Step("fetch_pull_request_diff", 1.0, 350),
                Step(ANTHROPIC_CHAT, 1.0, 3_200, repeat=3,
                     models=("claude-sonnet-4", "claude-haiku-3.5")),
                Step("post_review_comment", 0.8, 260),
            ), input_ref="ReviewGuidelines"),
            Project("acme/forecast-evals", "ws-data", 0.20, "Evaluation.evaluate", (
                Step("ForecastModel.predict", 1.0, 2_200, repeat=4,
                     models=("gpt-4o-mini", "claude-haiku-3.5", "mistral-large"),
                     fallback=True),
                Step("mape_scorer", 1.0, 15),
                Step("llm_judge_scorer", 0.5, 1_800, models=("gpt-4o",)),
            ), input_ref="DemandDataset", evaluation=True),
        ),
    ),
    Org(
        key="globex", name="Globex Labs", share=0.27, timezone="Europe/Berlin", growth=3.5,
        active_days=365,
        mix={"storage": 0.12, "ai": 0.22, "private-chat": 0.07, "policies": 0.09,
             "credits": 0.03, "runs": 0.06, "model-usage": 0.11, "workflow-cu": 0.07,
             "calls": 0.153, "call-usage": 0.077},
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
            AiConfig("cfg-eval-harness", "Eval harness", "gemini-1.5-pro", 0.30, False,
                     byok=True),
            AiConfig("cfg-rag-answers", "RAG answers", "claude-sonnet-4", 0.30, True),
            AiConfig("cfg-product-copilot", "Product copilot", "gpt-4o", 0.25, True),
            AiConfig("cfg-mistral-batch", "Batch classification", "mistral-large", 0.15,
                     False),
        ),
        rules=("rule-pii", "rule-injection", "rule-off-topic", "rule-jailbreak"),
        users=30,
        run_targets=(("model:llama-3-8b-instruct", 0.25), ("model:whisper-large-v3", 0.20),
                     ("flow:podcast-to-blog", 0.20), ("comfyui:anime-lineart", 0.15),
                     ("model:flux-schnell", 0.20)),
        workflows=(
            Workflow("wf-paper-digest", "Paper digest", "ws-research", 0.40, 0.5,
                     (0.30, 0.50, 0.0, 0.20), 60_000, 2.0),
            Workflow("wf-release-notes", "Release notes writer", "ws-product", 0.30, 0.9,
                     (0.20, 0.0, 0.60, 0.20), 25_000, 2.2),
            Workflow("wf-model-canary", "Model canary checks", "ws-ml-ops", 0.30, 0.0,
                     (0.0, 0.90, 0.10, 0.0), 12_000, 3.0),
        ),
        projects=(
            Project("globex/rag-answers", "ws-research", 0.50, "RagPipeline.answer", (
                Step("vector_search", 1.0, 90, refs_out="paper-chunk"),
                Step(ANTHROPIC_CHAT, 1.0, 2_600, models=("claude-sonnet-4",)),
                Step("cite_sources", 0.6, 40),
            ), input_ref="RagPrompt", chat=True),
            Project("globex/llm-evals", "ws-research", 0.30, "Evaluation.evaluate", (
                Step("google.generativeai.GenerativeModel.generate_content", 1.0, 2_400,
                     repeat=5, models=("gemini-1.5-pro",)),
                Step("litellm.completion", 0.7, 1_500, repeat=2,
                     models=("gpt-4o", "claude-sonnet-4", "mistral-large"), fallback=True),
                Step("exact_match_scorer", 1.0, 5),
            ), input_ref="EvalSuite", evaluation=True),
            Project("globex/product-copilot", "ws-product", 0.20, "Copilot.chat", (
                Step(OPENAI_CHAT, 1.0, 1_300, models=("gpt-4o",)),
                Step("track_feature_usage", 0.5, 60),
            ), input_ref="CopilotPrompt", chat=True),
        ),
    ),
    Org(
        key="initech", name="Initech", share=0.10, timezone="Asia/Tokyo", growth=1.3,
        active_days=210,
        mix={"storage": 0.30, "ai": 0.15, "private-chat": 0.07, "policies": 0.07,
             "credits": 0.04, "runs": 0.09, "model-usage": 0.08, "workflow-cu": 0.08,
             "calls": 0.088, "call-usage": 0.032},
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
            AiConfig("cfg-ops-helper", "Ops helper", "llama-3.1-70b", 0.3, False, byok=True),
        ),
        rules=("rule-pii", "rule-secrets", "rule-off-topic"),
        users=8,
        run_targets=(("flow:ticket-triage", 0.45), ("model:whisper-large-v3", 0.25),
                     ("comfyui:upscaler", 0.15), ("model:upscaler", 0.15)),
        workflows=(
            Workflow("wf-tps-cover-sheet", "TPS cover sheet", "ws-core", 0.70, 0.1,
                     (0.60, 0.20, 0.0, 0.20), 8_000, 1.0),
            Workflow("wf-incident-summary", "Incident summary", "ws-ops", 0.30, 0.6,
                     (0.20, 0.0, 0.70, 0.10), 30_000, 1.4),
        ),
        projects=(
            Project("initech/report-writer", "ws-core", 0.70, "ReportWriter.write", (
                Step("load_tps_records", 1.0, 400),
                Step(OPENAI_CHAT, 1.0, 1_700, repeat=2, models=("gpt-4o-mini",)),
                Step("render_pdf", 0.9, 900),
            ), input_ref="TPSTemplate"),
            Project("initech/ops-helper", "ws-ops", 0.30, "OpsHelper.answer", (
                Step("search_runbooks", 1.0, 150, refs_out="runbook"),
                Step("litellm.completion", 1.0, 1_100, models=("llama-3.1-70b", "gpt-4o-mini"),
                     fallback=True),
            ), chat=True),
        ),
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
