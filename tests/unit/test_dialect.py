

def test_escape_string_is_pymysqls_own_text():
    import random

    from pymysql.converters import escape_string as pymysql_escape

    from ragflow_migrate.db.dialect import escape_string

    every = "".join(chr(i) for i in range(256)) + "中文😀\u2028"
    assert escape_string(every) == pymysql_escape(every)
    rng = random.Random(7)
    alphabet = "\\'\"\0\n\r\x1a%sab{}@ é中😀"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert escape_string(text) == pymysql_escape(text), repr(text)
