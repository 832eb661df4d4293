"""SVG screenshots → PNG with cairosvg, true to the terminal grid.

Textual's SVG asks for "Fira Code" and relies on `textLength` to keep every
cell one column wide; cairosvg ignores `textLength` and fontconfig maps Fira
Code to a proportional font here, so columns drift. This swaps in DejaVu Sans
Mono and draws each braille character (the charts' dots, which that font
lacks) on its own at its cell's x position in DejaVu Sans.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

BRAILLE = re.compile("[\u2800-\u28ff]")
TEXT = re.compile(r'<text([^>]*?) x="([\d.]+)"([^>]*?) textLength="([\d.]+)"([^>]*)>([^<]*)</text>')


def _split_braille(match: re.Match) -> str:
    before, x, middle, length, after, body = match.groups()
    chars = html.unescape(body)
    if not BRAILLE.search(chars) or not chars:
        return match.group(0)
    width = float(length) / len(chars)
    out = []
    for i, ch in enumerate(chars):
        if ch in (" ", "\u00a0", "\u2800"):
            continue
        font = ' style="font-family: DejaVu Sans"' if BRAILLE.match(ch) else ""
        out.append(f'<text{before} x="{float(x) + i * width:.1f}"{middle}{after}{font}>{html.escape(ch)}</text>')
    return "".join(out)


def svg_to_png(svg: str | Path, png: str | Path) -> Path:
    import cairosvg

    text = Path(svg).read_text()
    text = text.replace('"Fira Code"', '"DejaVu Sans Mono"').replace("Fira Code", "DejaVu Sans Mono")
    text = TEXT.sub(_split_braille, text)
    cairosvg.svg2png(bytestring=text.encode(), write_to=str(png))
    return Path(png)
