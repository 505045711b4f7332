"""Endpoints in the exact shapes of the seed APIs (../shared/seeds), served by the engine.

Each module adapts one seed: it parses that API's parameters, builds engine requests,
and renders that API's envelopes and errors. Adding one: write the module, list it here.
"""

SEED_ROUTES: list = []
