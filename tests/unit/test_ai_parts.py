"""The AI layer's small parts: the price table, the AI settings, the provider choice, prompts and redaction."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from interlock.ai.choice import ProviderChoice, parse_key
from interlock.ai.openai_provider import OpenAIProvider
from interlock.ai.pricing import DEFAULT_PRICES, PriceTable, PriceTableError
from interlock.ai.privacy import redact
from interlock.ai.prompts import PromptNotFound, load_policy, load_prompt
from interlock.ai.providers import OfflineProvider
from interlock.errors import NotConfigured
from interlock.settings import AiSettings
from pydantic import ValidationError

# -- prices -------------------------------------------------------------------------------------------------------


def test_given_no_setting_when_pricing_then_the_built_in_list_prices_apply():
    table = PriceTable.from_setting("")

    assert table.prices == DEFAULT_PRICES
    assert table.cost("gpt-4.1-mini", 1_000_000, 1_000_000) == pytest.approx(0.40 + 1.60)
    assert table.cost("gpt-4.1", 1_000, 500) == pytest.approx((1_000 * 2.0 + 500 * 8.0) / 1e6)
    assert table.cost("offline", 5_000, 5_000) == 0.0


@pytest.mark.parametrize(("reported", "family"), [
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),  # the longest family wins over gpt-4.1
    ("gpt-4.1-2025-04-14", "gpt-4.1"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
])
def test_given_a_dated_snapshot_name_when_pricing_then_it_costs_as_its_family(reported, family):
    table = PriceTable.from_setting("")

    assert table.cost(reported, 1_000, 100) == table.cost(family, 1_000, 100)


@pytest.mark.parametrize("model", ["llama3", "gpt-4.1mini", "gpt-4", "claude-3", ""])
def test_given_an_unknown_model_when_pricing_then_its_cost_is_unknown(model):
    assert PriceTable.from_setting("").cost(model, 1_000, 100) is None


def test_given_a_price_setting_when_pricing_then_it_overrides_and_adds_entries():
    table = PriceTable.from_setting('{"gpt-4.1-mini": {"input": 0, "output": 0}, '
                                    '"llama3": {"input": "0.1", "output": 0.2}}')

    assert table.cost("gpt-4.1-mini", 1_000, 1_000) == 0.0
    assert table.cost("gpt-4.1-mini-2025-04-14", 1_000, 1_000) == 0.0
    assert table.cost("llama3", 1_000_000, 1_000_000) == pytest.approx(0.3)
    assert table.cost("gpt-4.1-nano", 1_000_000, 0) == pytest.approx(0.10)  # the rest stay


def test_given_a_blank_price_setting_when_pricing_then_it_is_no_setting():
    assert PriceTable.from_setting("  \n").prices == DEFAULT_PRICES


@pytest.mark.parametrize("setting", [
    pytest.param("{not json", id="bad-json"),
    pytest.param('["gpt-4.1"]', id="not-an-object"),
    pytest.param('{"m": {"input": 1}}', id="missing-output"),
    pytest.param('{"m": [1, 2]}', id="entry-not-an-object"),
    pytest.param('{"m": {"input": "cheap", "output": 1}}', id="not-a-number"),
    pytest.param('{"m": {"input": -1, "output": 1}}', id="negative"),
    pytest.param('{"m": {"input": NaN, "output": 1}}', id="nan"),
    pytest.param('{"m": {"input": 1, "output": Infinity}}', id="infinite"),
])
def test_given_a_bad_price_setting_when_read_then_it_is_a_price_table_error(setting):
    with pytest.raises(PriceTableError, match="INTERLOCK_AI_PRICES"):
        PriceTable.from_setting(setting)


# -- settings -----------------------------------------------------------------------------------------------------


def test_given_no_ai_settings_when_validated_then_the_defaults_apply():
    settings = AiSettings()

    assert settings.ai_provider == "auto"
    assert settings.tiers == ("gpt-4.1-mini", "gpt-4.1-nano")
    assert (settings.ai_retries_per_tier, settings.ai_call_timeout_seconds) == (1, 20.0)
    assert (settings.ai_run_max_tokens, settings.ai_run_max_cost_usd) == (20_000, 0.05)
    assert (settings.ai_prices, settings.ai_policy_dir, settings.ai_api_key_secret) == ("", "", "")


def test_given_tiers_with_spaces_and_empty_names_when_validated_then_they_are_cleaned():
    assert AiSettings(ai_model_tiers=" gpt-4o , ,gpt-4o-mini,").tiers == ("gpt-4o", "gpt-4o-mini")


@pytest.mark.parametrize(("field", "value"), [
    ("ai_model_tiers", ""),
    ("ai_model_tiers", " , ,"),
    ("ai_prices", "{not json"),
    ("ai_prices", '{"m": {"input": -1, "output": 1}}'),
    ("ai_provider", "anthropic"),
    ("ai_retries_per_tier", 6),
    ("ai_retries_per_tier", -1),
    ("ai_call_timeout_seconds", 0),
    ("ai_call_timeout_seconds", 301),
    ("ai_run_max_tokens", 0),
    ("ai_run_max_cost_usd", 0),
    ("ai_secret_cache_seconds", -1),
])
def test_given_a_bad_ai_setting_when_validated_then_it_is_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as exc_info:
        AiSettings(**{field: value})

    assert [err["loc"] for err in exc_info.value.errors()] == [(field,)]


def test_given_settings_from_the_environment_as_text_when_validated_then_they_are_typed():
    settings = AiSettings.model_validate({"ai_retries_per_tier": "0", "ai_call_timeout_seconds": "0.5",
                                          "ai_prices": '{"llama3": {"input": 0, "output": 0}}'})

    assert (settings.ai_retries_per_tier, settings.ai_call_timeout_seconds) == (0, 0.5)


# -- the provider choice ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "key"), [
    ("sk-plain", "sk-plain"),
    ("  sk-padded\n", "sk-padded"),
    ('{"api_key": "sk-json"}', "sk-json"),
    ('{"api_key": " sk-json-padded "}', "sk-json-padded"),
    ('{"api_key": ""}', None),
    ('{"other": "sk-x"}', None),
    ("{not json", None),
    ("", None),
    ("   ", None),
    (None, None),
])
def test_given_a_stored_key_when_parsed_then_plain_text_and_json_are_read(stored, key):
    assert parse_key(stored) == key


def test_given_auto_and_no_key_when_choosing_then_the_offline_provider_answers():
    provider = ProviderChoice(AiSettings())()

    assert isinstance(provider, OfflineProvider)
    assert provider.name == "offline"


def test_given_openai_required_and_no_key_when_choosing_then_it_is_not_configured():
    with pytest.raises(NotConfigured) as exc_info:
        ProviderChoice(AiSettings(ai_provider="openai"))()

    assert exc_info.value.reason == "ai_not_configured"
    assert "OPENAI_API_KEY" in exc_info.value.message


@pytest.mark.parametrize("mode", ["auto", "openai"])
def test_given_an_api_key_in_the_environment_when_choosing_then_openai_answers_with_it(monkeypatch, mode):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0123456789")
    choice = ProviderChoice(AiSettings(ai_provider=mode))

    provider = choice()

    assert isinstance(provider, OpenAIProvider)
    assert provider.client.api_key == "sk-env-key-0123456789"
    assert provider.client.max_retries == 0  # every attempt is the runner's, on the timeline
    assert choice() is provider  # one client per key


def test_given_offline_chosen_when_a_key_is_set_then_no_model_is_called(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0123456789")

    assert isinstance(ProviderChoice(AiSettings(ai_provider="offline"))(), OfflineProvider)


def test_given_a_blank_environment_key_when_choosing_then_it_counts_as_none(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "  ")

    assert isinstance(ProviderChoice(AiSettings())(), OfflineProvider)


def test_given_a_key_in_the_secret_when_choosing_then_it_is_used_and_a_new_key_makes_a_new_client(monkeypatch):
    stored = {"value": '{"api_key": "sk-from-secret-1"}'}
    asked: list[tuple[str, Any]] = []

    def get_secret(name: str, max_age: Any = None, **_: Any) -> str:
        asked.append((name, max_age))
        return stored["value"]

    monkeypatch.setattr(parameters, "get_secret", get_secret)
    choice = ProviderChoice(AiSettings(ai_api_key_secret="interlock/ai/api-key", ai_secret_cache_seconds=60))

    first = choice()
    stored["value"] = "sk-from-secret-2"
    second = choice()

    assert isinstance(first, OpenAIProvider) and isinstance(second, OpenAIProvider)
    assert (first.client.api_key, second.client.api_key) == ("sk-from-secret-1", "sk-from-secret-2")
    assert second is not first
    assert asked == [("interlock/ai/api-key", 60)] * 2


@pytest.mark.parametrize("stored", ["", '{"api_key": ""}'])
def test_given_an_empty_secret_when_choosing_then_the_offline_provider_answers(monkeypatch, stored):
    monkeypatch.setattr(parameters, "get_secret", lambda name, **_: stored)

    assert isinstance(ProviderChoice(AiSettings(ai_api_key_secret="interlock/ai/api-key"))(), OfflineProvider)


def test_given_an_unreadable_secret_when_choosing_then_the_step_is_retried_not_decided_offline(monkeypatch):
    from interlock.errors import TransientError

    def unreadable(name: str, **_: Any) -> str:
        raise parameters.exceptions.GetParameterError("AccessDenied")

    monkeypatch.setattr(parameters, "get_secret", unreadable)

    with pytest.raises(TransientError) as info:
        ProviderChoice(AiSettings(ai_api_key_secret="interlock/ai/api-key"))()

    assert info.value.reason == "ai_key_unreadable" and info.value.retryable


# -- prompts and policies -----------------------------------------------------------------------------------------


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    for name, text in {"triage.v1.md": "first words\n", "triage.v2.md": "second words\n",
                       "triage.v10.md": "tenth words\n", "triage.v3.backup.md": "not a version\n",
                       "triage_extra.v99.md": "another prompt\n", "other.v1.md": "other\n"}.items():
        (tmp_path / name).write_text(text, "utf-8")
    return tmp_path


def test_given_several_versions_when_loading_a_prompt_then_the_highest_number_wins(prompts_dir):
    prompt = load_prompt("triage", directory=prompts_dir)

    assert (prompt.name, prompt.version, prompt.text) == ("triage", "v10", "tenth words")
    assert prompt.sha256 == hashlib.sha256(b"tenth words\n").hexdigest()  # of the file as stored


def test_given_a_pinned_version_when_loading_a_prompt_then_that_version_loads(prompts_dir):
    prompt = load_prompt("triage", 2, directory=prompts_dir)

    assert (prompt.version, prompt.text) == ("v2", "second words")


def test_given_a_version_that_does_not_exist_when_loading_then_it_is_not_found(prompts_dir):
    with pytest.raises(PromptNotFound, match=r"prompt 'triage' has no version 3 \(has \[1, 2, 10\]\)"):
        load_prompt("triage", 3, directory=prompts_dir)


def test_given_a_prompt_that_does_not_exist_when_loading_then_it_is_not_found(prompts_dir):
    with pytest.raises(PromptNotFound, match="no prompt 'missing'"):
        load_prompt("missing", directory=prompts_dir)


def test_the_packaged_prompts_load_with_the_hash_of_their_file():
    from interlock.ai.runner import prompt_dir
    from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET, DRAFT_REPLY

    for point in (CLASSIFY_TICKET, DRAFT_REPLY):
        prompt = load_prompt(point.prompt, directory=prompt_dir(point))
        path = prompt_dir(point) / f"{point.prompt}.{prompt.version}.md"
        assert prompt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert prompt.text


def test_given_a_policy_directory_when_loading_a_policy_then_it_replaces_the_packaged_one(tmp_path):
    (tmp_path / "support_triage.md").write_text("  Our own rules.\n", "utf-8")

    from interlock.ai.runner import policy_dir
    from interlock.workflows.support_triage.decisions import CLASSIFY_TICKET

    assert load_policy("support_triage", str(tmp_path)) == "Our own rules."
    assert load_policy("support_triage", policy_dir(CLASSIFY_TICKET, AiSettings())) != "Our own rules."
    assert policy_dir(CLASSIFY_TICKET, AiSettings(ai_policy_dir=str(tmp_path))) == str(tmp_path)
    with pytest.raises(PromptNotFound, match="no policy 'missing'"):
        load_policy("missing", str(tmp_path))


# -- redaction ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("write to ada.lovelace+vip@example.co.uk today", "write to [email] today"),
    ("call +44 20 7946 0958 now", "call [phone] now"),
    ("key sk-test-SECRET0123456789 leaked", "key [key] leaked"),
    ("key sk-proj-AbC_dEf-0123456789xyz", "key [key]"),
    ("order 12345, 3 items, 2 x 19.99", "order 12345, 3 items, 2 x 19.99"),  # short numbers stay
    ("ada@example.com / +1 415 555 0100 / sk-abcdefgh1234", "[email] / [phone] / [key]"),
    ("nothing personal here", "nothing personal here"),
])
def test_given_personal_data_or_keys_when_redacted_then_they_are_masked(text, expected):
    assert redact(text) == expected


def test_given_a_phone_number_with_an_area_code_in_brackets_when_redacted_then_no_digit_of_it_is_left():
    out = redact("call (555) 123-4567 or 555.123.4567")

    assert out.count("[phone]") == 2
    assert not any(c.isdigit() for c in out)


def test_given_a_long_text_when_redacted_then_it_is_cut_to_the_limit():
    out = redact("x" * 500, limit=50)

    assert len(out) == 50
    assert out.endswith("…")
    assert redact("x" * 50, limit=50) == "x" * 50


def test_given_an_email_cut_by_the_limit_when_redacted_then_it_is_masked_before_the_cut():
    text = "a" * 30 + " ada@example.com"

    assert redact(text, limit=40) == "a" * 30 + " [email]"
