"""OpenGraph from an HTML page: ``og:*`` meta tags, with the title and description as fallbacks.

Parsed with the standard library's tokenizing ``HTMLParser`` (linear in the input, no
regular expressions over the page), on at most the first ``MAX_PARSE`` bytes.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from urllib.parse import urljoin

MAX_PARSE = 1024 * 1024
MAX_VALUE = 2_000
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)


class _OgParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.description: str | None = None
        self.title_parts: list[str] = []
        self.first_image: str | None = None
        self._in_title = False
        self._title_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip()
            content = a.get("content", "").strip()[:MAX_VALUE]
            if key.lower().startswith("og:") and content and key not in self.og and len(self.og) < 50:
                self.og[key] = content
            elif key.lower() == "description" and content and self.description is None:
                self.description = content
        elif tag == "title" and not self._title_done:
            self._in_title = True
        elif tag == "img" and self.first_image is None and a.get("src"):
            self.first_image = a["src"][:MAX_VALUE]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self._title_done = True

    def handle_data(self, data: str) -> None:
        if self._in_title and sum(map(len, self.title_parts)) < MAX_VALUE:
            self.title_parts.append(data)


def decode_html(body: bytes, content_type: str | None) -> str:
    """The page as text: the charset from the Content-Type header, else a <meta charset>, else UTF-8."""
    for source in (content_type or "", body[:2048].decode("ascii", "replace")):
        m = _CHARSET.search(source)
        if m:
            try:
                return body.decode(codecs.lookup(m.group(1)).name, "replace")
            except LookupError:
                pass
    return body.decode("utf-8", "replace")


def parse_opengraph(body: bytes, content_type: str | None, page_url: str) -> dict[str, str]:
    """OpenGraph for a page: its ``og:*`` tags; ``og:title``/``og:description`` filled from
    ``<title>``/``<meta name=description>`` when missing; ``og:image`` made absolute."""
    parser = _OgParser()
    try:
        parser.feed(decode_html(body[:MAX_PARSE], content_type))
        parser.close()
    except Exception:  # malformed markup: keep whatever was found before it
        pass
    og = dict(parser.og)
    title = " ".join("".join(parser.title_parts).split())
    if "og:title" not in og and title:
        og["og:title"] = title[:MAX_VALUE]
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description
    image = og.get("og:image") or parser.first_image
    if image:
        og["og:image"] = urljoin(page_url, image)
    og.setdefault("og:url", page_url)
    return og
