"""Secret backends: where a secret's bytes live between borrows.

- ``protected`` (the new design): a guarded memguard Buffer, NO_ACCESS between borrows.
- ``enclave``: sealed in ordinary memory, opened into locked scratch per borrow.
- ``legacy`` (the old design): mmap + mlock + mprotect, no guard pages, no canary.
"""
