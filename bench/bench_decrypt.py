"""Cost of unprotect() next to the bare AES-GCM primitive, measured side by side.

    .venv/bin/python bench/bench_decrypt.py

Prints APDUs per second for a glo-get-response (SC 0x30) and a 260-byte general-glo
DataNotification (SC 0x20), and the ratio to cryptography's AES-GCM/CTR call alone:
the ratio is the price of parsing, key selection and error handling.
"""

from __future__ import annotations

import timeit

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.ciphering import CipheredApdu, protect, unprotect
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.tags import Form

EK = Secret(bytes(range(16)))
AK = Secret(bytes(range(16, 32)))
TITLE = bytes.fromhex("5341477df129c270")
KEYS = CipherKeys(ek=EK, ak=AK)


def _bare(apdu: bytes) -> None:
    parsed, _ = CipheredApdu.decode(apdu)
    iv = TITLE + parsed.invocation_counter.to_bytes(4, "big")
    if parsed.auth_tag:
        d = Cipher(algorithms.AES(EK.reveal()), modes.GCM(iv, parsed.auth_tag, 12)).decryptor()
        d.authenticate_additional_data(parsed.sc.encode() + AK.reveal())
        d.update(parsed.information)
        d.finalize()
    else:
        d = Cipher(algorithms.AES(EK.reveal()), modes.CTR(iv + b"\0\0\0\2")).decryptor()
        d.update(parsed.information)
        d.finalize()


def main() -> None:
    cases = {
        "glo-get-response SC 0x30": protect(
            bytes.fromhex("c401c100090c07ea0b18020d2d0000ffc400") * 2,
            sc=SecurityControl(0, True, True),
            keys=KEYS,
            system_title=TITLE,
            invocation_counter=1,
        ),
        "general-glo push SC 0x20": protect(
            b"\x0f" + bytes(250),
            sc=SecurityControl(0, False, True),
            keys=KEYS,
            system_title=TITLE,
            invocation_counter=2,
            form=Form.GENERAL_GLO,
        ),
    }
    number = 20000
    for name, apdu in cases.items():
        ours = min(
            timeit.repeat(lambda apdu=apdu: unprotect(apdu, KEYS, TITLE), number=number, repeat=3)
        )
        bare = min(timeit.repeat(lambda apdu=apdu: _bare(apdu), number=number, repeat=3))
        print(
            f"{name:28s} unprotect {number / ours:9.0f}/s   bare AES {number / bare:9.0f}/s   ratio {ours / bare:4.2f}"
        )


if __name__ == "__main__":
    main()
