"""The harness: proves securememory's protections in forked child processes.

Each scenario runs in a fresh child; the parent observes the signal that
killed it, its exit status, its stderr and its memory (/proc/PID/mem), and
reports PASS, FAIL or UNSUPPORTED with the reason. ``python -m harness`` runs
them all.
"""
