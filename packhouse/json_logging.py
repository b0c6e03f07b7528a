"""PACKHOUSE_LOG_FORMAT=json: every log record as one JSON object on one line. The request lines
of registry.observe (the `packhouse.request` logger) are JSON already and are written as they are."""

import json
import logging


class JsonFormatter(logging.Formatter):
    def format(self, record):
        message = record.getMessage()
        if record.name == "packhouse.request":
            return message
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
