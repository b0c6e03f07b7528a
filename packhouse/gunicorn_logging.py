"""gunicorn's access log, in its default format, without building the per-request dict of every
header and environ variable that gunicorn's own Logger.access formats from (a fifth of the CPU
of a small cached response). Used by `make serve` and `make run` (--logger-class). Secrets in the
path, the query and the referer are redacted (accounts.redaction)."""

import time

from gunicorn.glogging import Logger

from accounts.redaction import redact


class AccessLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else str(resp.status)
        query = f"?{req.query}" if req.query else ""
        length = getattr(resp, "sent", None) or "-"
        referer = redact(environ.get("HTTP_REFERER", "-"))
        agent = environ.get("HTTP_USER_AGENT", "-")
        # Apache's combined format (gunicorn's default access_log_format), plus milliseconds.
        line = (
            f"{environ.get('REMOTE_ADDR') or '-'} - - {time.strftime('[%d/%b/%Y:%H:%M:%S %z]')} "
            f'"{req.method} {redact(req.path + query)} HTTP/{req.version[0]}.{req.version[1]}" {status} {length} '
            f'"{referer}" "{agent}" {request_time.total_seconds() * 1000:.1f}ms'
        )
        try:
            self.access_log.info(line)
        except Exception:
            self.exception("access log failed")
