"""The one msgspec base for every wire Struct.

Frozen and keyword-only so envelopes are values, camelCase on the wire. Never
``omit_defaults``: it would drop metrics whose value is zero.
"""

from typing import dataclass_transform

import msgspec


# for type checkers: subclasses inherit frozen and kw_only (msgspec applies them at run time)
@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(msgspec.field,))
class Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every request/response Struct."""
