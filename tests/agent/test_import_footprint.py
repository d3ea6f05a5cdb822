"""What the agent loads at start: cryptography's x509 and serialization (about 8 MB
resident, issue 5) only when a meter has a signing key or a certificate; the security
package itself loads no cryptography until something is ciphered or signed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def loaded_after(*modules: str) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {list(modules)!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=50)
    return set(json.loads(result.stdout))


def test_the_daemon_starts_without_x509() -> None:
    loaded = loaded_after("edge_agent.cli", "edge_agent.cli.run", "edge_agent.agent.daemon")
    assert "edge_agent.agent.daemon" in loaded
    assert not {"cryptography.x509", "cryptography.hazmat.primitives.serialization",
                "edge_agent.dlms.security.certificates"} & loaded


@pytest.mark.parametrize("module", ["edge_agent.dlms.security", "edge_agent.keystore",
                                    "edge_agent.dlms.security.hls",
                                    "edge_agent.dlms.association.pass3"])
def test_security_modules_load_cryptography_on_use(module: str) -> None:
    loaded = loaded_after(module)
    assert module in loaded
    assert not {name for name in loaded if name.startswith("cryptography")}


def test_ciphering_loads_the_cipher_when_used() -> None:
    code = ("import sys\n"
            "from edge_agent.dlms.secret import Secret\n"
            "from edge_agent.dlms.security import CipherKeys, Form, SecurityControl, protect\n"
            "assert 'cryptography' not in sys.modules\n"
            "protect(b'\\xc0\\x01\\xc1', keys=CipherKeys(ek=Secret(bytes(16)), ak=Secret(bytes(16))),"
            " sc=SecurityControl(0, True, True), system_title=bytes(8), invocation_counter=1,"
            " form=Form.GLO)\n"
            "print('cryptography.hazmat.primitives.ciphers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, timeout=50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
