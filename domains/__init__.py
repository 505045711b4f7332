"""Every domain the gateway serves: the built-in ones listed in ``BUILT_IN``, then those
other installed packages register under the entry-point group ``stats_gateway.domains``.

Adding a domain here: write its module (declaration and ``Samples``), list it in
``BUILT_IN``. Adding one from another package, without editing this repository: declare
an entry point naming its ``Domain``, e.g. in that package's ``pyproject.toml``::

    [project.entry-points."stats_gateway.domains"]
    toy = "my_package.toy:DOMAIN"

(datasette's ``load_setuptools_entrypoints`` is the model; ``importlib.metadata`` is all it
takes). The domains are validated together when this package is imported, every problem
reported at once, a plugged-in domain's and an entry point that does not load included.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from domains import (
    ai, call_usage, calls, credits, model_usage, policies, private_chat, runs, storage,
    workflow_cu,
)
from stats_gateway.core.domain import Domain, validate_domains

ENTRY_POINT_GROUP = "stats_gateway.domains"

BUILT_IN = (
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


def plugged_in() -> tuple[tuple[Domain, ...], list[str]]:
    """The domains installed packages register (ordered by entry-point name), and a
    problem for each entry point that does not load or names something else."""
    found, problems = [], []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        where = f"entry point {point.name!r} ({point.value})"
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plug-in is reported with the rest, not raised alone
            problems.append(f"{where} does not load: {type(exc).__name__}: {exc}")
            continue
        if isinstance(loaded, Domain):
            found.append(loaded)
        else:
            problems.append(f"{where} names a {type(loaded).__name__}, not a Domain")
    return tuple(found), problems


def registered_domains() -> tuple[Domain, ...]:
    """The built-in domains, then the plugged-in ones, validated together
    (``DomainDeclarationError`` lists every problem)."""
    plugged, problems = plugged_in()
    domains = BUILT_IN + plugged
    validate_domains(domains, problems)
    return domains


DOMAINS = registered_domains()
