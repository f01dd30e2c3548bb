"""``sandbox.confine``: what a student process may read."""

from autograder.sandbox import confine


def test_sandbox_keeps_private_folders_inside_allowed_roots_out(tmp_path, monkeypatch):
    (tmp_path / "site" / "autograder" / "reference").mkdir(parents=True)
    (tmp_path / "site" / "numpy").mkdir()
    (tmp_path / "site" / "six.py").write_text("")
    (tmp_path / "site" / "autograder" / "checks").mkdir()
    monkeypatch.setattr(confine, "python_roots", lambda: [str(tmp_path / "site")])
    allowed = confine.allowed_paths([str(tmp_path / "site" / "autograder")])
    assert str(tmp_path / "site" / "numpy") in allowed and str(tmp_path / "site" / "six.py") in allowed
    assert not any("autograder" in p for p in allowed)
