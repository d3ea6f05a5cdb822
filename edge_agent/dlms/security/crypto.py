"""The one door to the ``cryptography`` package: its modules, loaded on first use.

``cryptography``'s native module costs about 6 MB of resident memory and its X.509 part
about 7 MB more: a process that reads meters without ciphering, or ciphers without
signing, should not pay for them (a Raspberry Pi runs this). So no module of the core
imports ``cryptography`` itself; each does ``from edge_agent.dlms.security import crypto``
(cheap) and names what it needs at the moment it needs it::

    crypto.ec.ECDSA(crypto.hashes.SHA256())      # loads ec and hashes, not x509

The type checker sees the real modules (the imports under ``TYPE_CHECKING``); at run time
the first access of a name imports its module once (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # "x as x": re-exported for the type checker, used as ``crypto.ec``
    from cryptography import exceptions as exceptions
    from cryptography import x509 as x509
    from cryptography.hazmat.primitives import hashes as hashes
    from cryptography.hazmat.primitives import keywrap as keywrap
    from cryptography.hazmat.primitives import serialization as serialization
    from cryptography.hazmat.primitives.asymmetric import ec as ec
    from cryptography.hazmat.primitives.asymmetric import utils as dss
    from cryptography.hazmat.primitives.ciphers import Cipher as Cipher
    from cryptography.hazmat.primitives.ciphers import algorithms as algorithms
    from cryptography.hazmat.primitives.ciphers import modes as modes
    from cryptography.hazmat.primitives.kdf import concatkdf as concatkdf
    from cryptography.x509 import oid as oid

#: Name here -> (module to import, attribute of it or None for the module itself).
_SOURCES: dict[str, tuple[str, str | None]] = {
    "exceptions": ("cryptography.exceptions", None),
    "x509": ("cryptography.x509", None),
    "oid": ("cryptography.x509.oid", None),
    "hashes": ("cryptography.hazmat.primitives.hashes", None),
    "keywrap": ("cryptography.hazmat.primitives.keywrap", None),
    "serialization": ("cryptography.hazmat.primitives.serialization", None),
    "ec": ("cryptography.hazmat.primitives.asymmetric.ec", None),
    "dss": ("cryptography.hazmat.primitives.asymmetric.utils", None),
    "Cipher": ("cryptography.hazmat.primitives.ciphers", "Cipher"),
    "algorithms": ("cryptography.hazmat.primitives.ciphers.algorithms", None),
    "modes": ("cryptography.hazmat.primitives.ciphers.modes", None),
    "concatkdf": ("cryptography.hazmat.primitives.kdf.concatkdf", None),
}

__all__ = [  # what ``crypto.`` offers; the table above says where each comes from
    "Cipher",
    "algorithms",
    "concatkdf",
    "dss",
    "ec",
    "exceptions",
    "hashes",
    "keywrap",
    "modes",
    "oid",
    "serialization",
    "x509",
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later accesses are plain global look-ups
    return value
