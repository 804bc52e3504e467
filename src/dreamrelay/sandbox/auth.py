"""What every sandbox API answers a wrong or missing key: why, and where the right one is."""

from __future__ import annotations

WRONG_KEY = (
    "Invalid API key: this sandbox takes DREAMRELAY_SANDBOX_KEY if it was set when it started, else the key "
    "in the sandbox_key file of its data directory (DREAMRELAY_DATA_DIR). A relay sharing that data "
    "directory finds the key there; a relay with another data directory needs DREAMRELAY_SANDBOX_KEY set "
    "to the same key."
)
