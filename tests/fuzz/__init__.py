"""atheris harnesses, one per parser of outside input (README.md here)."""

INSTRUMENTED = ["paychan_common", "paychan_runtime", "chan_store", "signing_service", "paychan_server",
                "tests.fuzz"]
"""Packages whose code atheris instruments for coverage feedback (`atheris.instrument_imports(include=...)`)."""
