"""Fuzz the config files (paychan_runtime.config.parse_config) against each service's model: the first byte
picks the model (ChanStore, SigningService, PayChanServer), the rest is the TOML text."""

from __future__ import annotations

import atheris

from tests.fuzz import INSTRUMENTED

with atheris.instrument_imports(include=INSTRUMENTED):
    from chan_store.config import StoreConfig
    from paychan_runtime.config import parse_config
    from paychan_server.config import ServerConfig
    from signing_service.config import SigningConfig
    from tests.fuzz.common import main, rejects_cleanly, text_input
    from tests.fuzz.seeds import config_texts

MODELS = (StoreConfig, SigningConfig, ServerConfig)
NAMES = {b"store.toml": 0, b"signing.toml": 1, b"server.toml": 2}
SEEDS = [bytes([i]) + text for text in config_texts() for i in range(len(MODELS))]


def harness(data: bytes) -> None:
    """One input."""
    if not data:
        return
    model = MODELS[data[0] % len(MODELS)]
    config = rejects_cleanly(lambda: parse_config(text_input(data[1:]), model))
    if config is not None:
        assert model.model_validate(config.model_dump()) == config  # a loaded config is valid as it stands


if __name__ == "__main__":
    main(harness, SEEDS)
