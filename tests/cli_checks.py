"""Checks shared by the command-line tests."""


def one_error_line(res, *needles, code=1):
    """Exit ``code``, exactly one line on stderr starting with 'error:', naming every
    needle; returns the line."""
    assert res.exit_code == code, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
