"""Reading an `npm publish` body in constant memory.

npm sends the tarball base64-encoded inside the JSON document
(`_attachments.<file>.data`), so parsing the body as a whole holds the tarball in memory almost
three times over. Here the body, already spooled to disk, is scanned once: every
`_attachments.*.data` string is decoded straight into a Spool of its own, chunk by chunk, and
left as "" in the rest of the document, which is small and parsed with `json.loads`.

The scanner only follows JSON's structure (braces, brackets, colons, commas and strings) to know
where it is; the document it hands to `json.loads` is the body itself less those strings, so
anything malformed is still rejected there.
"""

import base64
import binascii
import contextlib
import json
import re

from registry.errors import Invalid, TooLarge
from registry.spool import spool_stream

CHUNK_CHARS = 256 * 1024
_STRUCTURE = re.compile(r'[{}\[\]:,"]')
INVALID_JSON = "Invalid JSON body."
INVALID_BASE64 = "Attachment data is not valid base64."


class PublishBody:
    """`document` (attachment data left as "") and `attachments` (file name -> Spool).

    A context manager: spools nobody took (see `take`) are removed on exit."""

    def __init__(self, document, attachments):
        self.document = document
        self.attachments = attachments

    def take(self, file_name):
        """The Spool of that attachment, now the caller's to clean up; None when not sent."""
        return self.attachments.pop(file_name, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for spool in self.attachments.values():
            spool.cleanup()
        self.attachments.clear()


def read_publish_body(path, max_attachment_size, max_document_chars):
    """Scan the JSON file at `path`; attachments over `max_attachment_size` bytes or a document
    over `max_document_chars` characters (attachments aside) are 413, bad JSON or base64 400."""
    scanner = _Scanner(path, max_attachment_size, max_document_chars)
    try:
        skeleton = scanner.scan()
        try:
            document = json.loads(skeleton)
        except (ValueError, RecursionError) as exc:
            raise Invalid(INVALID_JSON) from exc
    except BaseException:
        for spool in scanner.attachments.values():
            spool.cleanup()
        raise
    return PublishBody(document, scanner.attachments)


class _Scanner:
    def __init__(self, path, max_attachment_size, max_document_chars):
        self.path = path
        self.max_attachment_size = max_attachment_size
        self.max_document_chars = max_document_chars
        self.handle = None
        self.buffer = ""
        self.pos = 0
        self.pieces = []
        self.document_chars = 0
        self.stack = []  # [kind ("{" or "["), current key, expecting a key]
        self.attachments = {}

    def scan(self):
        with open(self.path, encoding="utf-8") as self.handle, _as_invalid_json(UnicodeDecodeError):
            while True:
                match = _STRUCTURE.search(self.buffer, self.pos)
                if match is None:
                    self._emit(self.buffer[self.pos :])
                    self.pos = len(self.buffer)
                    if not self.fill():
                        break
                    continue
                self._emit(self.buffer[self.pos : match.start()])
                self.pos = match.end()
                if match.group() == '"':
                    self._string()
                else:
                    self._emit(match.group())
                    self._structure(match.group())
        return "".join(self.pieces)

    def fill(self):
        """Keep the unread part of the buffer and append the next chunk; False at the end."""
        chunk = self.handle.read(CHUNK_CHARS)
        if not chunk:
            return False
        self.buffer = self.buffer[self.pos :] + chunk
        self.pos = 0
        return True

    def _emit(self, text):
        self.document_chars += len(text)
        if self.max_document_chars and self.document_chars > self.max_document_chars:
            raise TooLarge("413 Package metadata is too large.")
        self.pieces.append(text)

    def _structure(self, char):
        stack = self.stack
        if char in "{[":
            stack.append([char, None, char == "{"])
        elif char in "}]":
            if stack:
                stack.pop()
        elif stack and stack[-1][0] == "{":
            stack[-1][2] = char == ","  # a comma is followed by a key, a colon by a value

    def _at_attachment_data(self):
        keys = [frame[1] for frame in self.stack]
        return (
            len(self.stack) == 3
            and all(frame[0] == "{" for frame in self.stack)
            and keys[0] == "_attachments"
            and keys[2] == "data"
        )

    def _string(self):
        is_key = bool(self.stack) and self.stack[-1][0] == "{" and self.stack[-1][2]
        if not is_key and self._at_attachment_data():
            file_name = self.stack[1][1]
            if file_name in self.attachments:
                raise Invalid(f"Attachment {file_name} given twice.")
            try:
                self.attachments[file_name] = spool_stream(_Base64String(self), self.max_attachment_size)
            except TooLarge as exc:
                raise TooLarge("413 File is too large.") from exc
            self._emit('""')
            return
        start = self.pos  # just after the opening quote
        search_from = start
        while (end := self._closing_quote(start, search_from)) is None:
            search_from = len(self.buffer) - start
            self.pos = start
            if not self.fill():
                raise Invalid(INVALID_JSON)
            start = 0
        text = self.buffer[start - 1 : end + 1] if start else '"' + self.buffer[: end + 1]
        self.pos = end + 1
        self._emit(text)
        if is_key:
            try:
                self.stack[-1][1] = json.loads(text)
            except ValueError as exc:
                raise Invalid(INVALID_JSON) from exc

    def _closing_quote(self, start, search_from):
        """Index of the unescaped quote ending the string that starts at `start`, or None."""
        buffer = self.buffer
        index = buffer.find('"', max(start, search_from))
        while index != -1:
            backslashes = 0
            while index - backslashes - 1 >= start and buffer[index - backslashes - 1] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                return index
            index = buffer.find('"', index + 1)
        return None


class _Base64String:
    """read() of the decoded bytes of the base64 JSON string the scanner stands in; stops after
    its closing quote. Of JSON's escapes only `\\/` can stand for a base64 character."""

    def __init__(self, scanner):
        self.scanner = scanner
        self.carry = ""  # characters not decoded yet (fewer than 4, or a cut escape)
        self.finished = False

    def read(self, size=-1):
        scanner = self.scanner
        out = []
        produced = 0
        while not self.finished and (size is None or size < 0 or produced < size):
            if scanner.pos >= len(scanner.buffer) and not scanner.fill():
                raise Invalid(INVALID_JSON)
            quote = scanner.buffer.find('"', scanner.pos)
            end = quote if quote != -1 else len(scanner.buffer)
            text = self.carry + scanner.buffer[scanner.pos : end]
            scanner.pos = end if quote == -1 else quote + 1
            self.finished = quote != -1
            if "\\" in text:
                text = self._unescape(text)
            if self.finished:
                usable = len(text)
                if usable % 4:
                    raise Invalid(INVALID_BASE64)
            else:
                usable = len(text.removesuffix("\\")) // 4 * 4
                if text[:usable].endswith("="):
                    usable -= 4  # padding is only valid last: decode it once the string ends
            chunk, self.carry = text[:usable], text[usable:]
            if chunk:
                try:
                    decoded = base64.b64decode(chunk, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise Invalid(INVALID_BASE64) from exc
                out.append(decoded)
                produced += len(decoded)
        return b"".join(out)

    def _unescape(self, text):
        trailing = ""
        if not self.finished and (len(text) - len(text.rstrip("\\"))) % 2:
            text, trailing = text[:-1], "\\"  # an escape cut by the chunk boundary
        text = text.replace("\\/", "/")
        if "\\" in text:
            raise Invalid(INVALID_BASE64)
        return text + trailing


@contextlib.contextmanager
def _as_invalid_json(*errors):
    try:
        yield
    except errors as exc:
        raise Invalid(INVALID_JSON) from exc
