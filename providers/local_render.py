"""Pillow rendering for the local provider: deterministic tiles from prompt + seed, grids, previews.

Shapes are placed in relative coordinates, so an upscale (the same seed at a larger size) looks like
the tile it came from. Pure functions of the task spec; called in a worker thread.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import textwrap
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps, ImageStat

from providers.base import Action

RGB = tuple[int, int, int]


def tile_seed(seed: int, index: int) -> int:
    digest = hashlib.sha256(f"{seed}|tile|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def grid_dimensions(ratio: str, longest: int) -> tuple[int, int]:
    """Grid pixel size for an aspect ratio, longer side `longest`, both even."""
    w, h = (int(x) for x in ratio.split(":"))
    if w >= h:
        return longest, max(2, round(longest * h / w / 2) * 2)
    return max(2, round(longest * w / h / 2) * 2), longest


def panned_ratio(ratio: str, action: Action) -> str:
    """Panning widens (left/right) or heightens (up/down) the canvas by half."""
    w, h = (int(x) for x in ratio.split(":"))
    if action in (Action.PAN_LEFT, Action.PAN_RIGHT):
        return f"{w * 3}:{h * 2}"
    if action in (Action.PAN_UP, Action.PAN_DOWN):
        return f"{w * 2}:{h * 3}"
    return ratio


def _color(rng: random.Random) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), 0.45 + rng.random() * 0.5, 0.35 + rng.random() * 0.6)
    return int(r * 255), int(g * 255), int(b * 255)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _tile(seed: int, size: tuple[int, int], prompt: str, palette: Sequence[RGB] | None) -> Image.Image:
    rng = random.Random(seed)
    colors = list(palette) if palette else [_color(rng) for _ in range(4)]
    prng = random.Random(seed ^ 0x5EED)
    image = _gradient(size, colors[0], colors[1 % len(colors)])
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(5 + rng.randrange(6)):
        x0, y0 = rng.random() * w, rng.random() * h
        x1, y1 = x0 + (0.1 + rng.random() * 0.4) * w, y0 + (0.1 + rng.random() * 0.4) * h
        fill = colors[prng.randrange(len(colors))] if palette else _color(rng)
        shape = rng.choice((draw.ellipse, draw.rectangle))
        shape((x0, y0, x1, y1), fill=fill, outline=(255, 255, 255), width=max(1, w // 256))
    if prompt:
        font = _font(max(10, min(w, h) // 14))
        text = "\n".join(textwrap.wrap(prompt, width=max(8, w // max(1, min(w, h) // 24)))[:4])
        draw.multiline_text((w * 0.05, h * 0.05), text, font=font, fill=(255, 255, 255),
                            stroke_width=max(1, w // 300), stroke_fill=(0, 0, 0))
    return image


def tile_palette(seed: int) -> list[list[int]]:
    """The colours `_tile` picks for `seed` when it has no palette (so variations keep the look)."""
    rng = random.Random(seed)
    return [list(_color(rng)) for _ in range(4)]


def _palette_for(spec: Mapping[str, Any]) -> list[RGB] | None:
    pal = spec.get("pal")
    return [(int(c[0]), int(c[1]), int(c[2])) for c in pal] if pal else None


#: Kinds drawn as the parent image, smaller, inside new surroundings.
_ZOOMS = frozenset(a.value for a in (Action.ZOOM_OUT_2X, Action.ZOOM_OUT_1_5X, Action.MAKE_SQUARE,
                                     Action.CUSTOM_ZOOM))  # fmt: skip
#: Kinds whose result is one image (rendered as 0.png), `x` times the grid's size for 2x / 4x.
SINGLE = frozenset(a.value for a in (Action.UPSCALE, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE,
                                     Action.UPSCALE_2X, Action.UPSCALE_4X, Action.REDO_UPSCALE))  # fmt: skip
MAX_SIDE = 4096  # an upscale's longest side at most (a 4x of a large grid would be huge)


def _inner_size(spec: Mapping[str, Any], size: tuple[int, int]) -> tuple[int, int]:
    """How large the parent image is drawn inside a zoomed-out frame of `size`."""
    kind = spec["k"]
    if kind == Action.MAKE_SQUARE.value:  # the parent, whole, fitted into the square
        w, h = grid_dimensions(str(spec.get("iar", "1:1")), min(size))
        return w, h
    fixed = {Action.ZOOM_OUT_2X.value: 2.0, Action.ZOOM_OUT_1_5X.value: 1.5}
    factor = fixed.get(kind, float(spec.get("z", 2)))
    return max(2, int(size[0] / factor)), max(2, int(size[1] / factor))


def _zoomed(spec: Mapping[str, Any], seed: int, size: tuple[int, int]) -> Image.Image:
    """Zoom out: the parent image, smaller, framed by new surroundings."""
    frame = _tile(seed ^ 0xF4A3E, size, "", _palette_for(spec))
    inner = _tile(int(spec.get("inner", seed)), _inner_size(spec, size), "", None)
    frame.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return frame


MASK_SIDE = 32  # Vary (Region): the mask kept in the task id as a MASK_SIDE x MASK_SIDE bitmap


def mask_bits(png: bytes) -> str | None:
    """A black/white mask (white = the region) as a hex bitmap of MASK_SIDE x MASK_SIDE cells, or None
    when it marks nothing."""
    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("L").resize((MASK_SIDE, MASK_SIDE), Image.Resampling.BOX)
    bits = "".join("1" if value >= 32 else "0" for value in small.tobytes())
    return f"{int(bits, 2):0{MASK_SIDE * MASK_SIDE // 4}x}" if "1" in bits else None


def _region(spec: Mapping[str, Any], seed: int, size: tuple[int, int]) -> Image.Image:
    """Vary (Region): the parent image with the masked cells repainted in new colours."""
    parent = {"pal": spec.get("ipal")}
    image = _tile(int(spec["inner"]), size, str(spec["p"]), _palette_for(parent))
    patch = _tile(seed ^ 0x5EED, size, "", _palette_for({"pal": tile_palette(seed)}))
    bits = f"{int(str(spec['m']), 16):0{MASK_SIDE * MASK_SIDE}b}"
    mask = Image.new("L", (MASK_SIDE, MASK_SIDE))
    mask.putdata([255 if bit == "1" else 0 for bit in bits])
    image.paste(patch, (0, 0), mask.resize(size, Image.Resampling.NEAREST))
    return image


def render_tile(spec: Mapping[str, Any], index: int, size: tuple[int, int]) -> Image.Image:
    seed = tile_seed(int(spec["s"]), index) if index else int(spec["s"])
    if spec["k"] == Action.VARY_REGION.value:
        return _region(spec, seed, size)
    if spec["k"] in _ZOOMS:
        return _zoomed(spec, seed, size)
    return _tile(seed, size, str(spec["p"]), _palette_for(spec))


def render_grid(spec: Mapping[str, Any], grid_size: int) -> Image.Image:
    w, h = grid_dimensions(str(spec["ar"]), grid_size)
    grid = Image.new("RGB", (w, h))
    for i, (x, y) in enumerate(((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2)), start=1):
        grid.paste(render_tile(spec, i, (w // 2, h // 2)), (x, y))
    return grid


def upscaled_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """`size` times an upscaler's factor, the longest side kept within MAX_SIDE."""
    factor = min(factor, MAX_SIDE / max(size))
    return max(2, int(size[0] * factor)), max(2, int(size[1] * factor))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def render_file(spec: Mapping[str, Any], name: str, grid_size: int) -> bytes | None:
    """The bytes of one served file: grid.png, 1-4.png (tiles), 0.png (single image), preview-N.jpg."""
    kind = spec["k"]
    single = kind in SINGLE
    w, h = grid_dimensions(str(spec["ar"]), grid_size)
    if name == "0.png" and single:
        return _encode(render_tile(spec, 0, upscaled_size((w, h), float(spec.get("x", 1)))), "PNG")
    if single or kind == Action.DESCRIBE.value:
        return None
    if name == "grid.png":
        return _encode(render_grid(spec, grid_size), "PNG")
    if name in ("1.png", "2.png", "3.png", "4.png"):
        return _encode(render_tile(spec, int(name[0]), (w // 2, h // 2)), "PNG")
    if name.startswith("preview-") and name.endswith(".jpg"):
        small = render_grid(spec, 256).filter(ImageFilter.GaussianBlur(6))
        return _encode(small, "JPEG")
    return None


def _average(data: bytes) -> RGB:
    with Image.open(io.BytesIO(data)) as image:
        stat = ImageStat.Stat(ImageOps.exif_transpose(image).convert("RGB").resize((32, 32)))
    r, g, b = (int(v) for v in stat.mean[:3])
    return r, g, b


def palette(images: Sequence[bytes]) -> list[list[int]]:
    """The average colour of each image (the blend's palette)."""
    return [list(_average(data)) for data in images]


#: Upper bound (degrees) of each named hue; the names are not evenly spaced round the wheel.
_HUES = ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "teal"), (260, "blue"),
         (295, "purple"), (345, "pink"), (360, "red"))  # fmt: skip


def describe(data: bytes) -> list[str]:
    """Four prompt suggestions derived from the image's size, brightness and colour."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    r, g, b = _average(data)
    hue, sat, value = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
    colour = "grey" if sat < 0.15 else next(name for limit, name in _HUES if hue * 360 < limit)
    light = "bright" if value > 0.6 else "dark" if value < 0.3 else "softly lit"
    shape = "wide" if width > height * 1.2 else "tall" if height > width * 1.2 else "square"
    ratio = f"{width}:{height}" if max(width, height) <= 64 else _reduce(width, height)
    return [
        f"a {light} {shape} composition in {colour} tones --ar {ratio}",
        f"abstract shapes on a {colour} gradient, {light} atmosphere, minimalist poster --ar {ratio}",
        f"{colour} and white geometric illustration, flat colours, {light} --ar {ratio}",
        f"a {light} photograph dominated by {colour}, shallow depth of field --ar {ratio}",
    ]


def _reduce(width: int, height: int) -> str:
    from math import gcd

    d = gcd(width, height)
    w, h = width // d, height // d
    while max(w, h) > 32:
        w, h = max(1, round(w / 2)), max(1, round(h / 2))
    return f"{w}:{h}"
