"""Fork: the child sees zeros and gets a clear error; the parent keeps its secrets."""

from __future__ import annotations

import hashlib
import os

from securememory import ForkedError
from securememory.memguard import Buffer

from .. import child, raw
from ..scenario import Environment, Result, scenario, verdict
from .copies import SIZE, _secret_and_buffer, _Values

ZEROS, SECRET_REFUSED, BUFFER_REFUSED, NEW_BUFFER = 1, 2, 4, 8
ALL = ZEROS | SECRET_REFUSED | BUFFER_REFUSED | NEW_BUFFER


def _grandchild(buf: Buffer, address: int, secret: object) -> int:
    result = 0
    if raw.read(address, SIZE) == bytes(SIZE):
        result |= ZEROS
    try:
        secret.with_bytes(len)  # type: ignore[attr-defined]
    except ForkedError:
        result |= SECRET_REFUSED
    try:
        buf.view()
    except ForkedError:
        result |= BUFFER_REFUSED
    with Buffer(16) as fresh:
        fresh.view()[:] = b"x" * 16
        if bytes(fresh.view()) == b"x" * 16:
            result |= NEW_BUFFER
    return result


def fork(env: Environment) -> Result:
    values = _Values()

    def fn(ctx: child.Context) -> None:
        secret, buf = _secret_and_buffer(ctx)
        address = buf.address
        pid = os.fork()
        if pid == 0:
            os._exit(_grandchild(buf, address, secret))
        _, status = os.waitpid(pid, 0)
        ctx.report({
            "grandchild": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
            "parent_secret": secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest()),
            "parent_buffer": hashlib.sha256(buf.view()).hexdigest(),
        })

    try:
        outcome = child.run(fn, observe=values.observe, env=env.child_env)
    finally:
        values.dir.cleanup()
    if not outcome.reports:
        return verdict("fork", False, "", f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    r = outcome.reports[0]
    g = r["grandchild"]
    parent_ok = (
        r["parent_secret"] == hashlib.sha256(values.values["secret"]).hexdigest()
        and r["parent_buffer"] == hashlib.sha256(values.values["buffer"]).hexdigest()
    )
    observed = (
        f"child: zeros {bool(g & ZEROS)}, secret refused {bool(g & SECRET_REFUSED)}, "
        f"buffer refused {bool(g & BUFFER_REFUSED)}, new buffer works {bool(g & NEW_BUFFER)}; "
        f"parent intact {parent_ok}"
    )
    return verdict(
        "fork", g == ALL and parent_ok, "child: zeros + ForkedError + new buffers work; parent intact", observed
    )


scenario("fork", "a forked child sees zeros and ForkedError; the parent is unaffected")(fork)
