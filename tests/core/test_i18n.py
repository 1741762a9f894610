"""bot/i18n.py: platform tags onto the bot's locales, the choice between them, the current locale, and
a job's locale kept by the store (on each engine)."""

from __future__ import annotations

import pytest

from bot import i18n, languages
from bot.domain import Job, Owner
from bot.errors import UserError, shown
from bot.i18n import t, tn
from bot.store import JobStore
from providers.base import Action, GenerationRequest, PromptParams
from providers.errors import ProviderRejected


@pytest.mark.parametrize(("tag", "locale"), [
    ("pt-BR", "pt_BR"), ("pt", "pt_BR"), ("zh-CN", "zh_Hans"), ("zh-hans", "zh_Hans"), ("zh-TW", "zh_Hans"),
    ("es-419", "es"), ("es-ES", "es"), ("en-US", "en"), ("en-GB", "en"), ("en_US", "en"), ("ru", "ru"),
    ("uk", "uk"), ("de", "de"), ("fr", "fr"), ("ja", "ja"), ("ko", "ko"), ("tr", "tr"), ("id", "id"),
    ("in", "id"), ("xx", None), ("", None), (None, None),
])  # fmt: skip
def test_normalize_maps_discord_and_telegram_tags(tag: str | None, locale: str | None) -> None:
    assert i18n.normalize(tag) == locale


def test_resolve_takes_the_first_choice_the_bot_speaks() -> None:
    assert i18n.resolve("ru", "de", "fr") == "ru"  # the person's own
    assert i18n.resolve(None, "de", "fr") == "de"  # then the chat's
    assert i18n.resolve("auto", "xx", "pt-BR") == "pt_BR"  # then the platform's
    assert i18n.resolve(None, None, None) == "en"
    assert i18n.resolve() == "en"


@pytest.mark.parametrize(("header", "tag"), [
    ("de-CH,de;q=0.9,en;q=0.8", "de-CH"),
    ("en;q=0.4, ja;q=0.7, ko;q=0.7", "ja"),  # the highest q; among equals, the first
    ("tlh, ru", "ru"),  # the first the bot speaks
    ("zh-TW", "zh-TW"),  # resolves to zh_Hans
    ("fr;q=0, es;q=0.1", "es"),  # q=0: "not this one"
    ("*, xx", None), ("de;q=high, nl", None), ("", None), (None, None),
])
def test_accepted_picks_the_browsers_best_language_it_speaks(header: str | None, tag: str | None) -> None:
    assert i18n.accepted(header) == tag


def test_html_lang_is_bcp47() -> None:
    assert [i18n.html_lang(locale) for locale in ("en", "pt_BR", "zh_Hans")] == ["en", "pt-BR", "zh-Hans"]


def test_use_nests_and_restores() -> None:
    assert i18n.current() == "en"
    with i18n.use("ru") as outer:
        assert outer == i18n.current() == "ru"
        with i18n.use("pt-BR") as inner:
            assert inner == i18n.current() == "pt_BR"
        assert i18n.current() == "ru"
        with i18n.use(None):
            assert i18n.current() == "en"
        with i18n.use("xx"):
            assert i18n.current() == "en"
    assert i18n.current() == "en"


def test_t_falls_back_to_english_for_a_message_not_in_a_catalogue() -> None:
    message = "A message no catalogue has ({name})."
    for locale in i18n.LOCALES:
        with i18n.use(locale):
            assert t(message, name="Ada") == "A message no catalogue has (Ada)."


def test_tn_english_forms() -> None:
    with i18n.use("en"):
        assert tn("{n} job", "{n} jobs", 1) == "1 job"
        assert tn("{n} job", "{n} jobs", 2) == "2 jobs"
        assert tn("{n} job", "{n} jobs", 0) == "0 jobs"
        assert tn("{n} job in {where}", "{n} jobs in {where}", 5, where="here") == "5 jobs in here"


def test_tn_takes_russian_and_ukrainian_plural_forms() -> None:
    singular = "{n} job from your prompt (--repeat {runs}): {prompt}"
    plural = "{n} jobs from your prompt (--repeat {runs}): {prompt}"
    for locale, distinct in (("ru", 3), ("uk", 2)):  # Ukrainian's "one" and "few" read alike here
        with i18n.use(locale):
            forms = [tn(singular, plural, n, runs=n, prompt="x") for n in (21, 3, 11)]  # one, few, many
        assert len({form.replace(str(n), "") for form, n in zip(forms, (21, 3, 11), strict=True)}) == distinct
        assert forms[0].startswith("21 ") and forms[2] != forms[0].replace("21", "11")


def test_shown_translates_provider_templates_and_keeps_user_errors() -> None:
    assert shown(UserError("Already said.")) == "Already said."
    exc = ProviderRejected("The prompt is longer than {limit} characters.", limit=6000)
    assert exc.message == "The prompt is longer than 6000 characters."
    with i18n.use("ru"):
        assert shown(exc) == t("The prompt is longer than {limit} characters.", limit=6000)


def _job(job_id: str, **kw: object) -> Job:
    return Job(id=job_id, kind=Action.IMAGINE, provider="local",
               request=GenerationRequest(prompt=PromptParams(text="a lighthouse")),
               owner=Owner(platform="telegram", user_id="42", name="Ada"),
               created_at=100.0, updated_at=100.0, deadline=1000.0, **kw)  # type: ignore[arg-type]


async def test_a_job_keeps_its_locale(store: JobStore) -> None:
    await store.insert(_job("jobru", locale="ru"))
    await store.insert(_job("joben"))
    ru, en = await store.get("jobru"), await store.get("joben")
    assert ru is not None and ru.locale == "ru"
    assert en is not None and en.locale == "en"


def test_a_language_the_bot_does_not_speak_is_refused_by_name() -> None:
    assert languages.checked("pt-BR") == "pt_BR" and languages.checked("Auto") == languages.AUTO
    with pytest.raises(UserError) as refused:
        languages.checked("klingon")
    assert refused.value.message.startswith("I don't speak 'klingon'. Languages: en, ru, zh_Hans,")
    with i18n.use("ja"), pytest.raises(UserError) as refused:
        languages.checked("xx")
    assert "xx" in refused.value.message and "I don't speak" not in refused.value.message  # in Japanese
