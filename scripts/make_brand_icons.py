"""Draw the brand images of the SpRecord MiniPBX integration.

The icon is a rounded square in a blue-to-teal gradient with a white telephone
handset and the four bars of a GSM signal, on a transparent background. It is
drawn at four times its size and scaled down with LANCZOS, so its edges are
smooth. Run from the repository's root:

    .venv/bin/python scripts/make_brand_icons.py

It writes `icon.png` (256x256), `icon@2x.png` (512x512) and, when a DejaVu or
Liberation bold font is installed, `logo.png` (the icon and the name, 256 pixels
high) into `custom_components/sprecord/brand/`.
"""

from __future__ import annotations

from collections.abc import Iterable
import math
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

BRAND_DIR = Path(__file__).resolve().parent.parent / "custom_components/sprecord/brand"
SCALE = 4  # drawn at 4x, then scaled down: anti-aliasing
TOP = (21, 101, 192)  # blue
BOTTOM = (0, 150, 136)  # teal
WHITE = (255, 255, 255, 255)
SIGNAL = (178, 255, 89, 255)  # light green
SIGNAL_OFF = (255, 255, 255, 90)
TEXT = (21, 101, 192, 255)
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)

Point = tuple[float, float]


def gradient(size: int) -> Image.Image:
    """Return a square, opaque, vertical gradient from TOP to BOTTOM."""
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel(
            (0, y),
            tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM, strict=True)),
        )
    return column.resize((size, size)).convert("RGBA")


def rounded_rect(width: float, height: float, radius: float) -> list[Point]:
    """Return the outline of a rounded rectangle centred on (0, 0)."""
    points: list[Point] = []
    corners = (
        (width / 2 - radius, height / 2 - radius, 0),
        (-width / 2 + radius, height / 2 - radius, 90),
        (-width / 2 + radius, -height / 2 + radius, 180),
        (width / 2 - radius, -height / 2 + radius, 270),
    )
    for cx, cy, start in corners:
        for step in range(17):
            angle = math.radians(start + step * 90 / 16)
            points.append(
                (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
            )
    return points


def place(points: Iterable[Point], angle: float, origin: Point) -> list[Point]:
    """Rotate points by `angle` degrees (clockwise on screen), then move them."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ox, oy = origin
    return [(ox + x * cos - y * sin, oy + x * sin + y * cos) for x, y in points]


def handset(draw: ImageDraw.ImageDraw, s: float, fill: tuple[int, ...]) -> None:
    """Draw a telephone handset on a canvas of side `s`.

    The handle is a thick arc around a centre to the top right; the earpiece
    (top left) and the mouthpiece (bottom right) stand out towards the centre.
    """
    cx, cy = 0.63 * s, 0.37 * s
    radius, width = 0.34 * s, 0.115 * s
    first, last = 97.0, 173.0
    outer = [
        (
            cx + (radius + width / 2) * math.cos(math.radians(a)),
            cy + (radius + width / 2) * math.sin(math.radians(a)),
        )
        for a in (first + (last - first) * i / 64 for i in range(65))
    ]
    inner = [
        (
            cx + (radius - width / 2) * math.cos(math.radians(a)),
            cy + (radius - width / 2) * math.sin(math.radians(a)),
        )
        for a in (last - (last - first) * i / 64 for i in range(65))
    ]
    draw.polygon(outer + inner, fill=fill)
    for angle in (first - 2, last + 2):
        # A pad across the end of the handle, reaching in towards the centre.
        length, across = 0.19 * s, 0.165 * s
        middle = radius + width / 2 - length / 2  # flush with the outside
        origin = (
            cx + middle * math.cos(math.radians(angle)),
            cy + middle * math.sin(math.radians(angle)),
        )
        pad = rounded_rect(length, across, 0.05 * s)
        draw.polygon(place(pad, angle, origin), fill=fill)


def signal(draw: ImageDraw.ImageDraw, s: float) -> None:
    """Draw four signal bars, three lit, in the top right corner."""
    bar, gap, base = 0.055 * s, 0.03 * s, 0.40 * s
    left = 0.56 * s
    for i in range(4):
        height = (0.07 + 0.055 * i) * s
        x = left + i * (bar + gap)
        draw.rounded_rectangle(
            (x, base - height, x + bar, base),
            radius=bar * 0.3,
            fill=SIGNAL if i < 3 else SIGNAL_OFF,
        )


def badge_at(s: int) -> Image.Image:
    """Return the icon drawn `s` pixels square, not yet scaled down."""
    margin, corner = round(0.03 * s), round(0.22 * s)
    mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (margin, margin, s - margin - 1, s - margin - 1), radius=corner, fill=255
    )
    badge = gradient(s)
    badge.putalpha(mask)

    shape = Image.new("L", (s, s), 0)
    handset(ImageDraw.Draw(shape), s, (255,))
    shadow = shape.filter(ImageFilter.GaussianBlur(0.02 * s))
    shadow = ImageChops.offset(shadow, round(0.012 * s), round(0.018 * s))
    dark = Image.new("RGBA", (s, s), (0, 40, 60, 0))
    dark.putalpha(shadow.point(lambda v: v * 70 // 255))
    badge.alpha_composite(Image.composite(dark, Image.new("RGBA", (s, s)), mask))

    white = Image.new("RGBA", (s, s), WHITE)
    badge.paste(white, (0, 0), shape)
    bars = Image.new("RGBA", (s, s))
    signal(ImageDraw.Draw(bars), s)
    badge.alpha_composite(bars)
    return badge


def icon(size: int) -> Image.Image:
    """Return the icon, `size` pixels square, with a transparent background."""
    return badge_at(size * SCALE).resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int) -> Image.Image | None:
    """Return the icon followed by the name, or None without a font."""
    font_path = next((f for f in FONTS if Path(f).is_file()), None)
    if font_path is None:
        return None
    s = height * SCALE
    big = ImageFont.truetype(font_path, round(0.34 * s))
    small = ImageFont.truetype(font_path, round(0.22 * s))
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    width = max(
        probe.textlength("SpRecord", font=big), probe.textlength("MiniPBX", font=small)
    )
    canvas = Image.new("RGBA", (round(s * 1.12 + width + 0.06 * s), s))
    canvas.paste(badge_at(s), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = s * 1.12
    draw.text((x, 0.47 * s), "SpRecord", font=big, fill=TEXT, anchor="ls")
    draw.text(
        (x, 0.80 * s), "MiniPBX", font=small, fill=(0, 150, 136, 255), anchor="ls"
    )
    return canvas.resize(
        (round(canvas.width / SCALE), height), Image.Resampling.LANCZOS
    )


def main() -> None:
    """Write the brand images."""
    BRAND_DIR.mkdir(parents=True, exist_ok=True)
    images = {"icon.png": icon(256), "icon@2x.png": icon(512)}
    image = logo(256)
    if image is None:
        print("logo.png: no font found, skipped")
    else:
        images["logo.png"] = image
    for name, image in images.items():
        image.save(BRAND_DIR / name, optimize=True)
        print(f"{BRAND_DIR / name}: {image.width}x{image.height}")


if __name__ == "__main__":
    main()
