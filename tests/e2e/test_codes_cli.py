"""`dreamrelay codes` and `accounts max-keys` as an operator runs them, in their own process."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import ok, ok_json, run


def test_codes_are_made_in_batches_listed_without_the_codes_and_caps_set(tmp_path: Path) -> None:
    ok(tmp_path, "accounts", "create", "acme")
    made = ok_json(
        tmp_path, "codes", "create", "--amount", "500", "--count", "3", "--expires", "30d", "--json"
    )
    assert made["amount"] == 500 and made["count"] == 3 and len(made["codes"]) == 3
    assert made["expires_at"].endswith("Z")
    plain = ok(tmp_path, "codes", "create", "--amount", "7").split()
    assert len(plain) == 1 and plain[0].startswith("DRC-") and len(plain[0]) == 3 + 8 * 5
    listed = ok_json(tmp_path, "codes", "list", "--batch", made["batch"], "--json")
    assert [c["status"] for c in listed] == ["unused"] * 3
    assert all(
        set(c) >= {"prefix", "amount", "redeemed_by", "redeemed_at"} and "code" not in c for c in listed
    )
    assert "unused" in ok(tmp_path, "codes", "list")
    bad = run(tmp_path, "codes", "create", "--amount", "5", "--expires", "yesterday")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr

    assert ok_json(tmp_path, "accounts", "max-keys", "acme", "2", "--json")["max_keys"] == 2
    assert ok_json(tmp_path, "accounts", "show", "acme", "--json")["max_keys"] == 2
    assert "default" in ok(tmp_path, "accounts", "max-keys", "acme")
