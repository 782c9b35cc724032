"""Built-in environment registrations: one small module per dataset family.

Importing this package registers every built-in env id (``mtlbench.make`` does it for you).
"""

from __future__ import annotations

import importlib

#: modules under mtlbench.envs that register env ids when imported
FAMILIES = (
    "multimnist",
    "qm9",
    "nyuv2",
    "cityscapes",
    "celeba",
    "office",
    "xtreme",
    "digit_attributes",
    "digit_domains",
    "qm9_small",
)

for _family in FAMILIES:
    try:
        importlib.import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as err:  # a family still being written: skip only itself
        if err.name != f"{__name__}.{_family}":
            raise
