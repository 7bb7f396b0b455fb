"""``-f FILE``: files sent with the prompt, each as a delimited block that names it.

The model receives the prompt (argument, blank line, stdin: the usual rule), then for
each file, in the order given, a blank line and::

    <file name="notes.md">
    ...the file's text...
    </file>

An image (PNG, JPEG, GIF, WebP) goes with the message as an image, to models whose wire
takes images (the hosted vendors); any other binary file, or text in another encoding than
UTF-8, is an error that names it, before any call is made.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from llmctl.domain import Image
from llmctl.errors import InputError
from llmctl.services.generation import MAX_INPUT_BYTES

# Magic numbers of the image formats the OpenAI and Anthropic wires take.
_IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
MAX_IMAGE_BYTES = 20 * 2**20  # OpenAI's limit per image; Anthropic's is lower and it says so itself


@dataclass(frozen=True)
class Attachment:
    name: str  # as the user wrote it: what the model is told the file is called
    text: str | None = None  # a text file's contents
    image: Image | None = None  # or an image


def _image_type(data: bytes) -> str | None:
    for signature, media_type in _IMAGE_SIGNATURES.items():
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_attachment(written: str, limit: int = MAX_INPUT_BYTES) -> Attachment:
    """The text of the file the user named with -f; a clear error for anything that is not UTF-8 text."""
    path = Path(written).expanduser()
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"-f {written}: no such file.") from None
    except IsADirectoryError:
        raise InputError(f"-f {written}: is a folder; pass its files one by one (-f A -f B).") from None
    except OSError as exc:
        raise InputError(f"-f {written}: cannot be read ({exc.strerror or exc}).") from None
    if len(data) > limit:
        raise InputError(f"-f {written}: larger than {limit // 2**20} MiB, the most llmctl reads.")
    media_type = _image_type(data)
    if media_type is not None:
        if len(data) > MAX_IMAGE_BYTES:
            raise InputError(f"-f {written}: an image larger than {MAX_IMAGE_BYTES // 2**20} MiB.")
        return Attachment(written, image=Image(media_type, data, written))
    if b"\x00" in data:
        raise InputError(f"-f {written}: a binary file (it contains NUL bytes); only text files can be sent.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"-f {written}: not UTF-8 text (invalid byte at offset {exc.start}).",
            hint=f"Convert it first, e.g. `iconv -f latin1 -t utf-8 {written}`.",
        ) from None
    return Attachment(written, text.removeprefix("\ufeff"))


# A file's own text must not end its block or open another: its tags are written escaped.
_TAG = re.compile(r"<(/?file\b)", re.IGNORECASE)


def _block(attachment: Attachment, text: str) -> str:
    name = html.escape(attachment.name, quote=True)
    body = _TAG.sub(r"&lt;\1", text.rstrip("\n"))
    return f'<file name="{name}">\n{body}\n</file>'


def with_attachments(prompt: str, attachments: list[Attachment]) -> str:
    """The prompt followed by each text file's block (images travel beside the text: ``images_of``)."""
    blocks = [_block(a, a.text) for a in attachments if a.text is not None]
    return "\n\n".join([prompt, *blocks]) if prompt else "\n\n".join(blocks)


def images_of(attachments: list[Attachment]) -> tuple[Image, ...]:
    return tuple(a.image for a in attachments if a.image is not None)
