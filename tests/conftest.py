import sys
from pathlib import Path

# make tests/formats.py importable as `formats`
sys.path.insert(0, str(Path(__file__).parent))
