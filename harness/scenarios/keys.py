"""The session key: split, rekeyed, confined to locked scratch, replaced by purge; fresh nonces.

The parent learns the key by reading the Coffer's scratch through
/proc/PID/mem while the child holds a key view (the key never becomes a
Python object in the child), and the halves from their buffers. It then
counts copies of the key in the child's whole memory after each operation
that keys an AEAD object: none may remain, in ordinary memory or in scratch.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from securememory import DecryptionError, Stream
from securememory.memguard import Enclave, get_coffer, purge
from securememory.memguard import Stream as ChunkStream
from securememory.memguard.coffer import REKEY_INTERVAL
from securememory.memguard.enclave import NONCE_SIZE

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, verdict
from .copies import _run, _Values


class _Keys(_Values):
    """_Values, plus: is the memory at an address still what was learnt under a key?"""

    def observe(self, pid: int, msg: dict[str, Any]) -> Any:
        if msg["op"] == "same":
            return memory.read(pid, msg["address"], len(self.values[msg["key"]])) == self.values[msg["key"]]
        return super().observe(pid, msg)


def _learn(ctx: child.Context, suffix: str = "") -> None:
    """Let the parent read the key and both halves (keys session, left, right + suffix)."""
    coffer = get_coffer()
    with coffer.view() as key:  # holds the coffer's lock: the halves cannot change meanwhile
        for name, address in (("session", raw.address_of(key)), ("left", coffer._left.address),
                              ("right", coffer._right.address)):
            ctx.checkpoint({"op": "learn", "key": name + suffix, "address": address})


def _copies(ctx: child.Context, step: str) -> None:
    ctx.report({step: ctx.checkpoint({"op": "scan", "key": "session"})})


def _keys_run(fn: Any, env: Environment) -> tuple[dict[str, Any], dict[str, bytes], child.Outcome]:
    values = _Keys()
    reports, outcome = _run(fn, env, values)
    return reports, values.values, outcome


def session_key_confined(env: Environment) -> Result:
    steps = ["after view", "seal", "open", "stream write", "stream read"]

    def fn(ctx: child.Context) -> None:
        _learn(ctx)
        _copies(ctx, "after view")
        enclave = Enclave(bytearray(64))
        _copies(ctx, "seal")
        opened = enclave.open()
        _copies(ctx, "open")
        stream = Stream(chunk_size=100)
        stream.write(bytearray(250))
        _copies(ctx, "stream write")
        stream.readinto(bytearray(150))
        _copies(ctx, "stream read")
        opened.destroy()

    counts, _, outcome = _keys_run(fn, env)
    ok = outcome.exit_code == 0 and all(counts.get(k) == 0 for k in steps)
    observed = ", ".join(f"{k}: {counts.get(k, '?')}" for k in steps)
    return verdict("session_key_confined", ok, "0 copies of the session key after each step",
                   f"{observed}; {outcome.describe()}" + env.note)


def _split(values: dict[str, bytes], suffix: str = "") -> bytes:
    left, right = values["left" + suffix], values["right" + suffix]
    return bytes(a ^ b for a, b in zip(left, hashlib.blake2b(right, digest_size=32).digest(), strict=True))


def key_split(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        _learn(ctx)

    _, values, outcome = _keys_run(fn, env)
    if set(values) != {"session", "left", "right"}:
        return verdict("key_split", False, "", f"not learnt; {outcome.describe()}: {outcome.stderr[-300:]}")
    key = values["session"]
    split = _split(values) == key
    ok = split and key not in (values["left"], values["right"]) and any(values["right"])
    observed = (f"key == left XOR BLAKE2b-256(right): {split}, key equals a half: "
                f"{key in (values['left'], values['right'])}, right is zero: {not any(values['right'])}")
    return verdict("key_split", ok, "key = left XOR BLAKE2b-256(right), neither half is the key", observed)


def rekey(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        coffer = get_coffer()
        _learn(ctx, "0")
        coffer.rekey()
        _learn(ctx, "1")
        time.sleep(REKEY_INTERVAL * 1.2)  # a re-split is now due: the next use makes it
        Enclave(bytearray(8))
        ctx.report({"on use": not ctx.checkpoint({"op": "same", "key": "left1", "address": coffer._left.address})})
        _learn(ctx, "2")

    reports, values, outcome = _keys_run(fn, env)
    if len(values) != 9:
        return verdict("rekey", False, "", f"not learnt; {outcome.describe()}: {outcome.stderr[-300:]}")
    halves = values["left0"] != values["left1"] and values["right0"] != values["right1"]
    same_key = values["session0"] == values["session1"] == values["session2"]
    consistent = all(_split(values, s) == values["session" + s] for s in "012")
    ok = halves and same_key and consistent and reports.get("on use") is True
    observed = (f"rekey() changed both halves: {halves}, a use once due re-split: {reports.get('on use')}, "
                f"key unchanged: {same_key}, split holds: {consistent}")
    return verdict("rekey", ok, "halves change (by rekey() and by a use once due), the key does not", observed)


def nonces_fresh(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        first, second = Enclave(bytearray(b"x" * 32)), Enclave(bytearray(b"x" * 32))
        enclaves = first.ciphertext[:NONCE_SIZE] != second.ciphertext[:NONCE_SIZE]
        stream = ChunkStream(chunk_size=16)
        stream.write(bytearray(64))
        stream.write(bytearray(64))
        nonces = {bytes(c[:NONCE_SIZE]) for c in stream._chunks}
        reseals = []
        for _ in range(2):
            stream.readinto(bytearray(4))  # the front chunk is resealed, each time under a new nonce
            reseals.append(bytes(stream._chunks[0][:NONCE_SIZE]))
        resealed = reseals[0] != reseals[1] and not nonces & set(reseals)
        ctx.report({"enclaves": enclaves, "stream": len(nonces) == 8, "reseal": resealed})

    reports, _, outcome = _keys_run(fn, env)
    keys = ("enclaves", "stream", "reseal")
    ok = outcome.exit_code == 0 and all(reports.get(k) is True for k in keys)
    observed = ", ".join(f"{k}: {reports.get(k, '?')}" for k in keys)
    return verdict("nonces_fresh", ok, "a fresh nonce per seal, per stream chunk and per reseal",
                   f"distinct {observed}; {outcome.describe()}")


def purge_replaces_key(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        enclave = Enclave(bytearray(32))
        enclave.open().destroy()
        purge()
        try:
            enclave.open().destroy()
            ctx.report({"after purge": "opened"})
        except DecryptionError:
            ctx.report({"after purge": "DecryptionError"})

    reports, _, outcome = _keys_run(fn, env)
    said = reports.get("after purge")
    return verdict("purge_replaces_key", said == "DecryptionError", "an enclave sealed before purge() fails to open",
                   f"{said}; {outcome.describe()}")


scenario("session_key_confined", "the session key is nowhere after seal, open, stream write and read")(
    session_key_confined
)
scenario("key_split", "the session key is stored only as left XOR BLAKE2b-256(right)")(key_split)
scenario("rekey", "rekeying changes both halves, never the key; a use once due re-splits")(rekey)
scenario("nonces_fresh", "every seal, stream chunk and reseal uses a fresh nonce")(nonces_fresh)
scenario("purge_replaces_key", "purge() replaces the session key")(purge_replaces_key)
