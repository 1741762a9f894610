"""OhMyGPT's reading of the Midjourney-parity buttons (issue 15): v5 upscalers, Redo, Make Square; its
Custom Zoom is not offered (a MODAL task whose form OhMyGPT has no endpoint for)."""

from __future__ import annotations

from providers.base import Action, Capabilities
from providers.ohmygpt import OhmygptProvider, _snapshot, _Task

H = "3785da15-4f70-4034-9128-f3ff1ac634fa"


def _upscale(*buttons: tuple[str, str]) -> _Task:
    actions = [{"customId": custom_id, "emoji": "", "label": label} for custom_id, label in buttons]
    return _Task.model_validate({"taskId": 21, "status": "SUCCESS", "action": "UPSCALE", "progress": "100%",
                                 "imageDcUrl": "https://cdn.example/u.png", "actions": actions})  # fmt: skip


def test_v5_upscale_buttons_map_to_the_new_actions() -> None:
    task = _upscale(
        (f"MJ::JOB::upsample_v5_2x::1::{H}::SOLO", "Upscale (2x)"),
        (f"MJ::JOB::upsample_v5_4x::1::{H}::SOLO", "Upscale (4x)"),
        (f"MJ::Outpaint::100::1::{H}::SOLO", "Make Square"),
        (f"MJ::CustomZoom::{H}", "Custom Zoom"),
    )
    snap = _snapshot(task, OhmygptProvider.capabilities)
    assert snap.actions == {
        "upscale_2x:0": f"MJ::JOB::upsample_v5_2x::1::{H}::SOLO",
        "upscale_4x:0": f"MJ::JOB::upsample_v5_4x::1::{H}::SOLO",
        "make_square:0": f"MJ::Outpaint::100::1::{H}::SOLO",
    }
    assert snap.result is not None and snap.result.image_urls == ["https://cdn.example/u.png"]


def test_redo_is_read_from_the_label_before_the_upscalers_custom_id() -> None:
    task = _upscale((f"MJ::JOB::upsample_v5_2x::1::{H}::SOLO", "Redo Upscale (2x)"),
                    (f"MJ::JOB::upsample_v5_4x::1::{H}::SOLO", "Upscale (4x)"))  # fmt: skip
    snap = _snapshot(task, OhmygptProvider.capabilities)
    assert set(snap.actions) == {"redo_upscale:0", "upscale_4x:0"}


def test_custom_zoom_is_not_a_capability_and_never_offered() -> None:
    assert not OhmygptProvider.capabilities.can(Action.CUSTOM_ZOOM)
    everything = Capabilities(actions=frozenset(Action))
    snap = _snapshot(_upscale((f"MJ::CustomZoom::{H}", "Custom Zoom")), everything)
    assert snap.actions == {}  # no label or customId of it is read as an action
