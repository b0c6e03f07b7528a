"""JSON request bodies, refused with 400 however they are malformed: a body nested deeper than
Python's recursion limit (100,000 brackets) is a client error, never a 500. A format that parses
a body itself catches RecursionError beside ValueError where it answers in its own words."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "JSON parse error - the document is nested too deeply"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the default of every API and package view, packhouse.settings)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
