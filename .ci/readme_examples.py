"""Run the README's Python examples against the installed securememory.

Usage: python -I .ci/readme_examples.py README.md

Runs the blocks of each section named in SECTIONS in a namespace that first
defines the placeholders the README leaves to the reader (a socket file, a key
file, a nonce, a key...). Fails when securememory is imported from a
source tree instead of an installation, or when any example raises or warns.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import warnings

SECTIONS = ("## Usage", "### Using a secret as a `cryptography` key", "### Streams")
KEY_FILE = "/run/secrets/tls.key"


def blocks(readme: str, heading: str) -> list[str]:
    """The ```python blocks under ``heading``, up to the next heading of any level."""
    start = readme.index(f"\n{heading}\n")
    end = readme.find("\n#", start + len(heading) + 2)
    body = readme[start : end if end != -1 else len(readme)]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def main(readme_path: str) -> int:
    warnings.simplefilter("error")
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    import securememory

    origin = os.path.dirname(os.path.dirname(os.path.abspath(securememory.__file__)))
    if os.path.exists(os.path.join(origin, "pyproject.toml")):
        print(f"securememory was imported from a source tree ({origin}), not an installation", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        key_file = os.path.join(tmp, "tls.key")
        with open(key_file, "wb") as f:
            f.write(os.urandom(48))
        ran = 0
        for heading in SECTIONS:
            factory = securememory.SecretFactory()
            namespace: dict[str, object] = {
                "check": lambda view: len(view),
                "consume": lambda view: len(view),
                "sock_file": io.BytesIO(os.urandom(64)),
                "nonce": os.urandom(12),
                "message": bytearray(b"attack at dawn"),
                "big_bytearray": bytearray(os.urandom(100_000)),
                "out": bytearray(30_000),
                "key": factory.create_random(32),
                "other_key": factory.create_random(32),
            }
            for code in blocks(readme, heading):
                code = code.replace(KEY_FILE, key_file)
                exec(compile(code, f"README.md {heading}", "exec"), namespace)
                ran += 1
    if ran < len(SECTIONS):
        print(f"only {ran} example blocks found under {SECTIONS}", file=sys.stderr)
        return 1
    print(f"README examples: {ran} blocks ran against securememory {securememory.__version__} from {origin}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
