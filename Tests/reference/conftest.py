"""Says loudly when the JAX/PyTorch peer agreement test cannot run (pytest -q hides skip reasons)."""

import importlib.util


def pytest_terminal_summary(terminalreporter):
    if importlib.util.find_spec("torch") is None:
        terminalreporter.write_line(
            "NOTE: torch is not installed, so Tests/reference/test_peers.py (JAX vs PyTorch peers) was SKIPPED; "
            "install it with: pip install 'torch==2.13.0+cpu'", yellow=True)
