

def test_literal_escapes_what_a_quoted_string_cannot_hold():
    from ragflow_migrate.db.dialect import literal

    assert literal(None) == "NULL" and literal(7) == "7" and literal(-3) == "-3"
    assert literal(True) == "1" and literal(False) == "0"
    assert literal("") == "''"
    assert literal("it's \\ a\0b\nc\rd\x1ae") == "'it\\'s \\\\ a\\0b\\nc\\rd\\Ze'"
    assert literal('"%s"') == "'\"%s\"'"  # nothing else is touched: no % formatting happens
    assert literal(b"x") is None and literal(1.5) is None  # the driver's own escaping
