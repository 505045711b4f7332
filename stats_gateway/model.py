"""The one msgspec base for every wire Struct.

Frozen and keyword-only so envelopes are values, camelCase on the wire. Never
``omit_defaults``: it would drop metrics whose value is zero.
"""

import msgspec


class Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every request/response Struct."""
