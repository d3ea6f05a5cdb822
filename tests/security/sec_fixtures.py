import json

from known_answers import VECTORS

from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security.control import CipherKeys


def load_cases(name: str) -> list[dict]:
    return json.loads((VECTORS / name).read_text())["cases"]


def keys_from(inputs: dict) -> CipherKeys:
    return CipherKeys(
        ek=Secret(bytes.fromhex(inputs["ek"]), "EK") if "ek" in inputs else None,
        ak=Secret(bytes.fromhex(inputs["ak"]), "AK") if "ak" in inputs else None,
    )


EK = Secret(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "EK")
AK = Secret(bytes.fromhex("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"), "AK")
CLIENT_ST = bytes.fromhex("434c496a2ae598ef")
SERVER_ST = bytes.fromhex("5341477df129c270")
