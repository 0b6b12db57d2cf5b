"""A file's bytes, as the text that is chunked and embedded.

By the file name's extension: PDF (pypdf, page by page), HTML (the text a
reader sees: scripts, styles and markup dropped, by the standard library's
HTML parser), JSON (checked, kept as written), and text, Markdown and source
code (UTF-8, or Latin-1 when that fails). A name with another extension is
taken as text when its bytes decode and hold no NUL; anything else is an
``UnsupportedFile``. A file of a known kind that cannot be read (a broken PDF,
invalid JSON) is an ``InvalidFile``. Both say why in words a client can act on.
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import PurePath

TEXT_EXTENSIONS = frozenset(
    {
        ".txt", ".text", ".md", ".markdown", ".rst", ".adoc", ".org", ".tex", ".csv", ".tsv",
        ".log", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml", ".jsonl",
        ".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".scala", ".c",
        ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".m",
        ".sh", ".bash", ".zsh", ".ps1", ".sql", ".css", ".scss", ".lua", ".pl", ".r",
        ".dart", ".ex", ".exs", ".erl", ".hs", ".ml", ".vue", ".svelte", ".proto",
    }
)  # fmt: skip
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
BINARY_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".zip", ".gz", ".tar",
        ".7z", ".exe", ".dll", ".so", ".bin", ".mp3", ".mp4", ".wav", ".mov", ".avi",
        ".doc", ".xls", ".ppt", ".docx", ".xlsx", ".pptx", ".odt", ".epub", ".parquet",
    }
)  # fmt: skip
# Elements whose text no reader sees.
_HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "svg"})
# Elements that break a line: their text is not run into the next one's.
_BLOCKS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "dt", "dd",
    }
)  # fmt: skip


class UnsupportedFile(ValueError):
    """Not a kind of file this gateway can search (an image, an archive, ...)."""


class InvalidFile(ValueError):
    """A file of a known kind whose content cannot be read."""


def extract_text(filename: str, data: bytes) -> str:
    """The searchable text of a file."""
    extension = PurePath(filename).suffix.lower()
    if extension == ".pdf" or (not extension and data.startswith(b"%PDF-")):
        return pdf_text(data)
    if extension in HTML_EXTENSIONS:
        return html_text(decode(data, filename))
    if extension == ".json":
        text = decode(data, filename)
        try:
            json.loads(text)
        except ValueError as exc:
            raise InvalidFile(f"'{filename}' is not valid JSON: {exc}.") from exc
        return text
    if extension in BINARY_EXTENSIONS:
        raise UnsupportedFile(f"Files of type '{extension}' cannot be searched.")
    if extension in TEXT_EXTENSIONS or b"\x00" not in data[:8192]:
        return decode(data, filename)
    raise UnsupportedFile(f"'{filename}' is not a text, Markdown, HTML, JSON, code or PDF file.")


def decode(data: bytes, filename: str) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedFile(f"'{filename}' is binary, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def pdf_text(data: bytes) -> str:
    """The text of each page, pages apart by a blank line."""
    # pypdf is imported only when a PDF is read.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InvalidFile("The PDF is encrypted.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        if isinstance(exc, InvalidFile):
            raise
        raise InvalidFile(f"The PDF could not be read: {exc}.") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.pieces.append(data)


def html_text(html: str) -> str:
    """What a reader of the page sees, one block per line."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).splitlines())
    return "\n".join(line for line in lines if line)
