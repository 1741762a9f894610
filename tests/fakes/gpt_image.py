"""gpt-image-2 shares the midjourney-api.com fake (`/gpt/v1/generations` beside submit-jobs).

`python -m tests.fakes.gpt_image --port 8702` serves it (API key "test-key").
"""

from __future__ import annotations

from tests.fakes._server import serve_forever
from tests.fakes.midjourney_api import MidjourneyApiFake

if __name__ == "__main__":
    serve_forever(MidjourneyApiFake())
