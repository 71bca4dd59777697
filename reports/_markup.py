"""Markdown-lite for report notes: escaped first, then a few inline marks, so user text never injects HTML."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_BLOCKS = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"^\s*[-*]\s+")
_INLINE = (
    (re.compile(r"`([^`\n]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"<em>\1</em>"),
)


def _inline(text: str) -> str:
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


def render_note(text: str, *, markdown: bool = False) -> Markup:
    """Turn note text into safe HTML paragraphs.

    Blank lines separate paragraphs. Plain text keeps its line breaks. With ``markdown`` on,
    ``**bold**``, ``*italic*``/``_italic_``, `` `code` `` and ``- item`` lists are understood and
    single newlines join lines, as in Markdown. Everything is escaped before any tag is added.
    """
    html: list[str] = []
    for block in _BLOCKS.split(text.strip()):
        lines = [str(escape(line.strip())) for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        if not markdown:
            html.append(f"<p>{'<br>'.join(lines)}</p>")
        elif all(_BULLET.match(line) for line in lines):
            items = "".join(f"<li>{_inline(_BULLET.sub('', line))}</li>" for line in lines)
            html.append(f"<ul>{items}</ul>")
        else:
            html.append(f"<p>{_inline(' '.join(lines))}</p>")
    return Markup("\n".join(html))  # built from escaped text only
