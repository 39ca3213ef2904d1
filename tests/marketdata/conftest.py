import pytest

from marketdata.services import instruments_seed


@pytest.fixture
def instruments(db):
    return {i.symbol: i for i in instruments_seed()}
