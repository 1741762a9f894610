"""Every adapter maps the same faults to the same error classes (see contract.py)."""

from __future__ import annotations

import httpx
import pytest

from providers.base import GenerationRequest, PromptParams
from tests.providers import (
    test_gpt_image,
    test_midapi,
    test_midjourney_api,
    test_mj_proxy,
    test_mj_rest,
    test_ohmygpt,
)
from tests.providers.contract import FAULTS, PROBE_TIMEOUT, AdapterCase, adapter

CASES: list[AdapterCase] = []
CASES.append(test_mj_rest.CASE)
CASES.append(test_mj_proxy.CASE)
CASES.append(test_midapi.CASE)
CASES.append(test_ohmygpt.CASE)
CASES.append(test_midjourney_api.CASE)
CASES.append(test_gpt_image.CASE)


def _ids(case: AdapterCase) -> str:
    return case.type


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("case", CASES, ids=_ids)
async def test_fault_maps_to_the_same_error_class(case: AdapterCase, fault: str) -> None:
    async with case.make_fake() as fake, httpx.AsyncClient() as client:
        provider = adapter(case, fake.base_url, client, **(PROBE_TIMEOUT if fault == "timeout" else {}))
        await provider.start()
        fake.inject(fault)  # type: ignore[attr-defined]
        request = GenerationRequest(prompt=PromptParams(text="a lighthouse at dusk"))
        with pytest.raises(FAULTS[fault]) as caught:
            await provider.submit(request)
        assert caught.value.message
        # the fault was one-shot: the next submit goes through
        snapshot = await provider.submit(request)
        assert snapshot.task_id
        await provider.aclose()
