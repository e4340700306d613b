"""Pages worked on several sessions at once (ragflow_migrate.data.lanes), on real servers: every
page exactly once, each lane on its own session (with the work connection's session settings), the
first error of any lane raised after the others stop, a stop request honoured, and a session that
cannot be opened only meaning fewer lanes."""

from __future__ import annotations

import threading
import time

import pytest

from ragflow_migrate import interrupt, logs
from ragflow_migrate.config import load_settings
from ragflow_migrate.data import lanes
from ragflow_migrate.db import connect as db
from ragflow_migrate.errors import InterruptedRun
from ragflow_migrate.runner import close_context, open_context


@pytest.fixture
def ctx(database):
    def make(env=None, **flags):
        context = open_context(load_settings(flags, {**database.env, **(env or {})}), logs.get_logger(),
                               "lanes-test", wait=False)
        made.append(context)
        return context

    made: list = []
    yield make
    for context in made:
        close_context(context)


def _table(ctx) -> None:
    db.execute(ctx.conn, "CREATE TABLE lane_pages (page INT PRIMARY KEY, conn BIGINT NOT NULL, mode VARCHAR(200))")


def _lane(lane_ctx, i):
    return {"i": i, "conn": lane_ctx.conn, "id": db.query_one(lane_ctx.conn, "SELECT CONNECTION_ID()")[0],
            "pages": 0}


def _work(state, page, *, slow_lane_0=0.02):
    db.execute(state["conn"], "INSERT INTO lane_pages VALUES (%s, %s, @@SESSION.sql_mode)", (page, state["id"]))
    state["pages"] += 1
    if state["i"] == 0:
        time.sleep(slow_lane_0)  # so that the other lanes get pages of this fast work too


def test_every_page_once_on_separate_sessions(ctx):
    c = ctx(sessions=3)
    _table(c)
    progress: list[int] = []
    states = lanes.run(c, "test", list(range(60)), setup=_lane, work=_work, progress=progress.append)
    assert len(states) == 3 and states[0]["conn"] is c.conn
    assert len({s["id"] for s in states}) == 3 and all(s["pages"] for s in states), states
    rows = db.query(c.conn, "SELECT page, conn, mode FROM lane_pages ORDER BY page")
    assert [r[0] for r in rows] == list(range(60))
    assert {r[1] for r in rows} == {s["id"] for s in states}
    assert {r[2] for r in rows} == {db.query_one(c.conn, "SELECT @@SESSION.sql_mode")[0]}
    assert progress == sorted(progress) and progress[-1] <= 60
    # the other sessions are closed afterwards
    others = [s["id"] for s in states[1:]]
    marks = ", ".join(["%s"] * len(others))
    assert not _still_listed(c.conn, f"SELECT id FROM information_schema.processlist WHERE id IN ({marks})", others)


def test_other_sessions_keep_the_settings_but_not_the_staging_tables_of_the_work_connection(ctx):
    from ragflow_migrate.data import staging

    c = ctx(sessions=2)
    c.extras.update({staging.LLM_CACHE: ("fingerprint", {}), staging.INST_CACHE: ("fingerprint", 1),
                     "data.cross_provider_fallback": True})
    seen = {}

    def setup(lane_ctx, i):
        seen[i] = dict(lane_ctx.extras)
        return {"i": i}

    def work(state, page):
        time.sleep(0.02)

    lanes.run(c, "test", list(range(10)), setup=setup, work=work)
    assert set(seen) == {0, 1}
    assert seen[0] == c.extras
    assert seen[1] == {"data.cross_provider_fallback": True}
    assert staging.LLM_CACHE in c.extras  # untouched


def test_one_session_and_fewer_pages_than_sessions(ctx):
    c = ctx(sessions=1)
    _table(c)
    assert len(lanes.run(c, "test", list(range(5)), setup=_lane, work=_work)) == 1
    c4 = ctx(sessions=4)
    assert lanes.count(c4, 2) == 2 and lanes.count(c4, 0) == 1


def test_the_first_error_of_another_lane_is_raised_and_stops_the_rest(ctx):
    c = ctx(sessions=2)
    _table(c)

    def work(state, page):
        if state["i"] == 1:
            db.execute(state["conn"], "INSERT INTO no_such_table VALUES (1)")
        _work(state, page, slow_lane_0=0.05)

    with pytest.raises(Exception, match="no_such_table"):
        lanes.run(c, "test", list(range(200)), setup=_lane, work=work)
    done = db.query_one(c.conn, "SELECT COUNT(*) FROM lane_pages")[0]
    assert done < 10, done  # lane 0 stopped after its current page
    db.query_one(c.conn, "SELECT 1")  # the work connection is still usable


def test_a_stop_request_stops_every_lane(ctx):
    c = ctx(sessions=2)
    _table(c)
    started = threading.Event()

    def work(state, page):
        started.set()
        _work(state, page, slow_lane_0=0.01)
        time.sleep(0.01)

    timer = threading.Timer(0.3, interrupt._stop.set)
    timer.start()
    try:
        with pytest.raises(InterruptedRun):
            lanes.run(c, "test", list(range(10_000)), setup=_lane, work=work)
    finally:
        timer.cancel()
        interrupt.reset()
    assert started.is_set()
    assert db.query_one(c.conn, "SELECT COUNT(*) FROM lane_pages")[0] < 10_000


def test_a_session_that_cannot_be_opened_means_fewer_lanes(ctx, database):
    database.server.query("CREATE USER 'lanes_one'@'%' IDENTIFIED BY 'pw-lanes-1' WITH MAX_USER_CONNECTIONS 1")
    try:
        database.server.query(f"GRANT ALL ON `{database.name}`.* TO 'lanes_one'@'%'")
        c = ctx({"MYSQL_USER": "lanes_one", "MYSQL_PASSWORD": "pw-lanes-1"}, sessions=3)
        _table(c)
        states = lanes.run(c, "test", list(range(20)), setup=_lane, work=_work)
        assert len(states) == 1
        assert db.query_one(c.conn, "SELECT COUNT(*) FROM lane_pages")[0] == 20
    finally:
        database.server.query("DROP USER 'lanes_one'@'%'")


# --- read ahead, write behind (stage 7) ---------------------------------------------------------------


def _reader(pages: int, *, fail_at: int | None = None):
    def produce(lane_ctx):
        me = db.query_one(lane_ctx.conn, "SELECT CONNECTION_ID()")[0]
        for i in range(pages):
            if i == fail_at:
                db.execute(lane_ctx.conn, "SELECT * FROM no_such_table")
            yield i, me
            lane_ctx.checkpoint()  # between items, as the stages' readers do
    return produce


class _Recorder:
    def __init__(self, slow: float = 0.0):
        self.slow, self.conn_id = slow, None

    def setup(self, lane_ctx):
        self.conn_id = db.query_one(lane_ctx.conn, "SELECT CONNECTION_ID()")[0]
        return lane_ctx

    def write(self, lane_ctx, item):
        db.execute(lane_ctx.conn, "INSERT INTO lane_pages VALUES (%s, CONNECTION_ID(), @@SESSION.sql_mode)", (item,))
        time.sleep(self.slow)


@pytest.mark.parametrize("sessions", [1, 2, 3])
def test_read_ahead_and_write_behind_on_their_own_sessions(ctx, sessions):
    c = ctx(sessions=sessions)
    _table(c)
    main = db.query_one(c.conn, "SELECT CONNECTION_ID()")[0]
    recorder = _Recorder()
    others = lanes.helpers(c)
    checkpoints = []
    c._checkpoint_hooks.append(lambda: checkpoints.append(1))
    with lanes.write_behind(c, "test", recorder.setup, recorder.write, own_session=others >= 1) as submit, \
            lanes.read_ahead(c, "test", _reader(50), own_session=others >= 2) as items:
        readers = set()
        for i, reader in items:
            readers.add(reader)
            submit(i)
    rows = db.query(c.conn, "SELECT page, conn FROM lane_pages ORDER BY page")
    assert [r[0] for r in rows] == list(range(50))  # every item written once, all written on leaving
    writers = {r[1] for r in rows}
    assert writers == {recorder.conn_id}
    assert (recorder.conn_id != main) == (sessions >= 2)
    assert len(checkpoints) == 50  # the work connection's context, once per item, read here or ahead
    assert len(readers) == 1
    assert (readers == {main}) if sessions < 3 else not readers & {main, recorder.conn_id}


def test_a_readers_error_is_raised_and_what_was_read_is_still_written(ctx):
    c = ctx(sessions=3)
    _table(c)
    recorder = _Recorder()
    got = []
    with pytest.raises(Exception, match="no_such_table"):
        with lanes.write_behind(c, "test", recorder.setup, recorder.write) as submit, \
                lanes.read_ahead(c, "test", _reader(50, fail_at=7), own_session=True) as items:
            for i, _reader_id in items:
                got.append(i)
                submit(i)
    assert got == list(range(7))
    # leaving on an error drops what was not written yet: never more than was submitted
    assert db.query_one(c.conn, "SELECT COUNT(*) FROM lane_pages")[0] <= 7
    db.query_one(c.conn, "SELECT 1")


def test_a_writers_error_is_raised_to_the_caller(ctx):
    c = ctx(sessions=2)
    _table(c)

    def write(lane_ctx, item):
        if item == 3:
            db.execute(lane_ctx.conn, "INSERT INTO no_such_table VALUES (1)")
        db.execute(lane_ctx.conn, "INSERT INTO lane_pages VALUES (%s, 0, '')", (item,))

    with pytest.raises(Exception, match="no_such_table"):
        with lanes.write_behind(c, "test", lambda lane_ctx: lane_ctx, write) as submit:
            for i in range(100):
                submit(i)
                time.sleep(0.005)
    assert [r[0] for r in db.query(c.conn, "SELECT page FROM lane_pages ORDER BY page")] == [0, 1, 2]


def test_a_stop_request_reaches_a_caller_waiting_on_the_reader(ctx):
    """The caller waits on an empty queue while the reader is in a slow statement: the stop request is
    raised there, and the reader stops at its next item (after that statement, as on one session)."""
    c = ctx(sessions=3)
    produced = []

    def produce(lane_ctx):
        yield 0
        db.query_one(lane_ctx.conn, "SELECT SLEEP(1.5)")
        for i in range(1, 1_000_000):
            produced.append(i)
            yield i

    timer = threading.Timer(0.3, interrupt._stop.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(InterruptedRun):
            with lanes.read_ahead(c, "test", produce) as items:
                for _ in items:
                    pass
    finally:
        timer.cancel()
        interrupt.reset()
    assert time.monotonic() - started < 10
    assert len(produced) < 100


# --- bound strings escaped by dialect.escape_string (db.connect.Connection) ------------------------------


NASTY = ["", "plain", "it's", "back\\slash", "\\'", "'\\", "nul\0byte", "line\nbreak\r\n", "ctrl-z\x1a",
         'double "quotes"', "percent %s %(x)s %%", "ünïcödé 中文 😀", "\\0\\n\\Z literally", "x" * 5000,
         '{"llm_id": "gpt-4o@OpenAI", "prompt": "a \\"quoted\\" \\\\ path\\n"}']


@pytest.mark.parametrize("sql_mode", ["ours", "NO_BACKSLASH_ESCAPES"])
def test_bound_strings_round_trip_every_character(ctx, sql_mode, monkeypatch):
    from ragflow_migrate.data import sqlkit
    from ragflow_migrate.db import dialect

    original = dialect.escape_string

    c = ctx()
    assert isinstance(c.conn, db.Connection)
    calls = []
    monkeypatch.setattr(dialect, "escape_string", lambda text: calls.append(text) or original(text))
    if sql_mode != "ours":
        db.execute(c.conn, "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
    db.execute(c.conn, "CREATE TABLE lit (n INT PRIMARY KEY, s LONGTEXT NULL, b TINYINT NULL, v VARBINARY(16) NULL)")
    rows = [(i, text, i % 2 == 0, bytes([i, 0, 39, 92])) for i, text in enumerate(NASTY)]
    rows.append((len(NASTY), None, None, None))
    statements = []
    monkeypatch.setattr(sqlkit, "INSERT_CHARS", 40)  # several statements
    monkeypatch.setattr(sqlkit, "execute", lambda conn, sql, args=None: statements.append((sql, args))
                        or db.execute(conn, sql, args))
    assert sqlkit.insert_rows(c.conn, "lit", ("n", "s", "b", "v"), rows) == len(rows)
    assert len(statements) > 3 and sum(len(a) for _s, a in statements) == 4 * len(rows)
    assert all(text not in sql for sql, _args in statements for text in NASTY if text)  # bound, never spliced
    with pytest.raises(ValueError, match="a row of 1 values for 4 columns"):
        sqlkit.insert_rows(c.conn, "lit", ("n", "s", "b", "v"), [(99,)])
    got = db.query(c.conn, "SELECT n, s, b, v FROM lit ORDER BY n")
    assert [(n, s, None if b is None else bool(b), v) for n, s, b, v in got] == rows
    for n, text in enumerate(NASTY):  # and one at a time, as a WHERE parameter
        assert db.query(c.conn, "SELECT n FROM lit WHERE s = %s AND n = %s", (text, n)) == [(n,)]
    # ours escaped them, unless the session has no backslash escapes (then pymysql's own '' rule)
    assert (set(NASTY) <= set(calls)) == (sql_mode == "ours"), len(calls)


def _still_listed(conn, sql: str, ids: list[int], within_s: float = 3.0) -> list:
    """The sessions still in the process list after ``within_s``: a closed client's server thread
    leaves the list a moment after the socket closes (seen once on MariaDB in CI)."""
    deadline = time.monotonic() + within_s
    while True:
        rows = db.query(conn, sql, ids)
        if not rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
