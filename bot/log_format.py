"""Log lines for machines: with `LOG_FORMAT=json` each record is one JSON object on one line.

The record passes the handler's filters first (the Telegram token redactor among them), so a
JSON line carries exactly what a text line would: never a token or a secret. Only the record's
time, level, logger, message and, for an error, the formatted traceback are written; nothing a
library attaches to a record as `extra` is copied out.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `time`, `level`, `logger`, `message` and maybe `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (newlines inside the message are escaped)."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)
