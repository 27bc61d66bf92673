"""``pclab.progress.progress_bar``: shown when asked, or by default only on a terminal."""

import io
import sys

from pclab.progress import progress_bar


def test_progress_bar_shows_when_asked_or_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar(3, None, "x").disable and progress_bar(3, False, "x").disable
    shown = progress_bar(3, True, "grid", "net")
    shown.update(3)
    assert not shown.disable and shown.n == 3 and shown.total == 3
    shown.close()
    assert "grid:" in sys.stderr.getvalue()  # drawn on stderr (leave=False clears it at the end)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not progress_bar(3, None, "x").disable
