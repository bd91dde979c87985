"""The mutation catalogue: one broken protection per entry, each caught by a scenario.

Every entry replaces ``old`` (which must occur exactly once in ``path``) with
``new``, breaking exactly one protection while leaving the library working.
``python -m harness.mutate`` applies them one at a time to a copy of the tree
and requires the harness to FAIL at least one scenario for each; ``scenarios``
names those expected to catch it (tried first). A new protection lands with its
scenario and at least one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str  # unique, snake_case
    protection: str  # the protection's one name, shared by its code, its scenario and its mutation
    path: str  # repository-relative source file (C or Python)
    old: str  # exact text; must occur exactly once in the file, else the entry is STALE
    new: str
    scenarios: tuple[str, ...]  # scenarios expected to catch it (tried first)
    # The CPythons on which the protection is needed (oldest, newest or None):
    # elsewhere nothing can catch its removal, and the campaign reports it NOT NEEDED.
    python: tuple[int, int] = (3, 11)
    python_until: tuple[int, int] | None = None


GUARD_C = "securememory/memguard/guard.c"
CRASH_C = "securememory/memguard/crash.c"
COFFER_C = "securememory/memguard/coffer.c"
POSIX_C = "securememory/memcall/posix.c"
RESERVE_C = "securememory/memcall/reserve.c"
SECRET_PY = "securememory/secret.py"
GATE_C = "securememory/gate.c"
BUFFER_PY = "securememory/memguard/buffer.py"
COFFER_PY = "securememory/memguard/coffer.py"
ENCLAVE_PY = "securememory/memguard/enclave.py"
STREAM_PY = "securememory/memguard/stream.py"
LEGACY_PY = "securememory/backends/legacy.py"
ENCLAVE_BACKEND_PY = "securememory/backends/enclave.py"
SCRATCH_PY = "securememory/memguard/scratch.py"

MUTATIONS: list[Mutation] = [
    # -- guard pages ------------------------------------------------------------
    Mutation(
        "guard_leading_open", "guard pages", GUARD_C,
        "if ((e = sm_protect(inner, inner_len, SM_PROT_READ_WRITE)))",
        "if ((e = sm_protect(base, inner_len + page, SM_PROT_READ_WRITE)))",
        ("underflow_guard",),
    ),
    Mutation(
        "guard_trailing_open", "guard pages", GUARD_C,
        "if ((e = sm_protect(inner, inner_len, SM_PROT_READ_WRITE)))",
        "if ((e = sm_protect(inner, inner_len + page, SM_PROT_READ_WRITE)))",
        ("overflow_buffer", "overflow_secret"),
    ),
    # -- canary -----------------------------------------------------------------
    Mutation(
        "canary_check_skipped", "canary", GUARD_C,
        "    if (!canary_intact(b->inner, b->inner_len - b->size))",
        "    if (0 && !canary_intact(b->inner, b->inner_len - b->size))",
        ("underflow_canary", "canary_partial_word"),
    ),
    Mutation(
        "canary_half_checked", "canary", GUARD_C,
        "    if (!canary_intact(b->inner, b->inner_len - b->size))",
        "    if (!canary_intact(b->inner, (b->inner_len - b->size) / 2))",
        ("underflow_canary",),
    ),
    Mutation(
        "canary_tail_word_unchecked", "canary", GUARD_C,
        "        diff |= (unsigned char)(inner[8 * words + j] ^ (unsigned char)(w >> (8 * j)));",
        "        diff |= 0 & (unsigned char)(inner[8 * words + j] ^ (unsigned char)(w >> (8 * j)));",
        ("canary_partial_word",),
    ),
    Mutation(
        "canary_constant", "canary", GUARD_C,
        "    return mix(seed + (i + 1) * 0x9e3779b97f4a7c15ULL) ^ canary_key[1];",
        "    (void)seed; (void)i;\n    return 0x5a5a5a5a5a5a5a5aULL;",
        ("canary_unpredictable",),
    ),
    Mutation(
        "canary_same_for_every_buffer", "canary", GUARD_C,
        "    return canary_key[0] ^ (uint64_t)(uintptr_t)inner;",
        "    (void)inner;\n    return canary_key[0];",
        ("canary_unpredictable",),
    ),
    Mutation(
        "canary_key_fixed", "canary", GUARD_C,
        "    int e = sm_random(k, sizeof k);",
        "    int e = 0;\n    k[0] = 0x0123456789abcdefULL;\n    k[1] = 0xfedcba9876543210ULL;",
        ("canary_unpredictable",),
    ),
    Mutation(
        "canary_none_on_page_multiples", "canary", GUARD_C,
        "    size_t inner_len = (size + SM_CANARY_MIN + page - 1) / page * page;",
        "    size_t inner_len = (size + page - 1) / page * page;",
        ("canary_page_multiple",),
    ),
    Mutation(
        "canary_abort_without_wipe", "canary", CRASH_C,
        "    sm_wipe_all();\n    put(\"securememory: canary verification failed",
        "    put(\"securememory: canary verification failed",
        ("canary_abort_wipes",),
    ),
    # -- wipe before unlock and unmap ---------------------------------------------------
    Mutation(
        "buffer_destroy_without_wipe", "wipe before unmap", GUARD_C,
        "    sm_wipe(b->data, b->size);\n    if (!canary_intact(b->inner, b->inner_len - b->size))\n"
        "        sm_fatal_canary(b->size);\n    sm_wipe(b->inner, b->inner_len);\n",
        "    if (!canary_intact(b->inner, b->inner_len - b->size))\n        sm_fatal_canary(b->size);\n",
        ("teardown_buffer", "teardown_purge"),
    ),
    Mutation(
        "buffer_unlock_before_wipe", "wipe before unmap", GUARD_C,
        "    sm_wipe(b->data, b->size);\n    if (!canary_intact",
        "    if (b->locked)\n        sm_unlock(b->inner, b->inner_len);\n"
        "    sm_wipe(b->data, b->size);\n    if (!canary_intact",
        ("teardown_buffer",),
    ),
    Mutation(
        "region_free_without_wipe", "wipe before unmap", POSIX_C,
        "    sm_wipe(addr, len);\n    if (locked)\n        munlock(addr, len); /* failure",
        "    if (locked)\n        munlock(addr, len); /* failure",
        ("teardown_memcall",),
    ),
    Mutation(
        "region_unlock_before_wipe", "wipe before unmap", POSIX_C,
        "    sm_wipe(addr, len);\n    if (locked)\n        munlock(addr, len); /* failure",
        "    if (locked)\n        munlock(addr, len);\n    sm_wipe(addr, len); /* failure",
        ("teardown_memcall",),
    ),
    Mutation(
        "wipe_primitive_noop", "wipe before unmap", POSIX_C,
        "    memset_v(addr, 0, len);",
        "    (void)memset_v;\n    (void)len;",
        ("teardown_buffer", "stray_copies_protected"),
    ),
    Mutation(
        "purge_abandons_buffers", "purge", GUARD_C,
        "        int e = sm_buffer_destroy(bs[i]);",
        "        int e = sm_buffer_abandon(bs[i]);",
        ("purge_wipes", "teardown_purge"),
    ),
    # -- mlock, madvise, memfd_secret -------------------------------------------------
    Mutation(
        "buffer_not_locked", "mlock", GUARD_C,
        "        e = sm_lock(inner, inner_len);",
        "        e = 0;",
        ("locked", "restricted_require_64k"),
    ),
    Mutation(
        "best_effort_silent", "mlock policy", GUARD_C,
        "            b->lock_errno = e;",
        "            (void)0;",
        ("restricted_best_effort",),
    ),
    Mutation(
        "require_treated_as_best_effort", "mlock policy", "securememory/memguard/policy.py",
        "    MlockPolicy.REQUIRE: int(lib.SM_LOCK_REQUIRE),",
        "    MlockPolicy.REQUIRE: int(lib.SM_LOCK_BEST_EFFORT),",
        ("restricted_require_64k", "restricted_require_0"),
    ),
    Mutation(
        "best_effort_warning_dropped", "mlock policy", "securememory/memguard/policy.py",
        "        _warned = True\n    warnings.warn(",
        "        _warned = True\n    return\n    warnings.warn(",
        ("restricted_best_effort",),
    ),
    Mutation(
        "buffer_dumpable", "MADV_DONTDUMP", GUARD_C,
        "    if ((e = sm_advise(inner, inner_len, SM_ADV_DONTDUMP)) && e != ENOTSUP)",
        "    if (0)",
        ("core_dump_crash", "core_dump_live", "locked"),
    ),
    Mutation(
        "buffer_kept_on_fork", "MADV_WIPEONFORK", GUARD_C,
        "    if ((e = sm_advise(inner, inner_len, SM_ADV_WIPEONFORK)) && e != ENOTSUP)",
        "    if (0)",
        ("fork", "locked"),
    ),
    Mutation(
        "madvise_dontdump_normal", "MADV_DONTDUMP", POSIX_C,
        "        return madvise(addr, len, MADV_DONTDUMP) == 0 ? 0 : errno;",
        "        return madvise(addr, len, MADV_NORMAL) == 0 ? 0 : errno;",
        ("locked", "core_dump_live"),
    ),
    Mutation(
        "madvise_wipeonfork_normal", "MADV_WIPEONFORK", POSIX_C,
        "        return madvise(addr, len, MADV_WIPEONFORK) == 0 ? 0 : errno;",
        "        return madvise(addr, len, MADV_NORMAL) == 0 ? 0 : errno;",
        ("fork", "locked"),
    ),
    Mutation(
        "memfd_secret_ordinary", "memfd_secret", POSIX_C,
        "    if (secret)\n        return map_secret(len, out);",
        "    (void)map_secret;",
        ("memfd_secret",),
    ),
    Mutation(
        "legacy_not_locked", "mlock", LEGACY_PY,
        "            if mlock != MlockPolicy.DISABLED:",
        "            if False:",
        ("locked",),
    ),
    Mutation(
        "legacy_dumpable", "MADV_DONTDUMP", LEGACY_PY,
        "            memcall.dont_dump(region)\n",
        "",
        ("locked",),
    ),
    Mutation(
        "legacy_kept_on_fork", "MADV_WIPEONFORK", LEGACY_PY,
        "            memcall.wipe_on_fork(region)\n",
        "",
        ("locked",),
    ),
    Mutation(
        "core_limit_untouched", "core limit", POSIX_C,
        "    rl.rlim_cur = 0;\n",
        "",
        ("core_limit",),
    ),
    Mutation(
        "core_limit_hard_always", "core limit", POSIX_C,
        "    if (hard)\n        rl.rlim_max = 0;",
        "    (void)hard;\n    rl.rlim_max = 0;",
        ("core_limit",),
    ),
    # -- NO_ACCESS and freeze ------------------------------------------------------------
    Mutation(
        "protected_readable_until_first_borrow", "no access", "securememory/backends/protected.py",
        "        buffer.protect(Protection.NO_ACCESS)\n",
        "",
        ("no_access_from_creation",),
    ),
    Mutation(
        "legacy_readable_until_first_borrow", "no access", LEGACY_PY,
        "        memcall.protect(region, Protection.NO_ACCESS)\n",
        "",
        ("no_access_from_creation",),
    ),
    Mutation(
        "gate_leaves_pages_readable", "no access", GATE_C,
        "        } else {\n            rc = sm_protect(g->addr, g->len, SM_PROT_NONE);",
        "        } else {\n            rc = sm_protect(g->addr, g->len, SM_PROT_READ);",
        ("no_access_between_borrows",),
    ),
    Mutation(
        "gate_open_after_close", "use after close", GATE_C,
        "    if (g->closing != OPEN) {\n        rc = SM_GATE_CLOSED;",
        "    if (0) {\n        rc = SM_GATE_CLOSED;",
        ("use_after_close",),
    ),
    Mutation(
        "freeze_noop", "freeze", BUFFER_PY,
        "        self.protect(Protection.READ_ONLY)",
        "        self.protect(Protection.READ_WRITE)",
        ("frozen_write",),
    ),
    Mutation(
        "opened_enclave_writable", "freeze", ENCLAVE_PY,
        "            self._decrypt_into(ffi.buffer(buf._b.data, size), mlock)\n            buf.freeze()",
        "            self._decrypt_into(ffi.buffer(buf._b.data, size), mlock)",
        ("no_access_from_creation",),
    ),
    # -- copies and sources ---------------------------------------------------------------
    Mutation(
        "new_keeps_source", "source wipe", "securememory/factory.py",
        "        if writable:\n            lib.sm_wipe(ptr, n)\n        return secret",
        "        return secret",
        ("stray_copies_protected",),
    ),
    Mutation(
        "enclave_keeps_source", "source wipe", ENCLAVE_PY,
        "        if writable:\n            lib.sm_wipe(ptr, n)",
        "",
        ("stray_copies_memguard",),
    ),
    Mutation(
        "stream_write_keeps_source", "source wipe", STREAM_PY,
        "        if writable:\n            lib.sm_wipe(ptr, n)\n        return n",
        "        return n",
        ("stray_copies_memguard",),
    ),
    Mutation(
        "protected_close_keeps_buffer", "wipe on close", "securememory/backends/protected.py",
        "        self._buffer._release(keep)",
        "        pass",
        ("wipe_on_close_protected",),
    ),
    Mutation(
        "legacy_close_keeps_region", "wipe on close", LEGACY_PY,
        "        release(self._region, keep)",
        "        pass",
        ("wipe_on_close_legacy",),
    ),
    Mutation(
        "legacy_bytes_copy", "no stray copies", LEGACY_PY,
        "        memcall.protect(region, Protection.NO_ACCESS)\n",
        "        self._shadow = bytes(region.view()[:size])\n        memcall.protect(region, Protection.NO_ACCESS)\n",
        ("stray_copies_legacy",),
    ),
    Mutation(
        "enclave_bytes_copy", "no stray copies", ENCLAVE_BACKEND_PY,
        "        size = buffer.size",
        "        self._shadow = bytes(buffer.view())\n        size = buffer.size",
        ("stray_copies_enclave", "wipe_on_close_enclave"),
    ),
    Mutation(
        "bytes_source_wiped", "bytes left alone", "securememory/memguard/wipe.py",
        "    writable = not view.readonly and not isinstance(data, bytes)",
        "    writable = True",
        ("new_from_bytes",),
    ),
    Mutation(
        "enclave_scratch_per_secret", "constant locked memory", ENCLAVE_BACKEND_PY,
        "        self._mlock = mlock\n        super().__init__(size)",
        "        self._mlock = mlock\n        self._spare = Buffer(size, mlock=mlock)\n        super().__init__(size)",
        ("restricted_enclave_10000",),
    ),
    # -- scratch, staging, authentication ----------------------------------------------
    Mutation(
        "enclave_scratch_not_wiped", "enclave scratch at rest", GUARD_C,
        "    sm_wipe(b->data, b->size);\n    return sm_buffer_protect(b, SM_PROT_NONE);",
        "    return sm_buffer_protect(b, SM_PROT_NONE);",
        ("enclave_scratch_at_rest",),
    ),
    Mutation(
        "enclave_scratch_left_readable", "enclave scratch at rest", GUARD_C,
        "    return sm_buffer_protect(b, SM_PROT_NONE);",
        "    return sm_buffer_protect(b, SM_PROT_READ);",
        ("enclave_scratch_at_rest",),
    ),
    Mutation(
        "stream_scratch_kept", "scratch wipe", STREAM_PY,
        "                    lib.sm_wipe(plain_ptr, length)",
        "                    pass",
        ("scratch_wiped",),
    ),
    Mutation(
        "read_staging_kept", "scratch wipe", "securememory/reader.py",
        "        wipe_bytes(staging)",
        "        pass",
        ("scratch_wiped",),
    ),
    Mutation(
        "unauthenticated_plaintext_kept", "tag failure wipe", ENCLAVE_PY,
        "        wipe_bytes(out)\n",
        "",
        ("tag_failure_wipes",),
    ),
    Mutation(
        "failed_open_keeps_buffer", "failed open frees", ENCLAVE_PY,
        "        except BaseException:\n            buf.destroy()\n            raise\n        return buf",
        "        except BaseException:\n            raise\n        return buf",
        ("failed_open_frees",),
    ),
    # -- the session key ---------------------------------------------------------------
    Mutation(
        "aead_key_left_in_scratch", "session key", COFFER_PY,
        "            finally:\n                lib.sm_wipe(self._ptrs[2], KEY_SIZE)\n",
        "",
        ("session_key_confined",),
    ),
    Mutation(
        "view_key_left_in_scratch", "session key", COFFER_PY,
        "                self._viewer = None\n                lib.sm_wipe(scratch, KEY_SIZE)",
        "                self._viewer = None",
        ("session_key_confined",),
    ),
    Mutation(
        "key_not_split", "key split", COFFER_C,
        "        out[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));",
        "        out[i] = 0;",
        ("key_split",),
    ),
    Mutation(
        "rekey_noop", "rekey", COFFER_C,
        "    if (e == 0) {\n        sm_blake2b_256(right, 32, h_old);",
        "    if (0) {\n        sm_blake2b_256(right, 32, h_old);",
        ("rekey",),
    ),
    Mutation(
        "rekey_on_use_skipped", "rekey", COFFER_PY,
        "        if now - self._rekeyed >= REKEY_INTERVAL:\n            self._resplit(now)",
        "        if False:\n            self._resplit(now)",
        ("rekey",),
    ),
    Mutation(
        "enclave_nonce_fixed", "nonce freshness", ENCLAVE_PY,
        "    nonce = nonce_bytes(NONCE_SIZE)",
        "    nonce = bytes(NONCE_SIZE)",
        ("nonces_fresh",),
    ),
    Mutation(
        "stream_nonces_fixed", "nonce freshness", STREAM_PY,
        "        nonces = memoryview(nonce_bytes(NONCE_SIZE * count))",
        "        nonces = memoryview(bytes(NONCE_SIZE * count))",
        ("nonces_fresh",),
    ),
    Mutation(
        "stream_reseal_nonce_fixed", "nonce freshness", STREAM_PY,
        "                    nonce = nonce_bytes(NONCE_SIZE)",
        "                    nonce = bytes(NONCE_SIZE)",
        ("nonces_fresh",),
    ),
    Mutation(
        "session_key_not_random", "session key", COFFER_PY,
        "        fill_random(self._left._b.data, KEY_SIZE)\n        fill_random(self._right._b.data, KEY_SIZE)\n",
        "",
        ("purge_replaces_key", "key_split"),
    ),
    # -- purge, registry, fork ----------------------------------------------------------
    Mutation(
        "purge_skips_buffers", "purge", "securememory/memguard/exits.py",
        "    for step in (*_before_purge, reset_coffer, destroy_all):\n",
        "    for step in (*_before_purge, reset_coffer):\n",
        ("purge_wipes",),
    ),
    Mutation(
        "buffer_not_registered", "registry", BUFFER_PY,
        "        _register(self)\n",
        "",
        ("registry_tracks", "purge_wipes"),
    ),
    Mutation(
        "buffer_fork_check_removed", "fork", BUFFER_PY,
        "        if self._gen != fork_state.generation:\n"
        "            raise ForkedError(\"this buffer was created before fork(); it is wiped in the child\")",
        "        if False:\n"
        "            raise ForkedError(\"this buffer was created before fork(); it is wiped in the child\")",
        ("fork",),
    ),
    Mutation(
        "secret_fork_check_removed", "fork", "securememory/gatemodule.c",
        "    if (gate->gen != generation) {",
        "    if (0) {",
        ("fork",),
    ),
    Mutation(
        "fork_ignores_aead_in_flight", "fork", "securememory/memguard/forkfence.py",
        "        while self._others_hold(me):\n            self._cond.wait()\n",
        "",
        ("fork_during_aead",),
    ),
    # -- crash and signal wipes -------------------------------------------------------
    Mutation(
        "crash_handler_no_wipe", "crash wipe", CRASH_C,
        "    wipe_live(1);\n    int i = index_of(sig);",
        "    int i = index_of(sig);",
        ("crash_wipe",),
    ),
    Mutation(
        "crash_handler_not_installed", "crash wipe", "securememory/memguard/crash.py",
        "        code = lib.sm_crash_install()",
        "        code = 0",
        ("crash_wipe",),
    ),
    Mutation(
        "crash_wipe_leaves_pages_open", "crash wipe", CRASH_C,
        "            if (seal)\n                sm_protect(addr, s->len, SM_PROT_NONE);",
        "            (void)seal;",
        ("crash_reseal",),
    ),
    Mutation(
        "buffer_not_crash_registered", "crash wipe", GUARD_C,
        "    b->slot = sm_live_add(inner, inner_len);",
        "    b->slot = -1;",
        ("crash_wipe", "underflow_canary"),
    ),
    Mutation(
        "legacy_not_crash_registered", "crash wipe", LEGACY_PY,
        "        self._slot = lib.sm_live_add(start, region.size)",
        "        self._slot = -1",
        ("crash_wipe", "signal_sigint"),
    ),
    Mutation(
        "signal_handler_no_wipe", "signal wipe", "securememory/signals.py",
        "        lib.sm_wipe_all()\n",
        "",
        ("signal_sigint", "signal_sigterm"),
    ),
    Mutation(
        name="escaped_pages_unmapped",
        protection="quarantine: pages a view escaped from stay reserved and NO_ACCESS after close",
        path="securememory/secret.py",
        old="        return self._end(Protection.NO_ACCESS if escaped else None)\n",
        new="        return self._end(None)\n",
        scenarios=("escape_quarantine",),
    ),
    Mutation(
        name="purge_unmaps_under_borrows",
        protection="quarantine: purge keeps pages under borrows in flight reserved (wiped, then NO_ACCESS)",
        path="securememory/secret.py",
        old="        if inflight:\n",
        new="        if False:\n",
        scenarios=("purge_in_flight",),
    ),
    Mutation(
        name="borrow_in_python_without_finally",
        protection="borrow gate: no bytecode boundary between entering a borrow and the guarantee of its exit",
        path="securememory/secret.py",
        old="        return self._gate.call(action)\n\n    def with_bytes_func",
        new=(
            "        borrow = self._inflight = self._gate.borrow(self)\n"
            "        result = action(borrow.__enter__())\n"
            "        borrow.__exit__(None, None, None)\n"
            "        return result\n\n    def with_bytes_func"
        ),
        scenarios=("interrupted_borrows",),
    ),
    Mutation(
        name="no_alternate_signal_stack",
        protection="crash wipe on stack overflow: every thread holding buffers has an alternate signal stack",
        path="securememory/memguard/crash.c",
        old="int sm_crash_altstack(void)\n{\n    if (altstack_ready)\n        return 0;\n",
        new="int sm_crash_altstack(void)\n{\n    if (1)\n        return 0;\n",
        scenarios=("stack_overflow_wipe",),
    ),
    Mutation(
        name="buffered_readers_accepted",
        protection="buffered readers are refused: their heap buffer would keep a copy of the secret",
        path="securememory/memguard/reading.py",
        old='    if isinstance(reader, _BUFFERED) or hasattr(reader, "raw"):\n',
        new="    if False:\n",
        scenarios=("stray_copies_readers",),
    ),
    Mutation(
        name="kdf_input_copied",
        protection="crypto recipes read their secret inputs from a borrow and never copy them",
        path="securememory/crypto.py",
        old="            kdf.derive_into(material, out)\n",
        new="            globals().setdefault('_kept', []).append(bytes(material))\n"
        "            kdf.derive_into(material, out)\n",
        scenarios=("stray_copies_crypto",),
    ),
    Mutation(
        name="coffer_lock_not_held",
        protection="hold: a with block's lock is released when the block never starts (CPython 3.14+)",
        path=COFFER_PY,
        old="        with hold(self._lock):\n            if not (self._gen",
        new="        with self._lock:\n            if not (self._gen",
        scenarios=("interrupted_borrows",),
        # 3.15.2 delivers no signal in that window (the scenario passes with a plain with)
        python=(3, 14),
        python_until=(3, 14),
    ),
    Mutation(
        name="quarantine_not_wiped",
        protection="quarantine wipes the pages it keeps reserved",
        path="securememory/memcall/reserve.c",
        old="        sm_wipe(addr, len);\n    else",
        new="        (void)0;\n    else",
        scenarios=("escape_quarantine_legacy", "purge_in_flight_legacy"),
    ),
    Mutation(
        name="mapping_never_quarantined",
        protection="escape quarantine: a legacy region whose view escaped stays reserved, never unmapped",
        path="securememory/memcall/posix.c",
        old="    int e = keep < 0 ? sm_free(",
        new="    int e = keep < 0 || 1 ? sm_free(",
        scenarios=("escape_quarantine_legacy", "purge_in_flight_legacy"),
    ),
    Mutation(
        name="enclave_escape_not_quarantined",
        protection="escape quarantine: an enclave secret's scratch whose view escaped stays reserved",
        path=SCRATCH_PY,
        old="            buf._release(Protection.NO_ACCESS)",
        new="            buf._release(None)",
        scenarios=("escape_quarantine_enclave",),
    ),
    Mutation(
        name="enclave_escaped_scratch_reused",
        protection="escape quarantine: an enclave secret's scratch whose view escaped stays reserved",
        path=SCRATCH_PY,
        old="        if escaped:\n            buf._release(",
        new="        if escaped and False:\n            buf._release(",
        scenarios=("escape_quarantine_enclave",),
    ),
    Mutation(
        name="retired_exit_leaves_readable",
        protection="purge in flight: when a purged borrow ends its pages go NO_ACCESS",
        path=GATE_C,
        old="    if (g->addr != NULL)\n        rc = sm_protect(g->addr, g->len, SM_PROT_NONE);\n    if (!g->own_span)",
        new="    if (g->addr != NULL)\n        rc = sm_protect(g->addr, g->len, SM_PROT_READ);\n    if (!g->own_span)",
        scenarios=("purge_in_flight",),
    ),
    Mutation(
        name="retired_exit_under_wipe",
        protection="purge in flight: when a purged borrow ends its pages go NO_ACCESS",
        path=GATE_C,
        old="            if (!g->tearing)\n                rc = conceal_retired(g);",
        new="            rc = conceal_retired(g);",
        scenarios=("purge_in_flight", "purge_in_flight_enclave"),
    ),
    Mutation(
        name="torn_leaves_readable",
        protection="purge in flight: when a purged borrow ends its pages go NO_ACCESS",
        path=GATE_C,
        old="        if (g->count == 0)\n            rc = conceal_retired(g);",
        new="",
        scenarios=("purge_in_flight", "purge_in_flight_enclave"),
    ),
    Mutation(
        name="fill_escape_ignored",
        protection="escaped views: a view that outlives create(fill) is detected",
        path="securememory/filling.py",
        old="    if escaped:\n        lib.sm_wipe(ptr, size)",
        new="    if escaped and False:\n        lib.sm_wipe(ptr, size)",
        scenarios=("borrow_protocol",),
    ),
    Mutation(
        name="altstack_not_per_thread",
        protection="every thread that creates a buffer gets an alternate signal stack for the crash wipe",
        path=GUARD_C,
        old="    sm_crash_altstack(); /* best effort: without one, a stack overflow dies unwiped */",
        new="    /* sm_crash_altstack(); */",
        scenarios=("stack_overflow_wipe",),
        python_until=(3, 13),  # 3.14+ Python code cannot overflow the C stack: the scenario is UNSUPPORTED
    ),
    Mutation(
        name="signal_wipe_skipped_with_handler",
        protection="signal handlers wipe every secret, a user handler given or not",
        path="securememory/signals.py",
        old="        lib.sm_wipe_all()\n        for stream in (sys.stdout, sys.stderr):",
        new="        if handler is None:\n"
        "            lib.sm_wipe_all()\n        for stream in (sys.stdout, sys.stderr):",
        scenarios=("signal_sigterm",),
    ),
    Mutation(
        name="from_env_not_wiped",
        protection="from_env overwrites the environment block it read",
        path="securememory/sources.py",
        old="        lib.sm_wipe(ptr, n)\n        os.environ.pop(name, None)",
        new="        pass\n        os.environ.pop(name, None)",
        scenarios=("stray_copies_env",),
    ),
    Mutation(
        name="getpass_echoes",
        protection="getpass turns the terminal's echo off",
        path="securememory/sources.py",
        old="        quiet[3] &= ~(termios.ECHO | termios.ICANON)",
        new="        quiet[3] &= ~termios.ICANON",
        scenarios=("stray_copies_getpass",),
    ),
    Mutation(
        name="from_bytes_not_frozen",
        protection="freeze: Buffer.from_bytes returns a read-only buffer",
        path=BUFFER_PY,
        old="            lib.sm_wipe(ptr, n)\n        buf.freeze()\n        return buf",
        new="            lib.sm_wipe(ptr, n)\n        return buf",
        scenarios=("frozen_write",),
    ),
    Mutation(
        name="from_bytes_source_not_wiped",
        protection="Buffer.from_bytes wipes a writable source",
        path=BUFFER_PY,
        old="        if writable:\n            lib.sm_wipe(ptr, n)\n        buf.freeze()",
        new="        buf.freeze()",
        scenarios=("stray_copies_memguard",),
    ),
    Mutation(
        name="move_source_not_wiped",
        protection="Buffer.move wipes its source",
        path=BUFFER_PY,
        old="        self.copy_at(offset, src)\n        lib.sm_wipe(ptr, n)",
        new="        self.copy_at(offset, src)",
        scenarios=("stray_copies_memguard",),
    ),
    Mutation(
        name="fill_stack_not_wiped",
        protection="the stack below a create(fill) is wiped when fill returns (native code's dead frames)",
        path="securememory/gatemodule.c",
        old="    sm_stack_wipe(FILL_STACK_WIPE);\n",
        new="",
        scenarios=("stray_copies_fill_stack",),
    ),
    Mutation(
        name="send_copies_the_secret",
        protection="send() writes from the borrowed view of locked memory and never copies it",
        path="securememory/transfer.py",
        old="            done += os.write(fd, view[done:])\n",
        new="            globals().setdefault('_kept', []).append(bytes(view[done:]))\n"
        "            done += os.write(fd, view[done:])\n",
        scenarios=("stray_copies_transfer",),
    ),
    Mutation(
        name="getpass_keeps_the_line",
        protection="getpass reads the terminal byte by byte into locked memory, never into a Python object",
        path="securememory/sources.py",
        old="        if byte in _END:\n            view[pos] = 0\n            return pos\n",
        new=(
            "        if byte in _END:\n            view[pos] = 0\n"
            "            globals().setdefault('_kept', []).append(bytes(view[:pos]))\n            return pos\n"
        ),
        scenarios=("stray_copies_getpass",),
    ),
    Mutation(
        name="equal_early_exit_c",
        protection="constant_time",
        path="securememory/memguard/guard.c",
        old="    unsigned char d = 0;\n"
        "    for (size_t i = 0; i < len; i++)\n"
        "        d |= x[i] ^ y[i];\n"
        "    return d == 0;\n",
        new="    for (size_t i = 0; i < len; i++)\n"
        "        if (x[i] != y[i])\n"
        "            return 0;\n"
        "    return 1;\n",
        scenarios=("constant_time",),
    ),
    Mutation(
        name="equal_early_exit_python",
        protection="constant_time",
        path="securememory/secret.py",
        old="            return bool(lib.sm_equal(ffi.from_buffer(a), ffi.from_buffer(b), self._size))\n",
        new="            return a == b  # memoryview comparison: stops at the first differing byte\n",
        scenarios=("constant_time",),
    ),
    # -- failing system calls -------------------------------------------------------
    Mutation(
        name="teardown_leaves_unwritable_pages_mapped",
        protection="failing syscalls: a teardown that cannot make pages writable unmaps them unwiped",
        path=POSIX_C,
        old="    if (mprotect(addr, len, PROT_READ | PROT_WRITE) != 0)\n        return sm_unmap(addr, len);\n",
        new="    if (mprotect(addr, len, PROT_READ | PROT_WRITE) != 0)\n        return errno;\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="mmap_failure_reported_as_size",
        protection="errors name the failed call",
        path=GUARD_C,
        old="    if ((e = sm_reserve(total, &base)))\n        return b->failed_step = SM_STEP_MAP, e;",
        new="    if ((e = sm_reserve(total, &base)))\n        return b->failed_step = SM_STEP_SIZE, e;",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="borrow_failure_unnamed",
        protection="errors name the failed call",
        path="securememory/gatemodule.c",
        old='raise_errno("could not make the secret readable", "mprotect to READ_ONLY", rc);',
        new='raise_errno("could not make the secret readable", "a call", rc);',
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="munmap_failure_unnamed",
        protection="errors name the failed call",
        path="securememory/memcall/failures.py",
        old='    lib.SM_STEP_UNMAP: "munmap",\n',
        new="",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="failed_destroy_stays_registered",
        protection="failed teardown finishes",
        path=BUFFER_PY,
        old="        if not self._b.base:\n            _unregister(self)\n        if code:\n",
        new="        if not code and not self._b.base:\n            _unregister(self)\n        if code:\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="failed_close_left_unfinished",
        protection="failed teardown finishes",
        path=SECRET_PY,
        old="        except SecureMemoryError as e:\n            failure: SecureMemoryError | None = e\n",
        new="        except SecureMemoryError:\n            raise\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="purge_stops_at_first_failure",
        protection="purge continues past failures",
        path=SECRET_PY,
        old="        except SecureMemoryError as e:\n            failures.append(e)\n",
        new="        except SecureMemoryError:\n            raise\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="coffer_destroy_stops_at_first_failure",
        protection="purge continues past failures",
        path=COFFER_PY,
        old="                except SecureMemoryError as e:\n                    failure = failure or e\n",
        new="                except SecureMemoryError:\n                    raise\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="quarantine_keeps_unwiped_pages",
        protection="failed quarantine drops unwiped pages",
        path=RESERVE_C,
        old="    /* unwiped, or wiped but still locked or writable: drop the pages */\n",
        new="    if (!wiped)\n        return e;\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="quarantine_keeps_pages_locked",
        protection="failed quarantine leaves no page locked",
        path=RESERVE_C,
        old="    /* unwiped, or wiped but still locked or writable: drop the pages */\n",
        new="    if (*step == SM_STEP_UNLOCK)\n        return e;\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="quarantine_keeps_pages_writable",
        protection="failed quarantine leaves no page writable",
        path=RESERVE_C,
        old="    /* unwiped, or wiped but still locked or writable: drop the pages */\n",
        new="    if (*step == SM_STEP_SEAL)\n        return e;\n",
        scenarios=("faults_injected",),
    ),
    Mutation(
        name="escape_not_reported",
        protection="borrow gate: a view that outlives its borrow is detected (ViewEscapedError)",
        path="securememory/gatemodule.c",
        old="    if (b->exports > 0)\n        escaped = 1;\n",
        new="    if (0)\n        escaped = 1;\n",
        scenarios=("borrow_protocol",),
    ),
    Mutation(
        name="close_does_not_wait",
        protection="borrow gate: close() waits for borrows in flight before tearing down",
        path="securememory/gate.c",
        old="        else if (g->count > 0 || g->state != CONCEALED)\n            rc = SM_GATE_TIMEOUT;\n",
        new="",
        scenarios=("borrow_protocol",),
    ),
]
