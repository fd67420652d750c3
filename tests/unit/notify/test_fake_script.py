"""The fake FCM's script: from a JSON file, flags and run-time changes."""

import json

import pytest

from app.notify.fake_fcm import Script, build_parser, script_from_args


def test_flags_override_the_script_file(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"share_503": 0.2, "latency_s": 0.5, "unregistered_tokens": ["a"]}))
    args = build_parser().parse_args(
        ["--script", str(path), "--latency", "0.1", "--outage-kind", "refuse", "--seed", "4"]
    )
    script = script_from_args(args)
    assert (script.share_503, script.latency_s) == (0.2, 0.1)
    assert (script.outage_kind, script.seed) == ("refuse", 4)
    assert script.unregistered_tokens == ("a",)


def test_a_script_survives_its_json_form():
    script = Script(share_429=0.1, invalid_tokens=("x", "y"), error_mode="SENDER_ID_MISMATCH")
    assert Script.from_mapping(json.loads(json.dumps(script.to_json()))) == script


@pytest.mark.parametrize(
    "changes",
    [
        {"colour": "red"},
        {"share_429": 0.7, "share_503": 0.7},
        {"share_timeout": -0.1},
        {"latency_s": -1},
        {"token_expires_in_s": 0},
        {"outage_kind": "flaky"},
        {"error_mode": "UNREGISTERED"},
        {"unregistered_tokens": "abc"},
    ],
)
def test_scripts_the_fake_cannot_follow(changes):
    with pytest.raises(ValueError):
        Script.from_mapping(changes)


def test_changes_apply_over_a_base():
    base = Script(latency_s=0.3, share_503=0.1)
    changed = Script.from_mapping({"share_503": 0.0}, base=base)
    assert (changed.latency_s, changed.share_503) == (0.3, 0.0)
