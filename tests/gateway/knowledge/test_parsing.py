"""What text each kind of file gives: PDF, HTML, JSON, Markdown, code, and
the files that cannot be searched."""

from __future__ import annotations

import pytest
from fpdf import FPDF

from gateway.knowledge.parsing import InvalidFile, UnsupportedFile, extract_text, html_text


def pdf(*pages: str) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 10, text)
    return bytes(document.output())


def test_pdf_pages_are_read_in_order() -> None:
    text = extract_text("manual.pdf", pdf("Reset the router first.", "Then call support."))
    assert text.index("Reset the router first.") < text.index("Then call support.")
    # Without an extension, the PDF signature still says what it is.
    assert "Then call support." in extract_text("upload", pdf("x", "Then call support."))


def test_a_broken_pdf_is_invalid() -> None:
    with pytest.raises(InvalidFile):
        extract_text("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")


def test_html_gives_what_a_reader_sees() -> None:
    page = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<h1>Returns</h1><p>Items can be returned within <b>30 days</b>.</p>"
        "<script>var secret = 1;</script><ul><li>One</li><li>Two &amp; three</li></ul>"
        "</body></html>"
    )
    assert extract_text("policy.html", page.encode()) == (
        "Returns\nItems can be returned within 30 days.\nOne\nTwo & three"
    )
    assert html_text("<p>a</p>\n\n<p>b</p>") == "a\nb"


def test_json_is_checked_and_kept() -> None:
    assert extract_text("data.json", b'{"a": [1, 2]}') == '{"a": [1, 2]}'
    with pytest.raises(InvalidFile):
        extract_text("data.json", b'{"a": ')


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.md", b"# Title\n\n- item", "# Title\n\n- item"),
        ("main.py", b"def f():\n    return 1\n", "def f():\n    return 1\n"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "caf\xe9"),
        ("bom.txt", b"\xef\xbb\xbfhello", "hello"),
        ("README", b"plain text without an extension", "plain text without an extension"),
    ],
)
def test_text_and_code(name: str, data: bytes, expected: str) -> None:
    assert extract_text(name, data) == expected


@pytest.mark.parametrize(
    ("name", "data"),
    [("photo.png", b"\x89PNG\r\n"), ("blob.bin", b"\x00\x01\x02"), ("x.txt", b"a\x00b")],
)
def test_binary_files_are_unsupported(name: str, data: bytes) -> None:
    with pytest.raises(UnsupportedFile):
        extract_text(name, data)
