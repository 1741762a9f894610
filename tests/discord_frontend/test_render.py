"""Pure rendering: cards per state, limits, the flags built from /imagine options, the button view."""

from __future__ import annotations

from bot.discord_frontend.commands import imagine_prompt
from bot.discord_frontend.render import DESCRIPTION_LIMIT, TITLE_LIMIT, card, embed
from bot.discord_frontend.views import ActionButton, view
from bot.domain import ActionRef, Job, JobState, Owner
from providers.base import Action, GenerationRequest, PromptParams, TaskResult, grid_offers
from providers.local import LocalProvider


def job(state: JobState = JobState.RUNNING, **update: object) -> Job:
    base = Job(id="abcdefghjk", kind=Action.IMAGINE, provider="local", state=state, progress=40,
               request=GenerationRequest(prompt=PromptParams(text="a fox", aspect_ratio="16:9")),
               owner=Owner(platform="discord", user_id="1", name="Alice"), created_at=0, updated_at=0,
               deadline=100)
    return base.model_copy(update=update)


def test_progress_card_has_a_bar_the_provider_and_no_buttons() -> None:
    shown = card(job(preview_url="https://cdn.example/p.jpg"))
    assert shown.title == "a fox --ar 16:9" and shown.description == "Running · 40% ▰▰▰▰▱▱▱▱▱▱"
    assert shown.footer == "local · job abcdefghjk · Alice" and shown.rows == () and not shown.with_result
    assert embed(shown).to_dict()["image"]["url"] == "https://cdn.example/p.jpg"
    assert card(job(JobState.QUEUED), queue_position=3).description == "Queued · position 3"


def test_final_card_offers_the_grid_buttons_and_the_result() -> None:
    result = TaskResult(grid_url="https://x/grid.png", width=1456, height=816)
    done = card(job(JobState.SUCCEEDED, progress=100, result=result,
                    actions=grid_offers(LocalProvider.capabilities)))
    assert done.with_result and done.description == "Done · 1456×816" and done.preview_url is None
    assert [[b.label for b in row] for row in done.rows] == [["U1", "U2", "U3", "U4"],
                                                            ["V1", "V2", "V3", "V4", "🔄"]]
    built = view(done.rows)
    assert built is not None
    ids = [item.custom_id for item in built.children]  # type: ignore[attr-defined]
    assert ids[0] == ActionRef("upscale", 1, "abcdefghjk").pack() and all(len(i) <= 100 for i in ids)
    assert all(isinstance(child, ActionButton) for child in built.children)


def test_failures_and_long_texts_stay_inside_discords_limits() -> None:
    failed = card(job(JobState.FAILED, error="The prompt was refused."))
    assert failed.description == "Failed: The prompt was refused." and failed.rows == ()
    long = job(request=GenerationRequest(prompt=PromptParams(text="x" * 5000)))
    assert len(card(long).title) == TITLE_LIMIT
    prompts = TaskResult(prompts=["y" * 3000] * 4)
    described = card(job(JobState.SUCCEEDED, kind=Action.DESCRIBE, result=prompts))
    assert len(described.description) <= DESCRIPTION_LIMIT and described.title == "Describe"
    assert "**4.** yyy" in described.description  # each prompt is cut, none is lost


def test_imagine_options_are_midjourney_flags() -> None:
    assert imagine_prompt(" a fox ") == "a fox"
    assert imagine_prompt("a fox", aspect_ratio="2:3", version="7", stylize=0, chaos=5, no=" text ",
                          seed=9) == "a fox --ar 2:3 --v 7 --s 0 --c 5 --seed 9 --no text"
    assert imagine_prompt("a fox", version="niji 6") == "a fox --niji 6"


def test_vary_region_is_a_link_button_to_the_web_editor_when_the_pages_are_on() -> None:
    import discord

    from bot import presentation
    from providers.base import upscale_offers

    result = TaskResult(image_urls=["https://x/0.png"], width=512, height=512)
    upscaled = job(JobState.SUCCEEDED, progress=100, kind=Action.UPSCALE, result=result,
                   actions=upscale_offers(LocalProvider.capabilities))
    try:
        presentation.set_web_url("https://bot.example")
        built = view(card(upscaled).rows)
        assert built is not None
        links = [c for c in built.children if isinstance(c, discord.ui.Button) and c.url]
        assert [(b.label, b.url) for b in links] == [
            ("🖌️ Vary (Region)", "https://bot.example/web/jobs/abcdefghjk/vary-region")]
        presentation.set_web_url(None)  # no web pages: no button
        assert "🖌️ Vary (Region)" not in [b.label for row in card(upscaled).rows for b in row]
    finally:
        presentation.set_web_url(None)
