"""The console rendering of the log (``--log-format console``): what a person at a terminal reads.

The last processor of the structlog chain when the format is ``console`` (logs.py keeps the secret
redaction before it). Each event becomes one short line; the JSON format is untouched.

* a step is one line when it ends (``step.finished`` / ``step.skipped`` / ``step.failed``): outcome,
  rows, changes, seconds; ``step.started`` only shows as the transient status line on a TTY;
* ``step.statement`` (the SQL) only at ``debug``, or when it is a warning (a COPY ALTER);
* ``step.progress`` on a TTY is one updating line (carriage return, cleared before the next normal
  line); elsewhere one plain short line per event;
* ``run.finished`` is a small aligned table: outcome, release before → after, state, duration,
  the steps, then the error and the hint in full;
* everything else is one line; long values are shortened, lists summarised, but an error
  message or a hint never is.

Colours only on a TTY, and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from typing import Any, TextIO

import structlog

from . import events

_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"
_RED, _GREEN, _YELLOW = "\x1b[31m", "\x1b[32m", "\x1b[33m"
_CLEAR_LINE = "\r\x1b[2K"

_UNICODE = {"ok": "✓", "skip": "–", "fail": "✗", "warn": "!", "start": "→", "arrow": "→", "more": "…",
            "bar": "█", "empty": "░", "info": "·", "rule": "─"}
_ASCII = {"ok": "+", "skip": "-", "fail": "x", "warn": "!", "start": ">", "arrow": "->", "more": "...",
          "bar": "#", "empty": ".", "info": "-", "rule": "-"}

#: Width of the step-name column (the longest step name of the pipeline today is 30 characters).
_STEP_WIDTH = 30
#: Longest rendering of an ordinary value (errors and hints are never shortened).
_VALUE_LIMIT = 120
#: Longest SQL shown at debug (whitespace collapsed).
_SQL_LIMIT = 200


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def use_colors(stream: Any, environ: Any = None) -> bool:
    """Colours on a TTY, unless ``NO_COLOR`` is set to anything (https://no-color.org)."""
    environ = os.environ if environ is None else environ
    return _isatty(stream) and not environ.get("NO_COLOR")


# --- formatting helpers ---------------------------------------------------------------------------


def seconds(value: Any) -> str:
    """0.037 → "0.04 s", 75 → "1 min 15 s", 3725 → "1 h 02 min"."""
    try:
        s = float(value)
    except (TypeError, ValueError):
        return "?"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def count(value: Any) -> str:
    """1234567 → "1,234,567"; anything else as it is."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:g}"
    return str(value)


def plural(n: Any, word: str) -> str:
    return f"{count(n)} {word}{'' if n == 1 else 's'}"


def shorten(text: Any, limit: int = _VALUE_LIMIT, more: str = "…") -> str:
    """One line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(1, limit - len(more))].rstrip() + more


def session(value: Any) -> str:
    """A lock holder or a blocking session (dict) as ``connection 4711 root@10.0.3.7 (instance x)``."""
    if not isinstance(value, dict):
        return shorten(value, 80)
    parts = []
    if value.get("connection_id") is not None:
        parts.append(f"connection {value['connection_id']}")
    if value.get("user") or value.get("host"):
        parts.append(f"{value.get('user') or '?'}@{value.get('host') or '?'}")
    extra = [f"{k} {shorten(value[k], 40)}" for k in ("instance", "tool", "seconds", "transaction_age_s", "query")
             if value.get(k) not in (None, "")]
    text = " ".join(parts) or "unknown session"
    return f"{text} ({', '.join(extra)})" if extra else text


def summarise(value: Any, limit: int = _VALUE_LIMIT, shown: int = 3, more: str = "…") -> str:
    """A value in one short line: lists show their first items and how many more there are."""
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        items: list[str] = []
        for item in value[:shown]:  # as many as fit, and always how many more there are
            text = summarise(item, min(60, limit - 12), shown, more)
            if items and len(", ".join([*items, text])) + 12 > limit:
                break
            items.append(text)
        rest = len(value) - len(items)
        return ", ".join(items) + (f", +{rest} more" if rest else "")
    if isinstance(value, dict):
        if "connection_id" in value:
            return session(value)
        if "kind" in value and "table" in value:  # a schema difference
            where = f"{value['table']}.{value['name']}" if value.get("name") else value["table"]
            return shorten(f"{str(value['kind']).replace('_', ' ')}: {where}", limit, more)
        return shorten(" ".join(f"{k}={summarise(v, 40, 2, more)}" for k, v in value.items()), limit, more)
    if isinstance(value, float):
        return f"{value:g}"
    return shorten(value, limit, more)


def _local_time(timestamp: Any) -> str:
    try:
        when = _dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return when.astimezone().strftime("%H:%M:%S")


# --- the renderer ---------------------------------------------------------------------------------


#: Fields that every event carries and no line shows.
_COMMON = {"event", "level", "timestamp", "run_id", "logger", "logger_name"}


class ConsoleRenderer:
    """A structlog processor that returns the console line(s) for an event.

    ``stream`` is where the lines go (its ``isatty`` decides the transient lines and, with
    ``colors``, the colours); ``level`` is the configured level (``debug`` shows the SQL).
    """

    def __init__(self, stream: TextIO, level: str = "info", colors: bool | None = None,
                 width: int | None = None) -> None:
        self.stream = stream
        self.level = level
        self.tty = _isatty(stream)
        self.colors = use_colors(stream) if colors is None else colors
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        self.glyph = _UNICODE if encoding.startswith("utf") else _ASCII
        self._width = width
        self._transient = False  # a transient line (progress, current step) is on the screen

    # -- the processor ----------------------------------------------------------------------------

    def __call__(self, _logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
        name = str(event_dict.get("event"))
        level = str(event_dict.get("level") or "info")
        if name == events.STEP_PROGRESS and self.tty and self.level != "debug":
            self._show_transient(self._progress(event_dict, bar=True))
            raise structlog.DropEvent
        if name == events.STEP_STARTED and self.level != "debug":
            if self.tty:
                self._show_transient(f"{self.glyph['start']} {event_dict.get('step')} {self.glyph['more']}", _DIM)
            raise structlog.DropEvent
        if name == events.STEP_STATEMENT and self.level != "debug" and level not in ("warning", "error"):
            raise structlog.DropEvent
        text = self.render(event_dict)
        if self._transient:
            self._transient = False
            text = _CLEAR_LINE + text
        return text

    def _show_transient(self, text: str, *codes: str) -> None:
        """Replace the transient line with ``text``, cut to the terminal's width (no wrapping)."""
        width = self._width or shutil.get_terminal_size((100, 24)).columns
        visible = self._paint(shorten(text, max(20, width - 1), self.glyph["more"]), *codes)
        self.stream.write(_CLEAR_LINE + visible)
        self.stream.flush()
        self._transient = True

    # -- lines ----------------------------------------------------------------------------------

    def render(self, ev: dict[str, Any]) -> str:
        """The text of one event (without the transient-line handling)."""
        name = str(ev.get("event"))
        method = getattr(self, "_" + name.replace(".", "_"), None)
        body = method(ev) if method else self._generic(ev)
        lines = [body] if isinstance(body, str) else list(body)
        prefix = self._prefix(ev)
        out = [prefix + lines[0]] + ["         " + line if prefix else line for line in lines[1:]]
        if ev.get("exception"):
            out.append(str(ev["exception"]).rstrip("\n"))
        return "\n".join(out)

    def _prefix(self, ev: dict[str, Any]) -> str:
        if ev.get("event") == events.RUN_FINISHED:
            return ""
        clock = _local_time(ev.get("timestamp")) if ev.get("timestamp") else ""
        return self._paint(clock, _DIM) + " " if clock else ""

    def _paint(self, text: str, *codes: str) -> str:
        if not self.colors or not text or not codes:
            return text
        return "".join(codes) + text + _RESET

    def _mark(self, ev: dict[str, Any], glyph: str | None = None) -> str:
        level = ev.get("level")
        if level in ("error", "critical"):
            return self._paint(glyph or self.glyph["fail"], _RED, _BOLD)
        if level == "warning":
            return self._paint(glyph or self.glyph["warn"], _YELLOW, _BOLD)
        return self._paint(glyph or self.glyph["info"], _DIM)

    def _more(self) -> str:
        return self.glyph["more"]

    def _sum(self, value: Any, limit: int = _VALUE_LIMIT) -> str:
        return summarise(value, limit, more=self._more())

    def _short(self, value: Any, limit: int = _VALUE_LIMIT) -> str:
        return shorten(value, limit, self._more())

    def _details(self, ev: dict[str, Any], known: set[str]) -> str:
        rest = {k: v for k, v in ev.items() if k not in known and k not in _COMMON and k != "exception"}
        return ", ".join(f"{k} {self._sum(v, 100)}" for k, v in rest.items())

    def _generic(self, ev: dict[str, Any]) -> str:
        details = self._details(ev, set())
        return f"{self._mark(ev)} {ev.get('event')}" + (f": {self._short(details)}" if details else "")

    # -- run, database, lock ----------------------------------------------------------------------

    def _run_started(self, ev: dict[str, Any]) -> str:
        s = ev.get("settings") if isinstance(ev.get("settings"), dict) else {}
        where = f"{s.get('user') or '?'}@{s.get('host')}:{s.get('port')}/{s.get('database')}" if s else "?"
        run = f" (run {ev['run_id']})" if ev.get("run_id") else ""
        head = self._paint(f"ragflow-migrate {ev.get('version', '')}".rstrip(), _BOLD)
        return f"{head} {ev.get('command')}: {where}, target {ev.get('target')}{run}"

    def _db_wait_attempt(self, ev: dict[str, Any]) -> str:
        where = f"{ev.get('host')}:{ev.get('port')}" if ev.get("host") else "the database"
        code = f" [{ev['error_code']}]" if ev.get("error_code") else ""
        timing = f"attempt {ev.get('attempt')}, {seconds(ev.get('elapsed_s'))} of {seconds(ev.get('deadline_s'))}"
        if ev.get("retry_in_s") is not None:
            timing += f", next in {seconds(ev.get('retry_in_s'))}"
        return f"{self._mark(ev)} waiting for {where}: {self._short(ev.get('reason'))}{code} ({timing})"

    def _db_ready(self, ev: dict[str, Any]) -> str:
        tries = ev.get("attempts")
        after = f" after {plural(tries, 'attempt')}" if isinstance(tries, int) and tries > 1 else ""
        return (f"{self._paint(self.glyph['ok'], _GREEN)} {ev.get('server')} {ev.get('server_version')} "
                f"answered{after} ({seconds(ev.get('elapsed_s'))})")

    def _db_created(self, ev: dict[str, Any]) -> str:
        return (f"{self._paint(self.glyph['ok'], _GREEN)} created database {ev.get('database')} "
                f"({ev.get('charset')}, {ev.get('collation')})")

    def _lock_waiting(self, ev: dict[str, Any]) -> str:
        holder = session(ev.get("holder")) if ev.get("holder") else "another session"
        return (f"{self._mark(ev, self.glyph['warn'])} waiting for lock {ev.get('lock')} held by {holder} "
                f"({seconds(ev.get('waited_s'))} of {seconds(ev.get('timeout_s'))})")

    def _lock_acquired(self, ev: dict[str, Any]) -> str:
        waited = ev.get("waited_s") or 0
        after = f", after {seconds(waited)}" if waited >= 1 else ""
        return f"{self._mark(ev)} lock {ev.get('lock')} acquired (connection {ev.get('connection_id')}{after})"

    def _lock_released(self, ev: dict[str, Any]) -> str:
        return f"{self._mark(ev)} lock {ev.get('lock')} released (held {seconds(ev.get('held_s'))})"

    def _lock_lost(self, ev: dict[str, Any]) -> str:
        return f"{self._mark(ev)} lock {ev.get('lock')} lost: {ev.get('reason')}"

    def _signal_received(self, ev: dict[str, Any]) -> str:
        return f"{self._mark(ev)} {ev.get('signal')} received: stopping at the next safe point"

    def _log_external(self, ev: dict[str, Any]) -> str:
        return f"{self._mark(ev)} [{ev.get('logger', '?')}] {ev.get('message', '')}"

    # -- plan and preflight ---------------------------------------------------------------------

    def _preflight_finished(self, ev: dict[str, Any]) -> str:
        blockers, widenings = ev.get("blockers") or 0, ev.get("widenings") or 0
        found = [plural(blockers, "blocker") if blockers else "no blockers"]
        if widenings:
            found.append(plural(widenings, "widening"))
        return (f"{self._mark(ev)} preflight: {plural(ev.get('steps'), 'step')} checked, {', '.join(found)} "
                f"({seconds(ev.get('duration_s'))})")

    def _plan_ready(self, ev: dict[str, Any]) -> list[str]:
        n = ev.get("count")
        if n is None and isinstance(ev.get("pending"), list):
            n = len(ev["pending"])
        release, target = ev.get("release") or "no release", ev.get("target")
        if not n:
            head = f"{self._mark(ev)} plan: {release}, target {target}: nothing to do ({ev.get('state')})"
        else:
            head = (f"{self._mark(ev)} plan: {release} {self.glyph['arrow']} {target}, "
                    f"{plural(n, 'step')} to run ({ev.get('state')})")
        notes = ev.get("notes") or []
        if isinstance(notes, str):
            notes = [notes]
        return [head, *(f"  note: {note}" for note in notes)]

    # -- steps ----------------------------------------------------------------------------------

    def _step(self, ev: dict[str, Any]) -> str:
        step = str(ev.get("step"))
        return self._paint(step.ljust(_STEP_WIDTH), _BOLD) if step else ""

    def _step_started(self, ev: dict[str, Any]) -> str:  # a line of its own only at debug
        return f"{self._paint(self.glyph['start'], _DIM)} {ev.get('step')} {self.glyph['more']}"

    def _step_finished(self, ev: dict[str, Any]) -> str:
        parts = [plural(ev.get("rows") or 0, "row")]
        if ev.get("changes"):
            parts.append(plural(ev["changes"], "change"))
        return (f"{self._paint(self.glyph['ok'], _GREEN, _BOLD)} {self._step(ev)}  done     "
                f"{', '.join(parts):<18} {seconds(ev.get('duration_s')):>8}")

    def _step_skipped(self, ev: dict[str, Any]) -> str:
        reason = f": {self._short(ev.get('reason'), 80)}" if ev.get("reason") else ""
        return f"{self._paint(self.glyph['skip'], _DIM)} {self._step(ev)}  skipped{reason}"

    def _step_failed(self, ev: dict[str, Any]) -> list[str]:
        what = f"failed ({ev['error_class']})" if ev.get("error_class") else "failed"
        lines = [f"{self._paint(self.glyph['fail'], _RED, _BOLD)} {self._step(ev)}  "
                 f"{self._paint(what, _RED, _BOLD)}: {ev.get('error')}"]
        if ev.get("hint"):
            lines.append(f"  hint: {ev['hint']}")
        details = self._details(ev, {"step", "error", "error_class", "hint"})
        if details:
            lines.append(f"  {self._short(details, 200)}")
        return lines

    def _step_notice(self, ev: dict[str, Any]) -> str:
        n = f" ({count(ev['count'])})" if ev.get("count") is not None else ""
        sample = f": {summarise(ev['sample'], shown=2, more=self._more())}" if ev.get("sample") else ""
        return f"{self._mark(ev, self.glyph['warn'])} {ev.get('step')}: {ev.get('message')}{n}{sample}"

    def _step_waiting(self, ev: dict[str, Any]) -> str:
        timing = []
        if ev.get("attempt") is not None:
            timing.append(f"attempt {ev['attempt']}")
        if ev.get("waited_s") is not None:
            timing.append(f"waited {seconds(ev['waited_s'])}")
        if ev.get("retry_in_s") is not None:
            timing.append(f"next in {seconds(ev['retry_in_s'])}")
        line = f"{self._mark(ev, self.glyph['warn'])} {ev.get('step')}: waiting, {ev.get('reason')}"
        if ev.get("blocker"):
            line += f"; blocked by {self._sum(ev['blocker'])}"
        if ev.get("pending"):
            line += f"; pending {self._sum(ev['pending'])}"
        return line + (f" ({', '.join(timing)})" if timing else "")

    def _step_statement(self, ev: dict[str, Any]) -> list[str]:
        how = [str(ev["algorithm"])] if ev.get("algorithm") else []
        if ev.get("rows"):
            how.append(plural(ev["rows"], "row"))
        if ev.get("duration_s") is not None:
            how.append(seconds(ev["duration_s"]))
        limit = _SQL_LIMIT if self.level == "debug" else 100
        line = f"{self._mark(ev)}   {ev.get('step')}: {self._short(ev.get('sql'), limit)}"
        line += f" [{', '.join(how)}]" if how else ""
        return [line, f"  note: {ev['note']}"] if ev.get("note") else [line]

    def _progress(self, ev: dict[str, Any], bar: bool = False) -> str:
        done, total, unit = ev.get("done"), ev.get("total"), ev.get("unit") or "rows"
        where = f"{self.glyph['start']} {ev.get('step')}"
        if total:
            pct = ev.get("percent")
            if pct is None:
                pct = 100.0 * min(1.0, (done or 0) / total)
            amount = f"{count(done)}/{count(total)} {unit} ({pct:.0f}%)"
            if bar:
                filled = int(round(20 * min(100.0, float(pct)) / 100))
                amount = f"[{self.glyph['bar'] * filled}{self.glyph['empty'] * (20 - filled)}] " + amount
        else:
            amount = f"{count(done)} {unit}"
        extra = []
        if ev.get("rate_per_s"):
            extra.append(f"{count(ev['rate_per_s'])}/s")
        if ev.get("eta_s") and not (total and (done or 0) >= total):
            extra.append(f"eta {seconds(ev['eta_s'])}")
        elif ev.get("elapsed_s") is not None:
            extra.append(seconds(ev["elapsed_s"]))
        return f"{where}  {amount}" + (f"  {', '.join(extra)}" if extra else "")

    def _step_progress(self, ev: dict[str, Any]) -> str:
        return f"{self._mark(ev)} {self._progress(ev)}"

    def _schema_drift(self, ev: dict[str, Any]) -> str:
        return (f"{self._mark(ev)} the schema differs from {ev.get('target')} in {plural(ev.get('count'), 'place')}: "
                f"{self._sum(ev.get('differences'))}")

    # -- the summary ----------------------------------------------------------------------------

    def _run_finished(self, ev: dict[str, Any]) -> list[str]:
        outcome, code = ev.get("outcome") or "?", ev.get("exit_code")
        good = code == 0
        colour = (_GREEN,) if good else (_RED,)
        rows: list[tuple[str, str]] = [("outcome", self._paint(f"{outcome} (exit {code})", *colour, _BOLD))]
        before, after = ev.get("from_release"), ev.get("release")
        if before or after:
            release = (f"{before or '?'} {self.glyph['arrow']} {after or '?'}" if before and before != after
                       else str(after or before))
            if ev.get("target") and ev.get("target") != after:
                release += f" (target {ev['target']})"
            rows.append(("release", release))
        elif ev.get("target"):
            rows.append(("target", str(ev["target"])))
        if ev.get("state"):
            state = str(ev["state"])
            if ev.get("from_state") and ev["from_state"] != state:
                state = f"{state} (was {ev['from_state']})"
            rows.append(("state", state))
        rows.append(("duration", seconds(ev.get("duration_s"))))
        rule = self.glyph["rule"]
        lines = [self._paint(f"{rule * 2} {ev.get('command') or 'run'} finished ".ljust(60, rule), _BOLD)]
        lines += [f"{k:<9} {v}" for k, v in rows]
        steps = [s for s in ev.get("steps") or [] if isinstance(s, dict)]
        if steps:
            lines += self._step_table(steps)
        if ev.get("error"):
            lines.append(f"{'error':<9} {self._paint(str(ev['error']), _RED)}")
        if ev.get("hint"):
            lines.append(f"{'hint':<9} {ev['hint']}")
        known = {"command", "outcome", "exit_code", "duration_s", "database", "target", "state", "release",
                 "from_state", "from_release", "steps", "error", "error_class", "hint"}
        for key, value in ev.items():
            if key not in known and key not in _COMMON and key != "exception":
                lines.append(f"{key:<9} {self._sum(value)}")
        return lines

    def _step_table(self, steps: list[dict[str, Any]]) -> list[str]:
        """The steps, consecutive ones of the same kind and status without rows folded into one row."""
        groups: list[list[dict[str, Any]]] = []
        for step in steps:
            last = groups[-1][-1] if groups else None
            if (last is not None and not step.get("rows") and not last.get("rows")
                    and step.get("status") == last.get("status") and step.get("kind") == last.get("kind")
                    and step.get("status") in ("applied", "skipped")):
                groups[-1].append(step)
            else:
                groups.append([step])
        table = []
        for group in groups:
            first, last = group[0], group[-1]
            name = str(first.get("step"))
            if len(group) > 1:
                kind = str(first.get("kind") or "")
                tail = str(last.get("step"))
                tail = tail[len(kind) + 1:] if kind and tail.startswith(kind + " ") else tail
                name = f"{name} {self.glyph['more']} {tail} ({len(group)})"
            total = sum(float(s.get("duration_s") or 0) for s in group)
            rows = sum(int(s.get("rows") or 0) for s in group)
            status = str(first.get("status") or "?")
            table.append((name, status, count(rows), f"{total:.2f}"))
        width = max([len("step"), *(len(r[0]) for r in table)])
        status_w = max([len("status"), *(len(r[1]) for r in table)])
        rows_w = max([len("rows"), *(len(r[2]) for r in table)])
        out = [self._paint(f"{'step':<{width}}  {'status':<{status_w}}  {'rows':>{rows_w}}  {'seconds':>7}", _DIM)]
        for name, status, rows, secs in table:
            paint = {"failed": (_RED, _BOLD), "skipped": (_DIM,), "applied": (_GREEN,)}.get(status, ())
            out.append(f"{name:<{width}}  {self._paint(f'{status:<{status_w}}', *paint)}  {rows:>{rows_w}}  "
                       f"{secs:>7}")
        return out
