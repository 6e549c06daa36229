"""The package's layering: no import cycles between evaluation and the methods."""

import subprocess
import sys


def test_methods_and_engine_do_not_import_evaluation():
    # evaluation builds models through the methods registry; the methods must not need evaluation back
    code = "import sys, robust.methods, robust.engine, robust.corrupt; assert 'robust.evaluation' not in sys.modules, 'cycle'"
    subprocess.run([sys.executable, "-c", code], check=True)
