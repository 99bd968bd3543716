"""placeholder"""
from pathlib import Path
def summary(path: Path) -> str:
    return path.read_text()[:2000]
