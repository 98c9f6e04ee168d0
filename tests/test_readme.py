"""The README's runnable code blocks run as written, so the front page cannot drift from the code.

```bash and ```python blocks run here, in a scratch folder that holds a photo.jpg; ```sh blocks are shown, not
run (the set-up commands themselves, a camera, a Jetson, an hour of training)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from stylecam.sources import DEMO_CLIP

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```(bash|python)\n(.*?)^```", README.read_text(), re.S | re.M)


@pytest.fixture
def scratch(tmp_path):
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(tmp_path / "photo.jpg"), frame)
    return tmp_path


def run(lang: str, code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-euo", "pipefail", "-c", code]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_readme_has_runnable_blocks():
    assert {lang for lang, _ in BLOCKS} == {"bash", "python"}


@pytest.mark.parametrize("lang,code", BLOCKS, ids=[f"{lang}-{i}" for i, (lang, _) in enumerate(BLOCKS)])
def test_a_readme_block_runs_as_written(lang, code, scratch):
    r = run(lang, code, scratch)
    assert r.returncode == 0, f"{code}\n---\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    for out in re.findall(r"--output (\S+)|imwrite\(\"([^\"]+)\"", code):
        name = next(o for o in out if o)
        assert (scratch / name).stat().st_size > 1000, name  # it wrote a real file


def test_a_program_that_exits_while_a_style_loads_exits_cleanly(scratch):
    """The README's pattern, stopped at its worst moment: set_style(wait=False) and exit at once. A daemon loader
    thread creating an ONNX Runtime session during interpreter shutdown aborted 8 runs in 10 (exit 134)."""
    code = ("import stylecam\ns = stylecam.Stylizer('candy_nano', threads=1)\n"
            "s.set_style('wave', wait=False)\n")
    codes = [run("python", code, scratch).returncode for _ in range(10)]
    assert codes == [0] * 10


def test_make_demo_installs_only_when_the_build_inputs_change(tmp_path):
    """A second `make demo` runs the demo at once (it reinstalled every time: ~20 s); a changed pyproject.toml
    installs again. `make -n` says what would run, without running it."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make here")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-runtime").touch()  # newer than every build input
    root = README.parent
    dry = lambda *extra: subprocess.run(["make", "-n", "demo", f"VENV={venv}", *extra], cwd=root,  # noqa: E731
                                        capture_output=True, text=True, check=True).stdout
    assert "pip install" not in dry() and "stylecam run" in dry()
    assert "pip install -q -e ." in dry("-W", "pyproject.toml")  # as if it had just changed
