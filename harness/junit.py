"""JUnit XML for the harness's results, so CI systems show each scenario as a test case.

One ``<testsuites>`` holding one ``<testsuite>`` per profile; each scenario is
a ``<testcase>`` (classname ``harness.<profile>``) with ``<failure>`` for FAIL
and ``<skipped>`` for UNSUPPORTED, in the layout of Jenkins' junit-10 schema,
which GitLab, GitHub annotators and Azure read too.
"""

from __future__ import annotations

import datetime
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from .scenario import FAIL, UNSUPPORTED, Result


def document(results: list[Result], profile: str, started: datetime.datetime) -> ET.ElementTree:
    """The JUnit XML tree of ``results`` run under ``profile`` from ``started``."""
    failures = sum(r.verdict == FAIL for r in results)
    skipped = sum(r.verdict == UNSUPPORTED for r in results)
    seconds = f"{sum(r.seconds for r in results):.3f}"
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0", "time": seconds}
    root = ET.Element("testsuites", {"name": "securememory harness", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": f"harness.{profile}", **counts, "skipped": str(skipped),
        "timestamp": started.replace(microsecond=0, tzinfo=None).isoformat(),
        "hostname": socket.gethostname() or "localhost",
    })
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "profile", "value": profile})
    for r in results:
        case = ET.SubElement(suite, "testcase", {
            "name": r.scenario, "classname": f"harness.{profile}", "time": f"{r.seconds:.3f}",
        })
        if r.verdict == FAIL:
            failure = ET.SubElement(case, "failure", {"message": r.observed, "type": FAIL})
            failure.text = f"expected: {r.expected}\nobserved: {r.observed}"
            if r.reason:
                failure.text += f"\nreason: {r.reason}"
        elif r.verdict == UNSUPPORTED:
            ET.SubElement(case, "skipped", {"message": r.reason})
        out = ET.SubElement(case, "system-out")
        out.text = f"expected: {r.expected}\nobserved: {r.observed}"
    ET.indent(root)
    return ET.ElementTree(root)


def write(path: str | Path, results: list[Result], profile: str, started: datetime.datetime) -> None:
    """Write the JUnit XML of ``results`` to ``path`` (UTF-8, with an XML declaration)."""
    document(results, profile, started).write(path, encoding="utf-8", xml_declaration=True)
