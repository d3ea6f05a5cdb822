"""HLS pass 3 signed as the Sagemcom T-210D demands it (trace: tests/dlms/t210d_pass3_trace.json).

With suite 1 and HLS-5, the T-210D refuses the standard pass 3 (glo-action-request of
Association LN 0.0.40.0.0.255 method 1) with ExceptionResponse service-not-allowed /
operation-not-possible. It accepts the same ACTION-request when it is wrapped in

    general-glo-ciphering (0xDB, SC 0x30|suite, IC = the next one) of
        general-signing (0xDF: transaction-id empty, originator = client system title,
                         recipient = meter system title, date-time empty,
                         other-information empty, content = plain ACTION-request,
                         signature = ECDSA with the client's signing key)

The client spends two invocation counters: f(StoC) inside the ACTION parameter uses one,
the outer general-glo-ciphering the next (1426 and 1427 in the trace).
"""

from __future__ import annotations

from edge_agent.dlms.security import crypto
from edge_agent.dlms.security.ciphering import protect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.signing import sign
from edge_agent.dlms.security.tags import Form


def build_signed_pass3(
    action_request_plain: bytes,
    *,
    client_system_title: bytes,
    server_system_title: bytes,
    signing_key: crypto.ec.EllipticCurvePrivateKey,
    keys: CipherKeys,
    invocation_counter: int,
    suite: int = 1,
) -> bytes:
    """The pass-3 APDU of the trace; ``invocation_counter`` is the one after f(StoC)'s."""
    signed = sign(
        action_request_plain,
        signing_key=signing_key,
        originator_system_title=client_system_title,
        recipient_system_title=server_system_title,
    )
    return protect(
        signed.encode(),
        sc=SecurityControl(suite=suite, authentication=True, encryption=True),
        keys=keys,
        system_title=client_system_title,
        invocation_counter=invocation_counter,
        form=Form.GENERAL_GLO,
    )
