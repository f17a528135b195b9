"""Stage modules named like libraries (tokenize, evaluate) must not shadow them."""

import subprocess
import sys


def test_stage_modules_do_not_shadow_libraries(repo):
    code = ("import pipelines.stages.tokenize, pipelines.stages.evaluate, evaluate, tokenize;"
            "assert hasattr(evaluate, 'load'), evaluate.__file__;"
            "assert hasattr(tokenize, 'generate_tokens'), tokenize.__file__;"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
