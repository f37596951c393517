"""SigningService: the only process holding the server key; signs settlement transactions that pass its
own policy checks (spec 8, 10.3) and nothing else.

Modules: `config` (the TOML model), `keystore` (loading or creating the key), `policy` (the pure request
checks), `app` (the aiohttp application), `__main__` (the `signing-service CONFIG_FILE` entry point).
"""
