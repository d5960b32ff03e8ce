"""Says loudly when the JAX/PyTorch peer agreement test cannot run (pytest -q hides skip reasons)."""


def _torch_missing() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return True
    return False


def pytest_terminal_summary(terminalreporter):
    if _torch_missing():
        terminalreporter.write_line(
            "NOTE: torch is not installed, so Tests/reference/test_peers.py (JAX vs PyTorch peers) was SKIPPED; "
            "install it with: pip install 'torch==2.13.0+cpu'", yellow=True)
