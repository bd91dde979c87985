"""memfd_secret backing: the kernel refuses to read the pages even for ptrace."""

from __future__ import annotations

import errno

from securememory import memcall
from securememory.errors import UnsupportedError

from .. import child, memory
from ..scenario import Environment, Result, scenario, unsupported, verdict


def memfd_secret(env: Environment, secret: bool = True) -> Result:
    name = "memfd_secret"
    expected = "secret page: EIO; ordinary locked page: readable"
    if not env.caps.memfd_secret:
        return unsupported(name, expected, "memfd_secret is not available (Linux >= 5.14 with secretmem)")
    answers: list[int] = []

    def fn(ctx: child.Context) -> None:
        try:
            hidden = memcall.alloc(4096, secret=secret)
        except UnsupportedError as e:
            ctx.report(str(e))
            return
        plain = memcall.alloc(4096)
        memcall.lock(plain)
        hidden.view()[:4] = b"hide"
        plain.view()[:4] = b"show"
        ctx.checkpoint([hidden.address, plain.address])

    def observe(pid: int, addresses: list[int]) -> None:
        answers.extend(memory.read_errno(pid, a, 4) for a in addresses)

    outcome = child.run(fn, observe=observe, env=env.child_env)
    if outcome.reports:
        return unsupported(name, expected, str(outcome.reports[0]))
    names = [errno.errorcode.get(a, "readable") if a else "readable" for a in answers]
    ok = answers[:1] == [errno.EIO] and answers[1:] == [0]
    return verdict(name, ok, expected, f"secret page: {names[0] if names else '?'}, "
                   f"ordinary page: {names[1] if len(names) > 1 else '?'}")


scenario("memfd_secret", "memfd_secret pages are unreadable through /proc/PID/mem (EIO)")(memfd_secret)
