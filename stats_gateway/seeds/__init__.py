"""Endpoints in the exact shapes of the seed APIs (../shared/seeds), served by the engine.

Each module adapts one seed: it parses that API's parameters, builds engine requests,
and renders that API's envelopes and errors. Adding one: write the module, list it here.
"""

from stats_gateway.seeds import call_stats, model_usage, runs, workflow_cu

SEED_MODULES = (runs, model_usage, workflow_cu, call_stats)
SEED_ROUTES: list = [handler for module in SEED_MODULES for handler in module.route_handlers]
