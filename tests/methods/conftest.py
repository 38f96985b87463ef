from __future__ import annotations

import pytest

from tests.methods import zoo


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    built = {name: build() for name, build in zoo.BUILDERS.items()}
    built["keras_file"] = zoo.round_trip(tmp_path_factory.mktemp("zoo"))
    return built
