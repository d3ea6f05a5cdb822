import pytest
from sec_fixtures import AK, EK

from edge_agent.dlms.security.control import CipherKeys


@pytest.fixture
def keys() -> CipherKeys:
    return CipherKeys(ek=EK, ak=AK)
